"""The closed forms the simulator is checked against, on values worked by hand."""

from __future__ import annotations

import pytest

from experiments.theory import erlang_c, mm1_sojourn, mm1_sojourn_quantile, mmc_sojourn


def test_erlang_c_matches_a_worked_example():
    """c=4, a=3: sum_{k<4} 3^k/k! = 13, 3^4/4! * 4/(4-3) = 13.5, C = 13.5 / 26.5."""
    assert erlang_c(4, 3.0) == pytest.approx(13.5 / 26.5)
    assert mmc_sojourn(3.0, 1.0, 4) == pytest.approx(13.5 / 26.5 + 1.0)


def test_one_server_erlang_c_is_rho_and_mmc_reduces_to_mm1():
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert (
        mmc_sojourn(0.7, 1.0, 1) == pytest.approx(mm1_sojourn(0.7, 1.0)) == pytest.approx(1 / 0.3)
    )


def test_mm1_median_is_ln2_over_mu_minus_lambda():
    assert mm1_sojourn_quantile(0.5, 1.0, 0.5) == pytest.approx(0.6931471805599453 / 0.5)


@pytest.mark.parametrize(("c", "a"), [(4, 4.0), (2, -1.0)])
def test_unstable_loads_are_refused(c, a):
    with pytest.raises(ValueError, match="offered load"):
        erlang_c(c, a)
