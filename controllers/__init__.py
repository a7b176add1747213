"""Controllers: heuristics, bandits and learned policies, each ``act(obs) -> action``.

A controller decides from its Task's observation alone, so the same object (or the same saved
artifact) serves the simulator and the live runtime. Imports ``envs`` and ``swarmsim``.
"""
