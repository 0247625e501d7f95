"""Entropy tracking (llm_rl.tracking) and the tracking study's smoke run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_rl.filters import SensorConfig
from llm_rl.sysid import ARXModel, RunData, save_model
from llm_rl.tracking import (
    DUAL_FIXED,
    load_identified,
    second_half_error,
    tracking_controls,
    tracking_summary,
)
from tests.fixtures.studies import load_study

A, B, C = 0.9, 0.5, 0.05  # H+ = 0.9 H + 0.5 u + 0.05: steady state H = 0.5 + 5 u


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A first-order ARX model fitted on noiseless data of a known model, saved as the sysid
    study saves it."""
    rng = np.random.default_rng(0)
    u = rng.choice([0.0, 0.2], size=80)
    h = np.empty(80)
    h[0] = 0.6
    for k in range(79):
        h[k + 1] = A * h[k] + B * u[k] + C
    arx = ARXModel(1, 1).fit([RunData(h, u, "synthetic")])
    path = tmp_path_factory.mktemp("sysid") / "model_sumpair_arx.json"
    save_model(path, arx, {"kalman": arx.kalman_options(1e-3), "noise_std": 0.0316})
    return path


def test_second_half_error_by_hand():
    # second half of [9, 9, 0.5, 0.7] around 0.6: (0.1 + 0.1) / 0.6 / 2
    assert second_half_error([9.0, 9.0, 0.5, 0.7], 0.6) == pytest.approx(1 / 6)
    assert second_half_error([0.6], 0.6) == 0.0
    assert second_half_error([0.6, math.nan], 0.6) == math.inf


@given(st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not 0 < x < math.inf))
@settings(max_examples=25, deadline=None)
def test_second_half_error_rejects_a_bad_setpoint(h_star):
    with pytest.raises(ValueError, match="setpoint"):
        second_half_error([0.5, 0.6], h_star)


def test_second_half_error_rejects_an_empty_run():
    with pytest.raises(ValueError, match="no entropy readings"):
        second_half_error([], 0.6)


def test_tracking_summary_filters_with_the_model_and_reads_the_evaluations():
    hist = [{"step": k, "entropy": 0.6 + (0.1 if k % 2 else -0.1), "actuator": 0.02,
             "actuator_name": "entropy_coef", "reward": 0.5, "evaluated": k in (0, 6),
             "pass@1": 0.25 if k < 4 else 0.5, "pass@8": 0.75} for k in range(8)]
    kalman = {"a": 1.0, "b": 0.0, "c": 0.0, "q": 1e-4, "r": 1e-2}  # a smoother random walk
    s = tracking_summary(hist, 0.6, kalman)
    assert s["rel_err_second_half"] == pytest.approx(0.1 / 0.6)
    assert s["rel_err_filtered"] < 0.5 * s["rel_err_second_half"]  # the filter removes noise
    assert s["pass@1_late"] == 0.5 and s["pass@8_late"] == 0.75  # the step-6 evaluation
    assert s["actuator_mean"] == pytest.approx(0.02) and s["steps"] == 8
    assert tracking_summary(hist, 0.6)["rel_err_filtered"] is None
    with pytest.raises(ValueError, match="no metrics rows"):
        tracking_summary([], 0.6)


def test_controls_of_every_kind_from_the_identified_model(model_file):
    model = load_identified(model_file)
    assert model.arx.a_[0] == pytest.approx(A) and model.arx.b_[0] == pytest.approx(B)
    controls = tracking_controls(["open-loop", "hand-pi", "pole", "pole-kf", "nmpc",
                                  "dual-fixed", "aepo"], 0.6, model, taus=(2.0, 0.01),
                                 task="countdown-lite")
    # tau 0.01 puts the third pole at 1 + a - 2 exp(-100) ~ 1.9: left out, the rest stays
    assert list(controls) == ["open-loop", "hand-pi", "pole-tau2", "pole-tau2-kf", "nmpc",
                              "dual-fixed", "aepo"]
    assert controls["nmpc"][0].options.u_high == 0.3  # countdown-lite's preset
    pole, raw = controls["pole-tau2"]
    p = math.exp(-1 / 2)
    p3 = 1 + A - 2 * p
    assert pole.options.kp == pytest.approx((p * p + 2 * p * p3 - A) / B)
    assert raw == SensorConfig()
    assert controls["pole-tau2-kf"][1].filter == "kalman"
    assert controls["pole-tau2-kf"][1].a == pytest.approx(A)
    assert controls["dual-fixed"][0].options.kp_log == DUAL_FIXED["kp_log"]
    assert controls["aepo"][0].actuator == "temperature"


def test_bad_controller_names_and_missing_models_are_clear_errors(tmp_path, model_file):
    with pytest.raises(KeyError, match="unknown controller 'pidd'; valid: open-loop"):
        tracking_controls(["pidd"], 0.6)
    with pytest.raises(ValueError, match="pole, optuna are designed on an identified model"):
        tracking_controls(["pole", "optuna"], 0.6)
    with pytest.raises(ValueError, match="nmpc has settings for tasks sumpair, countdown-lite; "
                                         "got task = 'add-n'"):
        tracking_controls(["nmpc"], 0.6, task="add-n")
    with pytest.raises(FileNotFoundError, match=r"run studies/llm_entropy_sysid\.py"):
        load_identified(tmp_path / "model_x_arx.json")
    bad = tmp_path / "model_bad_arx.json"
    bad.write_text(json.dumps({**json.loads(model_file.read_text()), "extra": {}}))
    with pytest.raises(ValueError, match="not a first-order ARX model with Kalman settings"):
        load_identified(bad)


def test_study_flags_name_bad_values():
    study = load_study("llm_entropy_tracking")
    with pytest.raises(KeyError, match="unknown controller 'mpc'"):
        study.parse_args(["--controllers", "hand-pi,mpc"])
    with pytest.raises(ValueError, match=r"set-point 7\.0 is out of range"):
        study.parse_args(["--setpoints", "0.6,7"])
    args = study.parse_args(["--smoke"])
    assert args.steps == 4 and args.setpoints == "0.6"


@pytest.mark.slow  # ~10 s: 8 tiny runs
def test_smoke_study_runs_every_controller_and_reports(tmp_path, model_file):
    study = load_study("llm_entropy_tracking")
    out = tmp_path / "out"
    assert study.main(["--smoke", "--sysid_dir", str(model_file.parent), "--out_dir",
                       str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    names = [r["controller"] for r in res["rows"]]
    assert names == ["open-loop", "hand-pi", "pole-tau3", "pole-tau3-kf", "optuna", "nmpc",
                     "dual-fixed", "aepo"]
    assert all(r["rel_err_filtered"] is not None for r in res["rows"])
    text = (out / "results.md").read_text()
    assert "Best controller (raw error)" in text and "| sumpair | 0.6 | optuna |" in text
    for fig in ("tracking.png", "passk_vs_setpoint.png"):
        assert (out / fig).is_file()
