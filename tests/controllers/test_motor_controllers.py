"""Model-designed motor PI and LQR in closed loop on the GEM plants."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import cont2discrete

from controllers.lqr import discretize_zoh
from controllers.pid_design import PID_DESIGNS
from ctrlbench import metrics
from ctrlbench.registry import make_controller, make_plant
from ctrlbench.simulate import simulate

pytest.importorskip("gym_electric_motor")

DC, PMSM = "ctrlbench/DCSpeed-v0", "ctrlbench/PMSMCurrent-v0"
STUDY = Path(__file__).resolve().parents[2] / "studies" / "motor_pi_vs_gem.py"


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*not within the observation space.*")


def test_pmsm_pi_step_response() -> None:
    """Step 0 -> (-50, 100) A at 1 ms: measured 0.4 % / 0.02 % overshoot, settled 0.9 ms later."""
    plant = make_plant(PMSM, reference="step")
    traj = simulate(plant, make_controller("pid", plant), steps=100, seed=0)
    assert not traj.terminated
    for ref in ("i_sd_ref", "i_sq_ref"):
        assert metrics.overshoot(traj, ref) < 10.0
        assert metrics.settling_time(traj, ref) - 1e-3 < 3e-3
        assert metrics.steady_state_error(traj, ref) < 1.0  # A, of a 50/100 A step


def test_dc_cascade_pi_step_response() -> None:
    """Step 0 -> 100 rad/s at 1 ms: measured 0.8 % overshoot, settled 79 ms after the step."""
    plant = make_plant(DC, reference="step", step_to=100.0)
    traj = simulate(plant, make_controller("pid", plant), steps=1500, seed=0)
    assert not traj.terminated
    assert metrics.overshoot(traj, "omega_ref") < 10.0
    assert metrics.settling_time(traj, "omega_ref") - 1e-3 < 0.15
    assert np.max(np.abs(traj.signal("i"))) < 210.0  # current reference limit respected


def test_pi_beats_gem_cascaded_pi_smoke() -> None:
    """``studies/motor_pi_vs_gem.py --smoke``: IAE ours <= GEM's PI, and the adapter is exact."""
    spec = importlib.util.spec_from_file_location("motor_pi_vs_gem", STUDY)
    assert spec and spec.loader
    study = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = study  # dataclasses look their module up
    try:
        spec.loader.exec_module(study)
        (row,) = study.run(study.Args(smoke=True))
    finally:
        del sys.modules[spec.name]
    assert row["iae_ours"] <= row["iae_gem"]
    assert row["iae_gem"] == pytest.approx(row["iae_gem_native"], rel=1e-6)
    assert not any(row["terminated"])


def test_pi_design_registry_dispatch() -> None:
    assert {"dc_motor", "pmsm_dq"} <= set(PID_DESIGNS)
    dc = make_controller("pid", make_plant(DC))
    pmsm = make_controller("pid", make_plant(PMSM))
    assert type(dc).__name__ == "DCSpeedCascadePI"
    assert type(pmsm).__name__ == "PMSMCurrentPI"
    with pytest.raises(TypeError, match="unknown option"):
        make_controller("pid", make_plant(DC), kp=3.0)


def test_pmsm_pi_same_seed_same_actions() -> None:
    plant = make_plant(PMSM)
    a = simulate(plant, make_controller("pid", plant), steps=200, seed=4)
    b = simulate(plant, make_controller("pid", plant), steps=200, seed=4)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert metrics.constraint_violations(a) == 0  # observations stay inside the declared bounds


def test_discretize_zoh_matches_scipy() -> None:
    a = np.array([[0.0, 1.0], [-2.0, -0.3]])
    b = np.array([[0.0], [1.0]])
    ad, bd = discretize_zoh(a, b, 0.1)
    ad2, bd2, *_ = cont2discrete((a, b, np.eye(2), np.zeros((2, 1))), 0.1, method="zoh")
    np.testing.assert_allclose(ad, ad2)
    np.testing.assert_allclose(bd, bd2)


def test_lqr_pmsm_tracks_step() -> None:
    plant = make_plant(PMSM, reference="step")
    ctrl = make_controller("lqr", plant)
    assert np.max(np.abs(ctrl.closed_loop_poles)) < 1.0
    traj = simulate(plant, ctrl, steps=100, seed=0)
    assert not traj.terminated
    for ref in ("i_sd_ref", "i_sq_ref"):
        assert metrics.overshoot(traj, ref) < 10.0
        assert metrics.steady_state_error(traj, ref) < 1.0


def test_lqr_dc_stabilizes_speed() -> None:
    plant = make_plant(DC, reference="step", step_to=20.0)
    ctrl = make_controller(
        "lqr", plant, q_state=1.0, state_weights=(100.0, 1.0), t_integral=0.01,
        reference_tau=0.0,  # overrides the plant's recommended prefilter
    )
    assert np.max(np.abs(ctrl.closed_loop_poles)) < 1.0
    traj = simulate(plant, ctrl, steps=4000, seed=0)
    assert not traj.terminated
    assert metrics.steady_state_error(traj, "omega_ref") < 0.5  # rad/s of a 20 rad/s step
    # GEM's random references: the plant's recommended prefilter (controller_defaults) keeps the
    # current below its 210 A limit; without it the first reference jump trips the limit
    plant = make_plant(DC)
    traj = simulate(plant, make_controller("lqr", plant), steps=2000, seed=1)
    assert not traj.terminated
    traj = simulate(plant, make_controller("lqr", plant, reference_tau=0.0), steps=2000, seed=1)
    assert traj.terminated
    with pytest.raises(ValueError, match="state_weights"):
        make_controller("lqr", plant, state_weights=(1.0,))


def test_zero_controller_is_open_loop() -> None:
    plant = make_plant(PMSM)
    traj = simulate(plant, make_controller("zero", plant), steps=5, seed=0)
    assert np.all(traj.actions == 0.0)
