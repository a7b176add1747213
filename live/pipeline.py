"""A query's life in the live swarm: admitted from a client, sent through the scenario's
stages (embed -> route -> search, joined -> synthesize -> evaluate), finished with one answer.

The vocabulary is the simulator's (``swarmsim.query``): the same outcomes, failure reasons,
timeline rows and ``Metrics.record_end`` accounting, so the two summaries compare key by key.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from swarmsim.metrics import Metrics
from swarmsim.profiles import load_profiles
from swarmsim.query import FailureReason, Outcome, StageRow
from swarmsim.scenario import Scenario
from swarmsim.summary import OverdueCounter

from . import admission as adm
from .corpusfiles import CorpusFiles
from .dispatch import Dispatch, job_id
from .expiry import past_deadline
from .limits import MAX_ANSWER_CHARS, MAX_DETAIL_CHARS, RequestLimits, deadline_in, search_answer
from .protocol import Message
from .state import Agent, Job, Query
from .telemetry import Telemetry
from .worker import STAGE_ACTIONS

if TYPE_CHECKING:
    from .controls import Controls

FINISHED_WINDOW = 50_000  # the most recent finished queries kept for status and report


class Pipeline:
    """The queries in flight and the stage logic that moves them."""

    def __init__(
        self,
        scenario: Scenario,
        files: CorpusFiles,
        metrics: Metrics,
        telemetry: Telemetry,
        dispatch: Dispatch,
        controls: Controls,
        reply: Callable[[Query, str, dict[str, Any]], None],
        now: Callable[[], float],
        deadline_s: float,
        max_backlog: int,
        admission: adm.AdmissionConfig | None = None,
    ) -> None:
        self.scenario, self.files, self.metrics, self.telemetry = (
            scenario,
            files,
            metrics,
            telemetry,
        )
        self.dispatch, self.controls, self.reply, self.now = dispatch, controls, reply, now
        self.deadline_s, self.max_backlog = deadline_s, max_backlog
        self.stages = [_stage_layers(s) for s in scenario.stages]
        self.node_names = [g.name for g in scenario.nodes]
        self.active: dict[int, Query] = {}  # in arrival order, so deadlines expire in order
        self.overdue = OverdueCounter(metrics.slo_s)  # of ``active``, for every view
        self.awaiting: dict[int, Query] = {}  # queries waiting for a route plan
        self.placing: dict[int, Query] = {}  # queries waiting for a synthesizer replica
        self.finished: deque[tuple[float, str, str, float, float | None]] = deque(
            maxlen=FINISHED_WINDOW
        )  # (end, arm, outcome, latency, recall) of the most recent queries
        self.timeline: list[dict[str, Any]] = []
        self.record = False
        self.ids = itertools.count()
        self.deadlines: list[tuple[float, int]] = []  # (deadline, id) of the active queries
        self.limits = RequestLimits(scenario, load_profiles(), len(files.queries))
        self.admission = adm.Admission(admission or adm.AdmissionConfig(), dispatch.roster,
                                       self.path, scenario.slo_latency_s)  # fmt: skip

    def admit(self, peer: bytes, msg: Message) -> None:
        """Accept a client's QUERY (ProtocolError if it is malformed) and start it."""
        query = self._parse(peer, msg)
        self.metrics.submitted += 1
        self.active[query.id] = query
        self.overdue.accepted(query, query.arrival)
        self.telemetry.query_in()
        if self.dispatch.waiting() >= self.max_backlog:
            self.finish(query, Outcome.DROPPED, FailureReason.BACKLOG_FULL)
            return
        if not self.admission.admit(query, query.deadline - query.arrival):
            self.finish(query, Outcome.DROPPED, adm.REASON)
            return
        heapq.heappush(self.deadlines, (query.deadline, query.id))
        self.advance(query)

    def _parse(self, peer: bytes, msg: Message) -> Query:
        """The query a QUERY asks for, every field within ``limits`` (ProtocolError if not)."""
        f = self.limits.query(msg.payload, msg.task)
        budget = deadline_in(msg.deadline, time.time(), self.deadline_s)
        now = self.now()
        model = self.scenario.workload.classes[f.qclass].model
        return Query(next(self.ids), peer, msg.task, now, now + budget, f.qclass, model,
                     f.input_tokens, f.output_tokens, f.pool, f.blocks, f.text)  # fmt: skip

    def expired(self, now: float) -> list[Query]:
        """The active queries whose deadline has passed (by deadline: a client's may be
        shorter than the coordinator's)."""
        out = []
        while self.deadlines and self.deadlines[0][0] <= now:
            query = self.active.get(heapq.heappop(self.deadlines)[1])
            if query is not None:
                out.append(query)
        return out

    def next_deadline(self) -> float:
        """The earliest deadline of an active query (infinite when none is active)."""
        while self.deadlines and self.deadlines[0][1] not in self.active:
            heapq.heappop(self.deadlines)
        return self.deadlines[0][0] if self.deadlines else float("inf")

    def path(self, query: Query) -> list[str]:
        """The layer of each of ``query``'s stages."""
        return [s if isinstance(s, str) else s[query.model] for s in self.stages]

    def advance(self, query: Query) -> None:
        """Start the query's current stage, or finish it after the last one."""
        if query.stage > 0:
            self.admission.passed(query, query.stage - 1)
        if query.stage == len(self.stages):
            self.finish(query, Outcome.COMPLETED)
            return
        layer = self.layer_of(query)
        query.stage_start = self.now()
        role = self.scenario.layers[layer].role
        if role == "retriever":
            self.awaiting[query.id] = query
            self.controls.decide_route(query, layer)
            return
        if role == "synthesizer" and self.controls.placing():
            self.placing[query.id] = query
            self.controls.decide_place(query)
            return
        self.send_stage(query, layer)

    def layer_of(self, query: Query) -> str:
        """The layer of the query's current stage."""
        layers = self.stages[query.stage]
        return layers if isinstance(layers, str) else layers[query.model]

    def send_stage(self, query: Query, layer: str, agent: Agent | None = None) -> None:
        """Send the query's job of its current stage (not a search) to ``agent``, placed
        there beyond its credit, as the simulator places it; else by the layer's rule."""
        role = self.scenario.layers[layer].role
        payload = _payload(query, role, self.files)
        job = Job(job_id(query), query, layer, STAGE_ACTIONS[role], payload)
        self.dispatch.send(job, agent, placed=agent is not None)

    def answered(self, job: Job, agent: Agent, ok: bool, p: dict[str, Any], now: float) -> None:
        """A worker answered ``job`` of a query still in flight: retry it, or go on."""
        if not ok and past_deadline(p):  # the worker dropped it at the query's deadline
            self.finish(job.query, Outcome.FAILED, FailureReason.DEADLINE)
            return
        if not ok:
            job.query.detail = str(p.get("error", ""))[:MAX_DETAIL_CHARS]
            if p.get("retryable") is False:  # e.g. an LLM endpoint's 4xx: no use resending
                self.finish(job.query, Outcome.FAILED, FailureReason.WORKER_ERROR)
                return
            self.dispatch.retry(job, FailureReason.WORKER_ERROR)
            return
        self.admission.observe(job.layer, p.get("service_s"))
        query = job.query
        assert query.timeline is not None
        if job.action == "SYNTH":
            self._synthesized(job, p, now)
        query.timeline.append(self._stage_row(job, agent, now, p))
        if job.action == "EMBED":
            vec = p.get("vector")
            if not isinstance(vec, bytes) or len(vec) != self.files.dim * 4:
                self.dispatch.retry(job, FailureReason.BAD_ANSWER)
                return
            query.vector = np.frombuffer(vec, dtype=np.float32)
        elif job.action == "SEARCH":
            query.hits.extend(search_answer(p, self.files.k, len(self.files.vectors)))
            query.searched.append(job.shard)
            query.pending -= 1
            if query.pending > 0:
                return
            self._join(query)
        elif job.action == "SYNTH":
            query.answer = str(p.get("answer", ""))[:MAX_ANSWER_CHARS]
            _real_usage(query, p)
        elif job.action == "EVAL" and isinstance(p.get("gold_hit"), float | int):
            query.gold_hit = float(p["gold_hit"])
        query.stage += 1
        self.advance(query)

    def _synthesized(self, job: Job, p: dict[str, Any], now: float) -> None:
        """A synthesis answered: the prompt tokens its replica's cache held, and when its
        first token appeared (its service's start plus the prefill time it reports); figures
        of the wrong type or out of range are ignored (network input)."""
        query = job.query
        cached, prefill, service = p.get("cached"), p.get("prefill_s"), p.get("service_s")
        if _is_int(cached) and 0 <= cached <= query.input_tokens:
            job.cached = cached
        if _is_number(prefill) and _is_number(service) and 0 <= prefill <= service:
            query.first_token = max(now - service, job.sent) + prefill

    def _stage_row(self, job: Job, agent: Agent, now: float, p: dict[str, Any]) -> StageRow:
        """The answered job as a timeline row (its start: the worker's service time back)."""
        names = self.node_names
        node = names[agent.node] if agent.node < len(names) else "local"
        service = p.get("service_s")
        start = now - float(service) if isinstance(service, float | int) else job.sent
        return (job.query.stage, job.layer, agent.id, node, agent.device, job.sent,
                max(start, job.sent), now, job.cached)  # fmt: skip

    def skip_shard(self, query: Query) -> None:
        """One of the query's searches cannot be served: go on with the others."""
        query.pending -= 1
        if query.pending == 0:
            self._join(query)
            query.stage += 1
            self.advance(query)

    def _join(self, query: Query) -> None:
        """All searched shards answered: merge to the global top-k and credit recall."""
        hits = sorted(query.hits, key=lambda h: -h[0])[: self.files.k]
        query.docs = [int(doc) for _, doc in hits]
        if query.text is None or query.vector is None:
            query.recall = self.files.recall(query.pool, query.docs)
        else:  # a free-text question: against the exact top-k of its own vector
            query.recall = self.files.recall_of(query.vector, query.docs)
        self.metrics.recall_sum += query.recall
        self.metrics.retrievals += 1

    def finish(self, query: Query, outcome: Outcome, reason: FailureReason | str = "") -> None:
        """Record the query's one final answer and send it to its client."""
        if query.done:
            return
        now = self.now()
        query.outcome, query.reason, query.end = outcome, reason, now
        self.admission.left(query)
        self.active.pop(query.id, None)
        self.overdue.ended(query)
        self.awaiting.pop(query.id, None)
        self.placing.pop(query.id, None)
        latency = now - query.arrival
        self.metrics.record_end(query, latency, None)
        self.telemetry.query_out(outcome, latency)
        self.finished.append((now, query.arm, str(outcome), latency, query.recall))
        self.reply(
            query,
            "DONE" if outcome == Outcome.COMPLETED else "FAILED",
            self._answer(query, latency),
        )
        if self.record:
            self.timeline.append(query.to_record())

    def _answer(self, query: Query, latency: float) -> dict[str, Any]:
        """A query's final answer to its client: outcome, reason, the answer and what made
        it (documents retrieved, each stage's times, token counts, the controllers acting)."""
        stages = [{"stage": r[0], "layer": r[1], "agent": r[2], "node": r[3], "device": r[4],
                   "wait_s": r[6] - r[5], "service_s": r[7] - r[6]}
                  for r in query.timeline or ()]  # fmt: skip
        out = {"outcome": str(query.outcome), "reason": str(query.reason), "latency_s": latency,
               "recall": query.recall, "answer": query.answer, "docs": query.docs,
               "stages": stages, "input_tokens": query.input_tokens,
               "output_tokens": query.output_tokens, "controllers": self.controls.acting(),
               "arm": query.arm}  # fmt: skip
        if query.first_token is not None:
            out["ttft_s"] = query.first_token - query.arrival
        if query.detail and query.outcome != Outcome.COMPLETED:
            out["detail"] = query.detail
        return out


def _payload(query: Query, role: str, files: CorpusFiles) -> Any:
    if role == "embedder":
        return {"pool": query.pool} if query.text is None else {"pool": query.pool,
                                                                 "text": query.text}  # fmt: skip
    if role == "synthesizer":
        return {"input_tokens": query.input_tokens, "output_tokens": query.output_tokens,
                "docs": query.docs, "blocks": list(query.blocks),
                "question": _question(query, files)}  # fmt: skip
    if query.text is not None:  # evaluator: no gold document is known for free text
        return {"pool": query.pool, "ids": query.docs, "free": True}
    return {"pool": query.pool, "ids": query.docs}


def _question(query: Query, files: CorpusFiles) -> str:
    """The question a synthesizer answers: the client's text, the real-text corpus's
    question of the pool query, else none (a synthetic corpus has no text)."""
    if query.text is not None:
        return query.text
    return files.questions[query.pool] if files.questions is not None else ""


def _real_usage(query: Query, p: dict[str, Any]) -> None:
    """A real LLM's token counts replace the ones the query claimed, so the recording (and
    a calibration fitted on it) holds what the model actually read and wrote."""
    tin, tout = p.get("prompt_tokens"), p.get("completion_tokens")
    if _is_int(tin) and _is_int(tout) and 0 <= tin <= 10**7 and 0 <= tout <= 10**7:
        query.input_tokens, query.output_tokens = tin, tout


def _stage_layers(stage) -> str | dict[str, str]:
    return stage.layer if stage.layer is not None else dict(stage.layer_by_model)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
