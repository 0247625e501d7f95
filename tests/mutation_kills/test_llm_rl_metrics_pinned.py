"""llm_rl.metrics pinned at hand-derived values (kills mutmut's survivors; studies/mutation.py)."""

import math

import numpy as np
import pytest
import torch

from llm_rl.metrics import covariance_stats, distinct_correct, fit_rh_law, pass_at_k


def test_pass_at_k():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 5 * 2 / 4)  # .7
    assert pass_at_k(5, 3, 2) == pytest.approx(1 - 2 / 5 * 1 / 4)  # n - c == k: still the product
    assert pass_at_k(5, 4, 2) == 1.0  # n - c < k
    assert pass_at_k(7, 3, 3) == pytest.approx(1 - (4 * 3 * 2) / (7 * 6 * 5))


def test_distinct_correct():
    answers = ["a", "b", "c", "a", "a", "d"]
    correct = [True, True, True, False, True, True]
    assert distinct_correct(answers, correct, 3) == 2.5  # {a, b, c} and {a, d}
    assert distinct_correct(answers, correct, 2) == pytest.approx(5 / 3)  # {a,b} {c} {a,d}
    assert distinct_correct([], [], 3) == 0.0


def test_covariance_stats():
    # Cov = (l - mean l)(A - mean A) = [1, 0, -1] * [-1, -.5, 1.5] = [-1, 0, -1.5]
    lp, adv = torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([0.5, 1.0, 3.0])
    s = covariance_stats(lp, adv)
    assert s["cov_mean"] == pytest.approx(-2.5 / 3) and s["cov_tail"] == 0.0  # top 1 (>= 1)
    assert covariance_stats(lp, adv, tail=0.7)["cov_tail"] == pytest.approx(-0.5)  # top 2
    assert covariance_stats(torch.zeros(0), torch.zeros(0)) == {"cov_mean": 0.0, "cov_tail": 0.0}


def test_fit_rh_law():
    h = [0.0, math.log(2), math.log(3)]  # exp(H) = 1, 2, 3
    exact = fit_rh_law(h, [1.5, 1.0, 0.5])  # R = -.5 exp(H) + 2
    assert exact["rh_a"] == pytest.approx(0.5) and exact["rh_b"] == pytest.approx(2.0)
    assert exact["rh_r2"] == pytest.approx(1.0)
    # slope -.5, intercept 1.0333 + 1; residuals (-1, 2, -1)/30: SSres 1/150, SStot 76/150
    fit = fit_rh_law(h, [1.5, 1.1, 0.5])
    assert fit["rh_a"] == pytest.approx(0.5) and fit["rh_b"] == pytest.approx(2.1 / 3 + 4 / 3)
    assert fit["rh_r2"] == pytest.approx(75 / 76)
    # float32 input is fitted in float64: the same numbers as its exact float64 values
    h32, r32 = np.array(h, dtype=np.float32), np.array([1.5, 1.1, 0.5], dtype=np.float32)
    want = fit_rh_law([float(v) for v in h32], [float(v) for v in r32])
    got = fit_rh_law(h32, r32)  # type: ignore[arg-type]  # array input, as the trainer passes
    assert all(got[k] == pytest.approx(want[k], rel=0, abs=1e-13) for k in want)
    assert fit_rh_law(h[:2], [1.0, 2.0]) == {"rh_a": None, "rh_b": None, "rh_r2": None}
    assert fit_rh_law(h, [1.0, 1.0, 1.0])["rh_r2"] is None
