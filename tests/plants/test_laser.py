"""``ctrlbench/LaserPulse-v0`` and its pulse chain (MODELS.md section 4): transform limit,
Parseval through every FFT, batch/single and numpy/torch agreement, hand-checkable values,
dispersion physics, the plant's reset, step, reward, termination and errors, properties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ctrlbench  # noqa: F401  (registers the plants before the family modules are imported)
from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError, EpisodeEndedError
from ctrlbench.registry import make_plant
from plants.laser.env import MAX_DELTA, LaserPulse, laser_reward, pulse_model
from plants.laser.model import (
    COMPRESSOR,
    CONTROL_HIGH,
    CONTROL_LOW,
    LaserParams,
    PulseModel,
    denormalize,
    fwhm,
    normalize,
)
from plants.laser.options import LaserPulseOptions

ID = "ctrlbench/LaserPulse-v0"
LINEAR = -np.asarray(COMPRESSOR)  # stretcher = -compressor: zero net (linear) phase


def _model(b: float = 2.0) -> PulseModel:
    """The shared model of a B-integral (built once per process by the plant module)."""
    return pulse_model(b)


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# -- transform limit -----------------------------------------------------------------------------
def test_zero_net_phase_without_spm_is_the_transform_limit() -> None:
    m0 = _model(0.0)
    pulse = m0.forward(LINEAR)
    assert _rel(pulse.fwhm, m0.tl_fwhm) < 1e-12
    assert _rel(pulse.peak, m0.tl_peak) < 1e-12
    assert abs(float(pulse.peak_ratio) - 1.0) < 1e-12
    assert m0.tl_fwhm == pytest.approx(1.5537, abs=1e-4)  # MODELS.md: "TL 1.554 ps"


def test_spm_breaks_linear_compensation(record_property: Any) -> None:
    m = _model(2.0)
    assert m.tl_fwhm == _model(0.0).tl_fwhm  # the reference does not depend on B
    pulse = m.forward_normalized(m.linear_compensation())
    width = float(pulse.fwhm)
    gap = width / m.tl_fwhm
    print(f"B = 2, stretcher = -compressor: FWHM {width:.4f} ps vs TL {m.tl_fwhm:.4f} ps "
          f"({gap:.3f} x TL), peak ratio {float(pulse.peak_ratio):.4f}")
    record_property("fwhm_linear_ps", width)
    record_property("fwhm_tl_ps", m.tl_fwhm)
    assert width > 1.2 * m.tl_fwhm
    assert width == pytest.approx(1.9825, abs=1e-4)  # the value documented in the model
    assert float(pulse.peak_ratio) == pytest.approx(0.631, abs=1e-3)  # studies/README.md T1


# -- Parseval ----------------------------------------------------------------------------------
@pytest.mark.parametrize("b", [0.0, 2.0])
def test_parseval_through_every_fft(b: float) -> None:
    m = _model(b)
    rng = np.random.default_rng(1)
    u = np.vstack([m.linear_compensation(), rng.random((3, 3))])
    controls = denormalize(u)
    rec: dict[str, Any] = {}
    out = m.output_field(controls, record=rec)
    assert set(rec) == {"stretched", "amplified", "time", "spm", "spectrum_spm", "compressed"}

    def energy(name: str) -> np.ndarray:
        return np.sum(np.abs(rec[name]) ** 2, axis=-1)

    # the stretcher is phase only; gain narrowing leaves the amplified amplitude
    assert np.allclose(np.abs(rec["stretched"]), np.sqrt(m.spectrum), rtol=1e-12, atol=0)
    assert np.allclose(np.abs(rec["amplified"]), m.amplitude, rtol=1e-12, atol=1e-300)
    assert _rel(energy("stretched"), np.full(4, np.sum(m.spectrum))) < 1e-9
    assert _rel(energy("amplified"), np.full(4, m.energy)) < 1e-9
    for before, after in [("amplified", "time"),  # unitary inverse FFT
                          ("time", "spm"),  # SPM: phase only
                          ("spm", "spectrum_spm"),  # unitary FFT
                          ("spectrum_spm", "compressed")]:  # compressor: phase only
        assert _rel(energy(after), energy(before)) < 1e-9, (before, after)
    assert np.array_equal(out, rec["compressed"])
    # SPM's nonlinear phase peaks at exactly B where the intensity peaks
    phase = np.angle(rec["spm"] / rec["time"])
    i_t = np.abs(rec["time"]) ** 2
    at_peak = np.take_along_axis(phase, np.argmax(i_t, axis=-1)[:, None], -1)[:, 0]
    assert np.allclose(np.angle(np.exp(1j * (at_peak - b))), 0.0, atol=1e-9)
    # the zero-padded final inverse FFT: unit energy, sum(I) dt = 1
    pulse = m.forward(controls, keep_intensity=True)
    assert pulse.intensity is not None
    assert pulse.intensity.shape == (4, m.n_time)
    assert np.allclose(np.sum(pulse.intensity, axis=-1) * m.dt, 1.0, rtol=1e-9, atol=0)
    assert np.allclose(np.sum(m.tl_intensity) * m.dt, 1.0, rtol=1e-12, atol=0)


def test_record_does_not_change_the_result() -> None:
    m = _model()
    controls = denormalize(np.array([0.3, 0.6, 0.2]))
    assert np.array_equal(m.output_field(controls, record={}), m.output_field(controls))


# -- batch / single, numpy / torch ----------------------------------------------------------------
def test_batch_equals_one_at_a_time() -> None:
    m = _model()
    u = np.random.default_rng(2).random((16, 3))
    batch = m.forward_normalized(u)
    assert batch.fwhm.shape == batch.peak.shape == batch.peak_ratio.shape == (16,)
    for i, row in enumerate(u):
        one = m.forward_normalized(row)
        assert np.shape(one.fwhm) == ()
        for name in ("fwhm", "peak", "peak_ratio"):
            assert _rel(getattr(batch, name)[i], getattr(one, name)) < 1e-12, (i, name)
    # a leading batch shape of (4, 4) is the same batch
    grid = m.forward_normalized(u.reshape(4, 4, 3))
    assert grid.fwhm.shape == (4, 4)
    assert _rel(grid.fwhm.ravel(), batch.fwhm) < 1e-12


def test_numpy_and_torch_float64_agree() -> None:
    torch = pytest.importorskip("torch")
    m = _model()
    u = np.vstack([m.linear_compensation(), np.random.default_rng(3).random((7, 3))])
    ref = m.forward_normalized(u, keep_intensity=True)
    got = m.forward_normalized(torch.tensor(u, dtype=torch.float64), keep_intensity=True)
    assert isinstance(got.fwhm, torch.Tensor) and got.fwhm.dtype == torch.float64
    for name in ("fwhm", "peak", "peak_ratio"):
        assert _rel(getattr(got, name).numpy(), getattr(ref, name)) < 1e-9, name
    assert got.intensity is not None and ref.intensity is not None
    assert np.max(np.abs(got.intensity.numpy() - ref.intensity)) < 1e-9 * m.tl_peak
    back = normalize(denormalize(torch.tensor(u, dtype=torch.float64))).numpy()
    assert np.allclose(back, u, rtol=0, atol=1e-12)


# -- hand-checkable values ----------------------------------------------------------------------
def test_phase_polynomial_by_hand() -> None:
    # 17 points 0.125 THz apart centred on nu0: w = 2 pi (k / 8 - 1), k = 0..16
    m = PulseModel(LaserParams(nu_min=289.85, nu_max=291.85, nu0=290.85, n_freq=17))
    phi = m.phase(np.array([2.0, 6.0, 24.0]))  # GDD 2, TOD 6, FOD 24: phi = w^2 + w^3 + w^4
    assert phi.shape == (17,)
    assert phi[8] == 0.0  # nu = nu0
    assert phi[16] == pytest.approx((2 * math.pi) ** 2 + (2 * math.pi) ** 3 + (2 * math.pi) ** 4,
                                    rel=1e-12)  # w = 2 pi: 1846.07
    assert phi[16] == pytest.approx(1846.0741, rel=1e-7)
    assert phi[0] == pytest.approx((2 * math.pi) ** 2 - (2 * math.pi) ** 3 + (2 * math.pi) ** 4,
                                   rel=1e-12)
    w = math.pi / 2  # k = 10: nu - nu0 = 0.25 THz
    assert phi[10] == pytest.approx(w**2 + w**3 + w**4, rel=1e-12)
    # each term alone, with the 1/2, 1/6, 1/24 of the Taylor series
    assert m.phase(np.array([1.0, 0.0, 0.0]))[12] == pytest.approx(math.pi**2 / 2, rel=1e-12)
    assert m.phase(np.array([0.0, 1.0, 0.0]))[12] == pytest.approx(math.pi**3 / 6, rel=1e-12)
    assert m.phase(np.array([0.0, 0.0, 1.0]))[12] == pytest.approx(math.pi**4 / 24, rel=1e-12)
    # a batch of settings: one row per setting
    batch = m.phase(np.array([[2.0, 6.0, 24.0], [0.0, 0.0, 0.0]]))
    assert batch.shape == (2, 17)
    assert np.array_equal(batch[0], phi) and not batch[1].any()


def test_normalize_bounds_and_round_trip() -> None:
    low, high = np.asarray(CONTROL_LOW), np.asarray(CONTROL_HIGH)
    assert np.array_equal(denormalize(np.zeros(3)), low)
    assert np.allclose(denormalize(np.ones(3)), high, rtol=1e-15, atol=0)
    assert np.allclose(normalize(low), 0.0, atol=0) and np.allclose(normalize(high), 1.0)
    u = np.random.default_rng(4).random((20, 3))
    assert np.allclose(normalize(denormalize(u)), u, rtol=0, atol=1e-13)
    # compressor matching by hand: (267.422 - 235.2) / 64.4 = 0.50034, ...
    lin = _model().linear_compensation()
    assert lin == pytest.approx([(267.422 - 235.2) / 64.4, (-2.384 + 100.4) / 196.0,
                                 (0.0955 - 0.0477) / 0.0955], rel=1e-12)
    assert lin == pytest.approx([0.5003, 0.5001, 0.5005], abs=1e-4)  # as the plant documents


def test_fwhm_of_a_gaussian() -> None:
    dt, sigma = 0.01, 2.0
    t = np.arange(-2000, 2001) * dt + 0.0037  # off the grid's symmetry
    g = 3.0 * np.exp(-(t**2) / (2 * sigma**2))
    expected = 2 * math.sqrt(2 * math.log(2)) * sigma  # 4.7096
    assert float(fwhm(g, dt)) == pytest.approx(expected, rel=1e-4)
    torch = pytest.importorskip("torch")
    assert float(fwhm(torch.tensor(g), dt)) == pytest.approx(expected, rel=1e-4)


def test_fwhm_spans_both_peaks_of_a_double_pulse() -> None:
    dt = 0.001
    t = np.arange(-20000, 20001) * dt
    profile = np.exp(-((t + 5) ** 2) / 2) + 0.8 * np.exp(-((t - 5) ** 2) / 2)
    # half max 0.5: left of the first peak at -5 - sqrt(2 ln 2), right of the second (0.8) at
    # 5 + sqrt(2 ln 1.6); each peak's own FWHM is only 2.35
    expected = 10 + math.sqrt(2 * math.log(2)) + math.sqrt(2 * math.log(1.6))  # 12.147
    assert float(fwhm(profile, dt)) == pytest.approx(expected, rel=1e-5)
    batch = fwhm(np.stack([profile, np.exp(-(t**2) / 2)]), dt)
    assert batch.shape == (2,)
    assert batch[1] == pytest.approx(2 * math.sqrt(2 * math.log(2)), rel=1e-5)
    # a profile above half max everywhere is measured to the window's edges
    assert float(fwhm(np.ones(11), 0.5)) == pytest.approx(5.0)


def test_gain_narrowing_narrows_the_spectrum() -> None:
    m = _model()
    before = float(fwhm(m.spectrum, m.dnu))
    after = float(fwhm(m.amplitude**2, m.dnu))
    assert before == pytest.approx(1.0, rel=1e-4)  # the 1.0 THz super-Gaussian
    assert after < before
    assert after == pytest.approx(0.29, abs=0.005)  # MODELS.md: 0.29 THz after 50 passes
    assert float(np.max(m.gain)) == pytest.approx(1.0, rel=1e-6)  # normalized per pass


# -- dispersion physics -------------------------------------------------------------------------
def test_pure_gdd_residual_stretches_the_pulse() -> None:
    m0 = _model(0.0)
    residuals = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 100.0])  # ps^2
    controls = LINEAR + residuals[:, None] * np.array([1.0, 0.0, 0.0])
    up = m0.forward(controls)
    down = m0.forward(LINEAR - residuals[:, None] * np.array([1.0, 0.0, 0.0]))
    assert np.all(np.diff(up.fwhm) > 0) and np.all(np.diff(up.peak) < 0)
    # a real spectral amplitude: +GDD and -GDD mirror the pulse in time (same width and peak)
    assert _rel(down.fwhm, up.fwhm) < 1e-9 and _rel(down.peak, up.peak) < 1e-9
    # far stretched, stationary phase maps frequency to time (t = GDD w): the width is
    # GDD 2 pi times the spectral FWHM of the amplified spectrum
    spectral = float(fwhm(m0.amplitude**2, m0.dnu))
    assert up.fwhm[-1] == pytest.approx(100.0 * 2 * math.pi * spectral, rel=1e-3)


def test_no_setting_beats_the_transform_limited_peak_without_spm() -> None:
    # |sum_k E_k e^{i ...}| <= sum_k |E_k|, with equality for the flat phase (Cauchy-Schwarz)
    m0 = _model(0.0)
    u = np.random.default_rng(5).random((32, 3))
    assert np.all(m0.forward_normalized(u).peak_ratio <= 1.0 + 1e-12)


# -- the plant -----------------------------------------------------------------------------------
def test_reset_starts_near_compressor_matching() -> None:
    env = LaserPulse()
    starts = []
    for seed in range(100):
        obs, info = env.reset(seed=seed)
        assert obs.shape == (3,) and np.all((obs >= 0) & (obs <= 1))
        assert math.isfinite(info["fwhm_ps"]) and info["evaluations"] == 1
        assert info["tl_fwhm_ps"] == env.pulse_model.tl_fwhm
        assert info["settings_ps"] == pytest.approx(denormalize(obs).tolist(), rel=1e-12)
        starts.append(obs)
    starts_arr = np.array(starts)
    centre = env.pulse_model.linear_compensation()
    assert np.allclose(starts_arr.mean(axis=0), centre, atol=0.04)  # 4 standard errors
    assert np.allclose(starts_arr.std(axis=0), 0.1, atol=0.03)  # reset_noise 0.1
    obs, info = LaserPulse(reset_noise=0.0).reset(seed=0)
    assert np.array_equal(obs, centre)
    assert info["fwhm_ps"] == pytest.approx(1.9825, abs=1e-4)


def test_step_moves_and_clips_the_settings() -> None:
    env = LaserPulse(reset_noise=0.0)
    obs, _ = env.reset(seed=0)
    start = obs.copy()
    obs, *_ = env.step(np.array([0.05, -0.02, 0.0]))
    assert obs == pytest.approx(start + np.array([0.05, -0.02, 0.0]), abs=1e-15)
    for _ in range(6):
        obs, _, terminated, _, info = env.step(np.array([MAX_DELTA, -MAX_DELTA, MAX_DELTA]))
    assert not terminated
    assert np.array_equal(obs, [1.0, 0.0, 1.0])
    assert info["settings_ps"] == pytest.approx([CONTROL_HIGH[0], CONTROL_LOW[1],
                                                 CONTROL_HIGH[2]], rel=1e-12)
    assert info["evaluations"] == 8  # the reset and seven steps


def test_reward_by_hand() -> None:
    opts = LaserPulseOptions()
    # 0.04 + (0.1 / (1 - 0.5) - 0.1) - 0.1 * 2 = 0.04 + 0.1 - 0.2
    assert laser_reward(2.0, 0.5, opts) == pytest.approx(-0.06, abs=1e-15)
    assert laser_reward(2.0, 0.9, opts) == pytest.approx(0.04 + 0.9 - 0.2, abs=1e-14)
    assert laser_reward(2.0, 0.99, opts) == pytest.approx(0.04 + 7.0 - 0.2)  # 9.9 capped
    for x in (1.0, 1.05):  # at and past the pole: the cap
        assert laser_reward(2.0, x, opts) == pytest.approx(6.84, abs=1e-14)
    batch = laser_reward(np.array([2.0, 2.0]), np.array([0.5, 1.0]), opts)
    assert batch == pytest.approx([-0.06, 6.84], abs=1e-14)
    assert laser_reward(2.0, 0.5, LaserPulseOptions(alive_bonus=0.0, fwhm_weight=1.0,
                                                     intensity_cap=0.05)) == pytest.approx(-1.95)


def test_step_reward_is_the_v2_reward_of_the_measured_pulse() -> None:
    env = LaserPulse(reset_noise=0.0)
    env.reset(seed=0)
    for action in ([0.01, 0.0, -0.03], [-0.05, 0.02, 0.1]):
        _, reward, _, _, info = env.step(np.array(action))
        fw, x = info["fwhm_ps"], info["peak_ratio"]
        assert reward == float(laser_reward(fw, x, env.options))
        assert reward == pytest.approx(0.04 + min(0.1 / (1 - x) - 0.1, 7.0) - 0.1 * fw,
                                       rel=1e-12)
        pulse = env.pulse_model.forward(np.array(info["settings_ps"]))
        assert fw == pytest.approx(float(pulse.fwhm), rel=1e-12)


def test_terminates_when_the_pulse_is_too_long() -> None:
    m = _model()
    assert float(m.forward_normalized(np.zeros(3)).fwhm) > 100.0  # ~113 ps, far past 20
    env = LaserPulse(reset_noise=0.0)
    env.reset(seed=0)
    terminated, steps = False, 0
    while not terminated:
        assert steps < 6  # all zeros after 6 steps of -0.1
        _, _, terminated, truncated, info = env.step(np.full(3, -MAX_DELTA))
        steps += 1
        assert not truncated
        assert terminated == (info["fwhm_ps"] >= 20.0)
    with pytest.raises(EpisodeEndedError):
        env.step(np.zeros(3))
    # the threshold is the option: along [0.1, -0.1, 0.1] steps the FWHM grows 7.6, 9.4, 10.6,
    # 11.6, 12.85, 12.85 ps (clipped at [1, 0, 1] from the fifth step)
    path = m.forward_normalized(np.clip(m.linear_compensation()
                                        + np.arange(1, 7)[:, None] * [0.1, -0.1, 0.1], 0, 1)).fwhm
    assert path == pytest.approx([7.580, 9.371, 10.638, 11.649, 12.850, 12.855], abs=1e-3)
    for limit, ends_at in ((8.0, 2), (12.0, 5), (13.0, None)):
        env = LaserPulse(reset_noise=0.0, max_fwhm_ps=limit)
        env.reset(seed=0)
        ended = [env.step(np.array([0.1, -0.1, 0.1]))[2] for _ in range(ends_at or 6)]
        assert ended == [False] * (len(ended) - 1) + [ends_at is not None]


def test_truncates_after_50_steps_through_the_registry() -> None:
    env = make_plant(ID, reset_noise=0.0)
    env.reset(seed=0)
    for k in range(50):
        _, _, terminated, truncated, _ = env.step(np.zeros(3))
        assert not terminated and truncated == (k == 49)


@pytest.mark.parametrize(("action", "match"), [
    (np.array([np.nan, 0.0, 0.0]), r"nan.*dGDD_n"),
    (np.array([0.0, 0.0, np.inf]), r"inf.*dFOD_n"),
    (np.array([0.0, 0.2, 0.0]), r"dTOD_n=0\.2 not in"),
    (np.array([-0.15, 0.0, 0.0]), r"dGDD_n=-0\.15"),
    (np.zeros(2), r"shape \(2,\)"),
    (np.zeros((1, 3)), r"shape \(1, 3\)"),
])
def test_bad_actions_raise_action_error_naming_the_value(action: np.ndarray, match: str) -> None:
    env = make_plant(ID)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=match):
        env.step(action)


@pytest.mark.parametrize(("opts", "field"), [
    ({"foo": 1}, "foo"),
    ({"b_integral": -1.0}, "b_integral"),
    ({"max_fwhm_ps": float("nan")}, "max_fwhm_ps"),
    ({"reset_noise": 2.0}, "reset_noise"),
])
def test_bad_options_raise_option_error_naming_the_field(opts: dict[str, Any],
                                                         field: str) -> None:
    with pytest.raises(OptionError, match=field):
        make_plant(ID, **opts)
    with pytest.raises(OptionError, match=field):
        LaserPulse(**opts)


def test_same_seed_same_episode_and_seeds_differ() -> None:
    actions = np.random.default_rng(6).uniform(-MAX_DELTA, MAX_DELTA, (10, 3))

    def episode(seed: int) -> np.ndarray:
        env = make_plant(ID, max_fwhm_ps=1000.0)  # no pulse is that long: no termination
        rows = [np.append(env.reset(seed=seed)[0], 0.0)]
        for a in actions:
            obs, reward, *_ = env.step(a)
            rows.append(np.append(obs, reward))
        return np.array(rows)

    a, b, c = episode(7), episode(7), episode(8)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_options_reach_the_model() -> None:
    assert LaserPulse(b_integral=0.0).pulse_model.params.b_integral == 0.0
    assert LaserPulse().pulse_model is pulse_model(2.0)  # shared per B-integral


# -- properties -------------------------------------------------------------------------------
_UNIT = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(u=hnp.arrays(np.float64, (3,), elements=_UNIT))
def test_every_setting_gives_a_finite_physical_pulse(u: np.ndarray) -> None:
    # max_examples and deadline: the project's hypothesis profile (tests/conftest.py: 25, none)
    m, m0 = _model(2.0), _model(0.0)
    rec: dict[str, Any] = {}
    m.output_field(denormalize(u), record=rec)
    pulse = m.forward_normalized(u)
    fw, ratio = float(pulse.fwhm), float(pulse.peak_ratio)
    assert math.isfinite(fw) and math.isfinite(ratio)
    # SPM broadens the spectrum, so the B = 0 transform limit bounds neither the width nor the
    # peak in principle: what holds exactly is Cauchy-Schwarz on the SPM-broadened spectrum,
    # peak <= (sum |E_spm|)^2, i.e. peak_ratio <= (sum |E_spm| / sum |E_amplified|)^2 ...
    bound = (np.sum(np.abs(rec["spectrum_spm"])) / np.sum(m.amplitude)) ** 2
    assert 0.0 < ratio <= bound * (1 + 1e-12)
    assert ratio < 1.2
    # ... and the width is at least a few samples. Over [0, 1]^3 the shortest pulse found
    # (Nelder-Mead from several starts) is 1.5765 ps = 1.015 x TL and the highest peak ratio
    # 0.905; 0.9 x TL keeps a margin for the SPM-broadened spectrum.
    assert fw > 0.9 * m.tl_fwhm
    # without SPM the transform-limited peak is the largest (exactly)
    assert 0.0 < float(m0.forward_normalized(u).peak_ratio) <= 1.0 + 1e-12


_BAD = st.one_of(st.just(np.nan), st.just(np.inf), st.just(-np.inf),
                 st.floats(min_value=0.100002, max_value=1e300),
                 st.floats(max_value=-0.100002, min_value=-1e300))
_OK = st.floats(min_value=-MAX_DELTA, max_value=MAX_DELTA, allow_nan=False)
_ENV: dict[str, Any] = {}


@given(bad=_BAD, where=st.integers(0, 2), rest=st.lists(_OK, min_size=3, max_size=3))
def test_any_nan_or_out_of_range_action_raises(bad: float, where: int,
                                               rest: list[float]) -> None:
    env = _ENV.setdefault("env", make_plant(ID))
    env.reset(seed=0)
    action = np.array(rest)
    action[where] = bad
    with pytest.raises(ActionError, match=("dGDD_n", "dTOD_n", "dFOD_n")[where]):
        env.step(action)
    obs, *_ = env.step(np.array(rest))  # the refused action left the episode usable
    assert np.all((obs >= 0) & (obs <= 1))
