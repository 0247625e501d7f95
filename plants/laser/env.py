"""``ctrlbench/LaserPulse-v0``: compress a pump pulse by moving the stretcher's dispersion."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from numpy.typing import NDArray

from ctrlbench.objective import SettingObjective
from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec
from plants.laser.model import CONTROL_HIGH, CONTROL_LOW, LaserParams, PulseModel, denormalize
from plants.laser.options import LaserPulseOptions

__all__ = ["ACTIONS", "MAX_DELTA", "SETTINGS", "LaserPulse", "intensity_bonus", "laser_reward",
           "pulse_model"]

Obs = NDArray[np.float64]
MAX_DELTA = 0.1
"""Largest change of a normalized setting per step (the authors' machine-safety bound)."""
SETTINGS = tuple(
    SignalSpec(f"{name}_n", "1", 0.0, 1.0,
               f"stretcher {name} normalized: {lo} {unit} at 0, {hi} {unit} at 1")
    for name, unit, lo, hi in zip(("GDD", "TOD", "FOD"), ("ps^2", "ps^3", "ps^4"),
                                  CONTROL_LOW, CONTROL_HIGH))
ACTIONS = tuple(
    SignalSpec(f"d{name}_n", "1", -MAX_DELTA, MAX_DELTA, f"change of the normalized {name}")
    for name in ("GDD", "TOD", "FOD"))
_MODELS: dict[float, PulseModel] = {}


def pulse_model(b_integral: float) -> PulseModel:
    """The shared :class:`PulseModel` for a B-integral (built once per process)."""
    key = float(b_integral)
    if key not in _MODELS:
        _MODELS[key] = PulseModel(LaserParams(b_integral=key))
    return _MODELS[key]


def intensity_bonus(ratio: Any, cap: float) -> Any:
    """``min(0.1 / (1 - x) - 0.1, cap)`` for peak ratio ``x``; ``cap`` where ``x >= 1`` (the
    formula's pole: self-phase modulation can lift the peak a hair above the reference)."""
    x = np.asarray(ratio, dtype=np.float64)
    gap = np.where(x < 1.0, 1.0 - x, 1.0)
    return np.where(x < 1.0, np.minimum(0.1 / gap - 0.1, cap), cap)


def laser_reward(fwhm_ps: Any, ratio: Any, opts: LaserPulseOptions) -> Any:
    """The authors' best reward ("v2", MODELS.md section 4), elementwise over a batch:
    ``alive_bonus + min(0.1 / (1 - x) - 0.1, cap) - fwhm_weight FWHM[ps]``."""
    bonus = intensity_bonus(ratio, opts.intensity_cap)
    return opts.alive_bonus + bonus - opts.fwhm_weight * np.asarray(fwhm_ps, dtype=np.float64)


def start_settings(rng: np.random.Generator, model: PulseModel, noise: float, n: int
                   ) -> NDArray[np.float64]:
    """``n`` starting settings: compressor matching plus Gaussian noise, clipped to [0, 1]."""
    centre = model.linear_compensation()
    out: NDArray[np.float64] = np.clip(centre + noise * rng.standard_normal((n, 3)), 0.0, 1.0)
    return out


class LaserPulse(Plant):
    """A chirped-pulse amplifier's pump pulse, compressed by tuning the stretcher (TempoRL).

    The spectral chain of :mod:`plants.laser.model` (MODELS.md section 4: synthetic
    super-Gaussian spectrum, 50-pass gain narrowing, self-phase modulation with B-integral 2,
    fixed compressor). With B = 2 the stretcher that exactly cancels the compressor gives
    1.98 ps against the 1.554 ps transform limit; the agent must find a better phase.

    ## Observation

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``GDD_n`` | 1 | [0, 1] | stretcher GDD, 235.2-299.6 ps^2 |
    | 1 | ``TOD_n`` | 1 | [0, 1] | stretcher TOD, -100.4-95.6 ps^3 |
    | 2 | ``FOD_n`` | 1 | [0, 1] | stretcher FOD, 0.0477-0.1432 ps^4 |

    ## Action

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0-2 | ``dGDD_n``, ``dTOD_n``, ``dFOD_n`` | 1 | [-0.1, 0.1] | change of each setting |

    The new setting is clipped to [0, 1]. NaN or a value outside [-0.1, 0.1] raises
    ``ActionError`` naming the value.

    ## Reward
    ``alive_bonus + min(0.1 / (1 - x) - 0.1, 7) - 0.1 FWHM[ps]`` with ``x`` the peak intensity
    over the transform-limited peak (the authors' "v2"; ``alive_bonus`` 0.04 as in their code).

    ## Starting state
    The compressor-matching setting (normalized (0.5003, 0.5001, 0.5005)) plus Gaussian noise of
    std ``reset_noise`` (0.1), clipped to [0, 1].

    ## Episode end
    Terminates when the FWHM reaches ``max_fwhm_ps`` (20 ps); the registered id truncates after
    50 steps. ``info``: ``fwhm_ps``, ``peak_ratio``, ``tl_fwhm_ps``, ``settings_ps`` (physical
    GDD, TOD, FOD) and ``evaluations`` (pulses computed this episode, the reset's included; the
    attribute ``evaluations`` counts every pulse since the plant was built).

    ## Arguments
    Keyword options of :class:`~plants.laser.options.LaserPulseOptions`.

    ## Version history
    - v0: first version.
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, **options: Any) -> None:
        opts = LaserPulseOptions.build(options, what="plant 'LaserPulse-v0'")
        self.options = opts
        self.dt = 1.0
        self.set_signals(SETTINGS, ACTIONS)
        self.pulse_model = pulse_model(opts.b_integral)
        self.evaluations = 0
        self._episode_evaluations = 0
        self._u = self.pulse_model.linear_compensation()

    def objective(self) -> SettingObjective:
        """FWHM [ps] of the pulse at normalized settings, a batch per call (counted in
        :attr:`evaluations`)."""
        def fwhm_of(settings: NDArray[np.float64]) -> NDArray[np.float64]:
            self.evaluations += len(settings)
            out: NDArray[np.float64] = self.pulse_model.forward_normalized(settings).fwhm
            return out

        return SettingObjective(names=tuple(s.name for s in SETTINGS), evaluate=fwhm_of,
                                setting_index=(0, 1, 2), metric="FWHM [ps]")

    def _measure(self) -> dict[str, Any]:
        pulse = self.pulse_model.forward_normalized(self._u)
        self.evaluations += 1
        self._episode_evaluations += 1
        return {"fwhm_ps": float(pulse.fwhm), "peak_ratio": float(pulse.peak_ratio),
                "tl_fwhm_ps": self.pulse_model.tl_fwhm,
                "settings_ps": denormalize(self._u).tolist(),
                "evaluations": self._episode_evaluations}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Obs, dict[str, Any]]:
        """Start near the compressor-matching setting."""
        super().reset(seed=seed)
        self._episode_evaluations = 0
        self._u = start_settings(self.np_random, self.pulse_model, self.options.reset_noise,
                                 1)[0]
        return self._u.copy(), self._measure()

    def _step(self, action: NDArray[np.float64]
              ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        self._u = np.clip(self._u + action, 0.0, 1.0)
        info = self._measure()
        reward = float(laser_reward(info["fwhm_ps"], info["peak_ratio"], self.options))
        terminated = info["fwhm_ps"] >= self.options.max_fwhm_ps
        return self._u.copy(), reward, bool(terminated), False, info
