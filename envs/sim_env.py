"""One Gymnasium environment for every Task: the simulator run to the Task's next decision.

``step`` applies the action through the simulator's ControlPlane, then runs the simulation
until the Task's next decision point (the next query to route, configure or place, or the
next control interval) or the end of the episode. The other decisions are taken meanwhile by the
controllers given for them, or by the simulator's built-in defaults.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from swarmsim.clock import Call, run_until
from swarmsim.query import Query
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import raw_scenario, resolve_scenario
from swarmsim.simulation import Simulation
from swarmsim.view import ClusterView

from .attach import attach
from .registry import make_task
from .task import Actor, Task


class SwarmEnv(gym.Env):
    """A Task driven by the SimPy model of a scenario.

    Arguments: ``task`` (a Task or its name), ``scenario`` (built-in name, YAML path or a
    loaded Scenario), ``overrides`` (``KEY=VALUE`` strings, as ``--set``), ``episode_s``
    (simulated seconds per episode; default the scenario's duration), ``controllers``
    (Task name -> controller with ``act(obs)``, for the decisions this env does not train),
    ``reward`` (the Task's reward weights dataclass), ``vary`` (scenario parameter ->
    ``(low, high)``: each episode draws the parameter uniformly from the env's generator, as
    an override, e.g. ``{"rate": (0.9, 1.3)}``; domain randomisation over load for training),
    ``mix`` (other scenario names or files: each episode runs one of ``scenario`` and these,
    uniformly drawn, with the same overrides; e.g. a control twin, so a policy also meets
    the regime where its mechanism is absent).

    Episodes end by truncation at ``episode_s`` or by termination when some pipeline stage
    has no agents left at all (the cluster can serve nothing). ``info["summary"]`` carries
    the metrics summary (less ``wall_s``) at the end of an episode;
    ``info["invalid_actions"]`` counts the sub-actions of the step not executed as given.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012  (Gymnasium's own field)

    def __init__(
        self,
        task: str | Task = "shard-routing",
        scenario: str | Scenario = "escape-velocity",
        overrides: Sequence[str] = (),
        episode_s: float | None = None,
        controllers: Mapping[str, Actor] | None = None,
        reward: Any = None,
        render_mode: str | None = None,
        vary: Mapping[str, tuple[float, float]] | None = None,
        mix: Sequence[str] = (),
    ) -> None:
        if render_mode is not None:  # TypeError: callers such as SB3 then retry without it
            raise TypeError(f"render_mode must be None (nothing to render), got {render_mode!r}")
        self.render_mode = None
        self.task = make_task(task, reward) if isinstance(task, str) else task
        self.vary = dict(sorted((vary or {}).items()))
        self.mix = tuple(mix)
        if (self.vary or self.mix) and isinstance(scenario, Scenario):
            raise ValueError(f"vary and mix need scenario names or files, got {scenario}")
        if not isinstance(scenario, Scenario):
            self._raws = [raw_scenario(ref) for ref in (scenario, *self.mix)]
            scenario = resolve_scenario(self._raws[0][1], overrides, self._raws[0][0])
        self.scenario = scenario
        self.overrides = tuple(overrides)
        self.episode_s = float(episode_s or self.scenario.duration_s)
        self.others = {
            name: (make_task(name), ctl)
            for name, ctl in (controllers or {}).items()
            if name != self.task.name
        }
        self.observation_space = self.task.observation_space
        self.action_space = self.task.action_space
        self.sim: Simulation | None = None
        self._pending: deque[Any] = deque()

    # --- Gymnasium API ----------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        sim_seed = int(self.np_random.integers(2**31 - 1))
        pick = int(self.np_random.integers(len(self._raws))) if self.mix else 0
        varied = {k: float(self.np_random.uniform(lo, hi)) for k, (lo, hi) in self.vary.items()}
        if self.mix or varied:
            source, raw = self._raws[pick]
            sets = [*self.overrides, *(f"{k}={v!r}" for k, v in varied.items())]
            self.scenario = resolve_scenario(raw, sets, source)
        self.sim = self._build(sim_seed)
        self._pending = deque()
        self._stop = self.sim.env.event()
        Call(self.sim.env, self.episode_s, self._end_episode, None)
        self.sim.start()
        self._advance()
        view = self._decision_view()
        self._last = view
        info = {"sim_seed": sim_seed, "scenario": self.scenario.name, "varied": varied}
        return self.task.observe(view), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        sim = self.sim
        if sim is None or not self._pending:
            raise RuntimeError("step() needs a decision pending: call reset() first")
        invalid = self.task.act(action, sim)
        self._pending.popleft()
        self._advance()
        view = self._decision_view()
        reward = self.task.reward(self._last.totals, view.totals, view.time_s - self._last.time_s)
        self._last = view
        obs = self.task.observe(view)
        terminated = not sim.coordinator.can_serve()
        truncated = not terminated and not self._pending
        info: dict[str, Any] = {"invalid_actions": invalid}
        if terminated or truncated:
            info["summary"] = self.summary()
        return obs, float(reward), terminated, truncated, info

    def summary(self) -> dict[str, Any]:
        """The episode's metrics summary, without ``wall_s`` so that step info stays
        deterministic (the same seed and actions give the same info)."""
        summary = dict(self._simulation().summary(0.0))
        del summary["wall_s"]
        return summary

    def _simulation(self) -> Simulation:
        if self.sim is None:
            raise RuntimeError("the environment has no simulation yet: call reset() first")
        return self.sim

    def action_masks(self) -> np.ndarray:
        """Valid choices for the pending decision (sb3-contrib MaskablePPO calls this)."""
        if self.task.view is None:
            raise RuntimeError("action_masks() before reset()")
        return self.task.action_masks(self.task.view)

    # --- driving the simulator --------------------------------------------------------------

    def _build(self, seed: int) -> Simulation:
        sim = Simulation(self.scenario, seed=seed)
        if self.task.decision == "route":
            sim.on_route = self._route_pending
        elif self.task.decision == "configure":
            sim.on_configure = self._route_pending
        elif self.task.decision == "place":
            sim.on_place = self._route_pending
        else:
            sim.on_control.append(self._control_pending)
        for task, ctl in self.others.values():
            attach(sim, task, ctl)
        return sim

    def _route_pending(self, query: Query) -> None:
        self._pending.append(query)
        self._pause()

    def _control_pending(self) -> None:
        # Built now: the interval's statistics are reset when the hooks return.
        self._pending.append(self._view(None))
        self._pause()

    def _pause(self) -> None:
        if not self._stop.triggered:
            self._stop.succeed()

    def _end_episode(self, _: Any) -> None:
        self._ended = True
        self._pause()

    def _advance(self) -> None:
        """Run the simulation until a decision is pending or the episode's time is up."""
        env = self._simulation().env
        while not self._pending and env._now < self.episode_s:
            self._stop = env.event()
            run_until(env, self._stop)

    def _decision_view(self) -> ClusterView:
        head = self._pending[0] if self._pending else None
        if isinstance(head, ClusterView):
            return head
        return self._view(head)

    def _view(self, query: Query | None) -> ClusterView:
        return self._simulation().view(
            query, roles=self.task.roles, layer_stats=self.task.layer_stats
        )
