"""Identification of NMES patient models and RISE tuning (controllers.nmes_ident,
controllers.rise_tuning)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from controllers.nmes_ident import (
    InputFeatures,
    MLPPatientModel,
    PatientModel,
    SessionLog,
    SINDyPatientModel,
    past_session,
    prediction_errors,
)
from controllers.rise_tuning import (
    RISEGains,
    TuningSettings,
    closed_loop_cost,
    hand_tune_rise,
    tune_rise,
    tuning_references,
)
from ctrlbench.registry import make_plant

DT = 0.05
FEATS = InputFeatures(n_lags=2, taus=(0.5,), dt=DT)


@dataclass
class KnownModel(PatientModel):
    """A stable second-order shank driven by the filtered pulse (exact ``delta``)."""

    w2: float = 9.0
    damp: float = 2.0
    gain: float = 6.0

    def delta(self, x, h):
        theta, v = x[:, 0], x[:, 1]  # v = omega / 5
        acc = -self.w2 * theta - self.damp * 5.0 * v + self.gain * h[:, -1]
        return np.column_stack([DT * 5.0 * v, DT * acc / 5.0])


def _log(model: PatientModel, seed: int, n: int = 400, noise: float = 0.0) -> SessionLog:
    rng = np.random.default_rng(seed)
    pulse = np.repeat(rng.uniform(0, 300, n // 20 + 1), 20)[:n]
    sim = model.simulator()
    sim.reset((0.0, 0.0))
    th, om = [0.0], [0.0]
    for u in pulse:
        th.append(float(sim.step(u)[0]))
        om.append(float(sim.omega[0]))
    t, w = np.asarray(th), np.asarray(om)
    return SessionLog(DT, pulse, t + noise * rng.standard_normal(n + 1),
                      w + 10 * noise * rng.standard_normal(n + 1), t, w, np.ones(n + 1), 0, seed)


def test_features_hold_the_lags_and_filter():
    h = FEATS.sequence(np.array([500.0, 250.0, 0.0]))
    assert h.shape == (3, 3)
    np.testing.assert_allclose(h[:, 0], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(h[:, 1], [0.0, 1.0, 0.5])
    z1 = 0.1 * 1.0
    z2 = z1 + 0.1 * (0.5 - z1)
    np.testing.assert_allclose(h[:, 2], [z1, z2, z2 + 0.1 * (0.0 - z2)])


def test_simulator_is_batched_and_resets():
    sim = KnownModel(features=FEATS).simulator(3)
    assert np.all(sim.reset((0.1, 0.0)) == 0.1)
    a = sim.step(np.array([0.0, 100.0, 400.0]))
    b = sim.step(np.array([0.0, 100.0, 400.0]))
    assert a.shape == (3,) and b[2] > b[1] > b[0]


@pytest.mark.slow
def test_sindy_recovers_a_known_system():
    true = KnownModel(features=FEATS)
    model = SINDyPatientModel(features=FEATS, degree=1, threshold=1e-4).fit([_log(true, 1)])
    err = prediction_errors(model, _log(true, 2), horizon=100)
    assert err["open_loop"] < 0.01 and err["one_step"] < 1e-3
    assert err["hold_open_loop"] > 1.0


@pytest.mark.slow
def test_mlp_beats_the_hold_predictor_on_a_held_out_patient_session():
    logs = [past_session(4, s, steps=400) for s in (1, 2)]
    held = past_session(4, 3, steps=400)
    err = prediction_errors(MLPPatientModel(epochs=400, hidden=16).fit(logs), held)
    assert err["one_step"] < err["hold_one_step"]
    assert err["open_loop"] < 0.5 * err["hold_open_loop"]


def test_differential_evolution_improves_on_its_start():
    plant = make_plant("ctrlbench/NMESKnee-v0")
    model = KnownModel(features=FEATS)
    s = TuningSettings(steps=60, popsize=3, maxiter=3, seed=1)
    start = RISEGains(ks=1.0, alpha1=0.2, alpha2=0.05, beta=1.0)
    res = tune_rise(model, plant, start, s, theta0=0.0)
    assert res.cost < res.start_cost
    assert res.nfev >= 12 and res.metrics["out"] == 0.0
    again = closed_loop_cost([res.gains], model, plant, s, 0.0)[0][0]
    assert math.isclose(again, res.cost)  # seeded noise: the cost is reproducible


def test_cost_penalizes_leaving_the_range_of_motion():
    plant = make_plant("ctrlbench/NMESKnee-v0")
    model = KnownModel(features=FEATS, gain=60.0)
    s = TuningSettings(steps=60)
    cost, mets = closed_loop_cost([RISEGains(1000.0, 30.0, 10.0, 1000.0),
                                   RISEGains(1.0, 1.0, 0.1, 1.0)], model, plant, s, 0.0)
    assert mets[0]["out"] == 1.0 and cost[0] > s.out_penalty > cost[1]


def test_hand_tuning_follows_its_sequence():
    seq = (("ks", (10.0, 40.0)), ("beta", (0.0, 30.0)))
    gains, trials = hand_tune_rise(steps=40, sequence=seq)
    assert len(trials) == 4
    assert [t["gains"]["ks"] for t in trials[:2]] == [10.0, 40.0]
    assert all(t["gains"]["ks"] == gains.ks for t in trials[2:])


def test_tuning_references_span_the_clinical_range():
    step_ref, sine = tuning_references(160)
    assert step_ref.shape == sine.shape == (160,)
    assert math.isclose(math.degrees(step_ref.max()), 55.0)
    assert 9.9 < math.degrees(sine.min()) and math.degrees(sine.max()) < 60.1


@pytest.mark.parametrize(("make", "text"), [
    (lambda: RISEGains(ks=-1.0, alpha1=1.0, alpha2=1.0, beta=1.0), "ks = -1.0"),
    (lambda: RISEGains(ks=1.0, alpha1=math.nan, alpha2=1.0, beta=1.0), "alpha1 = nan"),
    (lambda: TuningSettings(popsize=1), "popsize = 1"),
    (lambda: TuningSettings(log10_low=(1.0, 0.0, 0.0, 0.0), log10_high=(0.0, 1.0, 1.0, 1.0)),
     "must lie below"),
    (lambda: TuningSettings(log10_low=(0.0,)), "need 4 values"),
    (lambda: InputFeatures(n_lags=0), "n_lags = 0"),
    (lambda: InputFeatures(taus=(1.0, -2.0)), "-2.0"),
    (lambda: MLPPatientModel(hidden=0), "hidden = 0"),
    (lambda: MLPPatientModel(lr=-1.0), "lr = -1.0"),
    (lambda: SINDyPatientModel(degree=7), "degree = 7"),
    (lambda: KnownModel().simulator(0), "n = 0"),
    (lambda: KnownModel().fit([]), "at least one SessionLog"),
    (lambda: past_session(0, 0, steps=0), "steps = 0"),
    (lambda: past_session(0, 0, p_high_us=900.0), "p_high_us = 900.0"),
    (lambda: prediction_errors(KnownModel(features=FEATS), _log(KnownModel(features=FEATS), 0,
                                                                n=40), horizon=41),
     "horizon = 41"),
    (lambda: hand_tune_rise(sequence=(("gamma", (1.0,)),)), "'gamma'"),
])
def test_bad_arguments_raise_naming_the_value(make, text):
    with pytest.raises((ValueError, TypeError), match=None) as info:
        make()
    assert text in str(info.value)


def test_unfitted_models_say_so():
    x, h = np.zeros((1, 2)), np.zeros((1, 5))
    with pytest.raises(RuntimeError, match="not fitted"):
        MLPPatientModel().delta(x, h)
    with pytest.raises(RuntimeError, match="not fitted"):
        SINDyPatientModel().delta(x, h)
