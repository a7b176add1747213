"""Terminal tables: plain text (no escape codes), brackets kept, figures right-aligned."""

from __future__ import annotations

from experiments.tables import table, text


def test_a_table_is_plain_text_with_names_left_and_figures_right():
    out = text(table(["arm", "p50 s"], [["a [x]", "1.5 [1, 2]"], ["longer-name", "10"]]))
    assert "\x1b" not in out
    head, rule, first, second = out.splitlines()
    assert head.split() == ["arm", "p50", "s"] and set(rule) == {"─"}
    assert first.startswith("a [x]") and first.endswith("1.5 [1, 2]")  # no markup parsing
    assert second.startswith("longer-name") and len(second) == len(first)
