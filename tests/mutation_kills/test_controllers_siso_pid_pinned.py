"""controllers.siso_pid pinned at hand-derived values (kills mutmut's survivors).

The mass-spring-damper pole-placement design ``kp = 3 m w^2 - k``, ``ki = m w^3``,
``kd = 3 m w - c`` at its limits (kp = 0 or kd = 0 exactly, w dt = 1 exactly) and its messages.
"""

import numpy as np
import pytest

from controllers.pid import PID
from controllers.siso_pid import SISOPID, MassSpringDamperPIDOptions, design_mass_spring_damper
from ctrlbench.registry import make_plant


def _design(bandwidth, **plant_kw):
    plant = make_plant("ctrlbench/MassSpringDamper-v0", **plant_kw)
    try:
        model = plant.get_wrapper_attr("model")()
        return design_mass_spring_damper(plant, model, MassSpringDamperPIDOptions(bandwidth))
    finally:
        plant.close()


def test_design_limits_are_inclusive():
    c = _design(1.0, m=2.0, c=0.4, k=6.0)  # kp = 6 - 6 = 0, kd = 6 - .4
    assert (float(c.pid.kp), float(c.pid.ki), float(c.pid.kd)) == pytest.approx((0.0, 2.0, 5.6))
    c = _design(1.0, m=2.0, c=6.0, k=3.0)  # kd = 6 - 6 = 0, kp = 6 - 3
    assert (float(c.pid.kp), float(c.pid.kd)) == pytest.approx((3.0, 0.0))
    c = _design(100.0, m=2.0, c=0.4, k=3.0)  # w dt = 100 * .01 = 1: allowed
    assert float(c.pid.ki) == pytest.approx(2e6)
    # the plant's force limits and the spring feed-forward k r
    assert (float(c.pid.u_min), float(c.pid.u_max)) == (-10.0, 10.0)
    assert c.k_ff == 3.0


def test_design_messages():
    with pytest.raises(ValueError, match=r"needs w >= 1 rad/s"):  # sqrt(k / 3m) = 1
        _design(0.5, m=2.0, c=0.4, k=6.0)
    with pytest.raises(ValueError, match=r"needs w >= 2 rad/s"):  # c / 3m = 2
        _design(1.0, m=2.0, c=12.0, k=0.6)
    with pytest.raises(ValueError, match=r"bandwidth 150\.0 rad/s is too fast for the control "
                                         r"period dt = 0\.01 s; valid: <= 1/dt = 100 rad/s"):
        _design(150.0, m=2.0, c=0.4, k=3.0)


def test_siso_pid_feedforward_and_derivative_on_measurement():
    assert SISOPID(0.1, 0, 1, PID(2.5, dt=0.1)).k_ff == 0.0
    ctrl = SISOPID(0.1, 0, 1, PID(2.5, 0.5, 0.4, dt=0.1, tau_d=0.05), k_ff=3.0)
    # e = .8: u = 2.5 * .8 + 3 * 1 = 5; I <- .1 * .5 * .8 = .04
    assert ctrl.compute(np.array([0.2, 1.0]))[0] == pytest.approx(5.0)
    # e = 1.2, D = -.4 (.3 - .2) / (.05 + .1); u = 3 + .04 + D + 3 * 1.5
    assert ctrl.compute(np.array([0.3, 1.5]))[0] == pytest.approx(3.0 + 0.04 - 0.04 / 0.15 + 4.5)
