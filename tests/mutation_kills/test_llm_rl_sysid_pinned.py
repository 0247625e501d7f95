"""llm_rl.sysid pinned (kills mutmut's survivors): the input checks at their boundaries and their
messages, ARX steps, fits, residual variance and simulations against hand-written formulas
(second order, no intercept, one degree of freedom), the equilibrium input, the prediction
errors against a written-out evaluation (windows, persistence, constant predictor), the noise
estimate on a hand-computed series, SINDy's fit against pysindy called directly and its
evaluation and equation by hand, the model files (their exact JSON, their checks)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

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


def _arx(a, b, c=0.0, q=0.0, intercept=True):
    m = ARXModel(len(a), len(b), intercept)
    m.a_, m.b_, m.c_, m.q_, m.n_samples_ = np.array(a, float), np.array(b, float), c, q, 10
    return m


def _series(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.3, 0.9, n), rng.uniform(0.0, 0.5, n)


# -- runs ----------------------------------------------------------------------------------------
def test_run_data_names_and_float_arrays():
    rows = [{"step": k, "entropy": 1, "actuator": k % 2} for k in range(3)]
    assert run_data(rows).name == "" and run_data(rows, "r7").name == "r7"
    r = RunData([1, 2, 3], [0, 1, 0])
    assert isinstance(r.entropy, np.ndarray) and r.entropy.dtype == np.float64
    assert isinstance(r.actuator, np.ndarray) and r.actuator.dtype == np.float64


@pytest.mark.parametrize(("h", "u", "message"), [
    (np.ones((2, 2)), np.ones((2, 2)), r"^run 'r': entropy and actuator must be 1-D of equal "
                                       r"length, got shapes \(2, 2\) and \(2, 2\)$"),
    (np.ones(3), np.array([0.0, 0.1, np.inf]), r"^run 'r': actuator is not finite at index 2 "),
])
def test_run_data_refusals(h, u, message):
    with pytest.raises(ValueError, match=message):
        RunData(h, u, "r")


def test_load_runs_from_files_and_folders(tmp_path):
    rows = [{"step": k, "entropy": 0.5, "actuator": 0.1} for k in range(4)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (from_dir,) = load_runs([tmp_path])
    (from_file,) = load_runs([tmp_path / "metrics.jsonl"])
    assert from_dir.name == from_file.name == str(tmp_path) and len(from_file) == 4
    with pytest.raises(FileNotFoundError, match=r"^no metrics log at .*nowhere"):
        load_runs([tmp_path / "nowhere"])
    with pytest.raises(ValueError, match=r"^no runs given$"):
        load_runs([])


def test_truncate_boundaries():
    r = RunData(np.array([0.2, 0.5, 0.7, 0.4]), np.zeros(4), "keep")
    (same,) = truncate([r], 0.7)                 # 0.7 is not above 0.7: nothing cut
    assert len(same) == 4 and same.name == "keep"
    (two,) = truncate([r], 0.6)                  # cut before 0.7: 2 steps left, kept
    assert list(two.entropy) == [0.2, 0.5] and two.name == "keep"
    assert truncate([r], 0.3) == []              # 1 step left: dropped
    with pytest.raises(ValueError, match=r"^h_max = 0 is not valid; valid: finite > 0$"):
        truncate([r], 0)


def test_check_runs_messages():
    r = RunData(*_series(5))
    with pytest.raises(TypeError, match=r"^pass a list of runs, e\.g\. \[run\]$"):
        ARXModel().fit(r)
    with pytest.raises(ValueError, match=r"^no runs given: need at least one RunData$"):
        ARXModel().fit([])


# -- ARX -----------------------------------------------------------------------------------------
def test_arx_orders_up_to_20():
    assert ARXModel(20, 20).lag == 20


def test_arx_step_and_simulation_by_hand():
    a1, a2, b1, b2, c = 0.5, 0.2, 0.3, -0.1, 0.05
    m = _arx([a1, a2], [b1, b2], c)
    # H_{k+1} = a1 H_k + a2 H_{k-1} + b1 u_k + b2 u_{k-1} + c, histories oldest first
    assert m.step([0.4, 0.9], [0.2, 0.7]) == pytest.approx(a1 * 0.9 + a2 * 0.4 + b1 * 0.7
                                                           + b2 * 0.2 + c, abs=1e-15)
    u = [0.1, 0.4, 0.0, 0.3]
    h = [0.6, 0.8]
    for k in range(1, 4):
        h.append(a1 * h[k] + a2 * h[k - 1] + b1 * u[k] + b2 * u[k - 1] + c)
    np.testing.assert_allclose(m.simulate([0.6, 0.8], u), h, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match=r"^h_init needs 2 values, got 1$"):
        m.simulate([0.6], u)
    # first order: u_k drives H_{k+1} (not u_{k+1})
    m1 = _arx([0.9], [0.5], 0.01)
    want = [0.2]
    for uk in u:
        want.append(0.9 * want[-1] + 0.5 * uk + 0.01)
    np.testing.assert_allclose(m1.simulate([0.2], u), want, rtol=0, atol=1e-15)


def test_arx_equilibrium_input():
    m = _arx([0.5, 0.2], [0.1, 0.3], 0.05)
    # (h (1 - sum a) - c) / sum b = (0.6 * 0.3 - 0.05) / 0.4
    assert m.equilibrium_input(0.6) == pytest.approx(0.325, abs=1e-15)
    np.testing.assert_allclose(m.simulate([0.6, 0.6], [0.325] * 5), 0.6, rtol=0, atol=1e-14)


def test_arx_fit_without_intercept_is_exact():
    h, u = np.empty(30), _series(30)[1]
    h[0] = 0.7
    for k in range(29):
        h[k + 1] = 0.8 * h[k] + 0.3 * u[k]
    m = ARXModel(1, 1, intercept=False).fit([RunData(h, u)])
    assert m.a_ == pytest.approx([0.8], abs=1e-12) and m.b_ == pytest.approx([0.3], abs=1e-12)
    assert m.c_ == 0.0 and m.q_ < 1e-25 and m.n_samples_ == 29


def test_arx_residual_variance_with_one_degree_of_freedom():
    # 5 steps: 4 rows of (H_k, u_k, 1), 3 parameters, SSR / (4 - 3)
    h, u = _series(5, seed=3)
    m = ARXModel().fit([RunData(h, u)])
    X = np.column_stack([h[:4], u[:4], np.ones(4)])
    theta = np.linalg.solve(X.T @ X, X.T @ h[1:])
    resid = h[1:] - X @ theta
    assert (m.a_[0], m.b_[0], m.c_) == pytest.approx(tuple(theta), abs=1e-10)
    assert m.q_ == pytest.approx(resid @ resid / 1, rel=1e-8)
    # 10 steps in two runs: 8 rows, SSR / 5
    runs = [RunData(*_series(5, seed=4)), RunData(*_series(5, seed=5))]
    m2 = ARXModel().fit(runs)
    X = np.vstack([np.column_stack([r.entropy[:4], r.actuator[:4], np.ones(4)]) for r in runs])
    y = np.concatenate([r.entropy[1:] for r in runs])
    theta = np.linalg.lstsq(X, y, rcond=None)[0]
    assert m2.q_ == pytest.approx(float((y - X @ theta) @ (y - X @ theta)) / 5, rel=1e-10)


def test_kalman_options_needs_first_order_and_a_valid_r():
    for m in (_arx([0.9, 0.1], [0.2]), _arx([0.9], [0.2, 0.1])):
        with pytest.raises(ValueError, match=r"first-order model \(na = nb = 1\)"):
            m.kalman_options(1e-4)
    m = _arx([0.9], [0.2], 0.01, q=3e-4)
    assert m.kalman_options(0.0) == {"a": 0.9, "b": 0.2, "c": 0.01, "q": 3e-4, "r": 0.0}
    for r in (-1e-4, math.nan):
        with pytest.raises(ValueError, match=rf"^noise variance r = {r!r} must be finite and "
                                             r">= 0$"):
            m.kalman_options(r)


def test_unfitted_models_say_so():
    with pytest.raises(RuntimeError, match=r"^ARXModel is not fitted: call fit\(runs\) or "
                                           r"load_model\(path\)$"):
        ARXModel().equilibrium_input(0.5)
    with pytest.raises(RuntimeError, match=r"^SINDyModel is not fitted: call fit\(runs\) or "
                                           r"load_model\(path\)$"):
        SINDyModel().step(np.ones(1), np.ones(1))


# -- prediction errors ---------------------------------------------------------------------------
def _errors_by_hand(m, runs, horizon, stride):
    """The documented evaluation of a first-order model, written out."""
    one, pers, free, const = [], [], [], []
    for r in runs:
        h, u = list(r.entropy), list(r.actuator)
        n = len(h)
        if n <= 1:
            continue
        for k in range(1, n):
            pred = m.a_[0] * h[k - 1] + m.b_[0] * u[k - 1] + m.c_
            one.append(h[k] - pred)
            pers.append(h[k] - h[k - 1])
        for s in range(0, n - horizon, stride):
            x = h[s]
            for j in range(horizon):
                x = m.a_[0] * x + m.b_[0] * u[s + j] + m.c_
                free.append(h[s + j + 1] - x)
                const.append(h[s + j + 1] - h[s])
    rms = [math.sqrt(sum(e * e for e in part) / len(part)) for part in (one, pers, free, const)]
    return dict(zip(("one_step", "persistence", "free_run", "constant"), rms, strict=True))


def test_prediction_errors_written_out():
    m = _arx([0.7], [0.4], 0.1)
    runs = [RunData(*_series(1, seed=1)), RunData(*_series(23, seed=2)),
            RunData(*_series(9, seed=3))]
    got = prediction_errors(m, runs, horizon=4, stride=3)
    want = _errors_by_hand(m, runs, 4, 3)
    # windows start at 0, 3, .., 18 in the 23-step run and 0, 3 in the 9-step run
    assert got["windows"] == 9.0
    assert {k: got[k] for k in want} == pytest.approx(want, rel=1e-12)
    one = prediction_errors(m, runs, horizon=1, stride=1)
    assert one["windows"] == 22 + 8 and one == pytest.approx(
        {**_errors_by_hand(m, runs, 1, 1), "windows": 30.0}, rel=1e-12)


def test_prediction_errors_defaults_and_second_order_windows():
    m = _arx([0.7], [0.4], 0.1)
    runs = [RunData(*_series(75, seed=4))]
    got = prediction_errors(m, runs)                   # horizon 50, stride 10: s = 0, 10, 20
    assert got["windows"] == 3.0
    assert got == pytest.approx({**_errors_by_hand(m, runs, 50, 10), "windows": 3.0}, rel=1e-12)
    # lag 2: windows start at s = 1, 1 + stride, ..; the model is fed H_{s-1}, H_s
    m2 = _arx([0.5, 0.2], [0.3, 0.1], 0.05)
    h, u = _series(12, seed=5)
    got2 = prediction_errors(m2, [RunData(h, u)], horizon=3, stride=4)
    free, const = [], []
    for s in (1, 5):
        hs = [h[s - 1], h[s]]
        for j in range(3):
            k = s + j
            hs.append(0.5 * hs[-1] + 0.2 * hs[-2] + 0.3 * u[k] + 0.1 * u[k - 1] + 0.05)
            free.append(h[k + 1] - hs[-1])
            const.append(h[k + 1] - h[s])
    assert got2["windows"] == 2.0
    assert got2["free_run"] == pytest.approx(math.sqrt(np.mean(np.square(free))), rel=1e-12)
    assert got2["constant"] == pytest.approx(math.sqrt(np.mean(np.square(const))), rel=1e-12)
    assert got2["persistence"] == pytest.approx(math.sqrt(np.mean(np.square(h[2:] - h[1:-1]))),
                                                rel=1e-12)


@pytest.mark.parametrize(("kw", "message"), [
    ({"horizon": 2.5}, r"^horizon = 2\.5 is not valid; valid: an integer >= 1$"),
    ({"stride": 0}, r"^stride = 0 is not valid; valid: an integer >= 1$"),
    ({"stride": 1.5}, r"^stride = 1\.5 is not valid"),
    ({"stride": True}, r"^stride = True is not valid"),
])
def test_prediction_errors_refusals(kw, message):
    with pytest.raises(ValueError, match=message):
        prediction_errors(_arx([0.7], [0.4]), [RunData(*_series(30))], **kw)


# -- noise estimate ------------------------------------------------------------------------------
def test_noise_estimate_by_hand():
    # window 3: residuals (2, -2, 2) from (0, 3, 0, 3, 0) and (2) from (1, 4, 1) (a run of exactly
    # `window` steps counts); their std (ddof 1) is 2, over sqrt(1 - 1/3): sqrt(6)
    runs = [RunData([0.0, 3.0, 0.0, 3.0, 0.0], np.zeros(5)), RunData([1.0, 4.0, 1.0], np.zeros(3))]
    assert noise_estimate(runs, window=3) == pytest.approx(math.sqrt(6), rel=1e-14)
    # the default window 9 on 10 steps: two residuals, about the means of h[0:9] and h[1:10];
    # 8 steps are too short for it
    h = np.array([0.0, 1.0, 0.0, 2.0, 9.0, 0.0, 1.0, 0.0, 5.0, 4.0])
    res = [h[4] - h[:9].mean(), h[5] - h[1:].mean()]
    want = np.std(res, ddof=1) / math.sqrt(1 - 1 / 9)
    assert noise_estimate([RunData(h, np.zeros(10))]) == pytest.approx(want, rel=1e-14)
    with pytest.raises(ValueError, match=r"every run is too short"):
        noise_estimate([RunData(h[:8], np.zeros(8))])


@pytest.mark.parametrize("window", [1, 2, 3.0, True])
def test_noise_estimate_window_must_be_an_odd_integer_from_3(window):
    with pytest.raises(ValueError, match=rf"^window = {window!r} is not valid; valid: an odd "
                                         r"integer >= 3$"):
        noise_estimate([RunData(*_series(20))], window=window)


# -- SINDy ---------------------------------------------------------------------------------------
def test_sindy_settings_and_their_checks():
    s = SINDyModel()
    assert (s.degree, s.threshold, s.alpha) == (2, 0.02, 1e-3)
    assert SINDyModel(degree=1).degree == 1 and SINDyModel(degree=5).degree == 5
    assert SINDyModel(threshold=0, alpha=0).threshold == 0.0
    for bad in (6, 0, 2.5, True):
        with pytest.raises(ValueError, match=rf"^SINDy degree = {bad!r} is not valid"):
            SINDyModel(degree=bad)
    with pytest.raises(ValueError, match=r"^SINDy alpha = -1 is not valid; valid: finite >= 0$"):
        SINDyModel(alpha=-1)
    with pytest.raises(ValueError, match=r"^SINDy threshold = nan is not valid"):
        SINDyModel(threshold=math.nan)


def _pysindy(runs, degree, threshold, alpha):
    import pysindy as ps

    lib = ps.PolynomialLibrary(degree=degree)
    model = ps.DiscreteSINDy(optimizer=ps.STLSQ(threshold=threshold, alpha=alpha),
                             feature_library=lib)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit([r.entropy[:, None] for r in runs], t=1, u=[r.actuator[:, None] for r in runs],
                  feature_names=["H", "u"])
    return np.asarray(model.coefficients()).ravel(), np.asarray(lib.powers_)


def _poly(coef, powers, h, u):
    return sum(c * h ** p[0] * u ** p[1] for c, p in zip(coef, powers, strict=True))


@pytest.mark.slow   # importing pysindy costs ~3 s; studies/mutation.py selects it for sysid
@pytest.mark.parametrize(("degree", "threshold"), [(1, 0.0), (3, 0.01)])
def test_sindy_fit_equals_pysindy_and_its_residual_variance(degree, threshold):
    # a 2-step run (one transition) is used, and with degree 1 it alone can be fitted
    runs = [RunData(*_series(2, seed=6)), RunData(*_series(40, seed=7))]
    s = SINDyModel(degree=degree, threshold=threshold, alpha=0.01).fit(runs)
    coef, powers = _pysindy(runs, degree, threshold, 0.01)
    np.testing.assert_array_equal(s.coefficients_, coef)
    np.testing.assert_array_equal(s.powers_, powers)
    assert len(s.feature_names_) == len(coef) == math.comb(degree + 2, 2)
    resid = np.concatenate([r.entropy[1:] - _poly(coef, powers, r.entropy[:-1], r.actuator[:-1])
                            for r in runs])
    assert s.q_ == pytest.approx(resid @ resid / (resid.size - np.count_nonzero(coef)), rel=1e-10,
                                 abs=0)
    if degree == 1:
        alone = SINDyModel(degree=1, alpha=0.01).fit(runs[:1])
        coef, powers = _pysindy(runs[:1], 1, 0.02, 0.01)
        np.testing.assert_array_equal(alone.coefficients_, coef)
        # one residual, more nonzero terms than samples: SSR / max(1 - nnz, 1) = SSR
        h, u = runs[0].entropy, runs[0].actuator
        assert np.count_nonzero(coef) >= 1
        assert alone.q_ == pytest.approx((h[1] - _poly(coef, powers, h[0], u[0])) ** 2,
                                         rel=1e-10, abs=1e-30)   # ~0: the fit is exact


@pytest.mark.slow   # pysindy's import
def test_sindy_residual_variance_with_one_degree_of_freedom():
    # threshold 0.5 keeps the constant only: its least squares is the mean of the targets
    # (0.6 + 0.55) / 2 = 0.575; residuals +-0.025, SSR / (2 - 1) = 0.00125
    s = SINDyModel(degree=1, threshold=0.5, alpha=0.0).fit([RunData([0.5, 0.6, 0.55],
                                                                     [0.1, 0.0, 0.2])])
    np.testing.assert_allclose(s.coefficients_, [0.575, 0.0, 0.0], rtol=1e-12, atol=0)
    assert s.q_ == pytest.approx(2 * 0.025**2 / 1, rel=1e-10, abs=0)


def test_sindy_step_and_equation_by_hand():
    s = SINDyModel()
    s.coefficients_ = np.array([0.03, 0.9, 0.0, -0.25, 0.5, 1.0])
    s.powers_ = np.array([[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]])
    s.feature_names_ = ["1", "H", "u", "H^2", "H u", "u^2"]
    h, u = 0.7, 0.3
    assert s.step([0.1, h], [0.9, u]) == pytest.approx(0.03 + 0.9 * h - 0.25 * h * h
                                                       + 0.5 * h * u + u * u, abs=1e-15)
    assert s.equation() == "H[k+1] = +0.03 1 +0.9 H -0.25 H^2 +0.5 H u +1 u^2"
    s.coefficients_ = np.zeros(6)
    assert s.equation() == "H[k+1] = 0"
    s.feature_names_ = ["1", "H"]
    with pytest.raises(ValueError, match="zip"):
        s.equation()


# -- model files ---------------------------------------------------------------------------------
def test_arx_file_is_the_documented_json(tmp_path):
    m = _arx([0.5, 0.25], [0.125], 0.0625, q=0.5, intercept=False)
    path = save_model(tmp_path / "m.json", m, {"noise_std": 0.03})
    want = {"kind": "arx", "na": 2, "nb": 1, "intercept": False, "a": [0.5, 0.25],
            "b": [0.125], "c": 0.0625, "q": 0.5, "n_samples": 10, "extra": {"noise_std": 0.03}}
    assert path.read_text() == json.dumps(want, indent=1)
    back = load_model(path)
    assert isinstance(back, ARXModel) and back.intercept is False
    assert back.a_.dtype == back.b_.dtype == np.float64


def test_model_files_are_checked_and_typed(tmp_path):
    arx = {"kind": "arx", "na": 2, "nb": 1, "intercept": True, "a": [1, 0], "b": [1],
           "c": 0, "q": 0, "n_samples": 3}
    m = ARXModel.from_dict(arx)
    assert m.a_.dtype == m.b_.dtype == np.float64
    with pytest.raises(ValueError, match=r"^ARX model file: a has 1 values for na = 2, b has 1 "
                                         r"for nb = 1$"):
        ARXModel.from_dict({**arx, "a": [0.5]})
    sindy = {"kind": "sindy", "degree": 1, "threshold": 0.1, "alpha": 0.5,
             "coefficients": [0, 1, 0], "powers": [[0, 0], [1.0, 0], [0, 1]],
             "feature_names": ["1", "H", "u"], "q": 0.0}
    s = SINDyModel.from_dict(sindy)
    assert s.alpha == 0.5 and s.coefficients_.dtype == np.float64
    assert s.powers_.dtype.kind == "i"
    with pytest.raises(ValueError, match=r"^SINDy model file: powers and coefficients differ in "
                                         r"length$"):
        SINDyModel.from_dict({**sindy, "coefficients": [0, 1]})
