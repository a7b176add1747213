"""Autoscaling heuristics with the defaults of the systems they reproduce.

Each decides from the Autoscaling observation alone (``envs.scaling.decode``), once per
control interval of ``interval_s`` seconds, computes a desired replica count per layer the
way its original does, and expresses it as the action whose target is nearest
(``envs.scaling.choice_for``). Windows and delays are kept in seconds, so the heuristics are
stateful where their originals are. Defaults are from REFERENCE.md ("Production
heuristics") and the projects' documentation.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.scaling import HISTORY, HOLD, MAX_LAYERS, TREND, choice_for, decode
from swarmsim.view import ARRIVAL_HISTORY

# Offsets of envs.scaling's per-layer features
PRESENT, ARRIVALS, ONGOING, UTILISATION, RUNNING, STARTING, THROUGHPUT = 0, 1, 2, 4, 6, 7, 9


def live(raw: np.ndarray) -> int:
    """Replicas a layer has or has asked for (running + starting), from decoded features."""
    return round(float(raw[RUNNING] + raw[STARTING]))


class _PerLayer(ABC):
    """Shared plumbing: one desired count per present layer, turned into an action."""

    task = "autoscaling"

    def __init__(self, interval_s: float = 15.0) -> None:
        self.interval_s = interval_s
        self.reset()

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every layer's windows and counters."""
        self.calls = 0
        self.layers: dict[int, dict[str, Any]] = {}

    def memory(self, layer: int) -> dict[str, Any]:
        """This controller's state for ``layer`` (windows, streaks), kept across calls."""
        return self.layers.setdefault(layer, {})

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.calls += 1
        raw = decode(obs)
        action = np.full(MAX_LAYERS, HOLD, dtype=np.int64)
        for i in range(MAX_LAYERS):
            if raw[i, PRESENT] > 0.5:
                current = live(raw[i])
                action[i] = choice_for(current, self.desired(i, raw[i], current))
        return action

    @abstractmethod
    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        """The replica count this heuristic wants for ``layer`` now."""


class Static(_PerLayer):
    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        return current


@dataclass
class HPA(_PerLayer):
    """Kubernetes Horizontal Pod Autoscaler (autoscaling/v2 defaults).

    desired = ceil(current * utilisation / target); no change while the ratio is within
    ``tolerance`` of 1; scale-up at most max(2 * current, current + 4) per ``sync_s``; a
    scale-down takes the highest recommendation of the last ``stabilization_s`` (300 s).
    """

    target_utilization: float = 0.7
    tolerance: float = 0.1
    sync_s: float = 15.0
    stabilization_s: float = 300.0
    interval_s: float = 15.0

    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        if (self.calls - 1) % max(1, round(self.sync_s / self.interval_s)):
            return current  # between HPA sync periods
        ratio = raw[UTILISATION] / self.target_utilization
        want = current if abs(ratio - 1.0) <= self.tolerance else math.ceil(current * ratio)
        want = min(want, max(2 * current, current + 4))
        n = max(1, round(self.stabilization_s / self.sync_s))
        window = self.memory(layer).setdefault("window", deque(maxlen=n))
        window.append(want)
        return want if want >= current else max(window)


@dataclass
class KPA(_PerLayer):
    """Knative Pod Autoscaler (defaults: container-concurrency-target-default 100, target
    utilisation 70%, stable window 60 s, panic window 10% of it, panic threshold 200%,
    max scale-down rate 2). Concurrency is the layer's ongoing jobs; with a control interval
    longer than the panic window, the panic window is the last interval.
    """

    target_concurrency: float = 100.0
    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_pct: float = 10.0
    panic_threshold: float = 2.0
    max_scale_down_rate: float = 2.0
    interval_s: float = 15.0

    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        n = max(1, round(self.stable_window_s / self.interval_s))
        mem = self.memory(layer)
        window = mem.setdefault("samples", deque(maxlen=n))
        window.append(raw[ONGOING])
        panic_n = max(
            1, round(self.stable_window_s * self.panic_window_pct / 100 / self.interval_s)
        )
        per_replica = self.target_concurrency * self.target_utilization
        stable = math.ceil(float(np.mean(window)) / per_replica)
        panic = math.ceil(float(np.mean(list(window)[-panic_n:])) / per_replica)
        if current and panic / current >= self.panic_threshold:
            mem["panic_left"] = n  # stay in panic for one stable window
        if mem.get("panic_left", 0) > 0:
            mem["panic_left"] -= 1
            return max(panic, stable, current)  # never scale down while panicking
        return max(stable, math.ceil(current / self.max_scale_down_rate))


@dataclass
class RayServe(_PerLayer):
    """Ray Serve's default autoscaling policy: desired = ceil(ongoing / target_ongoing_requests)
    averaged over ``look_back_period_s``, applied after it has held for ``upscale_delay_s``
    (up) or ``downscale_delay_s`` (down)."""

    target_ongoing_requests: float = 2.0
    upscale_delay_s: float = 30.0
    downscale_delay_s: float = 600.0
    look_back_period_s: float = 30.0
    interval_s: float = 15.0

    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        n = max(1, round(self.look_back_period_s / self.interval_s))
        mem = self.memory(layer)
        window = mem.setdefault("samples", deque(maxlen=n))
        window.append(raw[ONGOING])
        want = math.ceil(float(np.mean(window)) / self.target_ongoing_requests)
        if want == current:
            mem["streak"] = 0
            return current
        direction = 1 if want > current else -1
        streak = mem.get("streak", 0)
        streak = streak + direction if streak * direction >= 0 else direction
        mem["streak"] = streak
        delay = self.upscale_delay_s if direction > 0 else self.downscale_delay_s
        if abs(streak) * self.interval_s >= delay:
            mem["streak"] = 0
            return want
        return current


@dataclass
class Predictive(_PerLayer):
    """A forecasting autoscaler in the manner of NVIDIA Dynamo's SLA planner: the arrival
    rate predicted ``lead_s`` ahead, divided by a replica's measured capacity.

    The predictor is Holt's double exponential smoothing of each interval's rate (level
    weight ``alpha``, trend weight ``beta``), started from the least-squares line through the
    observation's history (its fitted last value and slope), extended by ``lead_s``: the time
    a replica asked for now takes to serve (REFERENCE.md: 60-180 s with weights cached on the
    node; default 120 s). A replica's capacity is measured from the view: per-job service
    time = busy replica-seconds / jobs answered = utilisation x (running + starting) /
    throughput, smoothed by ``alpha`` and kept while the layer answers nothing.
    desired = ceil(predicted rate x service time / ``target_utilization``); a scale-down takes
    the highest desired count of the last ``stabilization_s`` (as HPA), so that replicas still
    starting are not cancelled by a noisy interval.
    """

    lead_s: float = 120.0
    target_utilization: float = 0.7
    alpha: float = 0.5
    beta: float = 0.2
    stabilization_s: float = 300.0
    interval_s: float = 15.0

    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        rate = self.predicted_rate(layer, raw)
        service_s = self._service_s(layer, raw)
        if service_s is None:
            return current  # no capacity measured yet
        want = max(0, math.ceil(rate * service_s / self.target_utilization))
        n = max(1, round(self.stabilization_s / self.interval_s))
        window = self.memory(layer).setdefault("window", deque(maxlen=n))
        window.append(want)
        return want if want >= current else min(max(window), current)

    def predicted_rate(self, layer: int, raw: np.ndarray) -> float:
        """Jobs/s expected ``lead_s`` from now (updates the layer's Holt level and trend)."""
        mem, rate = self.memory(layer), float(raw[ARRIVALS])
        if "level" not in mem:  # the line through the history: its last value and slope
            rates = np.append(raw[HISTORY : HISTORY + ARRIVAL_HISTORY][::-1], rate)
            mem["trend"] = float(raw[TREND])  # jobs/s per interval, over the same intervals
            mem["level"] = float(rates.mean()) + mem["trend"] * (len(rates) - 1) / 2
        else:
            last = mem["level"]
            mem["level"] = self.alpha * rate + (1 - self.alpha) * (last + mem["trend"])
            mem["trend"] = self.beta * (mem["level"] - last) + (1 - self.beta) * mem["trend"]
        ahead: float = mem["level"] + mem["trend"] * self.lead_s / self.interval_s
        return max(0.0, ahead)

    def _service_s(self, layer: int, raw: np.ndarray) -> float | None:
        mem = self.memory(layer)
        if raw[THROUGHPUT] > 0 and raw[UTILISATION] > 0:
            measured = raw[UTILISATION] * (raw[RUNNING] + raw[STARTING]) / raw[THROUGHPUT]
            old = mem.get("service_s", measured)
            mem["service_s"] = self.alpha * measured + (1 - self.alpha) * old
        service: float | None = mem.get("service_s")
        return service
