"""Prefix-block hashes on queries: synthesized RAG conversations and traces that carry them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from swarmsim.prefix import PrefixConfig, Prefixes
from swarmsim.workload import TraceConfig, Workload, WorkloadConfig


def test_a_conversation_extends_its_prompt_and_shares_the_system_prompt() -> None:
    """Blocks of 4 tokens: 2 system blocks, one document of 2 blocks, 2 turns per session."""
    cfg = PrefixConfig(block_tokens=4, system_blocks=2, documents=3, docs_per_query=1,
                       doc_blocks=2, turns=2)  # fmt: skip
    p = Prefixes(cfg, np.random.default_rng(0))
    tokens1, first = p.prompt(9)  # 16 tokens of system + document, then 9 of its own
    assert (tokens1, len(first)) == (25, 4 + 2)  # 9 tokens fill 2 blocks, 1 token left uncached
    tokens2, second = p.prompt(5)  # the same session's second turn
    assert (tokens2, len(second)) == (30, 7)
    assert second[:6] == first  # it extends the first turn's prompt
    tokens3, third = p.prompt(0)  # a new session: system prompt, then its own document
    assert tokens3 == 16 and third[:2] == first[:2]
    assert len(set(first + second + third)) == 7 + 2  # the new session's document blocks


def test_the_same_documents_in_the_same_order_give_the_same_blocks() -> None:
    """One document only: every session draws it, so every first turn has the same prefix."""
    cfg = PrefixConfig(block_tokens=4, system_blocks=1, documents=1, docs_per_query=1)
    p = Prefixes(cfg, np.random.default_rng(1))
    prompts = [p.prompt(0)[1] for _ in range(3)]
    assert prompts[0] == prompts[1] == prompts[2] and len(prompts[0]) == 1 + 32


def test_a_jsonl_trace_carries_blocks_in_milliseconds(tmp_path: Path) -> None:
    """A Mooncake-style row: timestamp in ms, input_length, output_length and hash_ids."""
    rows = [
        {"timestamp": 0, "input_length": 1024, "output_length": 6, "hash_ids": [0, 1]},
        {"timestamp": 1500, "input_length": 600, "output_length": 4, "hash_ids": [0, 2]},
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trace = TraceConfig(str(path), columns={"blocks": "hash_ids"}, time_unit="ms",
                        block_tokens=512)  # fmt: skip
    cfg = WorkloadConfig(kind="trace", trace=trace)
    arrivals = list(Workload(cfg, np.random.default_rng(0)).arrivals())
    assert [(a.t, a.input_tokens, a.blocks) for a in arrivals] == [
        (0.0, 1024, (0, 1)),
        (1.5, 600, (0, 2)),
    ]
    assert cfg.block_tokens == 512
