"""Entropy controllers: the training run's entropy is the plant output, these close the loop.

Each controller reads the measured token-mean entropy ``H`` once per GRPO step and sets one
actuator for the next step: the entropy-bonus coefficient (``entropy_coef``), the sampling
temperature (``temperature``) or the Clip-Cov ratio (``clip_cov_ratio``). Registered:

- ``constant``: open loop (a fixed value; 0 bonus = plain GRPO).
- ``sign``: Skywork-OR1 / TRL adaptive entropy: ``alpha <- clip(alpha + delta sign(H* - H), 0,
  u_max)``, applied only while ``H < H*``.
- ``pid``: PI/PID on ``e = H* - H`` through :class:`controllers.pid.PID` (anti-windup, limits);
  defaults kp 1.0, ki 0.1, kd 0, bonus in [0, 1] (the PI tuned in studies/README.md).
- ``dual``: dual ascent on ``log alpha`` (SAC temperature): ``log_alpha += lr (H* - H)``, the
  gradient step on ``loss_alpha = -log_alpha (H* - H)``; optional runaway protection (a
  proportional term on ``log alpha``, a faster decrease above H*, a cut of the bonus well above
  H*, conditional integration), off by default so the original dual ascent is the default.
- ``aepo``: bang-bang temperature for extra REINFORCE samples: ``T_high`` when the last entropy
  ``<= H*`` else ``T_low``; the trainer splices the positive-advantage ones into the batch.
- ``prbs`` and ``steps``: open-loop excitation schedules for system identification
  (:mod:`llm_rl.excitation`, registered here by lazy entry points).
- ``nmpc``: grid-search MPC on an identified quadratic model H+ = f(H, u) with a disturbance
  observer, through the loop's one-step delay (:mod:`llm_rl.entropy_mpc`, lazy entry point).
- ``gs-pi``: PI with feed-forward of the equilibrium bonus, gains scheduled on H, harder action
  above H* and conditional integration (:mod:`llm_rl.entropy_gspi`, lazy entry point).

Each is registered in :data:`ENTROPY_CONTROLLERS` next to its own options dataclass
(:class:`ConstantOptions`, :class:`SignOptions`, :class:`PIDOptions`, :class:`DualOptions`,
:class:`AEPOOptions`); :class:`ControlConfig` holds the settings every controller reads (name,
actuator, setpoint) plus the chosen controller's ``options``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from controllers.pid import PID, PIDState
from ctrlbench.options import OptionError, Options, option
from ctrlbench.registry import Registry
from llm_rl.validation import MAX_TEMPERATURE, MIN_TEMPERATURE, check_field, resolve_options

__all__ = [
    "ACTUATORS",
    "ENTROPY_CONTROLLERS",
    "AEPOController",
    "AEPOOptions",
    "ConstantController",
    "ConstantOptions",
    "ControlConfig",
    "DualAscentController",
    "DualOptions",
    "EntropyController",
    "ExtraRollout",
    "LimitOptions",
    "PIDEntropyController",
    "PIDOptions",
    "SignIntegratorController",
    "SignOptions",
    "make_entropy_controller",
]

ACTUATORS = ("entropy_coef", "temperature", "clip_cov_ratio")


@dataclass(frozen=True)
class ConstantOptions(Options):
    """Options of the ``constant`` (open-loop) controller."""

    label: ClassVar[str] = "control"
    value: float = option(0.0, "Initial (or, for constant, fixed) actuator value.")


@dataclass(frozen=True)
class LimitOptions(ConstantOptions):
    """An initial actuator value and the actuator limits (base of the feedback controllers)."""

    u_min: float = option(0.0, "Lower actuator limit.")
    u_max: float = option(0.05, "Upper actuator limit (>= u_min).")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "u_max", self.u_max >= self.u_min, f">= u_min ({self.u_min})")


@dataclass(frozen=True)
class SignOptions(LimitOptions):
    """Options of the ``sign`` integrator (Skywork-OR1 / TRL adaptive entropy)."""

    delta: float = option(1e-3, "Sign-integrator step.", gt=0)


@dataclass(frozen=True)
class PIDOptions(LimitOptions):
    """Options of the ``pid`` controller; defaults: the PI tuned on seed 1 (studies/README.md),
    bonus in [0, 1]."""

    u_max: float = option(1.0, "Upper actuator limit (>= u_min).")
    kp: float = option(1.0, "PID proportional gain (actuator units per nat).", ge=0)
    ki: float = option(0.1, "PID integral gain (per nat per step).", ge=0)
    kd: float = option(0.0, "PID derivative gain.", ge=0)


@dataclass(frozen=True)
class DualOptions(LimitOptions):
    """Options of the ``dual`` controller (dual ascent on log alpha; needs value > 0)."""

    lr: float = option(0.5, "Dual-ascent step size on log alpha.", gt=0)
    kp_log: float = option(0.0, "Dual: proportional gain on log alpha (per nat), alpha = "
                           "exp(log_alpha + kp_log (H* - H)); 0 = pure dual ascent.", ge=0)
    down_ratio: float = option(1.0, "Dual: lr multiplier while H > H* (> 1 backs the bonus off "
                               "faster than it grows); 1 = symmetric.", ge=1)
    cut_above: float = option(0.0, "Dual: while H > H* (1 + cut_above) apply u_min (the bonus "
                              "is cut); 0 = no cut.", ge=0)


@dataclass(frozen=True)
class AEPOOptions(Options):
    """Options of the ``aepo`` controller (actuator ``temperature`` only)."""

    label: ClassVar[str] = "control"
    t_low: float = option(0.8, "AEPO temperature above the target.", ge=MIN_TEMPERATURE,
                          le=MAX_TEMPERATURE)
    t_high: float = option(1.2, "AEPO temperature at or below the target.",
                           ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE)
    aepo_fraction: float = option(0.25, "AEPO: fraction of the step's prompts regenerated.",
                                  gt=0, le=1)
    aepo_max_splice: int = option(60, "AEPO: most samples spliced in at or below the target "
                                  "(half as many above).", ge=1)


@dataclass(frozen=True)
class ControlConfig(Options):
    """Settings of the entropy controller.

    The fields here are every controller's; ``options`` holds the chosen controller's own
    options (:data:`ENTROPY_CONTROLLERS` ``.options(name)``). A mapping, or ``None`` for the
    defaults, is built into that class on construction, so ``dataclasses.asdict`` output
    round-trips.
    """

    label: ClassVar[str] = "control"
    name: str = option("constant", "Registered controller: constant, sign, pid, dual, aepo, "
                       "prbs, steps, nmpc, gs-pi.")
    actuator: str = option("entropy_coef", "What it drives: entropy_coef, temperature, "
                           "clip_cov_ratio.", choices=ACTUATORS)
    setpoint: float = option(0.6, "Target token-mean entropy H* (nats).", gt=0)
    options: Any = option(None,  # noqa: RUF009 (None; replaced by the built instance)
                          "Options of the chosen controller (its options class, a mapping or "
                          "None for its defaults).")

    def __post_init__(self) -> None:
        super().__post_init__()
        opts = resolve_options(ENTROPY_CONTROLLERS, self.name, self.options)
        object.__setattr__(self, "options", opts)
        if self.actuator == "temperature":  # T = 0 would divide the logits by zero
            for name in ("value", "u_min", "u_max"):
                if hasattr(opts, name) and \
                        not MIN_TEMPERATURE <= getattr(opts, name) <= MAX_TEMPERATURE:
                    raise OptionError(
                        f"control.{name} = {getattr(opts, name)!r} is not a valid sampling "
                        f"temperature: actuator 'temperature' needs {MIN_TEMPERATURE:g} <= "
                        f"control.{name} <= {MAX_TEMPERATURE:g}"
                    )
        if self.actuator == "clip_cov_ratio":  # a fraction of the batch's tokens
            for name in ("value", "u_min", "u_max"):
                if hasattr(opts, name) and not 0 <= getattr(opts, name) <= 1:
                    raise OptionError(
                        f"control.{name} = {getattr(opts, name)!r} is not a Clip-Cov ratio: "
                        f"actuator 'clip_cov_ratio' needs 0 <= control.{name} <= 1"
                    )


@dataclass(frozen=True)
class ExtraRollout:
    """A request for additional REINFORCE samples (AEPO)."""

    temperature: float
    fraction: float
    max_splice: int


ENTROPY_CONTROLLERS: Registry[type[EntropyController]] = Registry("entropy controller")
"""Entropy controllers by name: the class (called with a :class:`ControlConfig`) and its options
class. Not ``ctrlbench.registry.CONTROLLERS``, which holds the plant controllers."""


class EntropyController(ABC):
    """Base: holds the config, the current actuator value and the last measurement."""

    #: The options class the controller reads (``config.options`` must be one).
    options_class: ClassVar[type[Options]] = ConstantOptions

    def __init__(self, config: ControlConfig) -> None:
        if not isinstance(config.options, self.options_class):
            raise OptionError(
                f"{type(self).__name__} needs {self.options_class.__name__} options, got "
                f"{type(config.options).__name__} (control.name = {config.name!r})"
            )
        self.config = config
        self.value = float(getattr(config.options, "value", 0.0))
        self.last_entropy: float | None = None

    @property
    def actuator(self) -> str:
        """Name of the driven actuator."""
        return self.config.actuator

    @property
    def setpoint(self) -> float:
        """Target entropy H*."""
        return self.config.setpoint

    def update(self, entropy: float) -> float:
        """Take one measurement and return the actuator value for the next step."""
        if not math.isfinite(entropy):
            raise ValueError(f"entropy measurement must be finite, got {entropy}")
        self.last_entropy = float(entropy)
        self.value = float(self._update(float(entropy)))
        return self.value

    @abstractmethod
    def _update(self, entropy: float) -> float: ...

    def extra_rollout(self) -> ExtraRollout | None:
        """Extra samples to draw this step (only AEPO asks for any)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Serializable state (for checkpoints)."""
        return {"value": self.value, "last_entropy": self.last_entropy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.value = float(state["value"])
        self.last_entropy = state["last_entropy"]


@ENTROPY_CONTROLLERS.register("constant", options=ConstantOptions)
class ConstantController(EntropyController):
    """Open loop: the actuator stays at ``value``."""

    def _update(self, entropy: float) -> float:
        return float(self.config.options.value)


@ENTROPY_CONTROLLERS.register("sign", options=SignOptions)
class SignIntegratorController(EntropyController):
    """Adaptive coefficient stepping by ``delta sign(H* - H)``; applied only while ``H < H*``."""

    options_class = SignOptions

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        o: SignOptions = config.options
        self.opts = o
        self.alpha = float(np.clip(o.value, o.u_min, o.u_max))
        self.value = self.alpha

    def _update(self, entropy: float) -> float:
        o, h_star = self.opts, self.config.setpoint
        self.alpha = float(
            np.clip(self.alpha + o.delta * np.sign(h_star - entropy), o.u_min, o.u_max)
        )
        return self.alpha if entropy < h_star else o.u_min

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.alpha = float(state["alpha"])


@ENTROPY_CONTROLLERS.register("pid", options=PIDOptions)
class PIDEntropyController(EntropyController):
    """:class:`controllers.pid.PID` on ``e = H* - H`` (dt = one step), bumpless from ``value``."""

    options_class = PIDOptions

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        o: PIDOptions = config.options
        self.pid = PID(o.kp, o.ki, o.kd, dt=1.0, u_min=o.u_min, u_max=o.u_max)
        self.pid.reset(u0=o.value)
        self.value = float(np.clip(o.value, o.u_min, o.u_max))

    def _update(self, entropy: float) -> float:
        return float(self.pid.update(self.config.setpoint - entropy, measurement=entropy))

    def state_dict(self) -> dict[str, Any]:
        s = self.pid.state
        prev = None if s.prev_measurement is None else s.prev_measurement.tolist()
        pid = {"integral": s.integral.tolist(), "derivative": s.derivative.tolist(), "prev": prev}
        return {**super().state_dict(), "pid": pid}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        p = state["pid"]
        prev = None if p["prev"] is None else np.asarray(p["prev"], dtype=float)
        self.pid.state = PIDState(
            np.asarray(p["integral"], dtype=float), np.asarray(p["derivative"], dtype=float), prev
        )


@ENTROPY_CONTROLLERS.register("dual", options=DualOptions)
class DualAscentController(EntropyController):
    """``alpha = exp(log_alpha)``; ``log_alpha += lr (H* - H)``, alpha kept in [u_min, u_max].

    With the defaults this is plain dual ascent (SAC's temperature rule). It can run away on a
    plant whose entropy takes off under a bonus: pure integral action keeps raising alpha while
    H lags below H*, then lowers it only at ``lr (H - H*)`` per step once H has overshot
    (countdown-lite, seed 2: H = 2.66, reward 0, studies/README.md). The options that stop it:

    - ``kp_log``: a proportional term, ``alpha = exp(log_alpha + kp_log (H* - H))``, which cuts
      the bonus in the same step as H overshoots (a PI controller on ``log alpha``);
    - ``down_ratio``: integrate ``down_ratio`` times faster while ``H > H*``;
    - ``cut_above``: apply ``u_min`` while ``H > H* (1 + cut_above)``;
    - conditional integration (always on, a no-op for ``kp_log = 0``): ``log_alpha`` does not
      integrate further into a limit the applied alpha already sits at, and stays within
      ``[log u_min, log u_max]``.

    Verified setting (``DUAL_FIXED`` of studies/llm_entropy_sysid.py): value 0.05, lr 0.3,
    alpha in [1e-3, 1], kp_log 6, down_ratio 3, cut_above 0.5 — no runaway on 10 held-out runs
    (countdown-lite seed 2: error 0.073 where the collapse study's setting reached H = 2.66).
    """

    options_class = DualOptions

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        o: DualOptions = config.options
        self.opts = o
        if o.value <= 0 or o.u_max <= 0:
            raise OptionError(
                f"dual ascent needs value > 0 and u_max > 0 (alpha = exp(log_alpha)); got "
                f"control.value = {o.value!r}, control.u_max = {o.u_max!r}"
            )
        self.log_alpha = self._clip(math.log(o.value))
        self.value = math.exp(self.log_alpha)

    def _clip(self, log_alpha: float) -> float:
        o = self.opts
        return min(max(log_alpha, math.log(max(o.u_min, 1e-12))), math.log(o.u_max))

    def _update(self, entropy: float) -> float:
        o, e = self.opts, self.config.setpoint - entropy
        lr = o.lr * (o.down_ratio if e < 0 else 1.0)
        applied = self._clip(self.log_alpha + o.kp_log * e)
        # conditional integration: never push further into a limit the output sits at
        at_max = applied >= math.log(o.u_max) and e > 0
        at_min = applied <= math.log(max(o.u_min, 1e-12)) and e < 0
        if o.kp_log == 0.0 or not (at_max or at_min):
            self.log_alpha = self._clip(self.log_alpha + lr * e)
        alpha = math.exp(self._clip(self.log_alpha + o.kp_log * e))
        if o.cut_above > 0 and entropy > self.config.setpoint * (1.0 + o.cut_above):
            return float(o.u_min)
        return alpha

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log_alpha": self.log_alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.log_alpha = float(state["log_alpha"])


@ENTROPY_CONTROLLERS.register("aepo", options=AEPOOptions)
class AEPOController(EntropyController):
    """Bang-bang temperature of AEPO's extra samples (actuator must be ``temperature``).

    The main batch keeps its sampling temperature; ``value`` is the extra samples' temperature.
    """

    options_class = AEPOOptions

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        if config.actuator != "temperature":
            raise OptionError(f"the aepo controller drives actuator='temperature' only; got "
                              f"control.actuator = {config.actuator!r}")
        self.opts: AEPOOptions = config.options
        self.value = self.opts.t_low

    def _update(self, entropy: float) -> float:
        o = self.opts
        return o.t_high if entropy <= self.config.setpoint else o.t_low

    def extra_rollout(self) -> ExtraRollout:
        o = self.opts
        low = self.last_entropy is not None and self.last_entropy <= self.config.setpoint
        cap = o.aepo_max_splice if low else o.aepo_max_splice // 2
        return ExtraRollout(temperature=self.value, fraction=o.aepo_fraction, max_splice=cap)


ENTROPY_CONTROLLERS.register("prbs", "llm_rl.excitation:PRBSController",
                             options="llm_rl.excitation:PRBSOptions",
                             description="Open-loop PRBS excitation for identification.")
ENTROPY_CONTROLLERS.register("steps", "llm_rl.excitation:StepsController",
                             options="llm_rl.excitation:StepsOptions",
                             description="Open-loop multi-step schedule for identification.")
ENTROPY_CONTROLLERS.register("nmpc", "llm_rl.entropy_mpc:ModelPredictiveController",
                             options="llm_rl.entropy_mpc:NMPCOptions",
                             description="Grid-search MPC on a quadratic entropy model.")
ENTROPY_CONTROLLERS.register("gs-pi", "llm_rl.entropy_gspi:GainScheduledPI",
                             options="llm_rl.entropy_gspi:GSPIOptions",
                             description="Gain-scheduled asymmetric PI with feed-forward.")


def make_entropy_controller(config: ControlConfig) -> EntropyController:
    """Build the registered entropy controller ``config.name`` (``KeyError`` lists the valid
    names; ``config.options`` is already validated against the controller's options class)."""
    return ENTROPY_CONTROLLERS.load(config.name)(config)
