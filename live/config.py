"""Named tunables of the live runtime that have no simulator twin (heartbeats and the retry
budget are the scenario's ``failures`` section, shared with the simulator)."""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmsim.errors import check

from .admission import AdmissionConfig
from .guard import GuardConfig

RECONNECT_INITIAL_S = 1.0  # worker reconnect back-off: 1 s doubling ...
RECONNECT_MAX_S = 32.0  # ... capped at 32 s


@dataclass(frozen=True)
class LiveConfig:
    """Timing and bounds of one live swarm."""

    reconnect_initial_s: float = RECONNECT_INITIAL_S
    reconnect_max_s: float = RECONNECT_MAX_S
    worker_credit: int = 4  # jobs in flight per worker before work waits at the coordinator
    max_backlog: int = 10_000  # jobs waiting at the coordinator before new queries are refused
    deadline_s: float | None = None  # per query; default: the scenario's, else 4 x SLO
    time_scale: float = 1.0  # emulated stage times are the profile's times x this
    startup_timeout_s: float = 60.0  # workers must report READY within this
    hwm: int = 10_000  # socket high-water marks (messages)
    decision_deadline_s: float = 0.1  # a controller slower than this has failed the decision
    failure_limit: int = 3  # failed decisions in one heartbeat interval that bench it
    recover_after: int = 20  # valid decisions in a row, probed while benched, to act again
    max_benchings: int = 3  # benched this many times: detached for good (it flaps)
    probe_backoff_s: float = 1.0  # after a failed probe the next waits this, doubling to 30 s
    route_log_fraction: float = 0.1  # routing decisions logged with their observation
    # after traffic, the coordinator polls without sleeping for this long before it blocks:
    # a loop that slept runs its next decision several times slower on a VM (cold wake,
    # benchmarks/live_speed.py), at the cost of a busy core while traffic lasts (0: off)
    spin_s: float = 0.0
    guard: GuardConfig = field(default_factory=GuardConfig)  # per-peer budgets (live.guard)
    admission: AdmissionConfig = field(default_factory=AdmissionConfig)  # (live.admission)
    supervisors: bool = False  # one node supervisor per scenario node (live.supervisor)
    emulated_hosts: int = 0  # > 0: EMULATED workers, in this many supervisor processes

    def __post_init__(self) -> None:
        check(self.worker_credit >= 1, "worker_credit", self.worker_credit, ">= 1")
        check(self.time_scale >= 0, "time_scale", self.time_scale, ">= 0")
        deadline = self.decision_deadline_s
        check(deadline > 0, "decision_deadline_s", deadline, "> 0")
        check(self.failure_limit >= 1, "failure_limit", self.failure_limit, ">= 1")
        check(self.recover_after >= 1, "recover_after", self.recover_after, ">= 1")
        check(self.max_benchings >= 1, "max_benchings", self.max_benchings, ">= 1")
        check(self.probe_backoff_s > 0, "probe_backoff_s", self.probe_backoff_s, "> 0")
        check(self.emulated_hosts >= 0, "emulated_hosts", self.emulated_hosts, ">= 0")
        fraction = self.route_log_fraction
        check(0 <= fraction <= 1, "route_log_fraction", fraction, "in [0, 1]")
        check(0 <= self.spin_s <= 1, "spin_s", self.spin_s, "in [0, 1]")
