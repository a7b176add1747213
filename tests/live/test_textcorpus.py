"""The real-text corpus: JSONL validation, embedding cache, extractive answers, retrieval.

Validation, cache and answer tests use a bag-of-words stand-in embedder; the tests marked
``requires_model`` run the real all-MiniLM-L6-v2 from the ``embedding`` extra.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import live.textcorpus as textcorpus
from live.embedding import DIM, TextEmbedder, embedding_available
from live.textcorpus import (
    Document,
    Question,
    answer_text,
    gold_hit,
    load_text_corpus,
    read_text_corpus,
)
from swarmsim.errors import SwarmError, TraceError

requires_model = pytest.mark.skipif(
    not embedding_available(), reason="needs the embedding extra: pip install 'swarmsim[embedding]'"
)
SHARED_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "python_docs_faq"

TINY_DOCS = [  # (id, title, text)
    (
        "faq/indent",
        "Why indentation?",
        "Python groups statements by indentation instead of braces. The block structure you "
        "see is the block structure the parser sees.",
    ),
    (
        "faq/float",
        "Why are floats inexact?",
        "Floating-point numbers are stored in binary, so decimal fractions such as 0.1 have no "
        "exact representation and sums pick up rounding errors.",
    ),
    (
        "lib/json",
        "json: JSON encoder and decoder",
        "The json module serialises Python dictionaries and lists to JSON text with json.dumps "
        "and parses JSON strings back into Python objects with json.loads.",
    ),
    (
        "lib/sqlite3",
        "sqlite3: DB-API interface",
        "sqlite3 provides a SQL database stored in a single file on disk; open it with "
        "sqlite3.connect and run queries through a cursor.",
    ),
    (
        "lib/random",
        "random: pseudo-random numbers",
        "The random module generates pseudo-random numbers; random.choice picks an arbitrary "
        "element from a non-empty sequence such as a list.",
    ),
    (
        "lib/zipfile",
        "zipfile: ZIP archives",
        "zipfile reads and writes ZIP archive files: compress files into an archive or extract "
        "the members of an existing one.",
    ),
]
TINY_QUESTIONS = [
    ("q0", "How do I turn a dict into a JSON string?", "lib/json"),
    ("q1", "Why is 0.1 + 0.2 not exactly equal to 0.3?", "faq/float"),
    ("q2", "How can I select one item at random from a list?", "lib/random"),
]


def doc_line(doc_id: str, title: str, text: str, source: str = "test.rst") -> str:
    return json.dumps({"id": doc_id, "source": source, "title": title, "text": text})


def question_line(qid: str, question: str, gold: str) -> str:
    return json.dumps({"qid": qid, "question": question, "gold_doc_id": gold})


def write_corpus(directory: Path, docs: Sequence[str], questions: Sequence[str]) -> Path:
    """A corpus directory whose two files hold exactly the given lines."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "docs.jsonl").write_text("".join(f"{line}\n" for line in docs))
    (directory / "questions.jsonl").write_text("".join(f"{line}\n" for line in questions))
    return directory


def tiny_corpus(directory: Path) -> Path:
    docs = [doc_line(*doc) for doc in TINY_DOCS]
    return write_corpus(directory, docs, [question_line(*q) for q in TINY_QUESTIONS])


class BagOfWords:
    """Stand-in embedder: the normalised sum of a fixed random vector per word; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), DIM))
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


class Refuses:
    """An embedder that must not be called (the cache should answer)."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        raise AssertionError("embedder called although the cache holds the vectors")


# --- validation ------------------------------------------------------------------------------

GOOD_DOC = doc_line("a", "A", "Alpha text.")
GOOD_QUESTION = question_line("q0", "What is alpha?", "a")


@pytest.mark.parametrize(
    ("docs", "questions", "file", "line", "message"),
    [
        ([GOOD_DOC, "{not json"], [GOOD_QUESTION], "docs.jsonl", 2, "invalid JSON"),
        ([GOOD_DOC, "[1, 2]"], [GOOD_QUESTION], "docs.jsonl", 2, "expected a JSON object"),
        (
            ['{"id": "b", "title": "B", "text": "x"}'],
            [GOOD_QUESTION],
            "docs.jsonl",
            1,
            "missing field 'source'",
        ),
        (
            [GOOD_DOC, '{"id": "b", "source": "s", "title": 7, "text": "x"}'],
            [GOOD_QUESTION],
            "docs.jsonl",
            2,
            "field 'title': expected a string, got int 7",
        ),
        (
            [GOOD_DOC, doc_line("b", "B", "   ")],
            [GOOD_QUESTION],
            "docs.jsonl",
            2,
            "field 'text': expected a non-empty string",
        ),
        (
            [GOOD_DOC, "", doc_line("a", "A2", "Again.")],
            [GOOD_QUESTION],
            "docs.jsonl",
            3,
            "field 'id': duplicate value 'a' (first on line 1)",
        ),
        (
            [GOOD_DOC],
            [GOOD_QUESTION, question_line("q1", "Beta?", "zz")],
            "questions.jsonl",
            2,
            "field 'gold_doc_id': expected an id from docs.jsonl, got 'zz'",
        ),
        (
            [GOOD_DOC],
            [GOOD_QUESTION, question_line("q0", "Again?", "a")],
            "questions.jsonl",
            2,
            "field 'qid': duplicate value 'q0'",
        ),
        (
            [GOOD_DOC],
            ['{"qid": "q0", "question": null, "gold_doc_id": "a"}'],
            "questions.jsonl",
            1,
            "field 'question': expected a string, got NoneType None",
        ),
    ],
)
def test_bad_line_names_file_line_and_field(
    tmp_path: Path, docs: list[str], questions: list[str], file: str, line: int, message: str
) -> None:
    directory = write_corpus(tmp_path / "c", docs, questions)
    with pytest.raises(TraceError, match=re.escape(message)) as info:
        read_text_corpus(directory)
    assert str(info.value).startswith(f"{directory / file}:{line}: ")
    assert info.value.line == line
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("file", ["docs.jsonl", "questions.jsonl"])
def test_empty_file_is_an_error(tmp_path: Path, file: str) -> None:
    directory = write_corpus(tmp_path / "c", [GOOD_DOC], [GOOD_QUESTION])
    (directory / file).write_text("\n\n")
    with pytest.raises(TraceError, match=rf"{re.escape(str(directory / file))}: empty"):
        read_text_corpus(directory)


@pytest.mark.parametrize("file", ["docs.jsonl", "questions.jsonl"])
def test_missing_file_is_an_error(tmp_path: Path, file: str) -> None:
    directory = write_corpus(tmp_path / "c", [GOOD_DOC], [GOOD_QUESTION])
    (directory / file).unlink()
    with pytest.raises(TraceError, match=rf"{re.escape(str(directory / file))}: no such file"):
        read_text_corpus(directory)


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"expected a directory holding docs\.jsonl"):
        read_text_corpus(tmp_path / "nowhere")


def test_reads_records_in_file_order(tmp_path: Path) -> None:
    tricky = "line\u2028separator stays inside the string"  # str.splitlines() would split here
    docs = [GOOD_DOC, "", doc_line("b", "", tricky, source="lib/b.rst")]
    docs_read, questions = read_text_corpus(write_corpus(tmp_path, docs, [GOOD_QUESTION]))
    assert docs_read == [
        Document("a", "test.rst", "A", "Alpha text."),
        Document("b", "lib/b.rst", "", tricky),
    ]
    assert questions == [Question("q0", "What is alpha?", "a")]


@pytest.mark.parametrize(
    ("n_shards", "k", "message"),
    [
        (0, 2, "n_shards must be an integer in [1, 6], got 0"),
        (7, 2, "n_shards must be an integer in [1, 6], got 7"),
        (2, 0, "k must be an integer in [1, 6], got 0"),
        (2, 2.0, "k must be an integer in [1, 6], got 2.0"),
    ],
)
def test_bad_shards_or_k_rejected_before_embedding(
    tmp_path: Path, n_shards: int, k: int, message: str
) -> None:
    directory = tiny_corpus(tmp_path / "c")
    with pytest.raises(ValueError, match=re.escape(message)):
        load_text_corpus(directory, n_shards, k, cache_dir=tmp_path / "cache", embedder=Refuses())


# --- embedding cache -------------------------------------------------------------------------


def test_second_load_reads_the_cache(tmp_path: Path) -> None:
    directory, cache = tiny_corpus(tmp_path / "c"), tmp_path / "cache"
    embedder = BagOfWords()
    first = load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=embedder)
    second = load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=Refuses())
    assert embedder.calls == 1
    assert [p.suffix for p in cache.iterdir()] == [".npy"]  # no temporary file left behind
    assert second.corpus.fingerprint() == first.corpus.fingerprint()


def test_changed_file_or_corrupt_cache_embeds_again(tmp_path: Path) -> None:
    directory, cache = tiny_corpus(tmp_path / "c"), tmp_path / "cache"
    embedder = BagOfWords()
    load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=embedder)
    with (directory / "questions.jsonl").open("a") as handle:
        handle.write(question_line("q3", "How do I open a ZIP file?", "lib/zipfile") + "\n")
    changed = load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=embedder)
    assert embedder.calls == 2 and changed.n_questions == 4
    for path in cache.iterdir():
        path.write_bytes(b"not an npy file")
    load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=embedder)
    assert embedder.calls == 3


def test_unwritable_cache_warns_and_still_loads(tmp_path: Path) -> None:
    directory = tiny_corpus(tmp_path / "c")
    (tmp_path / "file").write_text("a file where the cache directory should be")
    with pytest.warns(UserWarning, match="embedding cache not written"):
        corpus = load_text_corpus(
            directory, 2, 3, cache_dir=tmp_path / "file", embedder=BagOfWords()
        )
    assert corpus.n_docs == 6


def test_cache_hit_builds_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory, cache = tiny_corpus(tmp_path / "c"), tmp_path / "cache"
    load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=BagOfWords())

    def no_model() -> None:
        raise AssertionError("TextEmbedder built although the cache holds the vectors")

    monkeypatch.setattr(textcorpus, "TextEmbedder", no_model)
    assert load_text_corpus(directory, 2, 3, cache_dir=cache).n_docs == 6


# --- the loaded corpus, answers and gold hits ------------------------------------------------


@pytest.fixture
def bow_corpus(tmp_path: Path) -> textcorpus.TextCorpus:
    directory = tiny_corpus(tmp_path / "c")
    return load_text_corpus(directory, 2, 3, cache_dir=tmp_path / "cache", embedder=BagOfWords())


def test_loaded_corpus_lines_up_rows_ids_and_gold(bow_corpus: textcorpus.TextCorpus) -> None:
    assert bow_corpus.doc_ids == tuple(doc[0] for doc in TINY_DOCS)
    assert bow_corpus.questions == tuple(q[1] for q in TINY_QUESTIONS)
    assert bow_corpus.gold.tolist() == [2, 1, 4]
    assert bow_corpus.corpus.gold.tolist() == [2, 1, 4]
    assert bow_corpus.corpus.vectors.shape == (6, DIM)
    assert bow_corpus.corpus.queries.shape == (3, DIM)
    assert bow_corpus.corpus.n_shards == 2 and bow_corpus.corpus.k == 3


def test_answer_quotes_leads_in_rank_order(tmp_path: Path) -> None:
    text = (
        "The :func:`json.dumps` function returns ``str`` output. It takes options::\n\n"
        "    json.dumps(obj, indent=2)\n\n"
        "A later paragraph adds detail that fills the lead. Another sentence follows it here. "
        "This one crosses the 160-character mark, so it is the last one quoted. Never quoted."
    )
    docs = [
        doc_line("a", "Alpha", "Alpha is first.\n\n  indented block"),
        doc_line("b", "Beta --- :mod:`json`", text),
    ]
    directory = write_corpus(tmp_path / "c", docs, [question_line("q0", "Beta?", "b")])
    corpus = load_text_corpus(directory, 1, 2, cache_dir=tmp_path / "cache", embedder=BagOfWords())
    assert answer_text(corpus, [1, -1, 0, 1]) == (
        "Beta --- json: The json.dumps function returns str output. It takes options: "
        "A later paragraph adds detail that fills the lead. Another sentence follows it here. "
        "This one crosses the 160-character mark, so it is the last one quoted.\n"
        "Alpha: Alpha is first."
    )
    assert answer_text(corpus, [0, 1], max_chars=30) == "Alpha: Alpha is first.\nBeta -…"
    assert answer_text(corpus, []) == ""
    with pytest.raises(ValueError, match="doc row must be in"):
        answer_text(corpus, [2])


def test_gold_hit(bow_corpus: textcorpus.TextCorpus) -> None:
    assert gold_hit(bow_corpus, 0, [5, 2]) == 1.0
    assert gold_hit(bow_corpus, 0, [5, -1]) == 0.0
    assert gold_hit(bow_corpus, 2, np.array([4])) == 1.0
    with pytest.raises(ValueError, match="question must be in"):
        gold_hit(bow_corpus, 3, [0])


def test_missing_extra_raises_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("live.embedding.embedding_available", lambda: False)
    with pytest.raises(SwarmError, match=re.escape("pip install 'swarmsim[embedding]'")) as info:
        TextEmbedder()
    assert "\n" not in str(info.value)


# --- the real model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


@requires_model
def test_model_embeds_unit_rows(embedder: TextEmbedder) -> None:
    vectors = embedder.encode([doc[2] for doc in TINY_DOCS])
    assert vectors.shape == (6, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = embedder.encode([TINY_DOCS[0][2]], batch_size=1)
    np.testing.assert_allclose(again[0], vectors[0], atol=1e-5)


@requires_model
def test_model_retrieves_gold_at_rank_one_then_caches(
    tmp_path: Path, embedder: TextEmbedder
) -> None:
    directory, cache = tiny_corpus(tmp_path / "c"), tmp_path / "cache"
    corpus = load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=embedder)
    indexes = [corpus.corpus.build_shard_index(s) for s in range(2)]
    for question in range(3):
        rows = corpus.corpus.search_shards(corpus.corpus.queries[question], [0, 1], indexes, 3)
        assert rows[0] == corpus.gold[question], corpus.questions[question]
        assert gold_hit(corpus, question, rows[:1]) == 1.0
    cached = load_text_corpus(directory, 2, 3, cache_dir=cache, embedder=Refuses())
    assert cached.corpus.fingerprint() == corpus.corpus.fingerprint()


@requires_model
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_python_docs_faq_recall_at_5(tmp_path: Path, embedder: TextEmbedder) -> None:
    """Gold recall@5 over all shards matches the README's reference (0.88) within sampling.

    173 questions: the standard error of a 0.88 rate is 0.025, so >= 0.8 is ~3 sigma below.
    Embeds 2,039 documents: ~2 minutes on one thread, hence slow.
    """
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not checked out beside the repo: {SHARED_CORPUS}")
    corpus = load_text_corpus(SHARED_CORPUS, 4, 10, cache_dir=tmp_path, embedder=embedder)
    assert (corpus.n_docs, corpus.n_questions) == (2039, 173)
    indexes = [corpus.corpus.build_shard_index(s) for s in range(4)]
    hits = [
        gold_hit(
            corpus, q, corpus.corpus.search_shards(corpus.corpus.queries[q], range(4), indexes, 5)
        )
        for q in range(corpus.n_questions)
    ]
    assert np.mean(hits) >= 0.8
