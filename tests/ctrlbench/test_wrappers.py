"""Wrappers keep signal names and do what they say."""

import numpy as np
import pytest

import ctrlbench
from ctrlbench.plant import signals_of
from ctrlbench.wrappers import ActuatorDelay, MeasurementNoise, ReferenceInObs, RescaleAction

MSD = "ctrlbench/MassSpringDamper-v0"


def test_reference_in_obs_appends_a_tracking_signal():
    env = ReferenceInObs(
        ctrlbench.make_plant(MSD), lambda t: [0.5 * t], tracks=["x"], names=["x_ramp"]
    )
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and obs[-1] == 0.0
    obs, *_ = env.step(np.zeros(1))
    assert obs[-1] == pytest.approx(0.5 * 0.01)
    sig = signals_of(env)[0]
    assert sig[-1].name == "x_ramp" and sig[-1].tracks == "x"
    with pytest.raises(ValueError, match="must be unique"):
        ReferenceInObs(ctrlbench.make_plant(MSD), lambda t: [0.0], tracks=["x"])  # x_ref exists
    with pytest.raises(KeyError, match="valid signals"):
        ReferenceInObs(ctrlbench.make_plant(MSD), lambda t: [0.0], tracks=["theta"])


def test_measurement_noise_is_seeded_and_spares_references():
    def run(seed):
        env = MeasurementNoise(ctrlbench.make_plant(MSD), std=0.1)
        obs, _ = env.reset(seed=seed)
        return obs

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:2], c[:2])
    clean, _ = ctrlbench.make_plant(MSD).reset(seed=1)
    assert a[2] == clean[2] and np.any(a[:2] != clean[:2])
    # later unseeded resets continue the stream: two identical runs stay identical
    def two_episodes():
        env = MeasurementNoise(ctrlbench.make_plant(MSD), std=0.1)
        first, _ = env.reset(seed=5)
        second, _ = env.reset()
        return np.concatenate([first, second])

    np.testing.assert_array_equal(two_episodes(), two_episodes())
    with pytest.raises(ValueError, match="noise std"):
        MeasurementNoise(ctrlbench.make_plant(MSD), std=-1.0)


def test_actuator_delay_shifts_actions():
    plain = ctrlbench.make_plant(MSD)
    delayed = ActuatorDelay(ctrlbench.make_plant(MSD), delay=3)
    plain.reset(seed=0)
    delayed.reset(seed=0)
    for a in [0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0, 5.0]:
        obs_plain, *_ = plain.step(np.array([a]))
        obs_delayed, *_ = delayed.step(np.array([5.0]))
    np.testing.assert_array_equal(obs_plain, obs_delayed)
    assert obs_plain[0] != 0.0
    with pytest.raises(ValueError, match="non-finite"):
        delayed.step(np.array([np.nan]))
    with pytest.raises(ValueError, match=r"initial action must be finite with shape \(1,\)"):
        ActuatorDelay(ctrlbench.make_plant(MSD), delay=2, initial=[0.0, 1.0])


def test_rescale_action_maps_unit_box_to_plant_bounds():
    env = RescaleAction(ctrlbench.make_plant(MSD))
    assert env.action(np.array([1.0]))[0] == 10.0 and env.action(np.array([0.0]))[0] == 0.0
    assert signals_of(env)[1][0].name == "F_norm"
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.array([1.5]))
