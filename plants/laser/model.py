"""Spectral-phase model of a chirped-pulse amplifier's pump pulse (MODELS.md section 4).

TempoRL (Capuano et al., SPIE 2023) shapes the pump pulse of a high-power laser by setting the
stretcher's dispersion. The chain, for a batch of stretcher settings in one call:

1. **Input spectrum** (synthetic; the authors' measured spectrum cannot be copied): a
   super-Gaussian of order 3 in frequency, ``S(nu) = exp(-ln 2 (2 |nu - nu0| / F)^6)`` with
   ``nu0 = 290.85 THz`` (1030.7 nm) and FWHM ``F = 1.0 THz`` (3.5 nm), sampled on
   ``n_freq = 4096`` equidistant points over 289.95-291.91 THz. The field is ``sqrt(S)``.
2. **Stretcher phase** ``phi(nu) = GDD w^2/2 + TOD w^3/6 + FOD w^4/24``, ``w = 2 pi (nu - nu0)``
   [rad/ps], GDD in ps^2, TOD in ps^3, FOD in ps^4; applied as ``E exp(+i phi)``.
3. **Gain narrowing**: the field is multiplied by ``g(nu)^50`` (50 passes), ``g`` the per-pass
   field gain normalized to 1 at its peak: ``g^2`` is a Lorentzian (Yb:YAG-like emission line)
   centred at 1030.0 nm (291.06 THz) with 9.0 nm (2.54 THz) FWHM. Fifty passes narrow the
   spectrum to 0.29 THz FWHM; the transform limit of the amplified spectrum is 1.554 ps.
4. **Self-phase modulation** in the time domain: ``e(t) = IFFT[E]``,
   ``e <- e exp(i B I(t) / max I)``, ``I = |e|^2``, B-integral ``B = 2``; back with the FFT.
   The 4096-point window is 2089 ps wide, enough for the stretched (~1 ns) pulse.
5. **Compressor** (fixed): the same polynomial with GDD -267.422 ps^2, TOD +2.384 ps^3,
   FOD -0.0955 ps^4.
6. **Temporal intensity** by a zero-padded inverse FFT (``pad_factor`` 4: 16384 points,
   0.1276 ps apart; computed as four 4096-point FFTs of twiddled spectra, which skips the
   padding zeros and gives the same samples to rounding),
   ``I(t) = |e(t)|^2 / (sum |E|^2 dt)``, i.e. in 1/ps for a pulse of unit energy. FWHM
   between the outermost half-maximum crossings (linear interpolation), so a satellite above
   half the peak counts in the width.

Every FFT is unitary (``norm="ortho"``), so Parseval holds as ``sum |e|^2 = sum |E|^2`` at each
step. With ``B = 0`` and stretcher = -compressor the output is the transform-limited pulse
exactly; with ``B = 2`` it is 1.98 ps (27 % longer): the controller has to find a better phase.

The same functions run on numpy arrays (float64 / complex128) and on torch tensors (CPU or GPU,
the tensor's device and dtype); a batch is any leading shape ``(..., 3)`` of settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

__all__ = [
    "COMPRESSOR",
    "CONTROL_HIGH",
    "CONTROL_LOW",
    "LaserParams",
    "Pulse",
    "PulseModel",
    "denormalize",
    "fwhm",
    "normalize",
]

C_LIGHT = 299_792_458.0
"""Speed of light [m/s]."""
COMPRESSOR = (-267.422, 2.384, -0.0955)
"""Fixed compressor (GDD [ps^2], TOD [ps^3], FOD [ps^4])."""
CONTROL_LOW = (235.2, -100.4, 0.0477)
"""Lower bounds of the stretcher's (GDD [ps^2], TOD [ps^3], FOD [ps^4]); normalized 0."""
CONTROL_HIGH = (299.6, 95.6, 0.1432)
"""Upper bounds of the stretcher's (GDD, TOD, FOD); normalized 1."""

Array = Any  # numpy array or torch tensor


@dataclass(frozen=True)
class LaserParams:
    """Parameters of the pulse chain (defaults: module docstring, MODELS.md section 4)."""

    nu_min: float = 289.95
    """Lowest frequency of the grid [THz]."""
    nu_max: float = 291.91
    """Highest frequency of the grid [THz]."""
    nu0: float = 290.85
    """Central frequency, about which the phase polynomials expand [THz]."""
    n_freq: int = 4096
    """Frequency samples (the time window is ``1 / dnu``: 2089 ps)."""
    spectrum_fwhm: float = 1.0
    """FWHM of the super-Gaussian input spectrum [THz]."""
    spectrum_order: int = 3
    """Super-Gaussian order ``m``: ``exp(-ln 2 (2 |nu - nu0| / F)^(2 m))``."""
    gain_center_nm: float = 1030.0
    """Peak of the Lorentzian gain line [nm]."""
    gain_fwhm_nm: float = 9.0
    """FWHM of the gain line (intensity, one pass) [nm]."""
    passes: int = 50
    """Amplifier passes: the field is multiplied by ``g^passes``."""
    b_integral: float = 2.0
    """B-integral: peak nonlinear phase of self-phase modulation [rad]."""
    compressor: tuple[float, float, float] = COMPRESSOR
    """Compressor (GDD [ps^2], TOD [ps^3], FOD [ps^4])."""
    pad_factor: int = 4
    """Zero-padded length of the final inverse FFT, in multiples of ``n_freq``."""

    def __post_init__(self) -> None:
        checks = {
            "nu_min < nu_max": self.nu_min < self.nu_max,
            "nu_min <= nu0 <= nu_max": self.nu_min <= self.nu0 <= self.nu_max,
            "n_freq >= 16": self.n_freq >= 16,
            "spectrum_fwhm > 0": self.spectrum_fwhm > 0,
            "spectrum_order >= 1": self.spectrum_order >= 1,
            "gain_fwhm_nm > 0": self.gain_fwhm_nm > 0,
            "passes >= 0": self.passes >= 0,
            "b_integral >= 0": self.b_integral >= 0,
            "pad_factor >= 1": self.pad_factor >= 1,
        }
        values = [self.nu_min, self.nu_max, self.nu0, self.spectrum_fwhm, self.gain_center_nm,
                  self.gain_fwhm_nm, self.b_integral, *self.compressor]
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"LaserParams: every value must be finite, got {self}")
        bad = [rule for rule, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"LaserParams: {', '.join(bad)} does not hold for {self}")


@dataclass(frozen=True)
class Pulse:
    """Output pulses of one batched forward pass (numpy or torch, like the input).

    Attributes
    ----------
    fwhm:
        Full width at half maximum [ps], shape ``batch``.
    peak:
        Peak intensity [1/ps] for unit energy, shape ``batch``.
    peak_ratio:
        ``peak`` over the transform-limited peak, shape ``batch``.
    intensity:
        Temporal intensity [1/ps], shape ``batch + (n_time,)`` (``None`` unless asked for).
    """

    fwhm: Array
    peak: Array
    peak_ratio: Array
    intensity: Array | None = None


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def normalize(controls: Array) -> Array:
    """Physical (GDD, TOD, FOD) -> normalized [0, 1] coordinates (last axis)."""
    low, high = _bounds_like(controls)
    return (controls - low) / (high - low)


def denormalize(u: Array) -> Array:
    """Normalized [0, 1] coordinates -> physical (GDD [ps^2], TOD [ps^3], FOD [ps^4])."""
    low, high = _bounds_like(u)
    return low + u * (high - low)


def _bounds_like(x: Any) -> tuple[Any, Any]:
    if _is_torch(x):
        import torch

        kw = {"dtype": x.dtype, "device": x.device}
        return torch.tensor(CONTROL_LOW, **kw), torch.tensor(CONTROL_HIGH, **kw)
    return np.asarray(CONTROL_LOW), np.asarray(CONTROL_HIGH)


def fwhm(intensity: Array, dt: float) -> Array:
    """Full width at half maximum along the last axis, between the outermost crossings.

    Linear interpolation between the samples on either side of each crossing; a profile whose
    half-maximum region reaches the window's edge is measured to the edge.

    Parameters
    ----------
    intensity:
        Non-negative profiles, shape ``(..., n)`` (numpy or torch).
    dt:
        Sample spacing (the width comes back in its unit).
    """
    n = intensity.shape[-1]
    half: Any
    first: Any
    last: Any
    if _is_torch(intensity):
        import torch

        half = intensity.amax(dim=-1, keepdim=True) / 2
        above = intensity >= half
        idx = torch.arange(n, device=intensity.device)
        first = torch.where(above, idx, n).amin(dim=-1, keepdim=True)
        last = torch.where(above, idx, -1).amax(dim=-1, keepdim=True)
        lo_i, hi_i = (first - 1).clamp(min=0), (last + 1).clamp(max=n - 1)

        def take(at: Any) -> Any:
            return torch.gather(intensity, -1, at)
    else:
        half = intensity.max(axis=-1, keepdims=True) / 2
        above = intensity >= half
        first = np.argmax(above, axis=-1)[..., None]
        last = (n - 1 - np.argmax(above[..., ::-1], axis=-1))[..., None]
        lo_i, hi_i = np.maximum(first - 1, 0), np.minimum(last + 1, n - 1)

        def take(at: Any) -> Any:
            return np.take_along_axis(intensity, at, -1)
    a0, a1, b0, b1 = take(lo_i), take(first), take(last), take(hi_i)
    # crossing positions in samples; at an edge (a0 == a1 >= half) the fraction is 0
    da, db = a1 - a0, b0 - b1
    fa = _safe_div(half - a0, da)
    fb = _safe_div(b0 - half, db)
    left = lo_i + fa
    right = last + fb
    width = (right - left) * dt
    return width[..., 0]


def _cis(phase: NDArray[np.float64]) -> NDArray[np.complex128]:
    """``exp(i phase)``: ``cos`` and ``sin`` written into the real and imaginary parts.

    Through torch's vectorized kernels on the same memory when torch is installed and runs one
    intra-op thread, as the project's processes do (``OMP_NUM_THREADS=1``): 8x numpy's ``cos``
    for float64 on this project's CPUs, the same values to an ulp. Otherwise numpy: with two
    torch threads and the other core busy, each call waited ~16 ms for the second thread here.
    """
    out = np.empty(phase.shape, dtype=np.complex128)
    torch = _torch_or_none()
    if torch is None or torch.get_num_threads() != 1 or not phase.flags.c_contiguous:
        np.cos(phase, out=out.real)
        np.sin(phase, out=out.imag)
        return out
    src = torch.from_numpy(phase)
    parts = torch.view_as_real(torch.from_numpy(out))
    torch.cos(src, out=parts[..., 0])
    torch.sin(src, out=parts[..., 1])
    return out


_TORCH: list[Any] = []


def _torch_or_none() -> Any:
    """The torch module if installed (imported once, on the first forward pass), else None."""
    if not _TORCH:
        module: Any
        try:
            import torch as module
        except ImportError:
            module = None
        _TORCH.append(module)
    return _TORCH[0]


def _abs2(e: NDArray[np.complex128], scale: float) -> NDArray[np.float64]:
    """``scale |e|^2`` with one temporary."""
    out = np.square(e.real)
    out += np.square(e.imag)
    if scale != 1.0:
        out *= scale
    return out


def _safe_div(num: Array, den: Array) -> Array:
    """``num / den`` where ``den > 0``, else 0 (a crossing at the window's edge)."""
    pos = den > 0
    if _is_torch(den):
        import torch

        return torch.where(pos, num / torch.where(pos, den, 1.0), 0.0)
    return np.where(pos, num / np.where(pos, den, 1.0), 0.0)


class PulseModel:
    """The pulse chain for fixed :class:`LaserParams`; call :meth:`forward` on stretcher settings.

    Parameters
    ----------
    params:
        Chain parameters (default: MODELS.md section 4 with the synthetic spectrum).
    """

    CHUNK = 8
    """Pulses per numpy pass inside :meth:`forward` (cache-sized; results do not depend on it)."""

    def __init__(self, params: LaserParams | None = None) -> None:
        p = params or LaserParams()
        self.params = p
        self.nu: NDArray[np.float64] = np.linspace(p.nu_min, p.nu_max, p.n_freq)
        self.dnu = float(self.nu[1] - self.nu[0])
        self.w: NDArray[np.float64] = 2 * np.pi * (self.nu - p.nu0)
        rel = 2 * np.abs(self.nu - p.nu0) / p.spectrum_fwhm
        self.spectrum: NDArray[np.float64] = np.exp(-math.log(2) * rel ** (2 * p.spectrum_order))
        nu_g = C_LIGHT / (p.gain_center_nm * 1e-9) / 1e12
        dnu_g = C_LIGHT * p.gain_fwhm_nm * 1e-9 / (p.gain_center_nm * 1e-9) ** 2 / 1e12
        #: per-pass field gain ``g`` (``g^2`` a Lorentzian with peak 1)
        self.gain: NDArray[np.float64] = 1 / np.sqrt(1 + (2 * (self.nu - nu_g) / dnu_g) ** 2)
        #: amplified spectral amplitude ``sqrt(S) g^passes`` (the transform-limited field)
        self.amplitude: NDArray[np.float64] = np.sqrt(self.spectrum) * self.gain ** p.passes
        self.energy = float(np.sum(self.amplitude**2))
        self.n_time = p.n_freq * p.pad_factor
        k = np.arange(p.n_freq)
        self._pad_twiddle: NDArray[np.complex128] = np.exp(
            2j * np.pi * np.outer(np.arange(p.pad_factor), k) / self.n_time)
        #: sample spacing of the output intensity [ps]
        self.dt = 1.0 / (self.n_time * self.dnu)
        self._powers: NDArray[np.float64] = np.stack([self.w**2 / 2, self.w**3 / 6,
                                                      self.w**4 / 24])
        self.compressor_phase = self.phase(np.asarray(p.compressor))
        # compressor factor times (-1)^k: the output window is centred on t = 0 (an fftshift)
        sign = np.where(np.arange(p.n_freq) % 2 == 0, 1.0, -1.0)
        self.compressor_factor: NDArray[np.complex128] = sign * _cis(self.compressor_phase)
        tl = self._intensity(self.amplitude * sign)
        self.tl_intensity: NDArray[np.float64] = tl
        self.tl_peak = float(tl.max())
        self.tl_fwhm = float(fwhm(tl, self.dt))
        self._torch_cache: dict[Any, tuple[Any, ...]] = {}

    @property
    def time(self) -> NDArray[np.float64]:
        """Time axis of the output intensity [ps], zero at the centre of the window."""
        return np.asarray((np.arange(self.n_time) - self.n_time // 2) * self.dt, dtype=np.float64)

    def phase(self, controls: Array) -> Array:
        """Spectral phase ``GDD w^2/2 + TOD w^3/6 + FOD w^4/24`` [rad], shape ``(..., n_freq)``.

        ``controls`` are physical (GDD [ps^2], TOD [ps^3], FOD [ps^4]) along the last axis.
        """
        pw = self._const(controls, "_powers")
        c = controls[..., None, :]  # elementwise: a batch row equals the single pulse bit for bit
        return c[..., 0] * pw[0] + c[..., 1] * pw[1] + c[..., 2] * pw[2]

    def _const(self, like: Any, name: str) -> Any:
        value = getattr(self, name)
        if not _is_torch(like):
            return value
        import torch

        key = (name, like.device, like.dtype)
        if key not in self._torch_cache:
            double = like.dtype in (torch.float64, torch.complex128)
            if np.iscomplexobj(value):
                dtype = torch.complex128 if double else torch.complex64
            else:
                dtype = torch.float64 if double else torch.float32
            self._torch_cache[key] = (torch.as_tensor(value, dtype=dtype, device=like.device),)
        return self._torch_cache[key][0]

    def _intensity(self, field: Array) -> Array:
        """Zero-padded unitary inverse FFT -> intensity [1/ps] for unit energy."""
        m = self.n_time
        scale = 1.0 / (self.energy * self.dt)
        if _is_torch(field):
            import torch

            e = torch.fft.ifft(field, n=m, dim=-1, norm="ortho")
            return (e.real**2 + e.imag**2) * scale
        # The zero-padded inverse FFT with its zeros skipped (an exact identity): output sample
        # pad_factor j + r is the N-point inverse FFT of field * exp(2 pi i k r / M) at j.
        n, pad = self.params.n_freq, self.params.pad_factor
        twisted = field[..., None, :] * self._pad_twiddle
        e = scipy.fft.ifft(twisted, axis=-1, overwrite_x=True)
        inten = _abs2(e, scale * n * n / m)
        return np.swapaxes(inten, -1, -2).reshape(*field.shape[:-1], n * pad)

    def output_field(self, controls: Array, record: dict[str, Any] | None = None) -> Array:
        """Spectral field after the compressor, shape ``(..., n_freq)`` (complex).

        ``record`` (numpy only) receives every stage's field for inspection and the Parseval
        tests: ``stretched`` (spectrum), ``amplified`` (spectrum), ``time`` (before SPM),
        ``spm`` (after), ``spectrum_spm`` and ``compressed`` (spectra).
        """
        p = self.params
        amp = self._const(controls, "amplitude")
        comp = self._const(controls, "compressor_factor")
        phi = self.phase(controls)
        if _is_torch(controls):
            import torch

            e_nu = amp * torch.exp(1j * phi)
            e_t = torch.fft.ifft(e_nu, dim=-1, norm="ortho")
            i_t = e_t.real**2 + e_t.imag**2
            e_t = e_t * torch.exp(1j * p.b_integral * i_t / i_t.amax(dim=-1, keepdim=True))
            return torch.fft.fft(e_t, dim=-1, norm="ortho") * comp
        keep = record is not None
        e_nu = _cis(phi)
        if record is not None:
            record["stretched"] = np.sqrt(self.spectrum) * e_nu
        e_nu *= amp
        if record is not None:
            record["amplified"] = e_nu.copy()
        e_t = scipy.fft.ifft(e_nu, axis=-1, norm="ortho", overwrite_x=not keep)
        if record is not None:
            record["time"] = e_t.copy()
        i_t = _abs2(e_t, 1.0)
        i_t *= p.b_integral / i_t.max(axis=-1, keepdims=True)
        e_t *= _cis(i_t)
        if record is not None:
            record["spm"] = e_t.copy()
        out = scipy.fft.fft(e_t, axis=-1, norm="ortho", overwrite_x=not keep)
        if record is not None:
            record["spectrum_spm"] = out.copy()
        out *= comp
        if record is not None:
            record["compressed"] = out
        return out

    def forward(self, controls: Array, *, keep_intensity: bool = False) -> Pulse:
        """Output pulses for physical stretcher settings ``controls`` of shape ``(..., 3)``.

        numpy in, numpy out (float64); a torch tensor in, torch out on its device (float64 for a
        float64 tensor). ``keep_intensity`` keeps the temporal profiles (``n_time`` each).
        """
        if not _is_torch(controls):
            controls = np.asarray(controls, dtype=np.float64)
        if controls.shape[-1:] != (3,):
            raise ValueError(f"controls must have shape (..., 3) (GDD, TOD, FOD), got "
                             f"{tuple(controls.shape)}")
        if _is_torch(controls):
            intensity = self._intensity(self.output_field(controls))
            peak = intensity.amax(dim=-1)
            return Pulse(fwhm=fwhm(intensity, self.dt), peak=peak,
                         peak_ratio=peak / self.tl_peak,
                         intensity=intensity if keep_intensity else None)
        # numpy: CHUNK pulses at a time, so the padded profiles stay in cache (a batch of 1024
        # at once is memory-bound: 268 MB of complex profiles)
        flat = controls.reshape(-1, 3)
        n = len(flat)
        widths, peaks = np.empty(n), np.empty(n)
        kept = np.empty((n, self.n_time)) if keep_intensity else None
        for i in range(0, n, self.CHUNK):
            inten = self._intensity(self.output_field(flat[i:i + self.CHUNK]))
            widths[i:i + self.CHUNK] = fwhm(inten, self.dt)
            peaks[i:i + self.CHUNK] = inten.max(axis=-1)
            if kept is not None:
                kept[i:i + self.CHUNK] = inten
        shape = controls.shape[:-1]
        return Pulse(fwhm=widths.reshape(shape), peak=peaks.reshape(shape),
                     peak_ratio=peaks.reshape(shape) / self.tl_peak,
                     intensity=None if kept is None else kept.reshape(*shape, self.n_time))

    def forward_normalized(self, u: Array, *, keep_intensity: bool = False) -> Pulse:
        """:meth:`forward` on normalized [0, 1] settings."""
        if not _is_torch(u):
            u = np.asarray(u, dtype=np.float64)
        return self.forward(denormalize(u), keep_intensity=keep_intensity)

    def linear_compensation(self) -> NDArray[np.float64]:
        """Normalized setting with stretcher = -compressor (exact compensation without SPM)."""
        return np.asarray(normalize(-np.asarray(self.params.compressor)), dtype=np.float64)
