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

import json
import time
import urllib.request
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
    """One role's work: start a job from its payload (validated here: it is network input)."""

    def start(self, payload: Any, now: float) -> Pending: ...


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
    """Query vectors: the real model on a text corpus, else the corpus's pool vector
    after the profile's (emulated) embedding time."""

    files: CorpusFiles
    device: DeviceProfile
    time_scale: float
    model: Any = None  # a live.embedding.TextEmbedder for a real-text corpus

    def start(self, payload: Any, now: float) -> Pending:
        pool = _pool(payload, self.files)
        if self.model is not None and self.files.questions is not None:
            vec = self.model.encode([self.files.questions[pool]])[0]
            return Pending({"vector": np.asarray(vec, dtype=np.float32).tobytes()})
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

    def start(self, payload: Any, now: float) -> Pending:
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

    def start(self, payload: Any, now: float) -> Pending:
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


class OpenAISynthesizer:
    """A real LLM behind any OpenAI-compatible endpoint (Ollama, vLLM, ...). The HTTP call runs
    on a helper thread so the worker's loop keeps heartbeating while the model generates."""

    def __init__(self, files: CorpusFiles, url: str, model: str, timeout_s: float = 120.0) -> None:
        self.files, self.url, self.model, self.timeout_s = files, url.rstrip("/"), model, timeout_s
        self.pool = ThreadPoolExecutor(max_workers=1)

    def start(self, payload: Any, now: float) -> Pending:
        docs = _field(payload, "docs", list)
        tout = _field(payload, "output_tokens", int)
        question = payload.get("question") or "Answer from the context."
        context = extractive_answer(self.files, docs, limit=4000)
        return Pending(future=self.pool.submit(self._call, str(question), context, tout))

    def _call(self, question: str, context: str, max_tokens: int) -> dict[str, Any]:
        body = {
            "model": self.model,
            "max_tokens": max_tokens,
            "messages": [
                {"role": "system", "content": f"Answer using this context:\n{context}"},
                {"role": "user", "content": question},
            ],
        }
        req = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            reply = json.loads(resp.read())
        return {"answer": reply["choices"][0]["message"]["content"]}


@dataclass
class Evaluator:
    """Scores an answer's retrieval: recall@k against the exact top-k, and (on a real corpus)
    whether the gold document was retrieved; waits the profile's (emulated) judge time."""

    files: CorpusFiles
    device: DeviceProfile
    time_scale: float

    def start(self, payload: Any, now: float) -> Pending:
        pool = _pool(payload, self.files)
        ids = [i for i in _field(payload, "ids", list) if isinstance(i, int)]
        out: dict[str, Any] = {"recall": self.files.recall(pool, ids)}
        if self.files.gold is not None:
            out["gold_hit"] = float(int(self.files.gold[pool]) in ids)
        return Pending(out, now + self.device.eval_s * self.time_scale)


def now_s() -> float:
    """The clock every live deadline and due time uses."""
    return time.monotonic()
