"""Closed-loop sessions: each conversation sends its next turn a think time after its answer.

Timestamp replay sends a session's turns when the arrival process (or the trace) says, whether
or not the previous answer has arrived; a published replay ablation found that this overstates
tail latency by about 30% for agent-like sessions (../shared/REFERENCE.md). Here a session's
next turn is sent a think time after its previous turn ends: completed, or failed or dropped
(the user sees the error and goes on; a failed turn's answer does not join the conversation).

Synthetic sessions are the prefix's ``sessions`` conversations of ``turns`` turns: each starts
a think time after t=0 (staggered), and a session that has had its turns is replaced at once by
a new one whose first turn follows a think time, so the number of open sessions stays constant
(a closed system). A trace's sessions are its session ids: each sends its first request at its
trace timestamp and each next one a think time after the previous answer.

Pure numpy and ``rng.Stream``, no SimPy: the simulator submits the turns and reports their ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .prefix import Prefixes
from .rng import Stream
from .workload import Arrival, SessionConfig, Workload

Turn = tuple[int, Arrival]  # (session slot, its next turn)


class ClosedLoop:
    """The turns of a closed-loop workload: the first ones, then one per answered turn."""

    def __init__(self, workload: Workload, stream: Stream) -> None:
        cfg = workload.cfg
        assert cfg.sessions is not None and cfg.sessions.closed_loop  # WorkloadConfig checks it
        self.workload = workload
        self.think = _thinker(cfg.sessions, stream, _default_think_s(workload))
        self.prefixes: Prefixes | None = None
        self.rows: list[list[int]] = []  # a trace's rows by session
        self.next_row: list[int] = []  # each trace session's next row (index into rows[s])
        if workload.table is None:
            assert cfg.prefix is not None  # WorkloadConfig checks it
            self.prefixes = Prefixes(cfg.prefix, workload.prefix_rng)
        else:
            sessions = workload.table.sessions
            assert sessions is not None  # Workload checks it when it loads the trace
            self.rows = [[] for _ in range(int(sessions.max()) + 1)]
            for row, s in enumerate(sessions.tolist()):
                self.rows[s].append(row)
            self.next_row = [0] * len(self.rows)

    def first_turns(self) -> list[Turn]:
        """Every session's first turn, in time order."""
        if self.prefixes is None:
            turns = [(s, self._trace_turn(s, 0.0, 0.0)) for s in range(len(self.rows))]
        else:
            turns = [(s, self._turn(s, self.think())) for s in range(len(self.prefixes.open))]
        return sorted(turns, key=lambda turn: turn[1].t)

    def next_turn(self, slot: int, now: float, answer_tokens: int | None) -> Turn | None:
        """The next turn of the session in ``slot``, whose last turn ended at ``now`` with an
        answer of ``answer_tokens`` (None: it failed or was dropped); None when a trace's
        session has no requests left."""
        if self.prefixes is None:
            self.next_row[slot] += 1
            if self.next_row[slot] == len(self.rows[slot]):
                return None
            return slot, self._trace_turn(slot, now, self.think())
        if answer_tokens is not None:
            self.prefixes.hear(slot, answer_tokens)
        if self.prefixes.ended(slot):
            self.prefixes.restart(slot)
        return slot, self._turn(slot, now + self.think())

    def _turn(self, slot: int, t: float) -> Arrival:
        """A synthetic turn at ``t``: its class and new tokens drawn, its prompt the session's."""
        assert self.prefixes is not None
        qclass, new_tokens, output_tokens = self.workload.draw_turn(t)
        tokens, blocks = self.prefixes.ask(slot, new_tokens)
        return Arrival(t, qclass, tokens, output_tokens, blocks)

    def _trace_turn(self, slot: int, now: float, think_s: float) -> Arrival:
        """The trace session's next request: at its timestamp when it is the first, else
        ``think_s`` after ``now`` (a ``trace`` think time: the gap to the previous request)."""
        table = self.workload.table
        assert table is not None
        i = self.next_row[slot]
        row = self.rows[slot][i]
        if i == 0:
            t = float(table.t[row])
        elif math.isnan(think_s):
            t = now + float(table.t[row] - table.t[self.rows[slot][i - 1]])
        else:
            t = now + think_s
        blocks = table.blocks[row] if table.blocks is not None else ()
        qclass = self.workload.trace_class(int(table.input_tokens[row]))
        return Arrival(
            t, qclass, int(table.input_tokens[row]), int(table.output_tokens[row]), blocks
        )


def _default_think_s(workload: Workload) -> float:
    """The configured mean think time, else ``prefix.sessions / rate``: the think time at
    which the sessions would offer ``rate`` queries/s were answers instant."""
    cfg = workload.cfg
    assert cfg.sessions is not None
    if cfg.sessions.think_s is not None:
        return cfg.sessions.think_s
    return cfg.prefix.sessions / cfg.rate if cfg.prefix is not None else math.nan


def _thinker(cfg: SessionConfig, stream: Stream, mean_s: float) -> Callable[[], float]:
    """Think-time draws with mean ``mean_s`` (NaN for ``trace``: the trace's own gaps)."""
    if cfg.think == "exponential":
        return lambda: stream.exponential(mean_s)
    if cfg.think == "lognormal":  # a lognormal's mean is its median x exp(sigma^2 / 2)
        median, sigma = mean_s * float(np.exp(-(cfg.think_sigma**2) / 2)), cfg.think_sigma
        return lambda: stream.lognormal(median, sigma)
    if cfg.think == "fixed":
        return lambda: mean_s
    return lambda: math.nan
