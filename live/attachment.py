"""Controllers attached to a running swarm: one ``TaskSlot`` per Task.

A slot holds the acting controller and, optionally, a candidate beside it. A ``shadow``
candidate decides on the same observation as the acting one; its choice is logged and costed,
never applied. A ``split`` candidate takes the queries whose id hashes below the split
fraction (an A/B test; the same query id always lands in the same arm). Every controller sits
behind a guardrail, so an invalid action is never applied: the heuristic's action replaces it
in the same decision. An acting controller whose decisions keep failing (it raises, misses the
decision deadline, or returns invalid actions) is *benched* at the next heartbeat, a circuit
breaker: the Task's heuristic decides, while the benched policy is still asked on the same
observations (a probe, never applied; after a failed probe the next waits, with back-off, so a
hung policy costs one deadline per wait). After ``recover_after`` valid probes in a row it acts
again; benched ``max_benchings`` times, it is detached for good. A failing candidate is
detached at once.

Swaps are atomic with respect to decisions: the coordinator is one loop, so a decision in
progress finishes with the controller it started with, and the next one uses the new one.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.guardrails import DEFAULT_FALLBACK, Guardrail
from controllers.registry import make_controller
from envs.attach import decide
from envs.task import Actor, Task
from swarmsim.errors import SwarmError
from swarmsim.view import Swarm

from .config import LiveConfig

ACTING, CANDIDATE = "acting", "candidate"
SHADOW, SPLIT = "shadow", "split"
FAILURES = ("raised", "deadline", "invalid")  # guardrail fallbacks that count against a policy
WINDOW = 20_000  # decision timings and shadow differences kept (the most recent)
MAX_PROBE_BACKOFF_S = 30.0


def stable_fraction(key: int, salt: bytes = b"split") -> float:
    """A number in [0, 1) fixed by ``key`` and ``salt``: a query's arm and its log sampling
    never change between runs or restarts."""
    digest = hashlib.blake2b(str(key).encode(), digest_size=8, person=salt).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class Installed:
    """One attached controller: its label, its guardrail, its artifact's hash, since when."""

    label: str
    guard: Guardrail
    sha256: str | None
    since: float
    implicit: bool = False  # the Task's heuristic, put in to face a candidate
    failed_mark: int = 0  # failures and decisions at the last health check
    decided_mark: int = 0
    benched: bool = False  # the heuristic acts; this one is only probed
    benchings: int = 0
    streak: int = 0  # valid probes in a row while benched
    next_probe: float = 0.0
    backoff: float = 0.0

    def failures(self) -> int:
        """Decisions so far that fell back because the controller failed."""
        return sum(self.guard.fallbacks[r] for r in FAILURES)

    def status(self, now: float) -> dict[str, Any]:
        return {
            "name": self.label,
            "sha256": self.sha256,
            "since_s": self.since,
            "for_s": now - self.since,
            "decisions": self.guard.decisions,
            "fallbacks": dict(self.guard.fallbacks),
            "benched": self.benched,
            "benchings": self.benchings,
            "valid_streak": self.streak,
        }


class TaskSlot:
    """The controllers of one Task in a running swarm, their decisions and their log."""

    def __init__(self, task: Task, cfg: LiveConfig, now: Callable[[], float]) -> None:
        self.task, self.cfg, self.now = task, cfg, now
        self.acting: Installed | None = None
        self.candidate: Installed | None = None
        self.mode: str | None = None  # SHADOW or SPLIT while a candidate is attached
        self.split = 0.0
        self.decisions = 0
        self.invalid = 0  # sub-actions the Task replaced by its heuristic's
        self.decision_us: deque[float] = deque(maxlen=WINDOW)  # the controller's act alone
        self.observe_us: deque[float] = deque(maxlen=WINDOW)  # view and observation
        self.choice_us: deque[float] = deque(maxlen=WINDOW)  # both: the choice, not applied
        self.decide_us: deque[float] = deque(maxlen=WINDOW)  # all of it, shadow and log too
        self.compared = self.agreed = 0  # shadow decisions, and those equal to the acting one
        self.differences: deque[tuple[dict, dict]] = deque(maxlen=WINDOW)  # (acting, shadow)
        self.shadowed: tuple[str, str] | None = None  # (acting, shadow) labels compared last
        self.log: list[dict[str, Any]] | None = None  # decision rows, while recording
        self.reinstated: list[dict[str, Any]] = []  # events made while deciding, for check()

    @property
    def active(self) -> bool:
        return self.acting is not None

    # --- attach and detach -----------------------------------------------------------------

    def install(
        self,
        label: str,
        controller: Actor,
        sha256: str | None = None,
        mode: str = ACTING,
        split: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Put ``controller`` in as the acting one, or beside it as a ``shadow`` or ``split``
        candidate; the events this makes (for status and the recording)."""
        if mode not in (ACTING, SHADOW, SPLIT):
            raise SwarmError(f"attach: mode must be acting, shadow or split, got {mode!r}")
        if mode == SPLIT and not 0 < split < 1:
            raise SwarmError(f"--split: expected a fraction in (0, 1), got {split}")
        if mode == SPLIT and self.task.decision not in ("route", "place"):
            raise SwarmError(
                f"--split sends a fraction of the queries to the candidate; {self.task.name} "
                "decides per interval, not per query: compare it with --shadow"
            )
        entry = Installed(label, self._guard(controller), sha256, self.now())
        events = []
        if mode == ACTING:
            if self.acting is not None:
                events.append(self._event(self.acting, "replaced", f"by {label}"))
            self.acting = entry
            return [*events, self._event(entry, "attached", ACTING)]
        if self.candidate is not None:
            events.append(self._event(self.candidate, "replaced", f"by {label}"))
        if self.acting is None:
            heuristic = DEFAULT_FALLBACK[self.task.name]
            ctrl = make_controller(self.task.name, heuristic)
            self.acting = Installed(heuristic, self._guard(ctrl), None, self.now(), implicit=True)
        self.candidate, self.mode, self.split = entry, mode, split if mode == SPLIT else 0.0
        if mode == SHADOW:  # a new comparison: its figures start from nothing
            self.compared = self.agreed = 0
            self.differences.clear()
            self.shadowed = (self.acting.label, label)
        what = f"{mode} {split:g}" if mode == SPLIT else mode
        return [*events, self._event(entry, "attached", f"{what} beside {self.acting.label}")]

    def remove(self, which: str = ACTING, reason: str = "", change: str = "detached") -> list:
        """Take out the candidate, or the acting controller (and any candidate with it)."""
        events = []
        if self.candidate is not None:
            events.append(self._event(self.candidate, change, reason))
            self.candidate, self.mode, self.split = None, None, 0.0
            if which == CANDIDATE and self.acting is not None and self.acting.implicit:
                self.acting = None
        if which == ACTING and self.acting is not None:
            if not self.acting.implicit:
                events.append(self._event(self.acting, change, reason))
            self.acting = None
        return events

    def check(self) -> list[dict[str, Any]]:
        """At a heartbeat: bench the acting controller (detach a candidate) whose decisions
        since the last check all failed, or failed ``failure_limit`` times; the events this
        makes, with those of reinstatements since the last check."""
        events, self.reinstated = self.reinstated, []
        for which in (CANDIDATE, ACTING):
            entry = self.candidate if which == CANDIDATE else self.acting
            if entry is None or entry.benched:
                continue
            failed, decided = entry.failures(), entry.guard.decisions
            new_failed, new_decided = failed - entry.failed_mark, decided - entry.decided_mark
            entry.failed_mark, entry.decided_mark = failed, decided
            if new_failed and (new_failed >= self.cfg.failure_limit or new_failed == new_decided):
                counts = {r: entry.guard.fallbacks[r] for r in FAILURES if entry.guard.fallbacks[r]}
                reason = f"{new_failed} of {new_decided} decisions failed ({_counts(counts)})"
                if (
                    which == ACTING
                    and not entry.implicit
                    and entry.benchings < self.cfg.max_benchings
                ):
                    events.append(self._bench(entry, reason))
                else:
                    events += self.remove(which, reason, "auto-detached")
        return events

    def _bench(self, entry: Installed, reason: str) -> dict[str, Any]:
        entry.benched, entry.benchings, entry.streak = True, entry.benchings + 1, 0
        entry.backoff = self.cfg.probe_backoff_s
        entry.next_probe = self.now()
        detail = f"{reason}; the heuristic acts until {self.cfg.recover_after} valid in a row"
        return self._event(entry, "benched", detail)

    def _probe(self, entry: Installed, obs: np.ndarray) -> None:
        """Ask a benched controller on ``obs`` (never applied); reinstate it after enough
        valid answers in a row, back off after a failed one."""
        now = self.now()
        if now < entry.next_probe:
            return
        entry.guard.act(obs)
        reason = entry.guard.last_reason
        if reason == "out_of_range":  # not the policy's failure, and no evidence either way
            return
        if reason is not None:
            entry.streak, entry.next_probe = 0, now + entry.backoff
            entry.backoff = min(entry.backoff * 2, MAX_PROBE_BACKOFF_S)
            return
        entry.streak += 1
        entry.backoff = self.cfg.probe_backoff_s
        if entry.streak >= self.cfg.recover_after:
            entry.benched = False
            entry.failed_mark, entry.decided_mark = entry.failures(), entry.guard.decisions
            self.reinstated.append(
                self._event(entry, "reinstated", f"{entry.streak} valid decisions in a row")
            )

    def _guard(self, controller: Actor) -> Guardrail:
        """``controller`` behind a guardrail with the live decision deadline."""
        if isinstance(controller, Guardrail):
            guard = controller
        else:
            mask = None
            if self.task.name == "shard-routing":
                from envs.routing import mask_from_obs

                mask = mask_from_obs
            guard = Guardrail(controller, self.task.action_space, task=self.task.name, mask=mask)
        guard.deadline_s = self.cfg.decision_deadline_s
        guard.preempt = True  # a hung policy must not hold the coordinator's loop
        return guard

    def _event(self, entry: Installed, change: str, detail: str) -> dict[str, Any]:
        return {
            "event": "controller",
            "t": self.now(),
            "task": self.task.name,
            "controller": entry.label,
            "sha256": entry.sha256,
            "change": change,
            "detail": detail,
        }

    # --- decisions -------------------------------------------------------------------------

    def decide(self, swarm: Swarm, query: Any = None) -> None:
        """One decision through the simulator's decide loop, by the acting controller (or the
        candidate, for queries in its split); the shadow decides too and is only logged."""
        t0 = time.perf_counter()
        entry = self.acting
        if self.mode == SPLIT and query is not None and stable_fraction(query.id) < self.split:
            entry = self.candidate
        benched = entry.benched
        made = decide(swarm, self.task, entry.guard.fallback if benched else entry.guard, query)
        if benched:
            self._probe(entry, made.obs)
        self.observe_us.append(made.observe_s * 1e6)
        self.decision_us.append(made.act_s * 1e6)
        self.choice_us.append((made.observe_s + made.act_s) * 1e6)
        shadow = None
        if self.mode == SHADOW:
            shadow = self._shadow(made.obs, made.action)
        self.decisions += 1
        self.invalid += made.invalid
        if query is not None:
            query.arm = entry.label
        if self.log is not None and self._logged(query):
            fallback = "benched" if benched else entry.guard.last_reason
            row = self._row(query, entry, made.obs, made.action, made.invalid, shadow, fallback)
            self.log.append(row)
        self.decide_us.append((time.perf_counter() - t0) * 1e6)

    def _shadow(self, obs: np.ndarray, action: np.ndarray) -> dict[str, Any]:
        """The candidate's choice on the same observation, compared and costed, not applied."""
        cand = self.candidate
        choice = cand.guard.act(obs)
        self.compared += 1
        out: dict[str, Any] = {"controller": cand.label, "action": choice.tolist()}
        out["fallback"] = cand.guard.last_reason
        if np.array_equal(choice, action):
            self.agreed += 1
            return out
        view = self.task.view
        acting, shadow = self.task.estimate(view, action), self.task.estimate(view, choice)
        self.differences.append((acting, shadow))
        return {**out, "estimate": shadow, "acting_estimate": acting}

    def _logged(self, query: Any) -> bool:
        if query is None:  # an interval's decision: always
            return True
        fraction = self.cfg.route_log_fraction
        return fraction >= 1 or stable_fraction(query.id, b"log") < fraction

    def _row(self, query, entry, obs, action, invalid, shadow, fallback) -> dict[str, Any]:
        row = {
            "event": "decision",
            "t": self.now(),
            "task": self.task.name,
            "query": None if query is None else query.id,
            "controller": entry.label,
            "arm": ACTING if entry is self.acting else CANDIDATE,
            "obs": np.asarray(obs, dtype=np.float64).tolist(),
            "action": np.asarray(action).tolist(),
            "fallback": fallback,
            "invalid": invalid,
        }
        if shadow is not None:
            row["shadow"] = shadow
        return row

    # --- what status and report show -------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The slot as ``live status`` shows it."""
        now = self.now()
        out: dict[str, Any] = {
            "acting": None if self.acting is None else self.acting.status(now),
            "candidate": None if self.candidate is None else self.candidate.status(now),
            "mode": self.mode,
            "split": self.split,
            "decisions": self.decisions,
            "invalid": self.invalid,
            "decision_us_p50": _pct(self.decision_us, 50),
            "decision_us_p99": _pct(self.decision_us, 99),
            "observe_us_p50": _pct(self.observe_us, 50),
            "observe_us_p99": _pct(self.observe_us, 99),
            "choice_us_p50": _pct(self.choice_us, 50),
            "choice_us_p99": _pct(self.choice_us, 99),
            "decide_us_p50": _pct(self.decide_us, 50),
            "decide_us_p99": _pct(self.decide_us, 99),
        }
        if self.acting is not None:
            out["acting"]["implicit"] = self.acting.implicit
        return out

    def shadow_summary(self) -> dict[str, Any]:
        """Agreement and the differing choices' estimates, for ``live report``."""
        acting, shadow = self.shadowed or (None, None)
        return {
            "task": self.task.name,
            "acting": acting,
            "shadow": shadow,
            "running": self.mode == SHADOW,
            "compared": self.compared,
            "agreed": self.agreed,
            "differences": [list(pair) for pair in self.differences],
        }


def _pct(values: deque[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counts.items())
