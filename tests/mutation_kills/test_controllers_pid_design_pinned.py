"""controllers.pid_design pinned at hand-derived values (kills mutmut's survivors).

Plant parameters away from 1 and a != 2 (where a wrong formula could give the same number).
"""

import pytest

from controllers.pid_design import (
    make_pid,
    pid_options,
    pid_requires,
    rl_technical_optimum,
    symmetrical_optimum,
    technical_optimum,
)


def test_technical_optimum_values_and_checks():
    g = technical_optimum(0.8, 0.05, 0.002)  # kp = T / (2 K Ts) = .05 / .0032
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((15.625, 312.5, 0.004))
    for args, name in (((0.0, 0.05, 0.002), "gain"), ((0.8, 0.0, 0.002), "t_lag"),
                       ((0.8, 0.05, 0.0), "t_sigma")):
        with pytest.raises(ValueError, match=f"{name} must be positive and finite, got 0.0"):
            technical_optimum(*args)


def test_rl_technical_optimum_values_and_checks():
    g = rl_technical_optimum(0.5, 0.002, 1e-4)  # kp = L / (2 Ts), ki = R / (2 Ts)
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((10.0, 2500.0, 2e-4))
    with pytest.raises(ValueError, match="resistance must be positive"):
        rl_technical_optimum(0.0, 0.002, 1e-4)
    with pytest.raises(ValueError, match="inductance must be positive"):
        rl_technical_optimum(0.5, 0.0, 1e-4)


def test_symmetrical_optimum_default_a4_and_a3():
    g = symmetrical_optimum(3.0, 0.004)  # a = 4: kp = 1 / (4 * 3 * .004), ki = kp / (16 * .004)
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((1 / 0.048, 1 / 0.048 / 0.064, 0.016))
    g3 = symmetrical_optimum(3.0, 0.004, a=3.0)
    assert (g3.kp, g3.ki, g3.t_equiv) == pytest.approx((1 / 0.036, 1 / 0.036 / 0.036, 0.012))
    with pytest.raises(ValueError, match=r"a must exceed 1, got 1\.0"):
        symmetrical_optimum(3.0, 0.004, a=1.0)
    with pytest.raises(ValueError, match="integrator_gain must be positive"):
        symmetrical_optimum(0.0, 0.004)
    with pytest.raises(ValueError, match="t_equiv must be positive"):
        symmetrical_optimum(3.0, 0.0)


def test_registry_dispatch_on_the_model_name():
    from controllers.siso_pid import MassSpringDamperPIDOptions
    from ctrlbench.registry import make_plant

    plant = make_plant("ctrlbench/MassSpringDamper-v0", m=2.0, c=0.4, k=3.0)
    assert pid_options(plant) is MassSpringDamperPIDOptions
    req = pid_requires()
    assert req.model is True and req.references is True
    assert req.model_names is not None and "mass_spring_damper" in req.model_names
    ctrl = make_pid(plant, MassSpringDamperPIDOptions(bandwidth=5.0))
    # kp = 3 m w^2 - k, ki = m w^3, kd = 3 m w - c
    assert (float(ctrl.pid.kp), float(ctrl.pid.ki), float(ctrl.pid.kd)) == pytest.approx(
        (147.0, 250.0, 29.6))
    plant.close()
