"""The pole-placement PID on the mass-spring-damper."""

import numpy as np
import pytest

import ctrlbench
from ctrlbench import metrics


@pytest.mark.parametrize("bandwidth", [2.0, 4.0])
def test_pid_removes_the_error_and_faster_bandwidth_settles_sooner(bandwidth):
    plant = ctrlbench.make_plant("ctrlbench/MassSpringDamper-v0", ref_range=0.3)
    ctrl = ctrlbench.make_controller("pid", plant, bandwidth=bandwidth)
    traj = ctrlbench.simulate(plant, ctrl, steps=1000, seed=0)
    assert metrics.steady_state_error(traj) < 1e-3 * abs(traj.signal("x_ref")[0])
    settle = metrics.settling_time(traj)
    # three poles at -w: settling ~ 6.3 / w (2 % band, no zeros); the PID zeros move it a little
    assert 3.0 / bandwidth < settle < 12.0 / bandwidth


def test_gains_place_the_closed_loop_poles():
    plant = ctrlbench.make_plant("ctrlbench/MassSpringDamper-v0", m=2.0, c=0.4, k=3.0)
    pid = ctrlbench.make_controller("pid", plant, bandwidth=5.0).pid
    m, c, k, w = 2.0, 0.4, 3.0, 5.0
    poles = np.roots([m, c + float(pid.kd), k + float(pid.kp), float(pid.ki)])
    np.testing.assert_allclose(poles, [-w, -w, -w], atol=1e-3)


def test_options_a_design_does_not_use_are_rejected():
    plant = ctrlbench.make_plant("ctrlbench/PMSMCurrent-v0")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['bandwidth'\]; valid options: "
                                        r"\['t_sigma', 'kp_scale', 'ki_scale'\]"):
        ctrlbench.make_controller("pid", plant, bandwidth=100.0)
    msd = ctrlbench.make_plant("ctrlbench/MassSpringDamper-v0")
    with pytest.raises(TypeError, match=r"valid options: \['bandwidth'\]"):
        ctrlbench.make_controller("pid", msd, a=3.0)


def test_design_options_are_validated_not_replaced():
    dc = ctrlbench.make_plant("ctrlbench/DCSpeed-v0")
    with pytest.raises(ValueError, match=r"t_sigma = 0(\.0)? is out of range; valid: finite > 0"):
        ctrlbench.make_controller("pid", dc, t_sigma=0.0)
    with pytest.raises(ValueError, match=r"a = 0.5 is out of range; valid: finite > 1"):
        ctrlbench.make_controller("pid", dc, a=0.5)
    msd = ctrlbench.make_plant("ctrlbench/MassSpringDamper-v0", k=50.0)
    with pytest.raises(ValueError, match="below what a PID can place"):
        ctrlbench.make_controller("pid", msd, bandwidth=1.0)
    with pytest.raises(ValueError, match=r"step_time = -5.0 is out of range; valid: finite >= 0"):
        ctrlbench.make_plant("ctrlbench/DCSpeed-v0", reference="step", step_time=-5.0)
