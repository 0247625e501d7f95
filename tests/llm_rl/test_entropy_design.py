"""Model-based entropy-controller design: pole placement, closed-loop simulation, Optuna."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_rl.entropy_design import (
    arx_closed_loop_poles,
    closed_loop_poles,
    min_spectral_radius_pi,
    pole_placement_pi,
    simulate_closed_loop,
    tune_pi_optuna,
)
from llm_rl.sysid import ARXModel


def model(a=1.02, b=0.17, c=-0.03, q=1e-3):
    m = ARXModel()
    m.a_, m.b_, m.c_, m.q_, m.n_samples_ = np.array([a]), np.array([b]), c, q, 100
    return m


@pytest.mark.parametrize("tau", [2.0, 3.0, 5.0])
@pytest.mark.parametrize(("a", "b"), [(1.02, 0.17), (0.9, 0.3), (0.8, 0.05)])
def test_pole_placement_puts_the_poles_where_asked(tau, a, b):
    d = pole_placement_pi(model(a, b), tau)
    p = np.exp(-1 / tau)
    assert sorted(np.abs(d.poles)) == pytest.approx(sorted([p, p, abs(1 + a - 2 * p)]),
                                                    abs=1e-4)
    assert d.poles == closed_loop_poles(a, b, d.kp, d.ki)
    assert d.pid_options()["kp"] == d.kp and d.pid_options()["kd"] == 0.0


def test_poles_match_the_simulated_loop():
    # the loop the trainer closes (u_{k+1} = PI(e_k)) decays like the dominant pole
    m = model(q=0.0)
    d = pole_placement_pi(m, 3.0)
    sim = simulate_closed_loop(m, {**d.pid_options(), "u_min": -10.0, "u_max": 10.0},
                               setpoint=0.6, h0=0.9, steps=60)
    err = np.abs(sim["H"] - 0.6)
    rate = (err[40] / err[30]) ** (1 / 10)
    assert rate == pytest.approx(max(abs(x) for x in d.poles), abs=0.03)
    assert sim["rel_err"] < 1e-3


def test_arx_poles_and_the_fastest_pi():
    m = model()
    assert arx_closed_loop_poles(m, 2.0, 0.2) == pytest.approx(closed_loop_poles(1.02, 0.17, 2.0,
                                                                                 0.2))
    # first order: the fastest PI puts a triple pole at (1 + a) / 3 (the poles' sum is fixed)
    d = min_spectral_radius_pi(m, grid=11, rounds=7)
    assert d.details["spectral_radius"] == pytest.approx((1 + 1.02) / 3, abs=0.01)
    m2 = ARXModel(2, 2)
    m2.a_, m2.b_, m2.c_, m2.q_, m2.n_samples_ = np.array([0.93, 0.1]), np.array([0.03, 0.21]), \
        0.0, 0.0, 10
    d2 = min_spectral_radius_pi(m2, grid=11, rounds=7)
    assert len(d2.poles) == 4 and max(abs(p) for p in d2.poles) < 1
    for kp, ki in ((1.0, 0.1), (2.0, 0.2), (d2.kp * 1.1, d2.ki), (d2.kp, d2.ki * 0.9)):
        assert max(abs(p) for p in arx_closed_loop_poles(m2, kp, ki)) >= \
            d2.details["spectral_radius"] - 1e-12
    with pytest.raises(ValueError, match="kp_max = 0 is not valid"):
        min_spectral_radius_pi(m, kp_max=0)
    with pytest.raises(ValueError, match="grid = 2 is not valid"):
        min_spectral_radius_pi(m, grid=2)


def test_design_errors_name_the_value():
    with pytest.raises(ValueError, match="tau = -1 is not valid"):
        pole_placement_pi(model(), -1)
    with pytest.raises(ValueError, match=r"tau = 0.5 puts the third pole at 1.749"):
        pole_placement_pi(model(), 0.5)
    with pytest.raises(ValueError, match="negative gains"):
        pole_placement_pi(model(a=0.2), 50.0)
    with pytest.raises(ValueError, match=r"input gain b = 0.0"):
        pole_placement_pi(model(b=0.0), 3.0)
    with pytest.raises(ValueError, match="first-order ARX model"):
        pole_placement_pi(ARXModel(2, 1), 3.0)
    with pytest.raises(TypeError, match="fitted ARXModel"):
        pole_placement_pi("model", 3.0)


def test_optuna_is_reproducible_and_beats_a_poor_guess(tmp_path):
    m = model()
    kw = dict(r=4e-4, n_trials=8, n_noise=1, steps=40, seed=3)
    a = tune_pi_optuna(m, **kw)  # in memory
    poor = simulate_closed_loop(m, {"kp": 0.05, "ki": 0.0}, r=4e-4, steps=40, seed=1000)
    assert a.details["objective"] < poor["rel_err"]
    url = f"sqlite:///{tmp_path}/t.db"
    c = tune_pi_optuna(m, storage=url, **kw)  # embedded SQLite: the same seeded trials
    assert (c.kp, c.ki) == (a.kp, a.ki)
    again = tune_pi_optuna(m, storage=url, **kw)  # the stored study is reused, not rerun
    assert again.details["trials"] == 8 and (again.kp, again.ki) == (a.kp, a.ki)


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0.5, 1.1), b=st.floats(0.01, 1.0), tau=st.floats(0.5, 20))
def test_fuzz_design_is_stable_or_refused(a, b, tau):
    try:
        d = pole_placement_pi(model(a, b), tau)
    except ValueError as exc:
        assert "tau" in str(exc)
        return
    assert max(abs(p) for p in d.poles) < 1 and d.kp >= 0 and d.ki >= 0


@pytest.mark.slow
def test_sysid_study_smoke_and_rerun(tmp_path):
    import importlib.util
    import json
    import sys
    import time
    from pathlib import Path

    path = Path(__file__).parents[2] / "studies" / "llm_entropy_sysid.py"
    spec = importlib.util.spec_from_file_location("llm_entropy_sysid", path)
    study = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = study  # dataclasses look their module up there
    spec.loader.exec_module(study)
    out = tmp_path / "smoke"
    assert study.main(["--smoke", "--out_dir", str(out)]) == 0
    text = (out / "results.md").read_text()
    assert "Prediction error on held-out runs" in text and "| sumpair | dual-fixed |" in text
    model = json.loads((out / "model_sumpair_arx.json").read_text())
    assert set(model["extra"]["kalman"]) == {"a", "b", "c", "q", "r"}
    t0 = time.perf_counter()
    assert study.main(["--smoke", "--out_dir", str(out)]) == 0  # every run reused
    assert time.perf_counter() - t0 < 15
