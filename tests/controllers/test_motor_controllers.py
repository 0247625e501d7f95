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
from ctrlbench.signals import index_of
from ctrlbench.simulate import simulate

pytest.importorskip("gym_electric_motor")

DC, PMSM = "ctrlbench/DCSpeed-v0", "ctrlbench/PMSMCurrent-v0"
STUDY = Path(__file__).resolve().parents[2] / "studies" / "motor_pi_vs_gem.py"


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", message=".*not within the observation space.*")


def test_pmsm_pi_step_response() -> None:
    """studies/README.md M1: step 0 -> (-50, 100) A at 1 ms; overshoot 0.39 % / 0.02 %,
    10-90 % rise 0.6 ms, 2 % settling 0.9 ms from the step (measured 0.392 / 0.0174 %,
    0.6 / 0.6 ms, 0.9 / 0.9 ms; steady-state error 0.143 / 0.016 A). Bounds within ~2x."""
    plant = make_plant(PMSM, reference="step")
    traj = simulate(plant, make_controller("pid", plant), steps=100, seed=0)
    assert not traj.terminated
    assert 0.2 < metrics.overshoot(traj, "i_sd_ref") < 0.8
    assert metrics.overshoot(traj, "i_sq_ref") < 0.04
    for ref in ("i_sd_ref", "i_sq_ref"):
        assert 0.3e-3 < metrics.rise_time(traj, ref) < 1.2e-3
        assert 0.45e-3 < metrics.settling_time(traj, ref) < 1.8e-3
        assert metrics.steady_state_error(traj, ref) < 0.3  # A, of a 50/100 A step


def test_dc_cascade_pi_step_response() -> None:
    """studies/README.md M2: step 0 -> 100 rad/s at 1 ms; overshoot 0.83 %, rise 64 ms,
    settling 79 ms, the current reference at its 189 A limit (measured 0.827 %, 64.4 ms,
    79.1 ms, peak |i| 189.6 A). Bounds within ~2x."""
    plant = make_plant(DC, reference="step", step_to=100.0)
    traj = simulate(plant, make_controller("pid", plant), steps=1500, seed=0)
    assert not traj.terminated
    assert 0.4 < metrics.overshoot(traj, "omega_ref") < 1.6
    assert 0.032 < metrics.rise_time(traj, "omega_ref") < 0.128
    assert 0.04 < metrics.settling_time(traj, "omega_ref") < 0.16
    assert 180.0 < np.max(np.abs(traj.signal("i"))) < 195.0  # at, not past, the 189 A limit


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
    # M3 states IAE ratios ours / GEM of 0.816 / 0.783 / 0.749 over 1 s; the 500-step smoke
    # run measures 0.523 / 0.722 = 0.723
    assert 0.5 < row["iae_ours"] / row["iae_gem"] < 0.9
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


def test_motor_pi_gains_at_non_default_design_parameters() -> None:
    """The cascade and dq designs at a = 3, T_sigma = 2e-4 / 3e-4 s, hand-derived.

    DC (R_a 0.016, L_a 1.9e-5, psi_e 0.165, J 0.0251, u_sup 60, i_max 210): current loop
    kp = L_a/(2 T_s) / u_sup = 0.0475/60, ki = R_a/(2 T_s) / u_sup = 40/60, T_e = 4e-4; speed loop
    K_I = psi_e/J, kp = 1/(a K_I T_e) = 126.77, ki = kp/(a^2 T_e) = kp/3.6e-3, limit 0.9 i_max
    = 189 A; prefilter alpha = dt/(a^2 T_e + dt) = 1e-4/3.7e-3. PMSM (R_s 0.018, L_d 0.37e-3,
    L_q 1.2e-3, scale 2/3 u_sup = 200 V): kp = (L_d, L_q)/(2 T_s)/200 = (0.61667, 2.0)/200,
    ki = R_s/(2 T_s)/200 = 30/200 on both axes.
    """
    dc = make_controller("pid", make_plant(DC), a=3.0, t_sigma=2e-4)
    assert (float(dc.current.kp), float(dc.current.ki)) == pytest.approx((0.0475 / 60, 40 / 60))
    kp = 1.0 / (3.0 * (0.165 / 0.0251) * 4e-4)
    assert kp == pytest.approx(126.768, rel=1e-5)
    assert (float(dc.speed.kp), float(dc.speed.ki)) == pytest.approx((kp, kp / 3.6e-3))
    assert (float(dc.speed.u_min), float(dc.speed.u_max)) == pytest.approx((-189.0, 189.0))
    assert dc._alpha == pytest.approx(1e-4 / 3.7e-3)
    pmsm = make_controller("pid", make_plant(PMSM), t_sigma=3e-4)
    np.testing.assert_allclose(pmsm.pid.kp, [0.37e-3 / 6e-4 / 200, 1.2e-3 / 6e-4 / 200])
    np.testing.assert_allclose(pmsm.pid.ki, [0.15, 0.15])


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
    # studies/README.md M5: overshoot i_sd 1.4 %, i_sq 0.76 %, settling 0.4 / 1.1 ms
    # (measured 1.425 / 0.761 %, 0.4 / 1.1 ms; steady-state error 0.014 / 0.418 A)
    assert 0.7 < metrics.overshoot(traj, "i_sd_ref") < 2.8
    assert 0.38 < metrics.overshoot(traj, "i_sq_ref") < 1.5
    assert 0.2e-3 < metrics.settling_time(traj, "i_sd_ref") < 0.8e-3
    assert 0.55e-3 < metrics.settling_time(traj, "i_sq_ref") < 2.2e-3
    for ref in ("i_sd_ref", "i_sq_ref"):
        assert metrics.steady_state_error(traj, ref) < 1.0


def test_lqr_gains_and_feedforward_match_an_independent_design() -> None:
    """Non-default weights on the PMSM at -150 rad/s against the docstring's design done anew.

    Q = diag(q_state w / x_max^2, q_integral / (x_max T_i)^2) with x_max = 400 A, R = r_input /
    u_max^2 (u_max = 1); (Ad, Bd) from scipy's ZOH, the augmented DARE solved by plain Riccati
    iteration (not solve_discrete_are); u = K_z z - K_x (x - x_s) + u_s, so at x = x_s, z = 0 the
    action is the steady-state voltage of test_pmsm_model_equilibrium_and_torque:
    u_d = (R_s i_d - w L_q i_q) / (2/3 u_sup), u_q = (R_s i_q + w (L_d i_d + psi_p)) / (2/3 u_sup),
    w = p omega = -450 rad/s: (0.1602, -0.12645) at (i_d, i_q) = (-20, 60) A.
    """
    plant = make_plant(PMSM, omega=-150.0)
    ctrl = make_controller("lqr", plant, q_state=30.0, q_integral=2.0, r_input=0.5,
                           t_integral=3e-3, state_weights=(2.0, 0.5))
    model, dt = plant.unwrapped.model(), plant.unwrapped.dt
    a, b, _, _ = model.linearize(*model.operating_point())
    ad, bd, *_ = cont2discrete((a, b, np.eye(2), np.zeros((2, 2))), dt, method="zoh")
    aa = np.block([[ad, np.zeros((2, 2))], [-dt * np.eye(2), np.eye(2)]])
    ba = np.vstack([bd, np.zeros((2, 2))])
    q = np.diag([30.0 * 2.0 / 400**2, 30.0 * 0.5 / 400**2, *[2.0 / (400 * 3e-3) ** 2] * 2])
    r = 0.5 * np.eye(2)
    p = q
    for _ in range(20000):
        p_next = q + aa.T @ p @ aa - aa.T @ p @ ba @ np.linalg.solve(r + ba.T @ p @ ba,
                                                                    ba.T @ p @ aa)
        converged = np.max(np.abs(p_next - p)) <= 1e-13 * np.max(np.abs(p_next))
        p = p_next
        if converged:
            break
    k = np.linalg.solve(r + ba.T @ p @ ba, ba.T @ p @ aa)
    np.testing.assert_allclose(ctrl.k_x, k[:, :2], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ctrl.k_z, -k[:, 2:], rtol=1e-8, atol=1e-8)
    sig = plant.get_wrapper_attr("observation_signals")
    obs = np.zeros(len(sig))
    for name, v in (("i_sd", -20.0), ("i_sq", 60.0), ("i_sd_ref", -20.0), ("i_sq_ref", 60.0)):
        obs[index_of(sig, name)] = v
    ctrl.reset()
    np.testing.assert_allclose(ctrl.compute(obs), [0.1602, -0.12645], rtol=1e-7)  # pinv


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
