"""The SIMC PI of the dextrose crystallizer (``"pid"`` on ``ctrlbench/Crystallization-v0``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ctrlbench
from controllers.crystal_pi import (
    FOPDT_MEDIUM,
    CrystalPI,
    Fopdt,
    identify_step_response,
    simc_pi,
)
from ctrlbench import metrics
from ctrlbench.options import OptionError

CRYS = "ctrlbench/Crystallization-v0"


def test_simc_rule() -> None:
    g = simc_pi(Fopdt(gain=-2.0, tau=1000.0, theta=100.0))  # tau_c = theta
    assert g.kp == pytest.approx(1000.0 / (-2.0 * 200.0))
    assert g.ki == pytest.approx(g.kp / 800.0)  # T_i = min(tau, 4 (tau_c + theta)) = 800
    g = simc_pi(Fopdt(gain=-2.0, tau=1000.0, theta=100.0), tau_c=900.0)
    assert g.ki == pytest.approx(g.kp / 1000.0)
    # tau_c != theta tells tau_c + theta from 2 theta: kp = 1000 / (-2 (900 + 100)) = -0.5
    assert (g.kp, g.t_equiv) == pytest.approx((-0.5, 1000.0))
    # tau_c = 50: kp = 1000 / (-2 * 150), T_i = min(1000, 4 * 150) = 600, t_equiv = 150
    g = simc_pi(Fopdt(gain=-2.0, tau=1000.0, theta=100.0), tau_c=50.0)
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((-10.0 / 3.0, -10.0 / 3.0 / 600.0, 150.0))
    with pytest.raises(ValueError, match="gain != 0"):
        simc_pi(Fopdt(gain=0.0, tau=1.0, theta=1.0))


def test_pi_run_on_the_tuning_grade_reaches_the_setpoint() -> None:
    plant = ctrlbench.make_plant(CRYS, grade="medium")
    ctrl = ctrlbench.make_controller("pid", plant)
    assert isinstance(ctrl, CrystalPI) and ctrl.gains.kp < 0  # reverse acting
    traj = ctrlbench.simulate(plant, ctrl, seed=0)
    assert len(traj) == 144 and traj.truncated and not traj.terminated
    for value in (metrics.iae(traj), metrics.control_effort(traj),
                  metrics.total_variation(traj)):
        assert math.isfinite(value)
    final = traj.info["mean_size_true"][-1]
    # studies/README.md C4: PI 0.02 % without noise (measured here -0.0197 %)
    assert abs(final / 140.0 - 1.0) < 4e-4
    u = traj.actions[:, 0]
    assert np.all((u >= 5.0) & (u <= 40.0))
    assert np.max(np.abs(np.diff(u))) <= 5.0 + 1e-9  # the plant's rate limit (0.5 C/min)
    assert not np.any(traj.info["rate_limited"][1:])  # the PI never asked for more


def test_pi_starts_bumplessly_and_resets() -> None:
    plant = ctrlbench.make_plant(CRYS, grade="coarse")
    ctrl = ctrlbench.make_controller("pid", plant)
    obs, _ = plant.reset(seed=0)
    first = ctrl.compute(obs)
    assert first[0] == pytest.approx(obs[6])  # the slurry (= jacket) start temperature
    ctrl.compute(obs)
    ctrl.reset()
    assert ctrl.compute(obs)[0] == pytest.approx(obs[6])
    biased = ctrlbench.make_controller("pid", plant, bias=20.0)
    assert biased.compute(obs)[0] == 20.0


@pytest.mark.parametrize(("opts", "match"), [({"tau_c": -1.0}, "tau_c = -1.0"),
                                             ({"bias": 100.0}, "bias = 100.0"),
                                             ({"bandwidth": 1.0}, "bandwidth")])
def test_bad_pi_options_name_the_value(opts: dict[str, float], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        ctrlbench.make_controller("pid", ctrlbench.make_plant(CRYS), **opts)


@pytest.mark.slow
def test_stored_fopdt_is_what_the_identification_gives() -> None:
    fit = identify_step_response()
    assert fit.gain == pytest.approx(FOPDT_MEDIUM.gain, rel=0.02)
    assert fit.tau == pytest.approx(FOPDT_MEDIUM.tau, rel=0.02)
    assert fit.theta == pytest.approx(FOPDT_MEDIUM.theta, rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("grade", ["small", "large", "coarse", "random"])
def test_pi_on_other_grades_finishes_with_finite_metrics(grade: str) -> None:
    plant = ctrlbench.make_plant(CRYS, grade=grade)
    traj = ctrlbench.simulate(plant, ctrlbench.make_controller("pid", plant), seed=0)
    assert len(traj) == 144 and math.isfinite(metrics.iae(traj))
    ref = traj.signal("mean_size_ref")[-1]
    assert abs(traj.info["mean_size_true"][-1] / ref - 1.0) < 0.01


def test_pi_respects_the_plants_declared_rate_limit() -> None:
    plant = ctrlbench.make_plant(CRYS, grade="large", rate_limit=0.1)  # 1 C per period
    traj = ctrlbench.simulate(plant, ctrlbench.make_controller("pid", plant), steps=24, seed=0)
    assert np.max(np.abs(np.diff(traj.actions[:, 0]))) <= 1.0 + 1e-9
    assert not np.any(traj.info["rate_limited"])
