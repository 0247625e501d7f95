"""Identification of entropy dynamics: ARX least squares, SINDy, errors, noise, JSON."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_rl.sysid import (
    ARXModel,
    RunData,
    SINDyModel,
    load_model,
    load_runs,
    noise_estimate,
    prediction_errors,
    run_data,
    save_model,
    truncate,
)


def synthetic(a=(0.9,), b=(0.2,), c=0.03, n=200, runs=3, noise=0.01, seed=0, binary=True):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(runs):
        u = rng.choice([0.0, 0.3], n) if binary else rng.uniform(0.0, 0.6, n)
        h = [0.6] * len(a)
        for k in range(len(a) - 1, n - 1):
            past_h = np.array(h[-len(a):][::-1])
            past_u = u[max(k - len(b) + 1, 0):k + 1][::-1]
            past_u = np.pad(past_u, (0, len(b) - len(past_u)))
            h.append(float(np.dot(a, past_h) + np.dot(b, past_u) + c
                           + noise * rng.standard_normal()))
        out.append(RunData(np.array(h), u, "synthetic"))
    return out


def test_arx_recovers_first_order_coefficients():
    m = ARXModel().fit(synthetic())
    assert m.a_[0] == pytest.approx(0.9, abs=0.02)
    assert m.b_[0] == pytest.approx(0.2, abs=0.01)
    assert m.c_ == pytest.approx(0.03, abs=0.01)
    assert math.sqrt(m.q_) == pytest.approx(0.01, rel=0.15)
    k = m.kalman_options(r=1e-4)
    assert set(k) == {"a", "b", "c", "q", "r"} and k["r"] == 1e-4


def test_arx_recovers_second_order_coefficients():
    m = ARXModel(2, 2).fit(synthetic(a=(0.6, 0.3), b=(0.15, 0.05), c=0.02, n=400,
                                     noise=0.005))
    assert m.a_ == pytest.approx([0.6, 0.3], abs=0.05)
    assert m.b_ == pytest.approx([0.15, 0.05], abs=0.02)
    with pytest.raises(ValueError, match="first-order model"):
        m.kalman_options(1e-4)


def test_sindy_recovers_a_linear_model():
    # a binary input makes u^2 a multiple of u: use a multi-level one to tell them apart
    s = SINDyModel(degree=2, threshold=0.02).fit(synthetic(noise=0.002, binary=False))
    coef = dict(zip(s.feature_names_, s.coefficients_, strict=True))
    assert coef["H"] == pytest.approx(0.9, abs=0.03)
    assert coef["u"] == pytest.approx(0.2, abs=0.02)
    assert coef["1"] == pytest.approx(0.03, abs=0.02)
    assert coef["H^2"] == coef["u^2"] == coef["H u"] == 0  # pruned by the threshold
    assert s.equation().startswith("H[k+1] =")


def test_prediction_errors_beat_naive_predictors_on_the_true_model():
    train, test = synthetic(seed=1), synthetic(seed=2, runs=1)
    e = prediction_errors(ARXModel().fit(train), test, horizon=50)
    assert e["one_step"] < e["persistence"] and e["free_run"] < e["constant"]
    assert e["one_step"] == pytest.approx(0.01, rel=0.2) and e["windows"] == 15


def test_noise_estimate_of_white_noise_about_a_trend():
    rng = np.random.default_rng(0)
    t = np.arange(400)
    runs = [RunData(1.0 - 0.002 * t + 0.03 * rng.standard_normal(400), np.zeros(400))]
    assert noise_estimate(runs) == pytest.approx(0.03, rel=0.1)


def test_save_load_round_trip(tmp_path):
    runs = synthetic(runs=1)
    for m in (ARXModel().fit(runs), SINDyModel().fit(runs)):
        path = save_model(tmp_path / "m.json", m, {"noise_std": 0.03})
        back = load_model(path)
        assert back.to_dict() == m.to_dict()
        assert back.simulate([0.6], runs[0].actuator[:10]) == pytest.approx(
            m.simulate([0.6], runs[0].actuator[:10]))
        assert json.loads(path.read_text())["extra"] == {"noise_std": 0.03}
    (tmp_path / "bad.json").write_text('{"kind": "nn"}')
    with pytest.raises(ValueError, match="unknown model kind 'nn'; valid: arx, sindy"):
        load_model(tmp_path / "bad.json")


def test_logged_rows_and_files(tmp_path):
    rows = [{"step": k, "entropy": 0.5 + 0.01 * k, "actuator": 0.1} for k in range(5)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run,) = load_runs([tmp_path])
    assert len(run) == 5 and run.entropy[-1] == pytest.approx(0.54)
    assert len(truncate([run], 0.525)[0]) == 3


@pytest.mark.parametrize(("call", "message"), [
    (lambda: run_data([], "r0"), "run 'r0' has no metrics rows"),
    (lambda: run_data([{"step": 0, "entropy": 0.5}]), "has no 'actuator'"),
    (lambda: run_data([{"step": 0, "entropy": 0.5, "actuator": 0},
                       {"step": 2, "entropy": 0.5, "actuator": 0}]), "step 2 follows step 0"),
    (lambda: RunData(np.array([0.5, np.nan]), np.zeros(2), "r"),
     "entropy is not finite at index 1"),
    (lambda: RunData(np.array([]), np.array([])), "is empty"),
    (lambda: ARXModel(0, 1), r"ARX order na = 0 is not valid; valid: an integer 1 <= na"),
    (lambda: ARXModel(1, 2.5), "ARX order nb = 2.5"),
    (lambda: SINDyModel(degree=9), "SINDy degree = 9 is not valid"),
    (lambda: SINDyModel(threshold=-1.0), "SINDy threshold = -1.0"),
    (lambda: ARXModel().fit([]), "no runs given"),
    (lambda: ARXModel(3, 1).fit([RunData(np.ones(3), np.zeros(3))]), "too short"),
    (lambda: ARXModel().step(np.ones(1), np.ones(1)), "not fitted"),
    (lambda: prediction_errors(ARXModel().fit(synthetic(runs=1)), synthetic(runs=1),
                               horizon=0), "horizon = 0 is not valid"),
    (lambda: prediction_errors(ARXModel().fit(synthetic(runs=1)), synthetic(runs=1, n=20),
                               horizon=50), "no run is long enough for a 50-step window"),
    (lambda: noise_estimate(synthetic(runs=1), window=4), "window = 4 is not valid"),
    (lambda: truncate(synthetic(runs=1), float("nan")), "h_max = nan"),
])
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises((ValueError, RuntimeError, TypeError), match=message):
        call()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(-5, 5)), min_size=0, max_size=12))
def test_fuzz_run_data_accepts_finite_rows_only(values):
    rows = [{"step": k, "entropy": v, "actuator": 0.1} for k, v in enumerate(values)]
    finite = bool(values) and all(math.isfinite(v) for v in values)
    if finite:
        assert len(run_data(rows)) == len(values)
    else:
        with pytest.raises(ValueError, match=r"no metrics rows|not finite"):
            run_data(rows)


@settings(max_examples=25, deadline=None)
@given(na=st.integers(-3, 25), nb=st.integers(-3, 25))
def test_fuzz_arx_orders(na, nb):
    if 1 <= na <= 20 and 1 <= nb <= 20:
        assert ARXModel(na, nb).lag == max(na, nb)
    else:
        with pytest.raises(ValueError, match="valid: an integer 1 <="):
            ARXModel(na, nb)
