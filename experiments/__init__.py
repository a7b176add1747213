"""The top layer: the ``swarmsim`` command, experiment configs, runners and reports."""
