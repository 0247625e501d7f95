"""The entropy sensor filters: hand-derived values, clear errors, wiring into the trainer."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlbench.options import OptionError
from llm_rl.config import TrainConfig, config_from_dict, config_hash
from llm_rl.filters import (
    FILTERS,
    SENSOR_FILTERS,
    EMAFilter,
    KalmanFilter,
    SensorConfig,
    make_filter,
    steady_state_gain,
)

# ---------------------------------------------------------------- hand-derived values


def test_no_filter_passes_the_reading_through():
    f = make_filter(SensorConfig())
    assert [f.update(y) for y in (0.7, 0.1, 2.5)] == [0.7, 0.1, 2.5]


def test_ema_of_a_step():
    """alpha = 0.5 on 0, 0, 1, 1, 1: the estimate closes half the remaining gap per reading,
    1 - 0.5^n after n readings of the step."""
    f = make_filter(SensorConfig(filter="ema", alpha=0.5))
    assert isinstance(f, EMAFilter)
    out = [f.update(y) for y in (0.0, 0.0, 1.0, 1.0, 1.0)]
    assert out == [0.0, 0.0, 0.5, 0.75, 0.875]


def test_ema_starts_at_the_first_reading():
    f = make_filter(SensorConfig(filter="ema", alpha=0.1))
    assert f.update(1.3) == 1.3
    assert f.update(0.3) == pytest.approx(0.1 * 0.3 + 0.9 * 1.3)


@pytest.mark.parametrize(("a", "q", "r", "gain"), [
    # a = 1, q = r: P^2 - P - 1 = 0, P = golden ratio, K = P / (P + 1) = 1 / golden ratio.
    (1.0, 1.0, 1.0, (math.sqrt(5) - 1) / 2),
    # a = 0.5, q = 0.75, r = 1: P^2 + (0.75 - 0.75) P - 0.75 = 0, P = sqrt(0.75).
    (0.5, 0.75, 1.0, math.sqrt(0.75) / (math.sqrt(0.75) + 1)),
    # a = 1, q = 0.02, r = 0.01: P^2 - 0.02 P - 2e-4 = 0, P = 0.01 (1 + sqrt 3).
    (1.0, 0.02, 0.01, (1 + math.sqrt(3)) / (2 + math.sqrt(3))),
])
def test_kalman_gain_converges_to_the_riccati_steady_state(a, q, r, gain):
    assert steady_state_gain(a, q, r) == pytest.approx(gain, rel=1e-12)
    f = make_filter(SensorConfig(filter="kalman", a=a, q=q, r=r))
    assert isinstance(f, KalmanFilter)
    for y in [0.5, 0.9, 0.2, 0.7] * 15:  # the gain does not depend on the readings
        f.update(y, actuator=0.3)
    assert f.gain == pytest.approx(gain, rel=1e-9)
    # the posterior variance is (1 - K) P-, with P- = K r / (1 - K)
    assert f.variance == pytest.approx(gain * r, rel=1e-9)


def test_kalman_first_reading_and_first_correction():
    """Diffuse start: estimate = y0, P0 = r; then P- = a^2 r + q, K = P- / (P- + r)."""
    f = make_filter(SensorConfig(filter="kalman", a=0.8, b=0.5, c=0.1, q=0.01, r=0.04))
    assert f.update(1.0, actuator=0.2) == 1.0
    assert (f.gain, f.variance) == (1.0, 0.04)
    prior = 0.8 * 1.0 + 0.5 * 0.2 + 0.1  # 1.0, driven by the first update's actuator
    p_prior = 0.64 * 0.04 + 0.01
    k = p_prior / (p_prior + 0.04)
    assert f.update(0.6, actuator=0.0) == pytest.approx(prior + k * (0.6 - prior))
    assert f.gain == pytest.approx(k)


def test_kalman_follows_noise_free_readings_of_its_model_exactly():
    a, b, c = 0.9, 0.4, 0.02
    f = make_filter(SensorConfig(filter="kalman", a=a, b=b, c=c, q=0.001, r=0.05))
    h, us = 1.2, [0.0, 0.5, 0.1, 0.9, 0.0, 0.3]
    for u in us:
        assert f.update(h, actuator=u) == pytest.approx(h, abs=1e-12)
        h = a * h + b * u + c


@pytest.mark.parametrize("name", FILTERS)
def test_state_dict_resumes_the_filter_exactly(name):
    cfg = {"none": SensorConfig(), "ema": SensorConfig(filter="ema", alpha=0.4),
           "kalman": SensorConfig(filter="kalman", a=0.9, b=0.3, q=0.002)}[name]
    readings = [(0.9, 0.1), (0.7, 0.0), (0.8, 0.2), (0.4, 0.5), (0.6, 0.1)]
    whole = make_filter(cfg)
    expected = [whole.update(y, u) for y, u in readings]
    first = make_filter(cfg)
    for y, u in readings[:2]:
        first.update(y, u)
    state = json.loads(json.dumps(first.state_dict()))  # plain data
    second = make_filter(cfg)
    second.load_state_dict(state)
    assert [second.update(y, u) for y, u in readings[2:]] == expected[2:]


def test_registry_holds_every_filter_name():
    assert tuple(SENSOR_FILTERS.names()) == tuple(sorted(FILTERS))


# ---------------------------------------------------------------- clear errors


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True),
                 st.just(float("nan"))))
def test_bad_alpha_names_field_value_and_range(alpha):
    with pytest.raises(OptionError, match=r"sensor\.alpha = .* valid: (finite )?> 0 and <= 1"):
        SensorConfig(filter="ema", alpha=alpha)


@settings(max_examples=40, deadline=None)
@given(field=st.sampled_from(["q", "r"]),
       value=st.one_of(st.floats(max_value=-1e-9), st.just(float("inf")), st.just(float("nan"))))
def test_bad_kalman_settings_name_field_value_and_range(field, value):
    with pytest.raises(OptionError, match=rf"sensor\.{field} = .* valid: "):
        SensorConfig(filter="kalman", **{field: value})


def test_any_finite_model_is_a_kalman_model():
    assert SensorConfig(filter="kalman", a=-0.5, b=-2.0, c=3.0).a == -0.5
    for field in ("a", "b", "c"):
        with pytest.raises(OptionError, match=rf"sensor\.{field} = inf .*valid: finite"):
            SensorConfig(filter="kalman", **{field: float("inf")})


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=12).filter(lambda s: s not in FILTERS))
def test_unknown_filter_lists_the_choices(name):
    with pytest.raises(OptionError, match=r"sensor\.filter = .*none.*ema.*kalman"):
        SensorConfig(filter=name)


def test_settings_without_effect_are_rejected():
    with pytest.raises(OptionError, match=r"sensor\.alpha = 0\.5 has no effect with "
                                          r"sensor\.filter = 'none' \(it is read by: ema\)"):
        SensorConfig(alpha=0.5)
    with pytest.raises(OptionError, match=r"sensor\.q = 0\.5 has no effect .*'ema'.*kalman"):
        SensorConfig(filter="ema", q=0.5)


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(True), st.none(),
                 st.text(max_size=3)))
def test_non_finite_readings_are_refused(value):
    for name in FILTERS:
        f = make_filter(SensorConfig(filter=name))
        with pytest.raises(ValueError, match="the reading must be a finite number"):
            f.update(value)
        with pytest.raises(ValueError, match="the actuator must be a finite number"):
            f.update(0.5, actuator=value)


# ---------------------------------------------------------------- the trainer's sensor


def test_default_sensor_leaves_the_config_hash_unchanged():
    """Runs configured before the sensor existed keep their hash (and cached study results)."""
    cfg = TrainConfig(steps=7)
    data = dataclasses.asdict(cfg)
    del data["sensor"]
    import hashlib

    old = hashlib.sha256(json.dumps([data], sort_keys=True).encode()).hexdigest()[:12]
    assert config_hash(cfg) == old
    assert config_hash(dataclasses.replace(cfg, sensor=SensorConfig(filter="ema"))) != old
    # a config.json written before the sensor existed still loads (default: no filter)
    assert config_from_dict(data) == cfg


def _rows(path):
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"}
            for x in (path / "metrics.jsonl").read_text().splitlines() if x]


def test_trainer_filters_the_controller_reading_and_resumes_the_filter(tiny, tmp_path):
    """``--sensor.*`` flags reach the trainer; the controller reads the filtered entropy; the
    metrics log both; a resume from a checkpoint filters exactly as the uninterrupted run."""
    from llm_rl.cli import main
    from llm_rl.trainer import GRPOTrainer

    flags = ["--sensor.filter", "kalman", "--sensor.a", "0.9", "--sensor.b", "0.5",
             "--sensor.c", "0.1", "--sensor.q", "0.01", "--sensor.r", "0.04",
             "--control.name", "pid", "--control.setpoint", "2.0"]
    assert main(tiny(tmp_path / "full", *flags)) == 0
    full = _rows(tmp_path / "full")
    cfg = config_from_dict(json.loads((tmp_path / "full" / "config.json").read_text()))
    assert cfg.sensor == SensorConfig(filter="kalman", a=0.9, b=0.5, c=0.1, q=0.01, r=0.04)
    # the logged filtered values are the filter's output on the logged raw readings
    ref = make_filter(cfg.sensor)
    assert [r["entropy_filtered"] for r in full] == pytest.approx(
        [ref.update(r["entropy"], r["actuator"]) for r in full], rel=1e-12)
    assert full[1]["entropy_filtered"] != full[1]["entropy"]

    part = GRPOTrainer(dataclasses.replace(cfg, out_dir=str(tmp_path / "part")))
    part.train(steps=2)  # checkpoint at step 2
    part.train_step()  # one step past the checkpoint moves the filter, then the run dies
    assert part.controller.last_entropy == part.sensor.estimate  # the controller's reading
    resumed = GRPOTrainer(dataclasses.replace(cfg, out_dir=str(tmp_path / "part")), resume=True)
    resumed.train()
    assert _rows(tmp_path / "part") == full


def test_without_a_filter_the_filtered_entropy_is_the_raw_one(tiny, tmp_path):
    from llm_rl.cli import main

    assert main(tiny(tmp_path / "raw", "--steps", "2")) == 0
    rows = _rows(tmp_path / "raw")
    assert [r["entropy_filtered"] for r in rows] == [r["entropy"] for r in rows]
