"""A real-text RAG corpus: documents and questions read from JSONL, embedded and sharded.

A corpus directory holds ``docs.jsonl`` (``{"id", "source", "title", "text"}`` per line) and
``questions.jsonl`` (``{"qid", "question", "gold_doc_id"}`` per line). :func:`load_text_corpus`
embeds both with :class:`~live.embedding.TextEmbedder`, caches the vectors on disk and shards
them into the same :class:`~swarmsim.corpus.Corpus` the simulator scores, so the live runtime
retrieves real documents and checks them against each question's gold document.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from live.embedding import DIM, MODEL_NAME, TextEmbedder
from swarmsim.corpus import Corpus
from swarmsim.errors import TraceError

DOCS_FILE = "docs.jsonl"
QUESTIONS_FILE = "questions.jsonl"
DEFAULT_CACHE_DIR = Path("~/.cache/swarmsim/embeddings")
# Characters of a document passed to the model: it reads 256 word pieces (~1,000-1,300
# characters of prose, fewer of code) and drops the rest, so more only costs tokenising.
EMBED_CHARS = 2000
# Bump when what is embedded changes, so stale cache entries are never read.
CACHE_VERSION = 1
# An answer quotes each retrieved document's leading sentences up to about this many characters.
SNIPPET_CHARS = 160

_DOC_FIELDS = ("id", "source", "title", "text")
_QUESTION_FIELDS = ("qid", "question", "gold_doc_id")
_NON_EMPTY = frozenset({"id", "text", "qid", "question", "gold_doc_id"})


@dataclass(frozen=True)
class Document:
    """One retrievable document: a FAQ answer or a reference section."""

    id: str
    source: str
    title: str
    text: str


@dataclass(frozen=True)
class Question:
    """A question and the id of the document that answers it."""

    qid: str
    question: str
    gold_doc_id: str


@dataclass(frozen=True, eq=False)
class TextCorpus:
    """Documents and questions in file order, with their embedded, sharded :class:`Corpus`.

    Row ``i`` of ``corpus.vectors`` is document ``doc_ids[i]``; row ``j`` of ``corpus.queries``
    is question ``question_ids[j]``; ``gold[j]`` is the row of its gold document.
    """

    doc_ids: tuple[str, ...]
    titles: tuple[str, ...]
    texts: tuple[str, ...]
    question_ids: tuple[str, ...]
    questions: tuple[str, ...]
    gold: np.ndarray  # (q,) int64, read-only
    corpus: Corpus
    source: Path  # the directory it was read from

    @property
    def n_docs(self) -> int:
        return len(self.doc_ids)

    @property
    def n_questions(self) -> int:
        return len(self.question_ids)


def _parse_line(path: Path, number: int, line: str, fields: Sequence[str]) -> dict[str, str]:
    """The record on one JSONL line; TraceError naming file and line unless it is well-formed."""
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceError(
            str(path), f"invalid JSON: {exc.msg} (column {exc.colno})", number
        ) from None
    if not isinstance(record, dict):
        raise TraceError(str(path), f"expected a JSON object, got {type(record).__name__}", number)
    for field in fields:
        if field not in record:
            raise TraceError(str(path), f"missing field {field!r}", number)
        value = record[field]
        if not isinstance(value, str):
            got = f"{type(value).__name__} {value!r}"
            raise TraceError(str(path), f"field {field!r}: expected a string, got {got}", number)
        if field in _NON_EMPTY and not value.strip():
            raise TraceError(str(path), f"field {field!r}: expected a non-empty string", number)
    return {field: record[field] for field in fields}


def _read_jsonl(path: Path, fields: Sequence[str], key: str) -> list[tuple[int, dict[str, str]]]:
    """(line number, record) for each line of a JSONL file (blank lines skipped).

    A repeated ``key`` value is an error, as is a file with no records.
    """
    if not path.is_file():
        raise TraceError(str(path), "no such file")
    try:
        # Split on "\n" only: str.splitlines() also splits at U+2028, legal inside JSON strings.
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise TraceError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    records: list[tuple[int, dict[str, str]]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse_line(path, number, line, fields)
        value = record[key]
        if value in first_line:
            message = (
                f"field {key!r}: duplicate value {value!r} (first on line {first_line[value]})"
            )
            raise TraceError(str(path), message, number)
        first_line[value] = number
        records.append((number, record))
    if not records:
        raise TraceError(str(path), f"empty: expected one JSON object per line with {fields}")
    return records


def read_text_corpus(directory: Path) -> tuple[list[Document], list[Question]]:
    """The documents and questions of a corpus directory, validated.

    Raises :class:`~swarmsim.errors.TraceError` naming the file, line and field for a missing
    or empty file, bad JSON, a missing or non-string field, a duplicate ``id`` or ``qid``, or
    a ``gold_doc_id`` that names no document.
    """
    directory = Path(directory)
    if not directory.is_dir():
        expected = f"a directory holding {DOCS_FILE} and {QUESTIONS_FILE}"
        raise TraceError(str(directory), f"expected {expected}")
    question_path = directory / QUESTIONS_FILE
    docs = [Document(**doc) for _, doc in _read_jsonl(directory / DOCS_FILE, _DOC_FIELDS, "id")]
    doc_ids = {doc.id for doc in docs}
    questions = []
    for number, record in _read_jsonl(question_path, _QUESTION_FIELDS, "qid"):
        if record["gold_doc_id"] not in doc_ids:
            got = record["gold_doc_id"]
            message = f"field 'gold_doc_id': expected an id from {DOCS_FILE}, got {got!r}"
            raise TraceError(str(question_path), message, number)
        questions.append(Question(**record))
    return docs, questions


def _check_int(name: str, value: object, low: int, high: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if not ok:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def embed_text(doc: Document) -> str:
    """What the model reads for a document: its text, cut to :data:`EMBED_CHARS`.

    The title is left out on purpose: a FAQ section's title *is* its question, so embedding
    it makes gold retrieval trivial (recall@5 1.0 instead of 0.88 on python_docs_faq).
    """
    return doc.text[:EMBED_CHARS]


def _cache_key(directory: Path) -> str:
    """sha256 over the model, the embedding recipe and the bytes of both corpus files."""
    digest = hashlib.sha256(f"{MODEL_NAME};v{CACHE_VERSION};chars={EMBED_CHARS}".encode())
    for name in (DOCS_FILE, QUESTIONS_FILE):
        data = (directory / name).read_bytes()
        digest.update(f";{name}:{len(data)};".encode())
        digest.update(data)
    return digest.hexdigest()


def _load_cached(path: Path, rows: int) -> np.ndarray | None:
    """The cached (rows, DIM) float32 array at ``path``, or None if absent or unusable."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = array.dtype == np.float32 and array.shape == (rows, DIM) and np.all(np.isfinite(array))
    return array if ok else None


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file and a rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _embeddings(
    directory: Path,
    texts: list[str],
    cache_dir: Path | None,
    embedder: TextEmbedder | None,
) -> np.ndarray:
    """Embeddings of ``texts`` (documents then questions), from the cache when it has them."""
    cache_dir = (cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
    path = cache_dir / f"{_cache_key(directory)}.npy"
    cached = _load_cached(path, len(texts))
    if cached is not None:
        return cached
    print(f"embedding {len(texts)} texts of {directory} with {MODEL_NAME} (once: cached in "
          f"{cache_dir}) ...", file=sys.stderr, flush=True)  # fmt: skip
    t0 = time.monotonic()
    vectors = (embedder if embedder is not None else TextEmbedder()).encode(texts)
    print(f"embedded in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    try:
        _save_atomic(path, vectors)
    except OSError as exc:  # an unwritable cache costs the next load time, not this one
        warnings.warn(f"embedding cache not written to {path}: {exc}", stacklevel=3)
    return vectors


def load_text_corpus(
    directory: Path,
    n_shards: int,
    k: int,
    seed: int = 0,
    cache_dir: Path | None = None,
    embedder: TextEmbedder | None = None,
) -> TextCorpus:
    """Read, embed and shard a corpus directory into a :class:`TextCorpus`.

    Embeddings are cached as ``<sha256>.npy`` under ``cache_dir`` (default
    ``~/.cache/swarmsim/embeddings``), keyed by both files' bytes and the model, so a second
    load skips the model entirely. ``embedder`` is built only on a cache miss when not given.
    Shards come from spherical k-means seeded by ``seed``; ``k`` is the recall@k depth.
    """
    directory = Path(directory)
    docs, questions = read_text_corpus(directory)
    _check_int("n_shards", n_shards, 1, len(docs))
    _check_int("k", k, 1, len(docs))
    _check_int("seed", seed, 0, 2**63 - 1)
    texts = [embed_text(doc) for doc in docs] + [q.question for q in questions]
    vectors = _embeddings(directory, texts, cache_dir, embedder)
    row_of = {doc.id: row for row, doc in enumerate(docs)}
    gold = np.array([row_of[q.gold_doc_id] for q in questions], dtype=np.int64)
    gold.flags.writeable = False
    doc_vecs, question_vecs = vectors[: len(docs)], vectors[len(docs) :]
    rng = np.random.default_rng(seed)
    corpus = Corpus.from_embeddings(doc_vecs, question_vecs, n_shards, k, rng, gold=gold)
    return TextCorpus(
        doc_ids=tuple(doc.id for doc in docs),
        titles=tuple(doc.title for doc in docs),
        texts=tuple(doc.text for doc in docs),
        question_ids=tuple(q.qid for q in questions),
        questions=tuple(q.question for q in questions),
        gold=gold,
        corpus=corpus,
        source=directory,
    )


_ROLE = re.compile(r":[\w-]+(?::[\w-]+)?:`~?!?([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`x` -> x
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(])")


def _plain(text: str) -> str:
    """reST inline markup dropped and whitespace collapsed: one line of plain prose."""
    text = " ".join(_ROLE.sub(r"\1", text).replace("``", "").split())
    return text[:-1] if text.endswith("::") else text


def _prose(text: str) -> Iterator[str]:
    """The paragraphs of a reST text as plain lines, skipping indented (literal) blocks."""
    for block in _BLANK_LINE.split(text.lstrip("\n")):
        if block.strip() and not block[0].isspace():
            yield _plain(block)


def _lead(text: str, chars: int = SNIPPET_CHARS) -> str:
    """The leading prose sentences of ``text``, stopping once ``chars`` characters are reached."""
    lead = ""
    for paragraph in _prose(text):
        for sentence in _SENTENCE_END.split(paragraph):
            lead = f"{lead} {sentence}".strip()
            if len(lead) >= chars:
                return lead
    return lead or _plain(text)[:chars]


def answer_text(corpus: TextCorpus, doc_rows: Sequence[int], max_chars: int = 600) -> str:
    """An extractive answer: each retrieved document's title and lead, in rank order.

    One ``"Title: lead sentences"`` line per document; rows < 0 (search padding) and repeats
    are skipped; the whole is cut to ``max_chars`` (ending with an ellipsis if cut).
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    lines = []
    for row in dict.fromkeys(int(r) for r in doc_rows):
        if row < 0:
            continue
        if row >= corpus.n_docs:
            raise ValueError(f"doc row must be in [0, {corpus.n_docs}), got {row}")
        title, lead = _plain(corpus.titles[row]), _lead(corpus.texts[row])
        lines.append(f"{title}: {lead}" if title else lead)
    answer = "\n".join(lines)
    return answer if len(answer) <= max_chars else answer[: max_chars - 1].rstrip() + "…"


def gold_hit(corpus: TextCorpus, question: int, doc_rows: Sequence[int]) -> float:
    """1.0 if ``question``'s gold document is among ``doc_rows``, else 0.0."""
    if not 0 <= question < corpus.n_questions:
        raise ValueError(f"question must be in [0, {corpus.n_questions}), got {question}")
    gold = int(corpus.gold[question])
    return 1.0 if any(int(row) == gold for row in doc_rows) else 0.0
