"""Unit tests of the discrete PID core and the gain-design rules."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.pid import PID
from controllers.pid_design import rl_technical_optimum, symmetrical_optimum, technical_optimum


def test_p_and_i_terms() -> None:
    pid = PID(2.0, 10.0, dt=0.1)
    assert pid.update(1.0) == pytest.approx(2.0)  # integral starts at 0, forward Euler
    assert pid.update(1.0) == pytest.approx(2.0 + 1.0)  # + dt * ki * e


def test_output_limits_and_anti_windup() -> None:
    def run(kaw: float | None) -> tuple[list[float], float]:
        pid = PID(1.0, 50.0, dt=0.01, u_min=-1.0, u_max=1.0, kaw=kaw)
        out = [pid.update(5.0) for _ in range(200)]  # long saturation
        out += [pid.update(-0.5) for _ in range(5)]
        return out, float(pid.state.integral)

    with_aw, integral_aw = run(None)
    without_aw, integral_no = run(0.0)
    assert max(with_aw) <= 1.0 and min(with_aw) >= -1.0
    assert integral_aw < 2.0 < integral_no  # back-calculation keeps the integrator bounded
    assert with_aw[-1] < 0.0 < without_aw[-1]  # and it recovers on the error sign change


def test_bumpless_reset() -> None:
    pid = PID(3.0, 4.0, dt=0.01, u_min=-10, u_max=10)
    pid.reset(u0=2.5, error=0.4)
    assert pid.update(0.4) == pytest.approx(2.5)
    pid.reset(u0=50.0)  # clipped to the limits
    assert pid.update(0.0) == pytest.approx(10.0)


def test_filtered_derivative_on_measurement() -> None:
    pid = PID(0.0, 0.0, 1.0, dt=0.01, tau_d=0.05)
    pid.update(0.0, measurement=0.0)
    # measurement ramps at 1/s: the unfiltered derivative term is -kd * 1 = -1
    out = [pid.update(0.0, measurement=0.01 * k) for k in range(1, 200)]
    assert out[0] == pytest.approx(-0.01 / 0.06)  # backward-Euler filter, first sample
    assert out[-1] == pytest.approx(-1.0, rel=1e-3)
    assert np.all(np.diff(out) <= 1e-12)  # first-order approach, no ringing
    # a set-point step does not kick the derivative (it acts on the measurement)
    assert PID(0.0, 0.0, 1.0, dt=0.01).update(5.0, measurement=0.0) == 0.0


def test_vectorised_and_feedforward() -> None:
    pid = PID(np.array([1.0, 2.0]), 0.0, dt=0.1, u_min=-1.0, u_max=1.0)
    out = pid.update(np.array([0.2, 0.2]), feedforward=np.array([0.5, 0.9]))
    np.testing.assert_allclose(out, [0.7, 1.0])


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        PID(1.0, dt=0.0)
    with pytest.raises(ValueError):
        PID(1.0, dt=0.1, u_min=1.0, u_max=0.0)
    with pytest.raises(ValueError):
        PID(1.0, dt=0.1).update(np.nan)


def test_technical_optimum_rl() -> None:
    g = rl_technical_optimum(0.5, 1e-3, 1e-4)
    assert g.kp == pytest.approx(1e-3 / 2e-4)
    assert g.ki == pytest.approx(0.5 / 2e-4)
    assert g.t_equiv == pytest.approx(2e-4)
    g = technical_optimum(2.0, 0.01, 1e-3)
    # kp = T / (2 K T_s) = 0.01 / 0.004 = 2.5, ki = kp / T = 250, t_equiv = 2 T_s = 2e-3
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((2.5, 250.0, 2e-3))


def test_technical_optimum_closed_loop_overshoot() -> None:
    """Continuous check of the rule: PI on K/((1+sT)(1+sTs)) gives ~4.3 % overshoot."""
    k, t, ts = 2.0, 0.05, 1e-3
    g = technical_optimum(k, t, ts)
    # open loop after pole-zero cancellation: kp*k/(t s (1 + s ts)); simulate y'' by Euler
    h, y, dy, peak = 1e-6, 0.0, 0.0, 0.0
    w = g.kp * k / t
    for _ in range(int(20 * ts / h)):
        ddy = (w * (1.0 - y) - dy) / ts
        dy, y = dy + h * ddy, y + h * dy
        peak = max(peak, y)
    assert peak - 1.0 == pytest.approx(0.043, abs=0.003)


def test_symmetrical_optimum() -> None:
    g = symmetrical_optimum(integrator_gain=10.0, t_equiv=1e-3, a=2.0)
    assert g.kp == pytest.approx(1.0 / (2.0 * 10.0 * 1e-3))
    assert g.kp / g.ki == pytest.approx(4.0 * 1e-3)
    # a = 2 cannot tell a^2 from 2a; a = 3: kp = 1/(3 * 10 * 1e-3) = 33.33, T_i = a^2 T_e = 9e-3,
    # ki = kp / T_i = 3703.7, t_equiv = a T_e = 3e-3
    g = symmetrical_optimum(integrator_gain=10.0, t_equiv=1e-3, a=3.0)
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((100.0 / 3.0, 100.0 / 3.0 / 9e-3, 3e-3))
    with pytest.raises(ValueError):
        symmetrical_optimum(10.0, 1e-3, a=1.0)
    with pytest.raises(ValueError):
        technical_optimum(-1.0, 1.0, 1.0)
