"""Open-loop excitation schedules on the entropy actuator, for system identification.

Two entropy controllers that ignore the measurement and play a schedule known in advance, so a
training run logs the entropy response to a rich input (:mod:`llm_rl.sysid` fits models to it):

- ``prbs``: a pseudo-random binary sequence between ``low`` and ``high``; each bit is held for
  ``hold`` steps, the bits drawn from ``numpy.random.default_rng(prbs_seed)`` (reproducible and
  independent of the training seed), after ``warmup`` steps at ``warmup_value`` (e.g. to let
  the entropy fall to the operating point first).
- ``steps``: a piecewise-constant schedule ``((step, value), ...)``: from each listed step on the
  actuator takes that value (before the first listed step: the first value).

The schedule index is the GRPO step: the value at step ``k`` is what the trainer applies in step
``k`` (its metrics row logs it as ``actuator``). Both are registered in
:data:`llm_rl.entropy_control.ENTROPY_CONTROLLERS` by lazy ``"llm_rl.excitation:..."`` entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ctrlbench.options import OptionError, Options, option
from llm_rl.entropy_control import ControlConfig, EntropyController
from llm_rl.validation import check_field

__all__ = ["PRBSController", "PRBSOptions", "StepsController", "StepsOptions", "prbs_schedule",
           "steps_schedule"]


@dataclass(frozen=True)
class PRBSOptions(Options):
    """Options of the ``prbs`` excitation (open loop: the measurement is ignored)."""

    label: ClassVar[str] = "control"
    low: float = option(0.0, "PRBS lower actuator level.")
    high: float = option(0.2, "PRBS upper actuator level (> low).")
    hold: int = option(5, "PRBS: steps each bit is held (the shortest pulse).", ge=1)
    warmup: int = option(0, "PRBS: steps at warmup_value before the sequence starts.", ge=0)
    warmup_value: float = option(0.0, "PRBS: actuator value during the warmup steps.")
    prbs_seed: int = option(0, "PRBS: seed of the bit sequence (independent of the run's seed).",
                            ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "high", self.high > self.low, f"> low ({self.low})")


@dataclass(frozen=True)
class StepsOptions(Options):
    """Options of the ``steps`` excitation (open loop: the measurement is ignored)."""

    label: ClassVar[str] = "control"
    schedule: tuple[tuple[float, ...], ...] = option(
        ((0, 0.0), (40, 0.1), (80, 0.0)),
        "Multi-step schedule: (step, value) pairs with increasing integer steps >= 0; the value "
        "holds from its step on.")

    def __post_init__(self) -> None:
        super().__post_init__()
        steps_schedule(self.schedule, 1)  # validates


def prbs_schedule(options: PRBSOptions, n: int) -> np.ndarray:
    """The first ``n`` actuator values of the ``prbs`` excitation (a pure function of options)."""
    if n < 0:
        raise ValueError(f"n = {n!r} must be >= 0")
    o = options
    n_bits = max((n - o.warmup + o.hold - 1) // o.hold, 0)
    bits = np.random.default_rng(o.prbs_seed).integers(0, 2, size=n_bits)
    levels = np.where(np.repeat(bits, o.hold) > 0, o.high, o.low)
    return np.concatenate([np.full(min(o.warmup, n), o.warmup_value), levels])[:n].astype(float)


def steps_schedule(schedule: tuple[tuple[float, ...], ...], n: int) -> np.ndarray:
    """The first ``n`` actuator values of a ``steps`` schedule (validated here: an empty
    schedule, a pair that is not ``(step, value)``, a step that is not an integer >= 0 or not
    increasing, or a non-finite value raise :class:`~ctrlbench.options.OptionError`)."""
    if not schedule:
        raise OptionError("control.schedule = () is empty; valid: (step, value) pairs, e.g. "
                          "((0, 0.0), (40, 0.1))")
    last = -1
    for pair in schedule:
        if len(pair) != 2:
            raise OptionError(f"control.schedule entry {pair!r} is not a (step, value) pair")
        step, value = pair
        if not float(step).is_integer() or step < 0 or step <= last:
            raise OptionError(f"control.schedule step {step!r} must be an integer >= 0 and "
                              f"greater than the previous step ({last})")
        if not np.isfinite(value):
            raise OptionError(f"control.schedule value {value!r} at step {step!r} must be finite")
        last = int(step)
    out = np.full(n, float(schedule[0][1]))
    for step, value in schedule:
        out[int(step):] = float(value)
    return out


class _ScheduleController(EntropyController):
    """Base: plays ``self.schedule(k)`` at step ``k``; counts its updates."""

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        self.k = 0
        self.value = self.at(0)

    def at(self, k: int) -> float:
        """The actuator value of step ``k``."""
        raise NotImplementedError

    def _update(self, entropy: float) -> float:
        self.k += 1
        return self.at(self.k)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "k": self.k}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.k = int(state["k"])


class PRBSController(_ScheduleController):
    """Pseudo-random binary sequence between ``low`` and ``high``, bits held ``hold`` steps."""

    options_class = PRBSOptions

    def at(self, k: int) -> float:
        return float(prbs_schedule(self.config.options, k + 1)[k])


class StepsController(_ScheduleController):
    """Piecewise-constant schedule of ``(step, value)`` pairs."""

    options_class = StepsOptions

    def at(self, k: int) -> float:
        return float(steps_schedule(self.config.options.schedule, k + 1)[k])
