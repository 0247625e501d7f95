"""Pinned values for llm_rl/entropy_design.py (mutation survivors of `make mutation`)."""

import math

import numpy as np
import pytest

from llm_rl.entropy_control import ControlConfig, make_entropy_controller
from llm_rl.entropy_design import (
    PIDesign,
    arx_closed_loop_poles,
    min_spectral_radius_pi,
    pole_placement_pi,
    simulate_closed_loop,
    tune_pi_optuna,
)
from llm_rl.sysid import ARXModel, RunData

A, B, C = 0.9, 0.5, 0.05


def _model(a=A, b=B, c=C, q=0.01):
    rng = np.random.default_rng(1)
    u = rng.choice([0.0, 0.1, 0.3], size=60)
    h = np.empty(60)
    h[0] = 0.6
    for k in range(59):
        h[k + 1] = a * h[k] + b * u[k] + c
    m = ARXModel(1, 1).fit([RunData(h, u)])
    m.q_ = q  # the residual variance the simulator's process noise is built from
    return m


def test_pole_placement_returns_its_rule_and_numbers():
    d = pole_placement_pi(_model(), 3)
    p = math.exp(-1 / 3)
    p3 = 1 + A - 2 * p
    assert d.rule == "pole placement"
    assert d.details.keys() == {"tau", "p", "p3", "a", "b"}
    assert d.details["tau"] == 3.0 and isinstance(d.details["tau"], float)
    assert d.details["p"] == pytest.approx(p) and d.details["p3"] == pytest.approx(p3)
    assert d.details["a"] == pytest.approx(A) and d.details["b"] == pytest.approx(B)


@pytest.mark.parametrize("tau", [True, math.inf, math.nan, 0, -1.0, "3"])
def test_pole_placement_refuses_bad_tau(tau):
    with pytest.raises(ValueError, match="is not valid; valid: a finite time constant > 0"):
        pole_placement_pi(_model(), tau)


def test_pole_placement_names_the_valid_tau_window():
    # tau 0.2: p = exp(-5), third pole 1.9 - 2 p ~ 1.887, outside the unit circle
    with pytest.raises(ValueError, match=r"exp\(-1/tau\) > 0\.450 and < 1\.450"):
        pole_placement_pi(_model(), 0.2)


def test_pid_options_pass_limits_and_start_value():
    d = PIDesign(1.5, 0.2, (), "x", {})
    assert d.pid_options(u_min=0.1, u_max=0.8, value=0.2) == {
        "kp": 1.5, "ki": 0.2, "kd": 0.0, "u_min": 0.1, "u_max": 0.8, "value": 0.2}


def test_simulation_equals_a_step_by_step_reference():
    m, r, opts = _model(), 0.002, {"kp": 1.2, "ki": 0.15, "kd": 0.0, "u_min": 0.0, "u_max": 1.0}
    out = simulate_closed_loop(m, opts, setpoint=0.7, steps=30, h0=0.4, r=r, seed=5)
    rng = np.random.default_rng(5)
    ctrl = make_entropy_controller(ControlConfig(name="pid", setpoint=0.7, options=opts))
    a, b = float(m.a_[0]), float(m.b_[0])
    q_proc = max(m.q_ - (1 + a * a) * r, 0.0)
    assert q_proc > 0
    x, hs, us = 0.4, [], []
    for _ in range(30):
        u = ctrl.value
        h = x + math.sqrt(r) * rng.standard_normal()
        hs.append(h)
        us.append(u)
        ctrl.update(h)
        x = a * x + b * u + m.c_ + math.sqrt(q_proc) * rng.standard_normal()
    np.testing.assert_array_equal(out["H"], hs)
    np.testing.assert_array_equal(out["u"], us)
    second = np.array(hs[15:])
    assert out["rel_err"] == pytest.approx(float(np.mean(np.abs(second - 0.7) / 0.7)))


def test_simulation_of_a_runaway_stops_and_reports_inf():
    m = _model(a=1.5, b=0.0, c=0.1, q=0.0)
    out = simulate_closed_loop(m, {"value": 0.0}, setpoint=0.6, steps=200, h0=1.0,
                               name="constant")
    assert len(out["H"]) < 200 and out["H"][-1] == math.inf and out["rel_err"] == math.inf
    assert np.all(np.isfinite(out["H"][:-1]))
    with pytest.raises(ValueError, match=r"noise variance r = -0\.1 must be finite and >= 0"):
        simulate_closed_loop(_model(), {}, r=-0.1)


# -- boundaries of the pole-placement refusals (exact float values found by search) ----------
def _fitted(a, b, c=0.0, q=0.0, na=1, nb=1):
    m = ARXModel(na, nb)
    m.a_, m.b_ = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    m.c_, m.q_, m.n_samples_ = c, q, 50
    return m


def test_pole_placement_accepts_each_boundary():
    # b = 1e-9 is not "< 1e-9": gains are designed (kp = (p^2 + 2 p p3 - a) / b)
    p = math.exp(-1 / 3)
    p3 = 1.9 - 2 * p
    d = pole_placement_pi(_fitted(0.9, 1e-9), 3)
    assert d.kp == pytest.approx((p * p + 2 * p * p3 - 0.9) / 1e-9, rel=1e-12)
    # a = 2 p (tau = 2): the third pole is exactly 1.0, on the circle: refused
    a = 2 * math.exp(-1 / 2)
    assert 1.0 + a - 2.0 * math.exp(-1 / 2) == 1.0
    with pytest.raises(ValueError, match=r"third pole at 1\.000"):
        pole_placement_pi(_fitted(a, 1.0), 2)
    # kp exactly 0 (tau 3, a chosen so), and ki exactly 0 (tau 4): both allowed (>= 0)
    d = pole_placement_pi(_fitted(0.24751324800592772, 1.0), 3)
    assert d.kp == 0.0 and d.ki > 0
    d = pole_placement_pi(_fitted(1.5576015661428004, 1.0), 4)
    assert d.ki == 0.0 and d.kp > 0


def test_type_errors_name_the_type():
    with pytest.raises(TypeError, match="needs a fitted ARXModel, got str"):
        pole_placement_pi("model", 3)
    with pytest.raises(TypeError, match="needs a fitted ARXModel, got dict"):
        arx_closed_loop_poles({}, 1.0, 0.1)


def test_arx_poles_of_a_third_order_model_by_hand():
    # ARX(3, 1): A*(z) = z^3 - a1 z^2 - a2 z - a3, B*(z) = b1 z (N = 3); the polynomial
    # A*(z) (z - 1) + b1 z (kp (z - 1) + ki), written out
    a1, a2, a3, b1, kp, ki = 0.7, 0.2, -0.1, 0.4, 1.3, 0.25
    m = _fitted([a1, a2, a3], [b1], na=3, nb=1)
    poly = [1.0, -a1 - 1.0, a1 - a2 + b1 * kp, a2 - a3 + b1 * (ki - kp), a3]
    want = sorted(np.roots(poly), key=lambda r: (-abs(r), r.imag))
    np.testing.assert_allclose(arx_closed_loop_poles(m, kp, ki), want, rtol=1e-12)


# -- the fastest PI: the grid search written out ----------------------------------------------
def _grid_search(a, b, kp_max=5.0, ki_max=1.0, grid=41, rounds=5):
    """The documented search: a grid over [0, kp_max] x [0, ki_max], then `rounds - 1` grids of
    the same size over +-2 steps around the best point (clipped to the box)."""
    def rho(kp, ki):
        return float(max(abs(np.roots([1.0, -1.0 - a, a + b * kp, b * (ki - kp)]))))

    box = [0.0, kp_max, 0.0, ki_max]
    best = None
    for _ in range(rounds):
        kps = [box[0] + (box[1] - box[0]) * j / (grid - 1) for j in range(grid)]
        kis = [box[2] + (box[3] - box[2]) * j / (grid - 1) for j in range(grid)]
        for kp in kps:
            for ki in kis:
                cand = (rho(kp, ki), kp, ki)
                if best is None or cand < best:
                    best = cand
        dp, di = (box[1] - box[0]) / (grid - 1), (box[3] - box[2]) / (grid - 1)
        box = [max(best[1] - 2 * dp, 0.0), min(best[1] + 2 * dp, kp_max),
               max(best[2] - 2 * di, 0.0), min(best[2] + 2 * di, ki_max)]
    return best


def test_fastest_pi_default_box_and_grid_against_the_search_written_out():
    # first order: the optimum is near the triple pole (1 + a) / 3, kp ~ 0.61, ki ~ 0.10 (inside
    # the box, away from its edges). The default box [0, 5] x [0, 1] with the default grid (41
    # points, one round), then with the default 5 rounds (grid 9: each round halves the box;
    # grid 11: the box leaves 0 from the third round on; ~1 s less than both defaults)
    m = _fitted(A, B)
    for d, want in ((min_spectral_radius_pi(m, rounds=1), _grid_search(A, B, rounds=1)),
                    (min_spectral_radius_pi(m, grid=9), _grid_search(A, B, grid=9)),
                    (min_spectral_radius_pi(m, grid=11), _grid_search(A, B, grid=11))):
        r, kp, ki = want
        assert d.kp == pytest.approx(kp, abs=1e-12) and d.ki == pytest.approx(ki, abs=1e-12)
        assert d.rule == "min spectral radius"
        assert d.details == {"spectral_radius": pytest.approx(r, abs=1e-12), "na": 1.0,
                             "nb": 1.0}
        assert r >= (1 + A) / 3 - 1e-12    # the poles' sum is 1 + a: none is faster


def test_fastest_pi_near_the_box_edge_on_a_small_grid():
    # a = 0.5, b = 2: the triple pole needs kp = (3 p^2 - a) / b ~ 0.09 < 2 steps of 0.25, so
    # the refinement is clipped at kp = 0; box (2, 0.5), grid 9, 4 rounds
    d = min_spectral_radius_pi(_fitted(0.5, 2.0), kp_max=2, ki_max=0.5, grid=9, rounds=4)
    r, kp, ki = _grid_search(0.5, 2.0, 2.0, 0.5, 9, 4)
    assert (d.kp, d.ki) == pytest.approx((kp, ki), abs=1e-12)
    assert d.details["spectral_radius"] == pytest.approx(r, abs=1e-12)


def test_fastest_pi_smallest_options_are_accepted():
    d = min_spectral_radius_pi(_fitted(A, B), kp_max=0.5, ki_max=0.25, grid=3, rounds=1)
    r, kp, ki = _grid_search(A, B, 0.5, 0.25, 3, 1)
    assert (d.kp, d.ki, d.details["spectral_radius"]) == pytest.approx((kp, ki, r), abs=1e-12)


@pytest.mark.parametrize(("kw", "message"), [
    ({"kp_max": math.nan}, r"kp_max = nan is not valid; valid: finite > 0"),
    ({"kp_max": math.inf}, r"kp_max = inf is not valid"),
    ({"ki_max": 0}, r"ki_max = 0 is not valid; valid: finite > 0"),
    ({"ki_max": "1"}, r"ki_max = '1' is not valid"),
    ({"grid": 3.5}, r"grid = 3\.5 is not valid; valid: an integer >= 3"),
    ({"grid": True}, r"grid = True is not valid"),
    ({"rounds": 0}, r"rounds = 0 is not valid; valid: an integer >= 1"),
    ({"rounds": True}, r"rounds = True is not valid"),
    ({"rounds": 2.5}, r"rounds = 2\.5 is not valid"),
])
def test_fastest_pi_refuses_bad_options(kw, message):
    with pytest.raises(ValueError, match=message):
        min_spectral_radius_pi(_fitted(A, B), **kw)


# -- the closed-loop simulator's defaults and its runaway threshold -----------------------------
def test_simulation_defaults():
    m = _model()
    opts = {"kp": 1.0, "ki": 0.1}
    out = simulate_closed_loop(m, opts)
    ref = simulate_closed_loop(m, opts, setpoint=0.6, steps=120, h0=0.6, r=0.0, seed=0)
    assert len(out["H"]) == 120 and out["H"][0] == 0.6
    np.testing.assert_array_equal(out["H"], ref["H"])
    assert out["rel_err"] == ref["rel_err"]
    assert PIDesign(1.0, 0.1, (), "x", {}).pid_options() == {
        "kp": 1.0, "ki": 0.1, "kd": 0.0, "u_min": 0.0, "u_max": 1.0, "value": 0.0}


def test_runaway_threshold_is_strictly_above_1e6():
    # a = b = 0, q = 0: the state is c from step 1 on; 1e6 exactly runs on, 1e6 + 0.5 stops
    at = simulate_closed_loop(_fitted(0.0, 0.0, c=1e6), {"value": 0.0}, setpoint=1.0, steps=6,
                              name="constant")
    assert len(at["H"]) == 6 and at["H"][-1] == 1e6
    assert at["rel_err"] == pytest.approx(1e6 - 1.0)
    above = simulate_closed_loop(_fitted(0.0, 0.0, c=1e6 + 0.5), {"value": 0.0}, setpoint=1.0,
                                 steps=6, name="constant")
    assert len(above["H"]) == 1 and above["H"][0] == math.inf


# -- Optuna: the study and its trials against the documented objective ------------------------
def _objective(model, kp, ki, setpoint, r, steps, h0, n_noise, u_max):
    opts = {"kp": kp, "ki": ki, "kd": 0.0, "u_min": 0.0, "u_max": u_max}
    return float(np.mean([simulate_closed_loop(model, opts, setpoint=setpoint, steps=steps,
                                               h0=h0, r=r, seed=1000 + i)["rel_err"]
                          for i in range(n_noise)]))


def _poles(a, b, kp, ki):
    return sorted(np.roots([1.0, -(1.0 + a), a + b * kp, b * (ki - kp)]),
                  key=lambda z: (-abs(z), z.imag))


def test_optuna_defaults_stored_study_and_continuation():
    import optuna
    from optuna.distributions import FloatDistribution

    m = _model(q=4e-4)
    url = optuna.storages.InMemoryStorage()   # any Optuna storage; faster than SQLite here
    d = tune_pi_optuna(m, n_trials=1, h0=0.2, storage=url)
    study = optuna.load_study(study_name="entropy-pi", storage=url)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    (t,) = study.trials
    assert t.distributions == {"kp": FloatDistribution(0.0, 5.0),
                               "ki": FloatDistribution(0.0, 1.0)}
    first = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0)).ask(t.distributions)
    assert t.params == first.params                       # the default seed 0
    # the defaults: setpoint 0.6, r 0, 120 steps, 4 noise seeds, u_max 1
    want = _objective(m, t.params["kp"], t.params["ki"], 0.6, 0.0, 120, 0.2, 4, 1.0)
    assert t.value == want and d.details["objective"] == want
    assert (d.kp, d.ki) == (t.params["kp"], t.params["ki"])
    assert d.rule == "optuna" and d.details["trials"] == 1.0
    a, b = float(m.a_[0]), float(m.b_[0])
    assert d.details["a"] == a and d.details["b"] == b
    np.testing.assert_allclose(d.poles, _poles(a, b, d.kp, d.ki), rtol=1e-12)
    # the same name continues the study up to n_trials in all; the best of the trials wins
    d3 = tune_pi_optuna(m, n_trials=3, h0=0.2, storage=url)
    trials = optuna.load_study(study_name="entropy-pi", storage=url).trials
    assert len(trials) == 3 and d3.details["trials"] == 3.0
    best = min(trials, key=lambda x: x.value)
    assert (d3.kp, d3.ki, d3.details["objective"]) == (best.params["kp"], best.params["ki"],
                                                      best.value)


def test_optuna_against_the_study_written_out():
    import optuna

    m = _model(q=4e-4)
    kw = dict(setpoint=0.5, r=1e-4, steps=30, h0=0.3, n_noise=2, u_max=0.8)
    d = tune_pi_optuna(m, n_trials=12, seed=7, kp_max=3.0, ki_max=0.5, **kw)

    def objective(trial):
        return _objective(m, trial.suggest_float("kp", 0.0, 3.0),
                          trial.suggest_float("ki", 0.0, 0.5), **kw)

    ref = optuna.create_study(direction="minimize",
                              sampler=optuna.samplers.TPESampler(seed=7))
    ref.optimize(objective, n_trials=12)
    assert (d.kp, d.ki) == (ref.best_params["kp"], ref.best_params["ki"])
    assert d.details["objective"] == ref.best_value and d.details["trials"] == 12.0


def test_optuna_runs_60_trials_by_default():    # 2-step simulations: ~0.3 s
    d = tune_pi_optuna(_model(q=4e-4), steps=2, n_noise=1)
    assert d.details["trials"] == 60.0


def test_optuna_objective_zero_is_reported_as_zero():
    # a x + c = x at x = 0.6 exactly (0.5 * 0.6 + 0.3), no noise, u = 0: every trial scores 0
    d = tune_pi_optuna(_fitted(0.5, 0.0, c=0.3), n_trials=1, n_noise=1, steps=4)
    assert d.details["objective"] == 0.0


@pytest.mark.parametrize(("kw", "message"), [
    ({"n_trials": 0}, r"n_trials = 0 is not valid; valid: an integer >= 1"),
    ({"n_trials": "3"}, r"n_trials = '3' is not valid"),
    ({"n_noise": 0}, r"n_noise = 0 is not valid; valid: an integer >= 1"),
    ({"n_noise": "2"}, r"n_noise = '2' is not valid"),
])
def test_optuna_refuses_bad_counts(kw, message):
    with pytest.raises(ValueError, match=message):
        tune_pi_optuna(_model(), **kw)
