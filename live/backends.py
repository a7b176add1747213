"""What a worker does for each role: real faiss retrieval at an emulated search time, real or
emulated embedding, emulated or OpenAI-compatible synthesis, real scoring.

**Emulated** stages (the synthesizer's ``emulated`` backend, the embedder and evaluator on a
synthetic corpus, the retriever's search time) wait the time the device profile in
``swarmsim/data/hardware.yaml`` gives for the work, times ``time_scale``; they are named
emulated in code, CLI and docs. The wait is a due time the worker's loop polls for, not a
sleep, so heartbeats keep flowing. The retriever searches its shard for real (the ids and
scores recall is scored on) and answers when a search of the scenario's modelled index
(``retrieval:``, e.g. 400 M vectors) would end. Known difference: the simulator serves a
GPU replica ``training.slowdown`` times slower while a background training job holds its
GPU (``swarmsim.training``); the live runtime runs no training jobs, so no stage slows. The
emulated synthesizer keeps the simulator's prefix (KV) cache model: a ``KVCache`` of the
scenario's capacity, matched when a job starts and filled when it ends, and only the prompt
tokens it did not hold are prefilled.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import faiss
import numpy as np

from swarmsim.kvcache import KVCache
from swarmsim.profiles import DeviceProfile
from swarmsim.service import RetrievalConfig, retrieval_seconds

from .corpusfiles import CorpusFiles
from .errors import ProtocolError
from .limits import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from .protocol import prefix_blocks

faiss.omp_set_num_threads(1)  # REFERENCE.md: two threads on one query ran at half the speed


class Pending:
    """One job in progress: a result ready now, at a due time, or when a future resolves;
    ``finish``, when given, makes the result when the job ends (a cache fills then)."""

    def __init__(
        self,
        result: Any = None,
        due: float = 0.0,
        future: Future | None = None,
        finish: Callable[[], Any] | None = None,
    ) -> None:
        self.result, self.due, self.future, self.finish = result, due, future, finish

    def ready(self, now: float) -> bool:
        return self.future.done() if self.future is not None else now >= self.due

    def value(self) -> Any:
        if self.future is not None:
            return self.future.result()
        return self.finish() if self.finish is not None else self.result


class Backend(Protocol):
    """One role's work: start a job from its payload (validated here: it is network input).
    The worker stops a job at its ``deadline`` (epoch seconds); a backend whose work runs off
    the worker's loop (an HTTP call) bounds that work by it too."""

    def start(self, payload: Any, now: float, deadline: float = math.inf) -> Pending: ...


def _field(payload: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(payload, dict) or not isinstance(payload.get(name), kind):
        raise ProtocolError("payload", f"field {name!r} missing or not {kind}")
    return payload[name]


def _pool(payload: Any, files: CorpusFiles) -> int:
    pool = _field(payload, "pool", int)
    if not 0 <= pool < len(files.queries):
        raise ProtocolError("payload", f"pool query {pool} out of range")
    return pool


@dataclass
class Embedder:
    """Query vectors: the real model on a text corpus (of the client's question, or of the
    pool query's), else the corpus's pool vector after the profile's (emulated) embedding
    time."""

    files: CorpusFiles
    device: DeviceProfile
    time_scale: float
    model: Any = None  # a live.embedding.TextEmbedder for a real-text corpus

    def start(self, payload: Any, now: float, deadline: float = math.inf) -> Pending:
        pool = _pool(payload, self.files)
        text = payload.get("text")
        if not isinstance(text, str | None) or len(text or "") > MAX_QUESTION_CHARS:
            raise ProtocolError("payload", f"text: a question of <= {MAX_QUESTION_CHARS} chars")
        if self.model is not None and self.files.questions is not None:
            vec = self.model.encode([text or self.files.questions[pool]])[0]
            return Pending({"vector": np.asarray(vec, dtype=np.float32).tobytes()})
        # EMULATED: a free-text question on a corpus without a text model stands for the
        # pool query its text picks (``live.limits.text_pool``)
        wait = (self.device.embed_base_s + self.device.embed_per_item_s) * self.time_scale
        vec = np.asarray(self.files.queries[pool], dtype=np.float32)
        return Pending({"vector": vec.tobytes()}, now + wait)


class Retriever:
    """A real faiss flat inner-product index over one shard of the corpus, answering at the
    (EMULATED) due time the simulator's cost model gives for one search of the scenario's
    modelled index: ``swarmsim.service.retrieval_seconds`` for the modelled vectors of the
    shard (``RetrievalConfig.shard_vectors``) at the device's ``scan_ns_per_dim``, times
    ``time_scale``. The real search (microseconds on the corpus's few thousand vectors) runs
    inside that wait and is not subtracted from it; its ids and scores are the answer."""

    def __init__(
        self,
        files: CorpusFiles,
        shard: int,
        retrieval: RetrievalConfig,
        device: DeviceProfile,
        time_scale: float,
    ) -> None:
        self.files, self.shard = files, shard
        self.ids = files.shard_rows(shard)
        self.index = faiss.IndexFlatIP(files.dim)
        self.index.add(np.ascontiguousarray(files.vectors[self.ids], dtype=np.float32))
        vectors = retrieval.shard_vectors(files.n_shards)[shard]
        self.emulated_s = retrieval_seconds(retrieval, vectors, device.scan_ns_per_dim) * time_scale

    def start(self, payload: Any, now: float, deadline: float = math.inf) -> Pending:
        if not isinstance(payload, np.ndarray) or payload.shape != (self.files.dim,):
            raise ProtocolError("payload", f"search wants a ({self.files.dim},) vector")
        x = np.ascontiguousarray(payload, dtype=np.float32).reshape(1, -1)
        scores, local = self.index.search(x, min(self.files.k, self.index.ntotal))
        ok = local[0] >= 0
        ids = self.ids[local[0][ok]]
        out = {"ids": ids.tolist(), "scores": scores[0][ok].tolist(), "shard": self.shard}
        return Pending(out, now + self.emulated_s)


@dataclass
class EmulatedSynthesizer:
    """EMULATED LLM: waits prefill + decode time of the device profile for the query's token
    counts, then answers extractively from the retrieved documents. With a prefix cache
    (``kv``), as the simulator's replica: the prompt's leading ``blocks`` it holds skip
    prefill (``block_tokens`` tokens each, at most the prompt), and the prompt's blocks are
    cached when the job ends. The answer reports the tokens found cached, the prefill time
    (where its first token appears) and the cache's state (``kv_report``)."""

    files: CorpusFiles
    device: DeviceProfile
    model: str
    time_scale: float
    kv: KVCache | None = None
    block_tokens: int = 16

    def start(self, payload: Any, now: float, deadline: float = math.inf) -> Pending:
        tin = _field(payload, "input_tokens", int)
        tout = _field(payload, "output_tokens", int)
        docs = _field(payload, "docs", list)
        if tin < 0 or tout < 0:
            raise ProtocolError("payload", f"token counts {tin}, {tout} must be >= 0")
        blocks = prefix_blocks(payload)
        cached = 0
        if self.kv is not None and blocks:
            cached = min(self.kv.match(blocks) * self.block_tokens, tin)
        scale = self.time_scale
        prefill = self.device.synth_seconds(self.model, tin - cached, 0) * scale
        wait = self.device.synth_seconds(self.model, tin - cached, tout) * scale
        out = {"answer": extractive_answer(self.files, docs), "cached": cached,
               "prefill_s": prefill}  # fmt: skip
        return Pending(due=now + wait, finish=lambda: self._served(blocks, out))

    def _served(self, blocks: tuple[int, ...], out: dict[str, Any]) -> dict[str, Any]:
        """The job ended: its prompt's blocks join the cache; the answer with its state."""
        if self.kv is not None and blocks:
            self.kv.insert(blocks)
        return {**out, **kv_report(self.kv)}


def kv_report(kv: KVCache | None) -> dict[str, Any]:
    """What a worker tells the coordinator of its prefix cache: utilisation and the hit
    counts (blocks hit, blocks looked up) since the cache was made; utilisation 0 without."""
    if kv is None:
        return {"kv_util": 0.0}
    return {"kv_util": kv.utilisation, "kv_hits": kv.hits, "kv_lookups": kv.lookups}


def extractive_answer(files: CorpusFiles, docs: list[Any], limit: int = 600) -> str:
    """The first sentence of each retrieved document, in rank order (ids on a synthetic
    corpus, which has no text)."""
    ids = [d for d in docs if isinstance(d, int) and 0 <= d < len(files.vectors)]
    if files.docs is None:
        return "documents " + ", ".join(map(str, ids[:10]))
    parts = []
    for d in ids:
        doc = files.docs[d]
        first = doc["text"].strip().split(". ")[0][:200]
        parts.append(f"[{doc['title']}] {first}")
    return " ".join(parts)[:limit]


class BackendError(Exception):
    """An LLM endpoint failed a job: ``retryable`` when another try may succeed (a timeout,
    a refused connection, a 5xx or 429), not for a request it refused (4xx)."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class OpenAISynthesizer:
    """A real LLM behind any OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama,
    another swarm's front door): ``POST {url}/v1/chat/completions`` with the question and
    the retrieved documents as context. The call runs on a helper thread so the worker's loop
    keeps heartbeating while the model generates; it gives up at the job's deadline or after
    ``timeout_s``, whichever is first. Its answer carries the endpoint's own token counts
    (``usage``), which replace the query's claimed ones."""

    def __init__(self, files: CorpusFiles, url: str, model: str, timeout_s: float = 60.0) -> None:
        import httpx  # only a worker with this backend pays for it

        if not timeout_s > 0:
            raise ValueError(f"OpenAI timeout must be > 0 s, got {timeout_s}")
        self.files, self.url, self.model, self.timeout_s = files, url.rstrip("/"), model, timeout_s
        self.http = httpx.Client(base_url=self.url, follow_redirects=False)
        self.pool = ThreadPoolExecutor(max_workers=2)  # one call may outlive its job's deadline

    def start(self, payload: Any, now: float, deadline: float = math.inf) -> Pending:
        docs = _field(payload, "docs", list)
        tout = _field(payload, "output_tokens", int)
        question = payload.get("question")
        question = question if isinstance(question, str) and question else "Summarise the context."
        context = extractive_answer(self.files, docs, limit=4000)
        timeout = min(self.timeout_s, max(deadline - time.time(), 0.001))
        return Pending(future=self.pool.submit(self._call, question, context, tout, timeout))

    def _call(self, question: str, context: str, max_tokens: int, timeout: float) -> dict[str, Any]:
        import httpx

        body = {
            "model": self.model,
            "max_tokens": max(max_tokens, 1),
            "messages": [
                {"role": "system", "content": f"Answer using this context:\n{context}"},
                {"role": "user", "content": question[:MAX_QUESTION_CHARS]},
            ],
        }
        try:
            resp = self.http.post("/v1/chat/completions", json=body, timeout=timeout)
        except httpx.TimeoutException:
            raise BackendError(f"{self.url}: no answer within {timeout:.2f} s", True) from None
        except httpx.HTTPError as err:
            raise BackendError(f"{self.url} unreachable: {type(err).__name__}", True) from None
        if resp.status_code >= 400:
            status = resp.status_code
            retry = status >= 500 or status == 429
            raise BackendError(f"HTTP {status}: {_error_message(resp)}", retry)
        return _completion(resp)


def _error_message(resp: Any) -> str:
    """The message of an OpenAI error body (``{"error": {"message": ...}}``), else its text."""
    with contextlib.suppress(ValueError, AttributeError):  # not JSON, or not a map
        err = resp.json().get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:160]
    return resp.text[:160]


def _completion(resp: Any) -> dict[str, Any]:
    """A chat completion's answer and token counts; BackendError if it is not one."""
    try:
        reply = resp.json()
        answer = reply["choices"][0]["message"]["content"]
        usage = reply.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise BackendError("the endpoint's answer is no OpenAI chat completion", False) from None
    if not isinstance(answer, str):
        raise BackendError("the endpoint's answer has no text content", False)
    out: dict[str, Any] = {"answer": answer[:MAX_ANSWER_CHARS]}
    tin, tout = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(tin, int) and isinstance(tout, int):
        out |= {"prompt_tokens": tin, "completion_tokens": tout}
    return out


@dataclass
class Evaluator:
    """Scores an answer's retrieval: recall@k against the exact top-k, and (on a real corpus)
    whether the gold document was retrieved; waits the profile's (emulated) judge time."""

    files: CorpusFiles
    device: DeviceProfile
    time_scale: float

    def start(self, payload: Any, now: float, deadline: float = math.inf) -> Pending:
        pool = _pool(payload, self.files)
        ids = [i for i in _field(payload, "ids", list) if isinstance(i, int)]
        out: dict[str, Any] = {"recall": self.files.recall(pool, ids)}
        if self.files.gold is not None and payload.get("free") is not True:
            out["gold_hit"] = float(int(self.files.gold[pool]) in ids)
        return Pending(out, now + self.device.eval_s * self.time_scale)


def now_s() -> float:
    """The clock every live deadline and due time uses."""
    return time.monotonic()
