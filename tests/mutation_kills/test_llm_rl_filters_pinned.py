"""Pinned values for llm_rl/filters.py (mutation survivors of `make mutation`)."""

import math

import pytest

from ctrlbench.options import OptionError
from llm_rl.filters import SensorConfig, make_filter, steady_state_gain


@pytest.mark.parametrize(("q", "r"), [(-1.0, 1.0), (1.0, 0.0), (-1.0, 0.0)])
def test_steady_state_gain_refuses_negative_q_and_non_positive_r(q, r):
    with pytest.raises(ValueError, match=r"needs q >= 0 and r > 0, got q=-?1\.0|r=0\.0"):
        steady_state_gain(0.9, q, r)


def test_steady_state_gain_with_no_process_noise_trusts_the_model():
    assert steady_state_gain(0.5, 0.0, 1.0) == 0.0
    # a = 1, q = r: P^2 - P r - r^2 = 0 -> P = r (1 + sqrt 5) / 2, K = P / (P + r)
    phi = (1 + math.sqrt(5)) / 2
    assert steady_state_gain(1.0, 2.0, 2.0) == pytest.approx(phi / (phi + 1))


def test_kalman_state_round_trips_none_and_numbers():
    cfg = SensorConfig(filter="kalman", a=0.9, b=0.5, c=0.01, q=1e-3, r=1e-2)
    fresh = make_filter(cfg)
    assert fresh.variance is None and fresh.gain is None
    state = fresh.state_dict()
    other = make_filter(cfg)
    other.update(0.7, 0.2)
    other.load_state_dict(state)
    assert other.estimate is None and other.variance is None and other.gain is None
    a = make_filter(cfg)
    for y, u in ((0.6, 0.1), (0.65, 0.0), (0.62, 0.3)):
        a.update(y, u)
    b = make_filter(cfg)
    b.load_state_dict(a.state_dict())
    assert (b.estimate, b.variance, b.gain) == (a.estimate, a.variance, a.gain)
    assert isinstance(b.gain, float) and isinstance(b.variance, float)
    assert b.update(0.61, 0.1) == a.update(0.61, 0.1)  # the last actuator came along too


def test_kalman_first_reading_initialises_even_with_a_restored_variance():
    cfg = SensorConfig(filter="kalman", a=0.9, b=0.5, c=0.01, q=1e-3, r=1e-2)
    f = make_filter(cfg)
    f.load_state_dict({**f.state_dict(), "variance": 0.5})  # no estimate yet
    assert f.update(0.7, 0.0) == 0.7 and f.gain == 1.0 and f.variance == 1e-2


def test_fresh_kalman_checkpoint_and_the_default_actuator_zero():
    cfg = SensorConfig(filter="kalman", a=0.9, b=0.5, c=0.01, q=1e-3, r=1e-2)
    f = make_filter(cfg)
    assert f.state_dict() == {"estimate": None, "variance": None, "gain": None,
                              "last_actuator": 0.0}
    # no actuator given: u = 0, so the prediction is a * 0.6 + c (no b u term)
    f.update(0.6)
    prior, p_prior = 0.9 * 0.6 + 0.01, 0.81 * 1e-2 + 1e-3
    k = p_prior / (p_prior + 1e-2)
    assert f.update(0.62) == pytest.approx(prior + k * (0.62 - prior), abs=1e-15)


def test_a_field_without_effect_names_the_filter_that_reads_it():
    with pytest.raises(OptionError, match=r"sensor\.alpha = 0\.5 has no effect with "
                                          r"sensor\.filter = 'kalman' \(it is read by: ema\); "
                                          r"valid: leave it at 0\.3 or choose sensor\.filter "
                                          r"'ema'$"):
        SensorConfig(filter="kalman", alpha=0.5)
