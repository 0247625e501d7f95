"""Metrics against hand-derived values on synthetic trajectories."""

import math

import numpy as np
import pytest

from ctrlbench import metrics
from ctrlbench.signals import SignalSpec
from ctrlbench.trajectory import Trajectory


def make(y: np.ndarray, ref: np.ndarray, u: np.ndarray, dt: float) -> Trajectory:
    n = y.size
    return Trajectory(
        time=np.arange(n) * dt,
        observations=np.stack([y, ref], axis=1),
        actions=u.reshape(-1, 1),
        rewards=-np.abs(ref - y)[1:],
        observation_signals=(SignalSpec("y", low=-1.0, high=1.05),
                             SignalSpec("r", tracks="y")),
        action_signals=(SignalSpec("u"),),
    )


@pytest.fixture
def first_order() -> Trajectory:
    """y = 1 - exp(-t / tau), tau = 1, unit step at t = 0."""
    dt, tau = 1e-3, 1.0
    t = np.arange(0, 10 + dt / 2, dt)
    return make(1 - np.exp(-t / tau), np.ones_like(t), np.ones(t.size - 1), dt)


def test_first_order_step(first_order):
    tr = first_order
    assert metrics.overshoot(tr) == 0.0
    assert metrics.rise_time(tr) == pytest.approx(math.log(9), abs=2e-3)  # 2.197 tau
    assert metrics.settling_time(tr) == pytest.approx(math.log(50), abs=2e-3)  # 3.912 tau
    assert metrics.iae(tr) == pytest.approx(1.0 - math.exp(-10), abs=2e-3)  # int e^-t
    assert metrics.ise(tr) == pytest.approx(0.5, abs=2e-3)  # int e^-2t
    assert metrics.itae(tr) == pytest.approx(1.0, abs=2e-3)  # int t e^-t
    assert metrics.steady_state_error(tr) < 1e-3
    assert metrics.control_effort(tr) == pytest.approx(10.0, abs=2e-3)
    assert metrics.total_variation(tr) == 0.0


def test_overshoot_and_constraint_violations():
    y = np.array([0.0, 0.5, 1.2, 1.1, 1.0, 1.0])
    tr = make(y, np.ones(6), np.array([1.0, -1.0, 1.0, 1.0, 1.0]), 0.1)
    assert metrics.overshoot(tr) == pytest.approx(20.0)
    assert metrics.constraint_violations(tr) == 2  # y = 1.2 and 1.1 exceed high = 1.05
    assert metrics.total_variation(tr) == pytest.approx(4.0)
    assert math.isnan(metrics.settling_time(make(y[:3], np.ones(3), np.ones(2), 0.1)))


def test_negative_step_overshoot():
    y = np.array([0.0, -0.8, -1.3, -1.0])
    assert metrics.overshoot(make(y, -np.ones(4), np.zeros(3), 1.0)) == pytest.approx(30.0)


def test_summary_keys(first_order):
    s = metrics.summary(first_order)
    assert s["iae"] == s["r.iae"] and s["steps"] == len(first_order)
    assert s["return"] == pytest.approx(-s["iae"] / first_order.dt, rel=1e-9)


def test_step_metrics_count_from_a_delayed_step():
    dt, k0 = 1e-3, 500
    t = np.arange(0, 10 + dt / 2, dt)
    y = np.where(t < k0 * dt, 0.0, 1 - np.exp(-(t - k0 * dt)))
    ref = np.where(np.arange(t.size) < k0, 0.0, 1.0)
    tr = make(y, ref, np.ones(t.size - 1), dt)
    assert metrics.rise_time(tr) == pytest.approx(math.log(9), abs=2e-3)
    assert metrics.settling_time(tr) == pytest.approx(math.log(50), abs=2e-3)
    assert metrics.overshoot(tr) == 0.0


def test_step_metrics_are_nan_for_a_non_step_reference():
    t = np.arange(100) * 0.01
    tr = make(np.sin(t), np.sin(t + 0.1), np.zeros(99), 0.01)
    assert all(math.isnan(f(tr)) for f in (metrics.overshoot, metrics.rise_time,
                                           metrics.settling_time))
    assert metrics.iae(tr) > 0


def test_step_metrics_on_the_sample_grid_from_a_nonzero_start():
    """A downward step 2 -> -1 at t = 0.7 s (k0 = 7), coarse dt = 0.1 s, tau = 1 s.

    y = -1 + 3 exp(-t'), t' = t - 0.7 after the step, 2 before. The metrics do not interpolate,
    so each is exact on the sample grid and one sample (0.1 s) off is a failure:
    rise: frac = 1 - exp(-t') >= 0.1 first at t' = 0.2 (0.105 continuous), >= 0.9 first at
    t' = 2.4 (2.303), so 2.2; settling: |y - r| = 3 exp(-t') > 0.02 * 3 until t' = 3.9 (3.912),
    so 4.0. Counting from t = 0, from the sample before the step, or taking the start as 0
    instead of 2 (step size 1, not 3) all give other numbers.
    """
    dt, k0 = 0.1, 7
    k = np.arange(81)
    tp = (k - k0) * dt
    y = np.where(k < k0, 2.0, -1.0 + 3.0 * np.exp(-np.maximum(tp, 0.0)))
    ref = np.where(k < k0, 2.0, -1.0)
    tr = make(y, ref, np.zeros(k.size - 1), dt)
    assert metrics.rise_time(tr) == pytest.approx(2.2, abs=1e-9)
    assert metrics.settling_time(tr) == pytest.approx(4.0, abs=1e-9)
    assert metrics.settling_time(tr, band=0.05) == pytest.approx(3.0, abs=1e-9)  # 3e^-t' > 0.15
    assert metrics.overshoot(tr) == 0.0
    # leaving the band once more at t' = 5.0 moves settling to the sample after the last exit
    y2 = y.copy()
    y2[k0 + 50] = -1.0 + 0.07
    assert metrics.settling_time(make(y2, ref, np.zeros(k.size - 1), dt)) == pytest.approx(
        5.1, abs=1e-9)
    # overshoot relative to the step from the start value: (1.3 - 1) / 3 = 10 %, not 30 %
    y3 = np.array([2.0, 2.0, 2.0, 0.5, -1.3, -0.8, -1.05, -1.0, -1.0])
    r3 = np.array([2.0, 2.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0])
    tr3 = make(y3, r3, np.zeros(8), 0.5)
    assert metrics.overshoot(tr3) == pytest.approx(10.0)
    # 10-90 %: frac (2 - y) / 3 is 0.5 at t' = 0.5 and 1.1 at t' = 1.0; settling (0.06 band):
    # |y - r| = 0.05 at t' = 2.0 and inside after, 0.2 at t' = 1.5
    assert metrics.rise_time(tr3) == pytest.approx(0.5)
    assert metrics.settling_time(tr3) == pytest.approx(2.0)
