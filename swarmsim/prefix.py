"""Synthesized prompt prefixes: the prefix-block hashes of a RAG conversation's prompts.

A prompt is a system prompt shared by every query, then the documents its session retrieved,
then the conversation so far. Its full blocks of ``block_tokens`` tokens are named by chained
hashes (a block's hash covers every token before it, as vLLM's prefix cache keys blocks), so
two prompts share their leading blocks exactly as far as their text agrees: the same
documents in the same order give the same blocks (RAGCache), and a session's next turn
extends its previous turn's blocks. Python hashes of integer tuples are the same in every
process, so the hashes are deterministic.

The documents are drawn when a session starts, Zipf-distributed over ``documents`` (RAGCache
reports 3% of documents drawing 60% of retrievals, ../shared/REFERENCE.md), and kept for its
turns; they stand in for what its retrieval returned and are independent of the simulated
corpus's query pool, which sets recall. A turn's answer joins its conversation, so the next
turn's prompt holds it. In timestamp mode (``prompt``) each arrival is the next turn of one of
``sessions`` open conversations picked uniformly at random; in closed-loop mode
(``sessions.ClosedLoop``) each conversation sends its next turn (``ask``) after the answer to
its previous one (``hear``). A conversation that has had its ``turns`` turns is replaced by a
new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .errors import check

SYSTEM, DOCUMENT, TURN, ANSWER = 0, 1, 2, 3  # what a block holds: the tag in its hash


@dataclass(frozen=True)
class PrefixConfig:
    """The prompt's parts, in blocks of ``block_tokens`` tokens."""

    block_tokens: int = 16  # vLLM's default KV block size (tokens per block)
    system_blocks: int = 0  # the system prompt every query starts with
    documents: int = 0  # distinct documents retrieval can return (0: none in the prompt)
    docs_per_query: int = 0  # documents in a session's prompts
    doc_blocks: int = 32  # blocks per document (512 tokens at 16 per block)
    zipf: float = 1.0  # document popularity: P(rank r) proportional to r^-zipf
    turns: int = 1  # turns per conversation
    sessions: int = 1  # conversations open at once

    def __post_init__(self) -> None:
        check(self.block_tokens >= 1, "block_tokens", self.block_tokens, "an integer >= 1")
        for name in ("system_blocks", "documents", "docs_per_query", "doc_blocks"):
            check(getattr(self, name) >= 0, name, getattr(self, name), "an integer >= 0")
        ok = self.docs_per_query <= self.documents
        check(ok, "docs_per_query", self.docs_per_query, f"<= documents ({self.documents})")
        check(self.zipf >= 0, "zipf", self.zipf, "a number >= 0")
        check(self.turns >= 1, "turns", self.turns, "an integer >= 1")
        check(self.sessions >= 1, "sessions", self.sessions, "an integer >= 1")


class _Session:
    """An open conversation: its prompt so far (blocks and tokens) and the turns it had."""

    __slots__ = ("blocks", "id", "tokens", "turn")

    def __init__(self, sid: int, blocks: tuple[int, ...], tokens: int) -> None:
        self.id = sid
        self.blocks = blocks
        self.tokens = tokens
        self.turn = 0


class Prefixes:
    """Turns each arrival's own new tokens into its whole prompt: token count and blocks."""

    def __init__(self, cfg: PrefixConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        self.system = _chain(0, ((SYSTEM, i) for i in range(cfg.system_blocks)))
        ranks = np.arange(1, cfg.documents + 1, dtype=float) ** -cfg.zipf
        self.popularity = ranks / ranks.sum() if cfg.documents else ranks
        self.started = 0
        self.open = [self._start() for _ in range(cfg.sessions)]

    def _start(self) -> _Session:
        """A new conversation: the system prompt, then its documents."""
        cfg = self.cfg
        docs: list[int] = []
        if cfg.docs_per_query:
            drawn = self.rng.choice(cfg.documents, cfg.docs_per_query, False, self.popularity)
            docs = drawn.tolist()
        head = self.system[-1] if self.system else 0
        parts = ((DOCUMENT, d, j) for d in docs for j in range(cfg.doc_blocks))
        blocks = self.system + _chain(head, parts)
        session = _Session(self.started, blocks, len(blocks) * cfg.block_tokens)
        self.started += 1
        return session

    def prompt(self, new_tokens: int, answer_tokens: int = 0) -> tuple[int, tuple[int, ...]]:
        """Timestamp mode: the next turn of a random open conversation, with ``new_tokens`` of
        its own and an answer of ``answer_tokens`` that the conversation's next turn holds: the
        prompt's token count and its full blocks' hashes."""
        slot = int(self.rng.integers(self.cfg.sessions)) if self.cfg.sessions > 1 else 0
        prompt = self.ask(slot, new_tokens)
        if answer_tokens:
            self.hear(slot, answer_tokens)
        if self.ended(slot):
            self.restart(slot)
        return prompt

    def ask(self, slot: int, new_tokens: int) -> tuple[int, tuple[int, ...]]:
        """The next turn of the conversation in ``slot``, with ``new_tokens`` of its own: the
        prompt's token count and its full blocks' hashes. Its own partial last block is never
        cached, and what follows starts a new block after it (an approximation)."""
        session = self.open[slot]
        self._extend(session, TURN, new_tokens)
        session.turn += 1
        return session.tokens, session.blocks

    def hear(self, slot: int, answer_tokens: int) -> None:
        """The answer to the last turn in ``slot`` joins its conversation."""
        self._extend(self.open[slot], ANSWER, answer_tokens)

    def ended(self, slot: int) -> bool:
        """Whether the conversation in ``slot`` has had its ``turns`` turns."""
        return self.open[slot].turn >= self.cfg.turns

    def restart(self, slot: int) -> None:
        """A new conversation in ``slot``."""
        self.open[slot] = self._start()

    def _extend(self, session: _Session, tag: int, tokens: int) -> None:
        """Append ``tokens`` tagged ``tag`` (a question or an answer) to ``session``."""
        head = session.blocks[-1] if session.blocks else 0
        parts = ((tag, session.id, session.turn, j) for j in range(tokens // self.cfg.block_tokens))
        session.blocks += _chain(head, parts)
        session.tokens += tokens


def _chain(head: int, parts: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    """Chained hashes of ``parts`` after the block hashed ``head``."""
    out = []
    for part in parts:
        head = hash((head, *part))
        out.append(head)
    return tuple(out)
