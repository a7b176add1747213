"""Bounds on every field a client or a worker sends, checked where it is admitted.

A well-formed message can still be hostile: a query that claims a million-token prompt, a
class or pool index past the tables, a task id the size of a header, a deadline that is NaN,
a search answer whose scores are strings. Each is refused here with a :class:`ProtocolError`
naming the field and the value (the client gets it as an ERROR reply) or, for a worker's
answer, the offending part is ignored.

Token bounds come from the hardware profiles: a model's **context window** is the largest
prompt plus generation whose KV cache (``kv_bytes_per_token``) fits beside its weights
(``vram_gb``) on the largest device that runs it (``swarmsim/data/hardware.yaml``):
142,288 tokens for ``llm-small`` and 86,181 for ``llm-large`` on an 80 GB card. The profiles
carry no output limit, so generations are capped at ``MAX_OUTPUT_TOKENS`` (and always by the
window). Bounds hold admission only; the time a query may hold a replica is bounded by its
deadline, which the worker enforces (``live.expiry``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmsim.profiles import Profiles
from swarmsim.scenario import Scenario

from .errors import ProtocolError
from .protocol import MAX_PREFIX_BLOCKS, prefix_blocks

QUERY_FIELDS = ("qclass", "input_tokens", "output_tokens", "pool")
QUERY_KEYS = frozenset({*QUERY_FIELDS, "blocks", "text"})  # all a QUERY payload may hold
MAX_QUESTION_CHARS = 16_384  # of a free-text question (``text``), as sent to the embedder
# and the synthesizer; longer context belongs in retrieval, not in the question
MAX_TASK_CHARS = 128  # a client's task id, kept with its query and echoed in the answer
MAX_OUTPUT_TOKENS = 32_768  # no profile gives one; the largest max_tokens we serve
CLIENT_MAX_BYTES = 256 * 1024  # a frame on the client and control sockets (a QUERY with
# MAX_PREFIX_BLOCKS hashes is ~74 KB); libzmq disconnects a peer that sends a larger one
CLIENT_RCVHWM = 1000  # messages libzmq holds per client or operator connection unread
MAX_ANSWER_CHARS = 2000  # of a synthesizer's answer kept for the client
MAX_DETAIL_CHARS = 200  # of a worker's error (an LLM endpoint's message) kept for the client
FALLBACK_WINDOW = MAX_PREFIX_BLOCKS * 16  # a model without a KV figure: the protocol's bound


@dataclass(frozen=True)
class QueryFields:
    """A QUERY payload that passed its bounds."""

    qclass: int
    input_tokens: int
    output_tokens: int
    pool: int
    blocks: tuple[int, ...]
    text: str | None = None  # a free-text question; None: the pool query's own


def context_window(profiles: Profiles, model: str) -> int:
    """The largest prompt + generation of ``model`` whose KV cache fits beside its weights on
    the largest device the profiles list for it (tokens)."""
    spec = profiles.models.get(model)
    if spec is None or not spec.kv_bytes_per_token:
        return FALLBACK_WINDOW
    vram = max((d.vram_gb for d in profiles.devices.values() if model in d.llm), default=0.0)
    return max(int((vram - spec.vram_gb) * 1e9 / spec.kv_bytes_per_token), 0)


class RequestLimits:
    """The bounds of one scenario's queries: its classes, its query pool, its models."""

    def __init__(self, scenario: Scenario, profiles: Profiles, n_pool: int) -> None:
        self.classes = scenario.workload.classes
        self.n_pool = n_pool
        models = tier_models(scenario)
        self.windows = [
            context_window(profiles, models.get(c.model, "")) for c in self.classes
        ]  # per class

    def query(self, payload: Any, task: str) -> QueryFields:
        """The QUERY's fields, each within its bound; raises ProtocolError naming the field."""
        if len(task) > MAX_TASK_CHARS:
            raise ProtocolError("payload", f"task id of {len(task)} chars (limit {MAX_TASK_CHARS})")
        if not isinstance(payload, dict):
            raise ProtocolError("payload", f"a query is a map, not {type(payload).__name__}")
        text = _text(payload)
        if text is not None and "pool" not in payload:  # the question stands for a pool query
            payload = {**payload, "pool": text_pool(text, self.n_pool)}
        if not all(_is_int(payload.get(f)) for f in QUERY_FIELDS):
            raise ProtocolError("payload", f"a query needs integer fields {QUERY_FIELDS}")
        extra = set(payload) - QUERY_KEYS
        if extra:
            raise ProtocolError("payload", f"unknown query fields {sorted(map(str, extra))[:5]}")
        qclass, pool = payload["qclass"], payload["pool"]
        tin, tout = payload["input_tokens"], payload["output_tokens"]
        if not 0 <= qclass < len(self.classes):
            raise ProtocolError("payload", f"qclass {qclass} out of range [0, {len(self.classes)})")
        if not 0 <= pool < self.n_pool:
            raise ProtocolError("payload", f"pool {pool} out of range [0, {self.n_pool})")
        window = self.windows[qclass]
        if tin < 0 or tout < 0 or tout > MAX_OUTPUT_TOKENS or tin + tout > window:
            raise ProtocolError(
                "payload",
                f"input_tokens {tin} + output_tokens {tout}: each >= 0, output <= "
                f"{MAX_OUTPUT_TOKENS}, together <= the model's context window {window}",
            )
        return QueryFields(qclass, tin, tout, pool, prefix_blocks(payload), text)


def text_pool(text: str, n_pool: int) -> int:
    """The pool query a free-text question stands for where it needs one (the EMULATED
    embedding of a corpus without a text model: that query's vector): fixed by the text."""
    return zlib.crc32(text.encode()) % n_pool


def _text(payload: dict[str, Any]) -> str | None:
    """The QUERY's free-text question, if any: a non-empty string of bounded length."""
    text = payload.get("text")
    if text is None:
        return None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_QUESTION_CHARS:
        size = len(text) if isinstance(text, str) else type(text).__name__
        raise ProtocolError("payload", f"text: a question of 1 to {MAX_QUESTION_CHARS} "
                            f"characters, got {size}")  # fmt: skip
    return text


def deadline_in(deadline: float | None, wall_now: float, default_s: float) -> float:
    """Seconds a query may take: the coordinator's ``default_s``, shortened (never lengthened)
    by a client's header ``deadline`` (epoch seconds); NaN or a past deadline is refused."""
    if deadline is None:
        return default_s
    if not math.isfinite(deadline) or deadline <= wall_now:
        raise ProtocolError("payload", f"deadline {deadline!r} is not a future time")
    return min(deadline - wall_now, default_s)


def search_answer(p: Mapping[str, Any], k: int, n_docs: int) -> list[tuple[float, int]]:
    """A retriever's (score, doc id) hits: at most ``k``, finite scores, ids of the corpus;
    anything else in its answer is dropped (a worker's answer is network input)."""
    ids, scores = p.get("ids"), p.get("scores")
    if not isinstance(ids, list) or not isinstance(scores, list):
        return []
    return [
        (float(s), d)
        for s, d in zip(scores[:k], ids[:k], strict=False)
        if type(d) is int and 0 <= d < n_docs and type(s) in _NUMBER and math.isfinite(s)
    ]


_NUMBER = (float, int)


def tier_models(scenario: Scenario) -> dict[str, str]:
    """Each synthesizer tier ("small", "large") -> the model its layer runs."""
    out: dict[str, str] = {}
    for stage in scenario.stages:
        for tier, layer in dict(stage.layer_by_model or {}).items():
            out[tier] = scenario.layers[layer].model or ""
        if stage.layer is not None and scenario.layers[stage.layer].role == "synthesizer":
            for c in scenario.workload.classes:
                out.setdefault(c.model, scenario.layers[stage.layer].model or "")
    return out


def _is_int(x: Any) -> bool:
    """An int and not a bool (network input: msgpack decodes to no other subclass)."""
    return type(x) is int


def _is_number(x: Any) -> bool:
    return type(x) is float or type(x) is int
