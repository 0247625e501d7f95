"""``ctrlbench/NMESKnee-v0``: physics, fatigue, patients, references, errors, conformance."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ctrlbench  # noqa: F401  (registers the plants before the family modules are imported)
from ctrlbench.cli import main as cli_main
from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError
from ctrlbench.registry import make_plant
from plants.nmes.env import NMESKnee
from plants.nmes.model import (
    PARAM_NAMES,
    NMESParams,
    nmes_model,
    passive_equilibrium,
    passive_torque,
    static_pulse,
)
from plants.nmes.options import NMESKneeOptions

ID = "ctrlbench/NMESKnee-v0"


def _run(env: NMESKnee, pulse: float, steps: int) -> list[dict[str, Any]]:
    infos = []
    for _ in range(steps):
        *_, info = env.step(np.array([pulse]))
        infos.append(info)
    return infos


def test_passive_equilibrium_is_the_root_of_the_static_torque() -> None:
    p = NMESParams()
    rest = passive_equilibrium(p)
    from ctrlbench.model import NUMPY_OPS

    torque = -p.m * p.g * p.l * math.sin(rest) + passive_torque(rest, p.as_dict(), NUMPY_OPS)
    assert abs(torque) < 1e-10
    assert math.degrees(rest) == pytest.approx(8.5577, abs=1e-3)
    assert abs(static_pulse(rest, p)) < 1e-6


def test_zero_stimulation_settles_to_the_passive_equilibrium() -> None:
    env = NMESKnee(theta0_deg=0.0)
    env.reset(seed=0)
    _run(env, 0.0, 600)  # 30 s; the shank decays with 2 J / B = 2.7 s
    assert abs(env._x[0] - passive_equilibrium()) < 1e-4
    assert env._x[3] == 1.0  # no activation, no fatigue


def test_fatigue_lowers_the_torque_and_fitness_recovers_at_rest() -> None:
    env = NMESKnee(emd=0.0)
    env.reset(seed=0)
    infos = _run(env, 200.0, 600)  # 30 s at 200 us (8.5 N m unfatigued, ~50 deg)
    torque_early, torque_late = infos[100]["torque"], infos[-1]["torque"]
    assert torque_late < 0.85 * torque_early
    assert infos[-1]["fitness"] < 0.8
    assert infos[-1]["fitness"] >= NMESParams().fit_min
    tired = infos[-1]["fitness"]
    rest = _run(env, 0.0, 400)
    assert rest[-1]["fitness"] > tired + 0.005  # T_rec = 300 s: slow
    assert all(a["fitness"] <= b["fitness"] for a, b in itertools.pairwise(rest[80:]))


def test_electromechanical_delay_holds_the_pulse_back() -> None:
    env = NMESKnee(emd=0.1)
    env.reset(seed=0)
    delivered = [i["pulse_delivered"] for i in _run(env, 200.0, 4)]
    assert delivered == [0.0, 0.0, 200.0, 200.0]
    env = NMESKnee(emd=0.07)  # not a multiple of dt: the period is split
    env.reset(seed=0)
    assert [i["pulse_delivered"] for i in _run(env, 200.0, 3)] == [0.0, 200.0, 200.0]


def test_same_seed_same_session_and_seeds_differ() -> None:
    def session(seed: int) -> np.ndarray:
        env = make_plant(ID, patient="random", reference="random", noise_theta=0.01)
        obs = [env.reset(seed=seed)[0]]
        obs += [env.step(np.array([150.0]))[0] for _ in range(20)]
        return np.array(obs)

    a, b, c = session(3), session(3), session(4)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("kind", ["step", "sine", "random"])
def test_references_stay_in_the_clinical_range(kind: str) -> None:
    env = NMESKnee(reference=kind)
    lo, hi = math.radians(10.0), math.radians(60.0)
    for seed in range(5):
        _, info = env.reset(seed=seed)
        ref = info["reference"]
        values = [ref(t) for t in np.arange(0.0, 40.0, 0.05)]
        assert lo - 1e-12 <= min(values) and max(values) <= hi + 1e-12
    if kind == "step":
        assert len({ref(t) for t in (1.0, 11.0, 21.0)}) == 3


def test_random_patients_lie_within_the_documented_spread() -> None:
    env = NMESKnee(patient="random", spread=0.2)
    nominal = NMESParams()
    seen = []
    for seed in range(10):
        _, info = env.reset(seed=seed)
        assert set(info["factors"]) == set(PARAM_NAMES)
        for name in PARAM_NAMES:
            ratio = getattr(info["params"], name) / getattr(nominal, name)
            assert 0.8 <= ratio <= 1.2
            assert ratio == pytest.approx(info["factors"][name])
        seen.append(info["params"].J)
    assert len(set(seen)) == 10
    _, info = NMESKnee().reset(seed=0)
    assert info["params"] == nominal


@pytest.mark.parametrize(("action", "match"), [
    (np.array([np.nan]), "nan"),
    (np.array([600.0]), "P=600"),
    (np.array([-5.0]), "P=-5"),
    (np.zeros(2), r"shape \(2,\)"),
])
def test_bad_actions_raise_action_error_naming_the_value(action: np.ndarray, match: str) -> None:
    env = NMESKnee()
    env.reset(seed=0)
    with pytest.raises(ActionError, match=match):
        env.step(action)


@pytest.mark.parametrize(("opts", "field"), [
    ({"reference": "ramp"}, "reference"),
    ({"spread": 0.5}, "spread"),
    ({"ref_low_deg": 50.0, "ref_high_deg": 20.0}, "ref_low_deg"),
    ({"rtol": float("nan")}, "rtol"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_options_raise_option_error_naming_the_field(opts: dict[str, Any],
                                                         field: str) -> None:
    with pytest.raises(OptionError, match=field):
        NMESKnee(**opts)


_VALUES = {
    "reference": st.sampled_from(["step", "sine", "random", "x"]),
    "patient": st.sampled_from(["nominal", "random", "y"]),
    "spread": st.floats(-0.1, 0.4),
    "emd": st.one_of(st.none(), st.floats(-0.1, 0.3)),
    "theta0_deg": st.one_of(st.none(), st.floats(-60.0, 100.0)),
    "fitness0": st.floats(0.0, 1.2),
    "noise_theta": st.floats(0.0, 0.2),
    "ref_high_deg": st.floats(0.0, 90.0),
}


def test_fuzzed_fields_are_options() -> None:
    assert set(_VALUES) <= {f.name for f in dataclasses.fields(NMESKneeOptions)}


@given(opts=st.fixed_dictionaries({}, optional=_VALUES),
       pulses=st.lists(st.one_of(st.floats(-10.0, 510.0), st.just(math.nan)), min_size=1,
                      max_size=6),
       seed=st.integers(0, 2**16))
def test_fuzzed_options_and_actions_give_bounded_observations_or_clear_errors(
        opts: dict[str, Any], pulses: list[float], seed: int) -> None:
    try:
        env = NMESKnee(**opts)
    except OptionError as exc:
        assert any(k in str(exc) for k in opts)
        return
    obs, _ = env.reset(seed=seed)
    space = env.observation_space
    assert space.contains(obs)
    for pulse in pulses:
        try:
            obs, reward, terminated, _, info = env.step(np.array([pulse]))
        except ActionError as exc:
            assert not (0.0 <= pulse <= 500.0) and "action" in str(exc)
            continue
        assert space.contains(obs) and math.isfinite(float(reward))
        assert 0.0 <= info.get("fitness", 1.0) <= 1.0
        if terminated:
            break


def test_numpy_and_casadi_models_agree() -> None:
    model = nmes_model()
    f, _ = model.casadi_functions()
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.uniform([-0.5, -3.0, 0.0, 0.3], [1.5, 3.0, 25.0, 1.0])
        u = rng.uniform(0.0, 500.0, 1)
        assert np.allclose(np.asarray(f(x, u)).ravel(), model.f(x, u), rtol=1e-12, atol=1e-12)
    x_op, u_op = model.operating_point()
    assert np.allclose(model.f(x_op, u_op), 0.0, atol=1e-9)


def test_every_model_state_is_observed_by_name() -> None:
    env = NMESKnee()
    names = [s.name for s in env.observation_signals]
    assert all(s.name in names for s in env.model().states)
    assert env.observation_signals[-1].tracks == "theta"


def test_ctrlbench_check_passes() -> None:
    assert cli_main(["check", ID]) == 0


@pytest.mark.parametrize("controller", ["pid", "mpc", "rise"])
def test_ctrlbench_run_closes_the_loop(controller: str, tmp_path: Any) -> None:
    args = ["run", ID, controller, "--steps", "10", "--seed", "0", "--out", str(tmp_path)]
    assert cli_main(args) == 0


def test_rise_gets_the_plants_recommended_gains_and_holds_a_whole_session() -> None:
    from ctrlbench.registry import make_controller
    from ctrlbench.simulate import simulate

    plant = make_plant(ID)
    ctrl = make_controller("rise", plant)
    assert (ctrl.ks, ctrl.beta, ctrl.error_scale, ctrl.output_scale) == (40.0, 10.0, 1.0, 1.0)
    traj = simulate(plant, ctrl, seed=0)
    err = traj.signal("theta") - traj.signal("theta_ref")
    assert len(traj) == 800 and not traj.terminated  # the whole 40 s session
    assert np.degrees(np.sqrt(np.mean(err**2))) < 12.0  # measured 9.99 deg
    assert make_controller("rise", plant, ks=20.0).ks == 20.0  # explicit wins


@pytest.mark.slow
def test_mpc_with_the_plants_recommended_settings_holds_whole_sessions() -> None:
    from ctrlbench.registry import make_controller
    from ctrlbench.simulate import simulate

    for seed in (0, 1, 2):  # measured RMSE 9.50 / 12.53 / 13.48 deg, no failed solve
        plant = make_plant(ID)
        ctrl = make_controller("mpc", plant)
        traj = simulate(plant, ctrl, seed=seed)
        err = traj.signal("theta") - traj.signal("theta_ref")
        assert len(traj) == 800 and ctrl.failures == 0
        assert np.degrees(np.sqrt(np.mean(err**2))) < 15.0


def test_stepping_does_not_leak_solver_memory() -> None:
    import tracemalloc

    env = NMESKnee()
    env.reset(seed=0)
    _run(env, 150.0, 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _run(env, 150.0, 100)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000  # the command history (~30 B a step) and the infos kept by _run
