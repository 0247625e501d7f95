"""Entropy controllers: the training run's entropy is the plant output, these close the loop.

Each controller reads the measured token-mean entropy ``H`` once per GRPO step and sets one
actuator for the next step: the entropy-bonus coefficient (``entropy_coef``), the sampling
temperature (``temperature``) or the Clip-Cov ratio (``clip_cov_ratio``). Registered:

- ``constant``: open loop (a fixed value; 0 bonus = plain GRPO).
- ``sign``: Skywork-OR1 / TRL adaptive entropy: ``alpha <- clip(alpha + delta sign(H* - H), 0,
  u_max)``, applied only while ``H < H*``.
- ``pid``: PI/PID on ``e = H* - H`` through :class:`controllers.pid.PID` (anti-windup, limits).
- ``dual``: dual ascent on ``log alpha`` (SAC temperature): ``log_alpha += lr (H* - H)``, the
  gradient step on ``loss_alpha = -log_alpha (H* - H)``.
- ``aepo``: bang-bang temperature for extra REINFORCE samples: ``T_high`` when the last entropy
  ``<= H*`` else ``T_low``; the trainer splices the positive-advantage ones into the batch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.pid import PID, PIDState
from ctrlbench.registry import Registry
from llm_rl.validation import check_field, finite

__all__ = [
    "ACTUATORS",
    "CONTROLLERS",
    "CONTROLLER_USES",
    "AEPOController",
    "ConstantController",
    "ControlConfig",
    "DualAscentController",
    "EntropyController",
    "ExtraRollout",
    "PIDEntropyController",
    "SignIntegratorController",
    "make_controller",
    "register_controller",
]

ACTUATORS = ("entropy_coef", "temperature", "clip_cov_ratio")


@dataclass(frozen=True)
class ControlConfig:
    """Settings of the entropy controller.

    Each registered controller declares the fields it reads (:data:`CONTROLLER_USES`);
    :func:`make_controller` rejects any other field set away from its default.
    """

    name: str = "constant"
    """Registered controller: constant, sign, pid, dual, aepo."""
    actuator: str = "entropy_coef"
    """What it drives: entropy_coef, temperature, clip_cov_ratio."""
    setpoint: float = 0.6
    """Target token-mean entropy H* (nats)."""
    value: float = 0.0
    """Initial (or, for constant, fixed) actuator value."""
    u_min: float = 0.0
    """Lower actuator limit."""
    u_max: float = 0.05
    """Upper actuator limit."""
    kp: float = 0.05
    """PID proportional gain (actuator units per nat)."""
    ki: float = 0.02
    """PID integral gain (per nat per step)."""
    kd: float = 0.0
    """PID derivative gain."""
    delta: float = 1e-3
    """Sign-integrator step."""
    lr: float = 0.5
    """Dual-ascent step size on log alpha."""
    t_low: float = 0.8
    """AEPO temperature above the target."""
    t_high: float = 1.2
    """AEPO temperature at or below the target."""
    aepo_fraction: float = 0.25
    """AEPO: fraction of the step's prompts regenerated."""
    aepo_max_splice: int = 60
    """AEPO: most samples spliced in at or below the target (half as many above)."""

    def __post_init__(self) -> None:
        check_field(self, "actuator", self.actuator in ACTUATORS, ", ".join(ACTUATORS))
        check_field(self, "setpoint", finite(self.setpoint) and self.setpoint > 0, "finite > 0")
        for name in ("value", "u_min", "u_max"):
            check_field(self, name, finite(getattr(self, name)), "finite")
        check_field(self, "u_max", self.u_max >= self.u_min, f">= u_min ({self.u_min})")
        for name in ("kp", "ki", "kd"):
            check_field(self, name, finite(getattr(self, name)) and getattr(self, name) >= 0,
                        "finite >= 0")
        for name in ("delta", "lr", "t_low", "t_high"):
            check_field(self, name, finite(getattr(self, name)) and getattr(self, name) > 0,
                        "finite > 0")
        check_field(self, "aepo_fraction", finite(self.aepo_fraction)
                    and 0 < self.aepo_fraction <= 1, "(0, 1]")
        check_field(self, "aepo_max_splice", isinstance(self.aepo_max_splice, int)
                    and self.aepo_max_splice >= 1, "int >= 1")


@dataclass(frozen=True)
class ExtraRollout:
    """A request for additional REINFORCE samples (AEPO)."""

    temperature: float
    fraction: float
    max_splice: int


class EntropyController(ABC):
    """Base: holds the config, the current actuator value and the last measurement."""

    def __init__(self, config: ControlConfig) -> None:
        if config.actuator not in ACTUATORS:
            raise ValueError(
                f"unknown actuator {config.actuator!r}; valid actuators: {', '.join(ACTUATORS)}"
            )
        if config.u_min > config.u_max:
            raise ValueError(f"u_min {config.u_min} exceeds u_max {config.u_max}")
        if config.actuator == "temperature":  # T = 0 would divide the logits by zero
            uses = CONTROLLER_USES.get(config.name, _ALWAYS | {"value", "u_min"})
            for name in ("value", "u_min"):
                if name in uses and not getattr(config, name) > 0:
                    raise ValueError(
                        f"control.{name} = {getattr(config, name)!r} is not a valid sampling "
                        f"temperature: actuator 'temperature' needs control.{name} > 0"
                    )
        self.config = config
        self.value = float(config.value)
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


class ConstantController(EntropyController):
    """Open loop: the actuator stays at ``value``."""

    def _update(self, entropy: float) -> float:
        return self.config.value


class SignIntegratorController(EntropyController):
    """Adaptive coefficient stepping by ``delta sign(H* - H)``; applied only while ``H < H*``."""

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        self.alpha = float(np.clip(config.value, config.u_min, config.u_max))
        self.value = self.alpha

    def _update(self, entropy: float) -> float:
        c = self.config
        self.alpha = float(
            np.clip(self.alpha + c.delta * np.sign(c.setpoint - entropy), c.u_min, c.u_max)
        )
        return self.alpha if entropy < c.setpoint else c.u_min

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.alpha = float(state["alpha"])


class PIDEntropyController(EntropyController):
    """:class:`controllers.pid.PID` on ``e = H* - H`` (dt = one step), bumpless from ``value``."""

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        c = config
        self.pid = PID(c.kp, c.ki, c.kd, dt=1.0, u_min=c.u_min, u_max=c.u_max)
        self.pid.reset(u0=c.value)
        self.value = float(np.clip(c.value, c.u_min, c.u_max))

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


class DualAscentController(EntropyController):
    """``alpha = exp(log_alpha)``; ``log_alpha += lr (H* - H)``, alpha kept in [u_min, u_max]."""

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        if config.value <= 0 or config.u_max <= 0:
            raise ValueError("dual ascent needs value > 0 and u_max > 0 (alpha = exp(log_alpha))")
        self.log_alpha = self._clip(math.log(config.value))
        self.value = math.exp(self.log_alpha)

    def _clip(self, log_alpha: float) -> float:
        c = self.config
        return min(max(log_alpha, math.log(max(c.u_min, 1e-12))), math.log(c.u_max))

    def _update(self, entropy: float) -> float:
        c = self.config
        self.log_alpha = self._clip(self.log_alpha + c.lr * (c.setpoint - entropy))
        return math.exp(self.log_alpha)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log_alpha": self.log_alpha}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.log_alpha = float(state["log_alpha"])


class AEPOController(EntropyController):
    """Bang-bang temperature of AEPO's extra samples (actuator must be ``temperature``).

    The main batch keeps its sampling temperature; ``value`` is the extra samples' temperature.
    """

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        if config.actuator != "temperature":
            raise ValueError("the aepo controller drives actuator='temperature' only")
        self.value = config.t_low

    def _update(self, entropy: float) -> float:
        c = self.config
        return c.t_high if entropy <= c.setpoint else c.t_low

    def extra_rollout(self) -> ExtraRollout:
        c = self.config
        low = self.last_entropy is not None and self.last_entropy <= c.setpoint
        cap = c.aepo_max_splice if low else c.aepo_max_splice // 2
        return ExtraRollout(temperature=self.value, fraction=c.aepo_fraction, max_splice=cap)


CONTROLLERS: Registry[type[EntropyController]] = Registry("controller")
#: The setpoint is every controller's reference (logged, and the tracking error's reference).
_ALWAYS = frozenset({"name", "actuator", "setpoint"})
#: ``controller name -> ControlConfig fields it reads``; see :func:`register_controller`.
CONTROLLER_USES: dict[str, frozenset[str]] = {}


def register_controller(name: str, cls: type[EntropyController], uses: tuple[str, ...]) -> None:
    """Register ``cls`` as ``name``; ``uses`` names the :class:`ControlConfig` fields it reads.

    ``name`` and ``actuator`` are always used; setting any other field away from its default is
    an error in :func:`make_controller` (no silently ignored options).
    """
    unknown = set(uses) - set(ControlConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown ControlConfig field(s) {sorted(unknown)}")
    CONTROLLERS.register(name, cls)
    CONTROLLER_USES[name] = _ALWAYS | frozenset(uses)


def make_controller(config: ControlConfig) -> EntropyController:
    """Build the registered controller ``config.name`` (``KeyError`` lists the valid names).

    ``TypeError`` when ``config`` sets a field the controller does not read.
    """
    cls = CONTROLLERS.get(config.name)
    uses = CONTROLLER_USES[config.name]
    default = ControlConfig()
    ignored = sorted(f for f in ControlConfig.__dataclass_fields__
                     if f not in uses and getattr(config, f) != getattr(default, f))
    if ignored:
        raise TypeError(f"controller {config.name!r} ignores control field(s) {ignored}; it uses "
                        f"{sorted(uses - {'name'})}")
    return cls(config)


_LIMITS = ("value", "u_min", "u_max")
register_controller("constant", ConstantController, uses=("value",))
register_controller("sign", SignIntegratorController, uses=(*_LIMITS, "delta"))
register_controller("pid", PIDEntropyController, uses=(*_LIMITS, "kp", "ki", "kd"))
register_controller("dual", DualAscentController, uses=(*_LIMITS, "lr"))
register_controller("aepo", AEPOController,
                    uses=("t_low", "t_high", "aepo_fraction", "aepo_max_splice"))
