"""The entropy sensor's filters: what every entropy controller reads instead of the raw reading.

The token-mean entropy of one rollout is a noisy reading ``y_k = H_k + v_k`` of the policy's
entropy ``H_k``: the sampling noise of a few hundred tokens is part of the plant. A filter turns
the readings into an estimate ``Ĥ_k`` that the controller uses; the metrics log both (``entropy``
raw, ``entropy_filtered``). Registered in :data:`SENSOR_FILTERS`, chosen by
:class:`SensorConfig` ``.filter``:

- ``none``: ``Ĥ_k = y_k`` (the default; a run is then exactly what it was without filters).
- ``ema``: exponential moving average ``Ĥ_k = alpha y_k + (1 - alpha) Ĥ_{k-1}``, ``Ĥ_0 = y_0``.
  After a unit step in ``y`` the estimate has moved ``1 - (1 - alpha)^n`` of the way in ``n``
  readings.
- ``kalman``: scalar Kalman filter on the first-order model

      H_{k+1} = a H_k + b u_k + c + w_k,   w_k ~ N(0, q)     (u_k: the actuator of update k)
      y_k     = H_k + v_k,                 v_k ~ N(0, r)

  Reading ``y_k``: predict ``Ĥ⁻ = a Ĥ_{k-1} + b u_{k-1} + c``, ``P⁻ = a² P_{k-1} + q``; gain
  ``K = P⁻ / (P⁻ + r)``; correct ``Ĥ_k = Ĥ⁻ + K (y_k - Ĥ⁻)``, ``P_k = (1 - K) P⁻``. The first
  reading initialises the estimate (a diffuse prior): ``Ĥ_0 = y_0``, ``P_0 = r``. The gain
  converges to the steady state of the scalar Riccati equation, ``K = P / (P + r)`` with ``P``
  the positive root of ``P² + (r (1 - a²) - q) P - q r = 0`` (``a = 1``, ``q = r``: ``K`` =
  0.618..., the inverse golden ratio). The defaults ``a = 1, b = c = 0`` are a random walk (a
  smoother that knows nothing of the actuator); an identified model (``llm_rl.sysid``) supplies
  ``a, b, c`` (per update), ``q`` (its one-step residual variance) and ``r`` (the sampling noise of
  the reading).

A filter's state (:meth:`SensorFilter.state_dict`) goes into the trainer's checkpoint, so a
resumed run filters exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ctrlbench.options import OptionError, Options, option
from ctrlbench.registry import Registry

__all__ = [
    "FILTERS",
    "SENSOR_FILTERS",
    "EMAFilter",
    "KalmanFilter",
    "NoFilter",
    "SensorConfig",
    "SensorFilter",
    "make_filter",
    "steady_state_gain",
]

#: The registered filter names (:data:`SENSOR_FILTERS`), for :class:`SensorConfig` ``.filter``.
FILTERS = ("none", "ema", "kalman")
#: Which filters read which :class:`SensorConfig` fields (a field another filter reads must stay
#: at its default: a setting without effect is an error, not a silent no-op).
_READS = {"none": (), "ema": ("alpha",), "kalman": ("a", "b", "c", "q", "r")}


@dataclass(frozen=True)
class SensorConfig(Options):
    """The entropy sensor's filter and its settings (``--sensor.filter ema --sensor.alpha 0.3``).

    Only the chosen filter's fields may differ from their defaults: ``ema`` reads ``alpha``;
    ``kalman`` reads ``a, b, c, q, r`` (the model ``H_{k+1} = a H_k + b u_k + c + w``,
    ``y = H + v``, per GRPO update, entropy in nats, ``u`` in the actuator's unit).
    """

    label: ClassVar[str] = "sensor"
    filter: str = option("none", "Entropy filter the controller reads: none, ema, kalman.",
                         choices=FILTERS)
    alpha: float = option(0.3, "ema: weight of the newest reading (1 = no filtering).",
                          gt=0, le=1)
    a: float = option(1.0, "kalman: entropy carried over per update (H_{k+1} = a H_k + ...).")
    b: float = option(0.0, "kalman: entropy change per unit of actuator per update "
                      "(nats / actuator unit).")
    c: float = option(0.0, "kalman: constant entropy drift per update (nats).")
    q: float = option(1e-3, "kalman: process-noise variance Var(w) (nats^2 per update).", ge=0)
    r: float = option(1e-2, "kalman: measurement-noise variance Var(v) of one reading (nats^2; "
                      "> 0: a noise-free reading needs no filter).", gt=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        reads = _READS[self.filter]
        for name in ("alpha", "a", "b", "c", "q", "r"):
            default = type(self).__dataclass_fields__[name].default
            if name not in reads and getattr(self, name) != default:
                users = [f for f, fields in _READS.items() if name in fields]
                raise OptionError(
                    f"sensor.{name} = {getattr(self, name)!r} has no effect with sensor.filter = "
                    f"{self.filter!r} (it is read by: {', '.join(users)}); valid: leave it at "
                    f"{default!r} or choose sensor.filter {' / '.join(repr(u) for u in users)}"
                )


SENSOR_FILTERS: Registry[type[SensorFilter]] = Registry("sensor filter")
"""Entropy filters by name: the class, called with a :class:`SensorConfig`."""


class SensorFilter(ABC):
    """Base: turns entropy readings into estimates; its state is explicit and checkpointed.

    Parameters
    ----------
    config:
        The :class:`SensorConfig` (the filter reads its own fields only).
    """

    def __init__(self, config: SensorConfig) -> None:
        self.config = config
        #: The latest estimate (``None`` before the first reading).
        self.estimate: float | None = None

    def update(self, reading: float, actuator: float = 0.0) -> float:
        """Take the reading ``y_k`` of update ``k`` and return the estimate ``Ĥ_k``.

        ``actuator`` is ``u_k``, the actuator value of update ``k`` (it moves ``H_{k+1}``, so a
        model-based filter uses it to predict the next reading).

        Raises
        ------
        ValueError
            ``reading`` or ``actuator`` is not a finite number.
        """
        for name, value in (("reading", reading), ("actuator", actuator)):
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError(f"entropy filter {self.config.filter!r}: the {name} must be a "
                                 f"finite number, got {value!r}")
        self.estimate = float(self._update(float(reading), float(actuator)))
        return self.estimate

    @abstractmethod
    def _update(self, reading: float, actuator: float) -> float: ...

    def state_dict(self) -> dict[str, Any]:
        """The filter's state as plain numbers (for checkpoints)."""
        return {"estimate": self.estimate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        est = state["estimate"]
        self.estimate = None if est is None else float(est)


@SENSOR_FILTERS.register("none")
class NoFilter(SensorFilter):
    """No filtering: the estimate is the reading."""

    def _update(self, reading: float, actuator: float) -> float:
        return reading


@SENSOR_FILTERS.register("ema")
class EMAFilter(SensorFilter):
    """Exponential moving average ``Ĥ_k = alpha y_k + (1 - alpha) Ĥ_{k-1}``, ``Ĥ_0 = y_0``."""

    def _update(self, reading: float, actuator: float) -> float:
        if self.estimate is None:
            return reading
        alpha = self.config.alpha
        return alpha * reading + (1.0 - alpha) * self.estimate


@SENSOR_FILTERS.register("kalman")
class KalmanFilter(SensorFilter):
    """Scalar Kalman filter on ``H_{k+1} = a H_k + b u_k + c + w``, ``y = H + v`` (module doc)."""

    def __init__(self, config: SensorConfig) -> None:
        super().__init__(config)
        #: Variance of the estimate after the latest reading.
        self.variance: float | None = None
        #: Kalman gain used at the latest reading (1 at the first: it initialises the estimate).
        self.gain: float | None = None
        self._last_actuator = 0.0

    def _update(self, reading: float, actuator: float) -> float:
        cfg = self.config
        if self.estimate is None or self.variance is None:
            self.variance, self.gain = cfg.r, 1.0
            est = reading
        else:
            # PREDICT with the actuator of the previous update, then CORRECT with the reading.
            prior = cfg.a * self.estimate + cfg.b * self._last_actuator + cfg.c
            p_prior = cfg.a * cfg.a * self.variance + cfg.q
            self.gain = p_prior / (p_prior + cfg.r)
            est = prior + self.gain * (reading - prior)
            self.variance = (1.0 - self.gain) * p_prior
        self._last_actuator = actuator
        return est

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "variance": self.variance, "gain": self.gain,
                "last_actuator": self._last_actuator}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.variance = None if state["variance"] is None else float(state["variance"])
        self.gain = None if state["gain"] is None else float(state["gain"])
        self._last_actuator = float(state["last_actuator"])


def steady_state_gain(a: float, q: float, r: float) -> float:
    """The Kalman gain the filter converges to: ``P / (P + r)`` with ``P`` the positive root of
    ``P² + (r (1 - a²) - q) P - q r = 0`` (the scalar Riccati equation of the prediction
    variance). ``q = 0`` with ``|a| < 1`` gives 0 (the model alone is trusted)."""
    if not (r > 0 and q >= 0):
        raise ValueError(f"steady_state_gain needs q >= 0 and r > 0, got q={q!r}, r={r!r}")
    lin = r * (1.0 - a * a) - q
    p = (-lin + math.sqrt(lin * lin + 4.0 * q * r)) / 2.0
    return p / (p + r)


def make_filter(config: SensorConfig) -> SensorFilter:
    """Build the registered filter ``config.filter`` (``KeyError`` lists the valid names)."""
    return SENSOR_FILTERS.load(config.filter)(config)
