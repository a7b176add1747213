"""Controllers: heuristics, bandits, learned-policy loading and guardrails, each ``act(obs) ->
action``. Filled by the controllers issue; imports ``envs`` and ``swarmsim``."""
