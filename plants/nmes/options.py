"""Options of ``ctrlbench/NMESKnee-v0`` (light: imported by ``ctrlbench list``)."""

from __future__ import annotations

from dataclasses import dataclass

from ctrlbench.options import OptionError, Options, option

__all__ = ["NMESKneeOptions"]


@dataclass(frozen=True)
class NMESKneeOptions(Options):
    """Options of ``ctrlbench/NMESKnee-v0`` (angles in degrees of knee extension)."""

    label = "plant 'NMESKnee-v0'"
    reference: str = option(
        "step", "knee-angle reference: 'step' (random levels held hold_s each), 'sine' (between "
        "ref_low_deg and ref_high_deg), 'random' (step or sine per reset seed)",
        choices=("step", "sine", "random"))
    ref_low_deg: float = option(10.0, "lowest reference angle [deg]", ge=0.0, le=80.0)
    ref_high_deg: float = option(60.0, "highest reference angle [deg]", ge=0.0, le=80.0)
    hold_s: float = option(10.0, "how long each step level is held [s]", ge=0.5, le=600.0)
    sine_period_s: float = option(8.0, "period of the sine reference [s]", ge=1.0, le=600.0)
    patient: str = option(
        "nominal", "virtual patient: 'nominal' parameters, or 'random' ones drawn per reset seed",
        choices=("nominal", "random"))
    spread: float = option(
        0.15, "relative half-width of the uniform factors on every patient parameter [-]",
        ge=0.0, le=0.3)
    noise_theta: float = option(0.0, "std of Gaussian noise on the measured angle [rad]",
                                ge=0.0, le=0.1)
    noise_omega: float = option(0.0, "std of Gaussian noise on the measured velocity [rad/s]",
                                ge=0.0, le=1.0)
    emd: float | None = option(
        None, "electromechanical delay [s]; None = the patient's (nominal 0.05 s)",
        ge=0.0, le=0.25)
    theta0_deg: float | None = option(
        None, "initial angle [deg], at rest; None = the passive equilibrium", ge=-45.0, le=90.0)
    fitness0: float = option(1.0, "initial muscle fitness [-] (1 = rested)", ge=0.3, le=1.0)
    rtol: float = option(1e-8, "relative tolerance of the LSODA integrator", ge=1e-12, le=1e-3)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ref_low_deg > self.ref_high_deg:
            raise OptionError(
                f"{self.label}: ref_low_deg = {self.ref_low_deg} exceeds ref_high_deg = "
                f"{self.ref_high_deg}")
