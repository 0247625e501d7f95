"""plants.laser.model pinned (kills mutmut's survivors): the parameter checks one rule at a time,
the chain's spectra, gain and time grid against the formulas of the module docstring, a whole
forward pass against an independent plain-numpy implementation of the documented chain (on a
small grid with non-default parameters), the torch path against numpy (float64 and float32,
batch shapes of 3 dimensions), the FWHM at the window's edges, and ``exp(i phase)`` on both of
its paths.

Every model here is built inside its test (mutmut forks its runs after collection, so a model
built at import would be the unmutated one)."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins before plants.laser is imported)
import plants.laser.model as lm
from plants.laser.model import LaserParams, PulseModel, denormalize, fwhm, normalize

C = 299_792_458.0
# a small, non-default chain: 256 samples, order-2 spectrum, gain off-centre, 20 passes, B = 1.3
SMALL = dict(nu_min=289.9, nu_max=291.9, nu0=290.8, n_freq=256, spectrum_fwhm=0.7,
             spectrum_order=2, gain_center_nm=1031.0, gain_fwhm_nm=7.5, passes=20,
             b_integral=1.3, compressor=(-10.0, 0.4, -0.02), pad_factor=2)


def small(**kw: Any) -> PulseModel:
    return PulseModel(LaserParams(**{**SMALL, **kw}))


# -- parameter checks --------------------------------------------------------------------------
@pytest.mark.parametrize("field, bad, ok, rule", [
    ("n_freq", 15, 16, "n_freq >= 16"),
    ("spectrum_fwhm", 0.0, 1e-3, "spectrum_fwhm > 0"),
    ("spectrum_order", 0, 1, "spectrum_order >= 1"),
    ("gain_fwhm_nm", 0.0, 0.5, "gain_fwhm_nm > 0"),
    ("passes", -1, 0, "passes >= 0"),
    ("b_integral", -0.1, 0.0, "b_integral >= 0"),
    ("pad_factor", 0, 1, "pad_factor >= 1"),
])
def test_each_rule_at_its_boundary(field, bad, ok, rule):
    assert getattr(LaserParams(**{field: ok}), field) == ok
    with pytest.raises(ValueError, match=rf"^LaserParams: {rule} does not hold for LaserParams\("):
        LaserParams(**{field: bad})


def test_the_frequency_rules_and_several_broken_at_once():
    assert LaserParams(nu0=289.95).nu0 == 289.95 and LaserParams(nu0=291.91).nu0 == 291.91
    with pytest.raises(ValueError, match=r"^LaserParams: nu_min < nu_max, nu_min <= nu0 <= "
                                         r"nu_max does not hold"):
        LaserParams(nu_min=291.0, nu_max=291.0, nu0=292.0)
    with pytest.raises(ValueError, match=r"^LaserParams: n_freq >= 16, passes >= 0 does not "):
        LaserParams(n_freq=8, passes=-2)
    with pytest.raises(ValueError, match=r"^LaserParams: every value must be finite, got "
                                         r"LaserParams\(.*b_integral=inf"):
        LaserParams(b_integral=math.inf)


# -- the chain's ingredients -------------------------------------------------------------------
def spectrum_gain(p: LaserParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nu = np.linspace(p.nu_min, p.nu_max, p.n_freq)
    s = np.exp(-math.log(2) * (2 * np.abs(nu - p.nu0) / p.spectrum_fwhm) ** (2 * p.spectrum_order))
    lam = p.gain_center_nm * 1e-9
    nu_g = C / lam * 1e-12  # THz
    dnu_g = C * p.gain_fwhm_nm * 1e-9 / lam**2 * 1e-12
    g = 1 / np.sqrt(1 + (2 * (nu - nu_g) / dnu_g) ** 2)
    return nu, s, g


def test_spectrum_gain_and_grids_by_the_docstring_formulas():
    m = small()
    p = m.params
    nu, s, g = spectrum_gain(p)
    np.testing.assert_allclose(m.nu, nu, rtol=1e-15)
    assert m.dnu == pytest.approx(2.0 / 255, rel=1e-12)
    np.testing.assert_allclose(m.w, 2 * np.pi * (nu - 290.8), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m.spectrum, s, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(m.gain, g, rtol=1e-13)
    np.testing.assert_allclose(m.amplitude, np.sqrt(s) * g**20, rtol=1e-12, atol=1e-300)
    assert m.energy == pytest.approx(float(np.sum(s * g**40)), rel=1e-12)
    assert m.n_time == 512 and isinstance(m.n_time, int)
    assert m.dt == pytest.approx(1 / (512 * 2.0 / 255), rel=1e-12)
    np.testing.assert_allclose(m.time, (np.arange(512) - 256) * m.dt, rtol=1e-12)


def test_default_gain_line_from_the_docstring_numbers():
    # g^2 is a Lorentzian at 291.06 THz (1030 nm) with 2.54 THz FWHM (9 nm): at the grid's
    # lowest frequency 289.95 THz, x = 2 (289.95 - 291.06) / 2.54 = -0.874, g^2 = 1/(1 + x^2)
    m = PulseModel()
    i0 = int(np.argmin(np.abs(m.nu - 291.06)))
    assert m.gain[i0] == pytest.approx(1.0, abs=1e-5)
    assert m.gain[0] ** 2 == pytest.approx(1 / (1 + 0.874**2), abs=2e-3)
    assert m.dt == pytest.approx(2089 / 16384, rel=1e-3)  # 2089 ps window, 16384 samples


def shifted_intensity(field: np.ndarray, energy: float, dt: float, pad: int) -> np.ndarray:
    """|zero-padded unitary inverse FFT|^2 / (energy dt), centred on t = 0 (fftshift)."""
    n = field.shape[-1]
    e = np.fft.ifft(field, n=n * pad, axis=-1, norm="ortho")
    return np.fft.fftshift(np.abs(e) ** 2, axes=-1) / (energy * dt)


def width(profile: np.ndarray, dt: float) -> float:
    """FWHM between the outermost half-maximum crossings, linear interpolation (a loop)."""
    half = profile.max() / 2
    above = [k for k, v in enumerate(profile) if v >= half]
    i, j = above[0], above[-1]
    left = i - (profile[i] - half) / (profile[i] - profile[i - 1]) if i > 0 else 0.0
    n = len(profile)
    right = j + (profile[j] - half) / (profile[j] - profile[j + 1]) if j < n - 1 else n - 1.0
    return (right - left) * dt


def chain(p: LaserParams, controls: np.ndarray) -> np.ndarray:
    """The documented chain in plain numpy: stretcher, gain, SPM, compressor; the intensity."""
    nu, s, g = spectrum_gain(p)
    w = 2 * np.pi * (nu - p.nu0)

    def phase(c: np.ndarray) -> np.ndarray:
        return c[0] * w**2 / 2 + c[1] * w**3 / 6 + c[2] * w**4 / 24

    amp = np.sqrt(s) * g**p.passes
    e_nu = amp * np.exp(1j * phase(controls))
    e_t = np.fft.ifft(e_nu, norm="ortho")
    i_t = np.abs(e_t) ** 2
    e_t = e_t * np.exp(1j * p.b_integral * i_t / i_t.max())
    out = np.fft.fft(e_t, norm="ortho") * np.exp(1j * phase(np.asarray(p.compressor)))
    dt = 1 / (p.n_freq * p.pad_factor * (nu[1] - nu[0]))
    return shifted_intensity(out, float(np.sum(amp**2)), dt, p.pad_factor)


def test_transform_limit_by_the_padded_fft():
    m = small()
    tl = shifted_intensity(m.amplitude, m.energy, m.dt, 2)
    np.testing.assert_allclose(m.tl_intensity, tl, rtol=1e-9, atol=1e-12 * tl.max())
    assert np.sum(m.tl_intensity) * m.dt == pytest.approx(1.0, rel=1e-12)  # unit energy
    assert m.tl_peak == float(m.tl_intensity.max())
    assert m.tl_fwhm == pytest.approx(width(tl, m.dt), rel=1e-9)
    assert np.argmax(m.tl_intensity) in (255, 256, 257)  # centred on t = 0


SETTINGS = np.array([[[12.0, -0.3, 0.05], [9.0, 0.6, 0.0]],
                     [[10.0, -0.4, 0.02], [11.5, 0.1, -0.03]]])  # shape (2, 2, 3)


def test_forward_equals_the_documented_chain_on_a_batch():
    m = small()
    pulse = m.forward(SETTINGS, keep_intensity=True)
    kept: Any = pulse.intensity
    assert kept.shape == (2, 2, 512)
    for idx in np.ndindex(2, 2):
        inten = chain(m.params, SETTINGS[idx])
        np.testing.assert_allclose(kept[idx], inten, rtol=1e-8,
                                   atol=1e-10 * inten.max())
        assert pulse.peak[idx] == pytest.approx(inten.max(), rel=1e-9)
        assert pulse.peak_ratio[idx] == pytest.approx(inten.max() / m.tl_peak, rel=1e-9)
        assert pulse.fwhm[idx] == pytest.approx(width(inten, m.dt), rel=1e-8)
    assert len({round(float(v), 6) for v in pulse.fwhm.ravel()}) == 4  # four different pulses


def test_forward_shapes_defaults_and_errors():
    m = small()
    one = m.forward([12, 0, 0])  # ints: float64 settings
    assert one.intensity is None and one.peak.shape == () and one.fwhm.shape == ()
    assert one.peak == pytest.approx(chain(m.params, np.array([12.0, 0, 0])).max(), rel=1e-9)
    assert m.forward_normalized([0.5, 0.5, 0.5]).intensity is None
    with pytest.raises(ValueError, match=r"^controls must have shape \(\.\.\., 3\) \(GDD, TOD, "
                                         r"FOD\), got \(2, 2\)$"):
        m.forward(np.zeros((2, 2)))


def test_record_holds_each_stage():
    m = small()
    c = np.array([12.0, -0.3, 0.05])
    record: dict[str, Any] = {}
    m.output_field(c, record)
    np.testing.assert_allclose(record["stretched"], np.sqrt(m.spectrum) * np.exp(1j * m.phase(c)),
                               rtol=1e-12, atol=1e-300)


# -- torch ----------------------------------------------------------------------------------------
def test_torch_float64_batch_equals_numpy():
    torch = pytest.importorskip("torch")
    m = small()
    want = m.forward(SETTINGS, keep_intensity=True)
    got = m.forward(torch.tensor(SETTINGS, dtype=torch.float64), keep_intensity=True)
    g_int: Any = got.intensity
    w_int: Any = want.intensity
    assert isinstance(got.fwhm, torch.Tensor) and g_int.dtype == torch.float64
    assert g_int.shape == (2, 2, 512)
    np.testing.assert_allclose(g_int.numpy(), w_int, rtol=1e-10, atol=1e-12 * w_int.max())
    np.testing.assert_allclose(got.peak.numpy(), want.peak, rtol=1e-12)
    np.testing.assert_allclose(got.fwhm.numpy(), want.fwhm, rtol=1e-9)
    assert m.forward(torch.tensor(SETTINGS, dtype=torch.float64)).intensity is None


def test_torch_float32_stays_float32_and_close():
    torch = pytest.importorskip("torch")
    m = small()
    want = m.forward(SETTINGS)
    got = m.forward(torch.tensor(SETTINGS, dtype=torch.float32), keep_intensity=True)
    g_int: Any = got.intensity
    assert g_int.dtype == torch.float32 and got.peak.dtype == torch.float32
    np.testing.assert_allclose(got.peak.numpy(), want.peak, rtol=2e-3)
    # the constants are cached per (name, device, dtype); a second call reuses them
    again = m.forward(torch.tensor(SETTINGS, dtype=torch.float32))
    np.testing.assert_array_equal(again.peak.numpy(), got.peak.numpy())
    assert {k[2] for k in m._torch_cache} == {torch.float32}
    u = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float32)
    back = normalize(denormalize(u))
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), [0.25, 0.5, 0.75], rtol=1e-5)


# -- FWHM at the edges -----------------------------------------------------------------------------
PROFILES = [
    ([0.0, 0.2, 0.7, 1.0], 1.4),                         # rising to the right edge: 3 - 1.6
    ([1.0, 0.7, 0.2, 0.0], 1.4),                         # falling from the left edge: 1.4 - 0
    ([1.0, 1.0, 0.2, 0.0], 1.625),                       # flat top at the left edge
    ([1.0, 0.2, 0.1, 0.0], 0.625),                       # only the first sample above half
    ([0.0, 0.1, 0.2, 1.0], 0.625),                       # only the last sample above half
    ([0.5, 0.5, 1.0, 0.0], 2.5),                         # a plateau exactly at half counts
]


@pytest.mark.parametrize("profile, samples", PROFILES)
def test_fwhm_at_the_window_edges(profile, samples):
    assert float(fwhm(np.array(profile), 0.5)) == pytest.approx(0.5 * samples, rel=1e-12)
    torch = pytest.importorskip("torch")
    got = fwhm(torch.tensor(profile, dtype=torch.float64), 0.5)
    assert isinstance(got, torch.Tensor)
    assert float(got) == pytest.approx(0.5 * samples, rel=1e-12)


def test_fwhm_of_a_batch_of_profiles():
    batch = np.array([p for p, _ in PROFILES])
    np.testing.assert_allclose(fwhm(batch, 2.0), [2.0 * s for _, s in PROFILES], rtol=1e-12)


# -- |e|^2 at every scale, 1.0 (the skipped multiply) and 2.0 included ----------------------------
@pytest.mark.parametrize("scale", [1.0, 2.0, 0.5, 3.25])
def test_abs2_is_scale_times_the_squared_modulus(scale):
    e = np.array([3.0 + 4.0j, -1.5 + 0.5j, 0.0 - 2.0j])
    expected = scale * np.array([25.0, 2.5, 4.0])  # |3+4i|^2 = 25 by hand
    np.testing.assert_array_equal(lm._abs2(e, scale), expected)


# -- exp(i phase) on both paths, and torch found once ---------------------------------------------
def test_cis_numpy_path_for_a_strided_phase_and_torch_path_otherwise():
    torch = pytest.importorskip("torch")
    if torch.get_num_threads() != 1:
        pytest.skip("the torch path needs one intra-op thread (OMP_NUM_THREADS=1)")
    rng = np.random.default_rng(1)
    phase = rng.uniform(-3000.0, 3000.0, 8192)
    strided = phase[::2]  # not C-contiguous: numpy's cos and sin
    out = lm._cis(strided)
    assert np.array_equal(out.real, np.cos(strided)) and np.array_equal(out.imag, np.sin(strided))
    dense = np.ascontiguousarray(strided)
    out = lm._cis(dense)
    t = torch.from_numpy(dense)
    assert np.array_equal(out.real, torch.cos(t).numpy())
    assert np.array_equal(out.imag, torch.sin(t).numpy())
    # the two paths differ somewhere by an ulp, so the checks above tell them apart
    assert not np.array_equal(torch.cos(t).numpy(), np.cos(dense))


def test_torch_is_looked_up_once_and_its_absence_falls_back_to_numpy(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(lm, "_TORCH", [])
    assert lm._torch_or_none() is torch and lm._torch_or_none() is torch
    assert lm._TORCH == [torch]
    monkeypatch.setattr(lm, "_TORCH", [])
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert lm._torch_or_none() is None and lm._TORCH == [None]
    phase = np.linspace(-5.0, 5.0, 64)
    out = lm._cis(phase)
    assert np.array_equal(out.real, np.cos(phase)) and np.array_equal(out.imag, np.sin(phase))
