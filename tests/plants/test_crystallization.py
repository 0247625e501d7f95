"""Dextrose crystallizer: physics (conservation, kinetics, PBE vs moments, grid), the plant."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ctrlbench
from ctrlbench.model import NUMPY_OPS
from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError, EpisodeEndedError
from ctrlbench.registry import make_plant
from plants.crystallization.model import (
    MATH_OPS,
    CrystalParams,
    PopulationBalance,
    SizeGrid,
    SolverFailure,
    growth_rate,
    nucleation_rate,
    simulate_open_loop,
    solubility,
)
from plants.crystallization.moments import (
    CRYSTAL_MODEL_NAME,
    crystallization_model,
    scale_moments,
    simulate_moments,
)
from plants.crystallization.options import GRADE_NAMES, CrystallizationOptions
from plants.crystallization.references import GRADES, NOMINAL, initial_moments

CRYS = "ctrlbench/Crystallization-v0"
P = CrystalParams().as_dict()
COOLING = np.repeat(np.linspace(35.0, 10.0, 24), 6)  # hourly ramp-down, 24 h


def _open_loop(profile: Any, **kw: Any) -> Any:
    cond = dict(seed_mean=100.0, seed_sd=12.5, seed_mass_fraction=0.15, c0=0.725, temp0=35.0)
    cond.update({k: kw.pop(k) for k in list(kw) if k in cond})
    return simulate_open_loop(jacket_profile=profile, **cond, **kw)


# -- physics ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["LSODA", "BDF"])
def test_total_dextrose_is_conserved(method: str) -> None:
    # cold jacket from a supersaturated start: fast growth and strong nucleation
    res = _open_loop(np.full(24, 5.0), c0=0.85, temp0=30.0, method=method)
    total = res.total_dextrose
    # studies/README.md C1: conserved to <= 2.8e-15 relative (measured 2.3e-15 LSODA, 2.8e-15 BDF)
    assert np.max(np.abs(total / total[0] - 1.0)) < 6e-15
    assert res.moments[-1, 0] > 1.2 * res.moments[0, 0]  # nuclei were born
    assert res.concentration[-1] < 0.7 * res.concentration[0]  # and grew


@pytest.mark.parametrize("s", [1.0, 0.999, 0.8, 0.0])
def test_no_growth_or_nucleation_at_or_below_saturation(s: float) -> None:
    for ops in (MATH_OPS, NUMPY_OPS):
        assert growth_rate(s, 30.0, P, ops) == 0.0
        assert nucleation_rate(s, 0.2, P, ops) == 0.0
    assert growth_rate(1.1, 30.0, P, MATH_OPS) > 0 and nucleation_rate(1.1, 0.2, P, MATH_OPS) > 0
    # an undersaturated batch held warm: nothing changes at all
    temp = 40.0
    c0 = s * solubility(temp, P)
    if c0 > 0:
        res = _open_loop(np.full(12, temp), c0=c0, temp0=temp)
        np.testing.assert_allclose(res.moments[-1], res.moments[0], rtol=1e-14)
        np.testing.assert_array_equal(res.distribution[-1], res.distribution[0])
        assert res.concentration[-1] == c0


def test_kinetics_and_solubility_values() -> None:
    assert solubility(30.0, P) == pytest.approx((0.804 * 30 + 29.94) / 100)
    g = 1.14e-3 * math.exp(-29549 / (8.314 * 303.15)) * 0.2**1.05
    assert growth_rate(1.2, 30.0, P, MATH_OPS) == pytest.approx(g, rel=1e-12)
    assert nucleation_rate(1.2, 0.3, P, MATH_OPS) == pytest.approx(4.5e4 * 0.3**0.49 * 0.2**1.41)
    assert CrystalParams().heat_rate == pytest.approx(200 * 0.01 / 4182)


def test_pbe_and_moments_model_agree_for_size_independent_growth() -> None:
    res = _open_loop(COOLING)
    x0 = np.concatenate((scale_moments(res.moments[0]), [res.concentration[0],
                                                         res.temperature[0]]))
    xs = simulate_moments(CrystalParams(), x0, COOLING)
    pbe = scale_moments(res.moments)
    rel = np.abs(xs[:, :4] / pbe[:, :4] - 1.0)
    # studies/README.md C1: mu0..mu3 within 3.3e-4 (measured 3.9e-6 / 3.3e-4 / 8.2e-5 / 1.1e-5);
    # final mean size 2.6e-5
    assert rel.max() < 7e-4, rel.max(axis=0)
    assert abs(100 * xs[-1, 4] / xs[-1, 3] / res.mean_size[-1] - 1) < 6e-5
    np.testing.assert_allclose(xs[:, 5], res.concentration, atol=1e-4)
    np.testing.assert_allclose(xs[:, 6], res.temperature, atol=1e-3)


def test_grid_refinement_barely_changes_the_final_mean_size() -> None:
    """studies/README.md C1: 250 -> 500 cells changes the final mean size by -6.7e-6."""
    coarse = _open_loop(COOLING[:72], grid=SizeGrid(n_cells=250))
    fine = _open_loop(COOLING[:72], grid=SizeGrid(n_cells=500))
    assert abs(fine.mean_size[-1] / coarse.mean_size[-1] - 1.0) < 1.4e-5


def test_lsoda_and_bdf_agree() -> None:
    a, b = (_open_loop(COOLING[:18], method=m) for m in ("LSODA", "BDF"))
    np.testing.assert_allclose(a.moments, b.moments, rtol=1e-4)
    np.testing.assert_allclose(a.mean_size, b.mean_size, rtol=1e-5)


def test_analytic_jacobian_matches_finite_differences_and_conserves() -> None:
    pbe = PopulationBalance(grid=SizeGrid(n_cells=60))
    y, fs = pbe.initial_state(100.0, 15.0, 0.15, 0.75)
    y[:60] += 0.02 * np.random.default_rng(0).random(60)  # the limiter switches somewhere
    jac = pbe.jacobian(y, 30.0, fs).toarray()
    fd = np.empty_like(jac)
    for k in range(y.size):
        d = np.zeros(y.size)
        d[k] = 1e-7 * max(1.0, abs(y[k]))
        fd[:, k] = (pbe.rhs(y + d, 30.0, fs) - pbe.rhs(y - d, 30.0, fs)) / (2 * d[k])
    assert np.max(np.abs(jac - fd)) < 1e-6 * np.max(np.abs(jac))
    e = np.concatenate((pbe._k3 * fs * pbe.h * pbe._x3, [1.0]))  # d(total dextrose)/dy
    assert abs(e @ pbe.rhs(y, 30.0, fs)) < 1e-18
    assert np.max(np.abs(e @ jac)) < 1e-12 * np.max(np.abs(jac))


def test_open_loop_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError, match="jacket_profile"):
        _open_loop([20.0, float("nan")])
    with pytest.raises(ValueError, match="method"):
        _open_loop([20.0], method="RK45")
    with pytest.raises(ValueError, match="no mass on the grid"):
        _open_loop([20.0], seed_mean=5000.0)


def test_moments_model_numpy_casadi_and_conservation() -> None:
    model = crystallization_model()
    assert model.name == CRYSTAL_MODEL_NAME and model.x_op is None
    x = initial_moments(NOMINAL)
    x[6] = 25.0
    fx = model.f(x, [20.0])
    mass = model.params["mass_scale"]
    assert abs(fx[5] + mass * fx[3]) < 1e-15  # c + M_T conserved
    f, h = model.casadi_functions()
    np.testing.assert_allclose(np.asarray(f(x, 20.0)).ravel(), fx, rtol=1e-12, atol=1e-18)
    assert float(h(x, 20.0)) == pytest.approx(float(model.h(x, [20.0])[0]))
    assert model.h(x, [20.0])[0] == pytest.approx(104.5, abs=0.1)  # nominal seed, mu4/mu3


@pytest.mark.parametrize("conc", [0.2, 0.5, 0.9])  # under, near and over saturation at 25 C
def test_moments_model_has_finite_second_derivatives(conc: float) -> None:
    import casadi as ca

    f, _ = crystallization_model().casadi_functions()
    x, u = ca.SX.sym("x", 7), ca.SX.sym("u")
    hess = ca.Function("H", [x, u], [ca.hessian(ca.sum1(f(x, u)), ca.vertcat(x, u))[0]])
    x0 = initial_moments(NOMINAL)
    x0[5], x0[6] = conc, 25.0
    assert np.all(np.isfinite(np.asarray(hess(x0, 20.0))))


# -- the plant -------------------------------------------------------------------------------
def _run(env: Any, actions: Any, seed: int) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        out.append(env.step(np.array([a]))[0])
    return np.stack(out)


def test_deterministic_per_seed_and_seeds_differ() -> None:
    actions = [30.0, 20.0, 10.0, 12.0]
    a = _run(make_plant(CRYS, noise=0.1, kinetic_uncertainty=True), actions, seed=3)
    b = _run(make_plant(CRYS, noise=0.1, kinetic_uncertainty=True), actions, seed=3)
    c = _run(make_plant(CRYS, noise=0.1, kinetic_uncertainty=True), actions, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, 8], c[:, 8])  # a different grade
    assert np.all(np.isfinite(a))


def test_reset_draws_conditions_and_kinetics_within_the_ranges() -> None:
    env = make_plant(CRYS, kinetic_uncertainty=True).unwrapped
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        cond = info["conditions"]
        assert 50 <= cond.seed_mean <= 150 and 5 <= cond.seed_sd <= 20
        assert 0.05 <= cond.seed_mass_fraction <= 0.25 and 0.6 <= cond.c0 <= 0.85
        assert 30 <= cond.temp0 <= 40 and obs[6] == cond.temp0 and obs[5] == cond.c0
        assert all(abs(f - 1) <= 0.05 for f in info["growth_factors"])
        assert all(abs(f - 1) <= 0.10 for f in info["nucleation_factors"])
        assert obs[8] == info["setpoint"] > obs[7]  # the random run grew the crystals
        assert 0.806 * obs[3] == pytest.approx(cond.seed_mass_fraction, rel=1e-3)


def test_named_grade_and_setpoint_override() -> None:
    assert set(GRADE_NAMES) == {"random", *GRADES}
    obs, info = make_plant(CRYS, grade="large").reset(seed=0)
    assert obs[8] == 150.0 and info["conditions"] == GRADES["large"].conditions
    obs, _ = make_plant(CRYS, grade="coarse", setpoint=201.0).reset(seed=0)
    assert obs[8] == 201.0


@pytest.mark.parametrize(("value", "match"), [
    (40.5, r"T_j=40.5 not in \[5, 40\]"), (4.0, r"T_j=4 not in \[5, 40\]"),
    (float("nan"), "non-finite action"), (-1e9, "T_j=-1e\\+09")])
def test_bad_jacket_command_names_the_value(value: float, match: str) -> None:
    env = make_plant(CRYS, grade="medium")
    env.reset(seed=0)
    with pytest.raises(ActionError, match=match):
        env.step(np.array([value]))


@pytest.mark.parametrize(("opts", "match"), [
    ({"grade": "huge"}, "grade = 'huge'"), ({"noise": -0.1}, "noise = -0.1"),
    ({"rate_limit": 0.0}, "rate_limit = 0.0"), ({"n_cells": 5}, "n_cells = 5"),
    ({"seed_mean_range": (150.0, 50.0)}, r"seed_mean_range = \(150.0, 50.0\)"),
    ({"c0_range": (0.7,)}, "c0_range"), ({"setpoint": 1000.0}, "setpoint = 1000.0"),
    ({"method": "RK45"}, "method = 'RK45'"), ({"growth_spread": float("nan")}, "growth_spread"),
])
def test_bad_options_name_the_value(opts: dict[str, Any], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        make_plant(CRYS, **opts)


def test_rate_limit_on_the_applied_jacket_temperature() -> None:
    env = make_plant(CRYS, grade="medium", rate_limit=0.5)  # 5 C per 10 min from T0 = 35 C
    obs, _ = env.reset(seed=0)
    assert obs[9] == 35.0  # the applied jacket temperature starts at the slurry temperature
    steps = [env.step(np.array([5.0])) for _ in range(3)]
    applied = [info["T_j_applied"] for *_, info in steps]
    assert applied == [30.0, 25.0, 20.0]
    assert [obs[9] for obs, *_ in steps] == applied  # observed as T_j_applied
    info = env.step(np.array([22.0]))[4]
    assert info["T_j_applied"] == 22.0 and not info["rate_limited"]
    assert env.get_wrapper_attr("action_rate_limit") == 5.0


def test_batch_ends_after_24_hours_with_the_final_deviation() -> None:
    env = make_plant(CRYS, grade="medium").unwrapped
    env.reset(seed=0)
    for k in range(144):
        obs, reward, terminated, truncated, info = env.step(np.array([25.0]))
        assert not terminated and truncated == (k == 143)
    assert info["t"] == 86400.0 and info["final_deviation"] == pytest.approx(
        (140.0 - info["mean_size_true"]) / 140.0)
    assert 135 < obs[7] < 145 and math.isfinite(float(reward))
    with pytest.raises(EpisodeEndedError):
        env.step(np.array([25.0]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_solver_failure_ends_the_episode_with_a_flag_not_nan(monkeypatch: Any) -> None:
    env = make_plant(CRYS, grade="medium").unwrapped
    obs0, _ = env.reset(seed=0)
    obs1 = env.step(np.array([25.0]))[0]
    # a right-hand side that turns non-finite: the integrator's failure must be caught
    monkeypatch.setattr(env._pbe, "rhs", lambda y, temp, fs: np.full(y.size, np.nan))
    obs, reward, terminated, truncated, info = env.step(np.array([25.0]))
    assert terminated and not truncated and info["solver_failed"]
    assert "LSODA" in info["solver_message"]
    np.testing.assert_array_equal(obs, obs1)
    assert np.all(np.isfinite(obs)) and math.isfinite(float(reward))
    with pytest.raises(EpisodeEndedError):
        env.step(np.array([25.0]))
    assert not np.array_equal(obs0, obs1)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_advance_raises_solver_failure_on_a_non_finite_state(monkeypatch: Any) -> None:
    pbe = PopulationBalance(grid=SizeGrid(n_cells=50))
    y, fs = pbe.initial_state(100.0, 10.0, 0.1, 0.8)
    monkeypatch.setattr(pbe, "rhs", lambda yy, temp, f: np.full(yy.size, np.inf))
    with pytest.raises(SolverFailure, match="BDF"):
        pbe.advance(y, fs, 0.0, 30.0, 20.0, 600.0, method="BDF")


def test_measurement_noise_spares_the_setpoint_and_stays_in_bounds() -> None:
    clean = _run(make_plant(CRYS, grade="small"), [25.0] * 3, seed=1)
    noisy = _run(make_plant(CRYS, grade="small", noise=0.15), [25.0] * 3, seed=1)
    np.testing.assert_array_equal(clean[:, 8:], noisy[:, 8:])  # set-point, applied jacket
    assert np.all(np.abs(noisy[:, :8] / clean[:, :8] - 1.0) > 0)
    env = make_plant(CRYS, noise=0.5)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("method", ["LSODA", "BDF"])
def test_stepping_keeps_no_memory(method: str) -> None:
    """scipy 1.17's solve_ivp LSODA kept 0.5 MB per step alive (24 GB over the LSTMc data)."""
    import gc
    import tracemalloc

    env = make_plant(CRYS, grade="medium", n_cells=100, method=method)
    env.reset(seed=0)
    env.step(np.array([30.0]))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            env.step(np.array([25.0]))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 200_000  # bytes; the leaking path held ~0.9 MB (10 work arrays of 89 kB)


# -- property tests over the options ---------------------------------------------------------
def _in_range(f: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    meta = f.metadata
    if meta.get("choices"):
        return st.sampled_from(meta["choices"])
    lo = meta["ge"] if meta["ge"] is not None else meta["gt"]
    hi = meta["le"] if meta["le"] is not None else meta["lt"]
    if f.type in ("int",):
        return st.integers(int(lo), min(int(hi), 400))
    if f.type in ("bool",):
        return st.booleans()
    num = st.floats(lo, hi, exclude_min=meta.get("gt") is not None)
    if "tuple" in str(f.type):
        return st.lists(num, min_size=2, max_size=2).map(lambda v: (min(v), max(v)))
    return st.none() | num if "None" in str(f.type) else num


_FIELDS = {f.name: f for f in dataclasses.fields(CrystallizationOptions)}
_WILD = st.one_of(st.floats(allow_nan=True), st.integers(-10**6, 10**6), st.text(max_size=4),
                  st.none(), st.booleans(), st.tuples(st.floats(), st.floats()))


@given(data=st.data())
def test_fuzzed_options_build_a_finite_plant_or_raise_option_error(data: st.DataObject) -> None:
    keys = data.draw(st.lists(st.sampled_from(sorted(_FIELDS)), max_size=4, unique=True))
    wild = data.draw(st.sampled_from(keys)) if keys and data.draw(st.booleans()) else None
    opts = {k: data.draw(_WILD if k == wild else _in_range(_FIELDS[k])) for k in keys}
    try:
        env = make_plant(CRYS, **opts)
    except OptionError as exc:
        assert wild is not None and wild in str(exc), exc
        return
    obs, _ = env.reset(seed=data.draw(st.integers(0, 2**31)))
    for action in (5.0, 40.0):
        assert np.all(np.isfinite(obs)) and env.observation_space.contains(obs)
        obs, reward, terminated, _, info = env.step(np.array([action]))
        assert math.isfinite(float(reward))
        if terminated:
            assert info["solver_failed"]
            break


def test_registration_provides_the_model_name() -> None:
    entry = ctrlbench.registry.PLANTS.entry(CRYS)
    assert entry.provides.model_name == CRYSTAL_MODEL_NAME
