"""The generic NMPC ``"mpc"``: tracking within bounds and rate limits, warm start, fallback on a
failed solve, option errors and applicability."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from controllers.mpc import NMPC
from controllers.mpc_ocp import OCPResult
from ctrlbench.capabilities import NotApplicableError, missing
from ctrlbench.metrics import summary
from ctrlbench.options import OptionError
from ctrlbench.registry import CONTROLLERS, PLANTS, make_controller, make_plant, plant_ids
from ctrlbench.signals import SignalSpec
from ctrlbench.simulate import simulate
from plants.linear.env import MassSpringDamper
from tests.fixtures import tank

MSD = "ctrlbench/MassSpringDamper-v0"

if "ctrlbench/TestTank-v0" not in plant_ids():
    tank.register()


def _run(plant: Any, ctrl: NMPC, steps: int, seed: int = 0) -> tuple[Any, list[dict[str, Any]]]:
    infos: list[dict[str, Any]] = []
    traj = simulate(plant, ctrl, steps=steps, seed=seed,
                    callbacks=[lambda *_: infos.append(dict(ctrl.last_info))])
    return traj, infos


def test_tracks_a_step_within_input_bounds_and_rate_limit():
    plant = make_plant(MSD)
    ctrl = make_controller("mpc", plant, horizon=15, max_move=(2.0,))
    traj, infos = _run(plant, ctrl, 300)
    x, ref, force = traj.signal("x"), traj.signal("x_ref"), traj.actions[:, 0]
    stats = summary(traj)
    assert not traj.terminated
    assert stats["x_ref.settling_time"] < 1.0  # s, 2 % band (measured 0.43 s)
    assert abs(x[-1] - ref[-1]) < 1e-3 * abs(ref[-1])
    assert np.all(np.abs(force) <= 10.0 + 1e-9)
    assert np.max(np.abs(np.diff(force))) <= 2.0 + 1e-6  # the first move is free
    assert np.max(np.abs(force)) > 9.0  # it does use the input range
    assert ctrl.failures == 0 and ctrl.solves == 300
    assert set(infos[0]) == {"status", "success", "iterations", "solve_time", "cost",
                             "hessian", "fallback", "failures"}
    assert all(i["success"] and i["fallback"] == "" and i["solve_time"] > 0 for i in infos)


class _RateLimitedMSD(MassSpringDamper):
    """A mass-spring-damper whose actuator declares a rate limit (N per step)."""

    action_rate_limit = 1.5


def test_honours_the_plants_declared_rate_limit_and_the_tighter_option():
    plant = gym.wrappers.TimeLimit(_RateLimitedMSD(), 100)
    for opts, limit in (({}, 1.5), ({"max_move": (1.0,)}, 1.0), ({"max_move": (3.0,)}, 1.5)):
        ctrl = make_controller("mpc", plant, horizon=15, **opts)
        traj, _ = _run(plant, ctrl, 100)
        assert np.max(np.abs(np.diff(traj.actions[:, 0]))) <= limit + 1e-6, opts
        assert ctrl.failures == 0


def test_terminal_lqr_cost_reduces_the_overshoot_of_a_short_horizon():
    plant = make_plant(MSD)
    over = {}
    for terminal in ("none", "lqr"):
        traj, _ = _run(plant, make_controller("mpc", plant, terminal=terminal), 200)
        over[terminal] = summary(traj)["x_ref.overshoot"]
    assert over["lqr"] < 0.5 * over["none"]  # measured 6.9 % vs 22 %


def test_warm_start_needs_fewer_iterations_than_cold_starts():
    plant = make_plant(MSD)
    its = {}
    for warm in (True, False):
        _, infos = _run(plant, make_controller("mpc", plant, warm_start=warm), 100)
        its[warm] = np.array([i["iterations"] for i in infos])
    assert its[True][0] == its[False][0]  # the first solve is cold either way
    # measured over the saturated transient: 545 vs 938 (median 6 vs 11 per solve)
    assert its[True][1:].sum() < 0.7 * its[False][1:].sum()


def test_a_failed_solve_falls_back_to_the_shifted_plan_and_is_counted():
    plant = make_plant(MSD)
    ctrl = make_controller("mpc", plant)
    obs, _ = plant.reset(seed=0)
    ctrl.reset()
    for _ in range(5):
        obs, *_ = plant.step(ctrl.compute(obs))
    plan = ctrl.plan
    assert plan is not None and plan.shape == (10, 1)
    real_solve = ctrl.ocp.solve

    def infeasible(*args: Any, **kwargs: Any) -> OCPResult:
        res = real_solve(*args, **kwargs)
        return OCPResult(res.w * np.nan, res.lam_x, res.lam_g, "Infeasible_Problem_Detected",
                         False, 7, res.solve_time, float("nan"))

    ctrl.ocp.solve = infeasible  # type: ignore[method-assign]
    applied = []
    for _ in range(3):
        applied.append(ctrl.compute(obs)[0])
        obs, *_ = plant.step(np.array([applied[-1]]))
    assert applied == pytest.approx(plan[1:4, 0])
    assert ctrl.failures == 3
    info = ctrl.last_info
    assert info["status"] == "Infeasible_Problem_Detected" and info["success"] is False
    assert info["fallback"] == "shifted plan" and info["failures"] == 3
    ctrl.ocp.solve = real_solve  # type: ignore[method-assign]
    ctrl.compute(obs)  # recovers from the kept (shifted) warm start
    assert ctrl.last_info["success"] and ctrl.failures == 3
    ctrl.reset()
    assert ctrl.failures == 0 and ctrl.last_info == {}


def test_real_solver_failures_never_raise_and_are_reported():
    plant = make_plant(MSD)
    ctrl = make_controller("mpc", plant, max_iter=1, warm_start=False)
    traj, infos = _run(plant, ctrl, 20)
    assert np.all(np.isfinite(traj.actions))
    assert ctrl.failures == sum(not i["success"] for i in infos) > 0
    failed = next(i for i in infos if not i["success"])
    assert failed["status"] == "Maximum_Iterations_Exceeded"
    assert infos[0]["fallback"] == "held input"  # no plan exists on the first step


@pytest.mark.parametrize(("opts", "field"), [
    ({"horizon": 0}, "horizon"),
    ({"horizon": 2.5}, "horizon"),
    ({"r_move": -1.0}, "r_move"),
    ({"q_track": 0.0}, "q_track"),
    ({"max_move": (1.0, 2.0)}, "max_move"),
    ({"max_move": (0.0,)}, "max_move"),
    ({"track_weights": (1.0, 1.0)}, "track_weights"),
    ({"terminal": "infinite"}, "terminal"),
    ({"warm_start": "yes"}, "warm_start"),
    ({"bound_margin": 0.5}, "bound_margin"),
    ({"tol": float("nan")}, "tol"),
])
def test_bad_options_raise_option_error_naming_the_field(opts, field):
    with pytest.raises(OptionError, match=rf"\b{field}\b"):
        make_controller("mpc", make_plant(MSD), **opts)


def test_applicable_to_every_plant_with_a_model_and_refused_without():
    requires = CONTROLLERS.entry("mpc").resolved_requires()
    for pid in plant_ids():
        provides = PLANTS.entry(pid).provides
        assert (not missing(requires, provides)) == (provides.model and provides.references), pid
    with pytest.raises(NotApplicableError, match=r"'mpc' is not applicable.*lacks a model\(\)"):
        make_controller("mpc", make_plant("ctrlbench/TestTankBlackBox-v0"))


class _PositionOnly(gym.ObservationWrapper):  # type: ignore[type-arg]
    """Hides the velocity: the observation is ``[x, x_ref]``."""

    observation_signals = (SignalSpec("x", "m", -5.0, 5.0),
                           SignalSpec("x_ref", "m", -5.0, 5.0, tracks="x"))

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (2,))

    def observation(self, observation: Any) -> Any:
        return observation[[0, 2]]


def test_refuses_a_plant_that_does_not_observe_the_model_state():
    with pytest.raises(NotApplicableError, match=r"states \['v'\] that the plant does not obs"):
        make_controller("mpc", _PositionOnly(make_plant(MSD)))


def test_tracks_a_model_output_on_the_nonlinear_tank():
    plant = make_plant("ctrlbench/TestTank-v0")
    ctrl = make_controller("mpc", plant, horizon=10)
    traj, _ = _run(plant, ctrl, 150)
    assert abs(traj.signal("h")[-1] - 0.5) < 0.01
    assert np.all(traj.actions >= 0.0) and ctrl.failures == 0


def test_moves_start_from_the_jacket_temperature_the_plant_applied():
    plant = make_plant("ctrlbench/Crystallization-v0", grade="coarse")
    obs, _ = plant.reset(seed=0)
    ctrl = make_controller("mpc", plant, horizon=6)
    rate = plant.get_wrapper_attr("action_rate_limit")
    for applied in (obs[9], 12.0, 50.0):  # 50 C: above the 40 C bound, a move still reaches it
        obs[9] = applied
        ctrl.reset()
        u = ctrl.compute(obs)[0]
        assert abs(u - min(applied, 40.0 + rate)) <= rate + 1e-6 and 5.0 <= u <= 40.0
    obs, _ = plant.reset(seed=0)
    ctrl.reset()
    for _ in range(6):  # every command is one the plant can apply within its rate limit
        obs, *_, info = plant.step(ctrl.compute(obs))
        assert not info["rate_limited"]


@pytest.mark.slow
def test_crystallizer_batch_reaches_its_set_point():
    plant = make_plant("ctrlbench/Crystallization-v0")
    ctrl = make_controller("mpc", plant)
    traj, infos = _run(plant, ctrl, 144, seed=2)
    size, ref = traj.signal("mean_size"), traj.signal("mean_size_ref")
    assert abs(size[-1] - ref[-1]) < 0.02 * ref[-1]
    assert ctrl.failures == 0
    # the kinetics stay twice differentiable when a prediction undersaturates: exact Hessians
    assert all(i["hessian"] == "exact" for i in infos)
    rate = plant.get_wrapper_attr("action_rate_limit")
    assert np.max(np.abs(np.diff(traj.actions[:, 0]))) <= rate + 1e-6
