"""``python -m experiments.cli``: the ``swarmsim`` command."""

import sys

from . import main

sys.exit(main())
