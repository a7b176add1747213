"""Rankings by a noisy figure: pairs ordered on 95% intervals, ties within noise."""

from __future__ import annotations

from experiments.ranking import agreement, order


def test_overlapping_intervals_are_a_tie() -> None:
    assert order({"ci95": [1.0, 2.0]}, {"ci95": [1.5, 3.0]}) == "tie"
    assert order({"ci95": [1.0, 2.0]}, {"ci95": [2.5, 3.0]}) == "<"
    assert order({"ci95": [2.5, 3.0]}, {"ci95": [1.0, 2.0]}) == ">"


def test_pairs_are_agreed_contradicted_one_sided_or_tied() -> None:
    """a and c are far apart on both sides, in the same order; b is noisy live, so live ties
    it with both while the simulator puts it last; d is a against c reversed in the sim."""
    live = {"a": [1.0, 1.1, 0.9], "b": [0.5, 8.0, 1.5], "c": [5.0, 5.1, 4.9], "d": [9, 9.1, 8.9]}
    sim = {"a": [1.0, 1.0, 1.0], "b": [20.0, 20.1, 19.9], "c": [5.0, 5.2, 4.8], "d": [2, 2, 2]}
    result = agreement({"live": live, "sim": sim})
    assert result["pairs"]["a vs c"] == {"live": "<", "sim": "<"}
    assert "a vs c" in result["agreed"]
    assert "a vs b" in result["one_side"] and "b vs c" in result["one_side"]
    assert result["contradicted"] == ["c vs d"]
    assert not result["agrees"]
    assert result["order_by_mean"]["sim"] == ["a", "d", "c", "b"]


def test_noise_alone_agrees() -> None:
    """Arms within noise on both sides: every pair a tie, and the rankings agree."""
    runs = {"a": [1.0, 1.4, 0.8], "b": [1.1, 0.9, 1.3]}
    result = agreement({"live": runs, "sim": {"a": [2.0, 2.2, 1.9], "b": [2.1, 1.8, 2.3]}})
    assert result["tied"] == ["a vs b"] and result["agrees"]
