"""controllers.pid pinned at hand-derived values (kills mutmut's survivors; studies/mutation.py).

Gains away from 1 (kp = 2.5 or 0.5, ki = 0.5, kd = 0.5 or 0.2, dt = 0.1), asymmetric limits.
"""

from typing import Any

import numpy as np
import pytest

from controllers.pid import PID


def test_default_filter_and_antiwindup_gains():
    p = PID(2.5, 0.5, 0.5, dt=0.1)
    assert p.tau_d == pytest.approx(0.5 / (10 * 2.5)) and p.kaw == pytest.approx(0.5 / 2.5)
    q = PID(0.5, 0.3, 0.2, dt=0.1)  # kp in (0, 1): still kd / (10 kp) and ki / kp
    assert q.tau_d == pytest.approx(0.04) and q.kaw == pytest.approx(0.6)


def test_zero_kp_falls_back_to_dt_without_dividing_by_zero():
    with np.errstate(all="raise"):
        p = PID(0.0, 0.5, 0.2, dt=0.1)
    assert p.tau_d == pytest.approx(0.1) and p.kaw == pytest.approx(10.0)
    # measurement None differentiates -e: y = -.4 then -.1
    assert p.update(0.4) == 0.0  # I <- .1 * .5 * .4 = .02
    # D = (.1 * 0 - .2 * (-.1 + .4)) / (.1 + .1) = -.3; u = .02 - .3
    assert p.update(0.1) == pytest.approx(-0.28)


def test_saturation_and_back_calculation_sequence():
    p = PID(2.5, 0.5, dt=0.1, u_min=-1.0, u_max=0.75)  # kaw = .2
    u1 = p.update(-0.8)  # unsat -2 -> -1; I <- .1 (-.4 + .2 * 1) = -.02
    u2 = p.update(0.4)  # unsat 1 - .02 -> .75; I <- -.02 + .1 (.2 + .2 (.75 - .98)) = -.0046
    u3 = p.update(0.1)  # .25 - .0046
    assert (u1, u2) == (-1.0, 0.75)
    assert u3 == pytest.approx(0.2454, abs=1e-12)
    assert all(type(u) is float for u in (u1, u2, u3))


def test_default_ki_is_zero_and_equal_limits_allowed():
    p = PID(2.5, dt=0.1)
    assert [p.update(0.4), p.update(0.4)] == [1.0, 1.0]
    assert PID(1.5, dt=0.1, u_min=0.5, u_max=0.5).update(3.0) == 0.5


def test_messages():
    with pytest.raises(ValueError, match=r"u_min 0\.6 exceeds u_max 0\.5"):
        PID(1.5, dt=0.1, u_min=0.6, u_max=0.5)
    with pytest.raises(ValueError, match=r"dt must be a positive finite number, got 0\.0"):
        PID(1.5, dt=0.0)
    with pytest.raises(ValueError, match="PID error signal must be finite, got nan"):
        PID(1.5, dt=0.1).update(float("nan"))


@pytest.mark.parametrize("arg", ["kp", "ki", "kd", "u_min", "u_max"])
def test_state_shape_broadcasts_every_parameter(arg):
    kw: dict[str, Any] = {"kp": 2.5, "ki": 0.5, "kd": 0.5, "u_min": -3.0, "u_max": 3.0}
    kw[arg] = np.array([kw[arg], kw[arg] * 0.8])
    p = PID(kw.pop("kp"), kw.pop("ki"), kw.pop("kd"), dt=0.1, **kw)
    assert p.state.integral.shape == (2,) and p.state.derivative.shape == (2,)


def test_reset_clips_u0_to_both_limits():
    p = PID(2.5, 0.5, dt=0.1, u_min=-2.0, u_max=1.5)
    p.reset(u0=-5.0, error=0.4)  # u0 -> -2; I = -2 - 2.5 * .4
    assert p.state.integral == pytest.approx(-3.0)
    p.reset(u0=5.0, error=-0.4)  # u0 -> 1.5; I = 1.5 + 1
    assert p.state.integral == pytest.approx(2.5)
    p.reset()
    assert p.state.integral == 0.0 and p.state.prev_measurement is None
    p.reset(u0=0.8, error=0.2)
    assert p.update(0.2) == pytest.approx(0.8)  # bumpless


def test_float32_filter_constant_is_used_in_float64():
    # tau_d given as float32: the filter still runs in float64 (tau_d + dt not rounded to float32)
    t32 = np.float32(0.03)
    p = PID(2.5, 0.0, 0.5, dt=0.1, tau_d=t32)
    p.update(0.0, measurement=0.0)
    u = p.update(0.0, measurement=0.2)  # D = -kd dy / (tau_d + dt)
    assert u == -0.5 * 0.2 / (float(t32) + 0.1)
