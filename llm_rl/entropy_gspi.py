"""Gain-scheduled, asymmetric PI with feed-forward on the entropy bonus (``gs-pi``).

The identified entropy plants (:mod:`llm_rl.sysid`, studies/llm_entropy_sysid.py) have an input
gain that grows with the entropy (an ``H u`` term: the bonus pushes harder the flatter the
policy already is) and a runaway region above ~1.2 nats; the bonus cannot lower the entropy
(it saturates at 0). This PI addresses each:

    e_k = H* - H_k,   s_k = clip((H* / H_k)^sched_power, 1/sched_max, sched_max),
    r_k = above_ratio if e_k < 0 else 1,
    u_{k+1} = clip(u_ff + I_k + r_k s_k kp e_k, u_low, u_high),
    I_{k+1} = I_k + r_k s_k ki e_k   (unless the output sits at a limit e_k pushes it into).

- ``u_ff``: the model's equilibrium bonus at H* (feed-forward); the integral carries the trim.
- ``sched_power``: gains scaled by ``(H*/H)^p`` (p = 1 inverts an input gain proportional to
  H; 0 = no scheduling), bounded by ``sched_max``.
- ``above_ratio``: above H* both terms act ``above_ratio`` times harder (back off faster than
  it pushes: a take-off is cut before the next delayed step builds it up).
- conditional integration: the integral does not move further into a limit the output already
  sits at (anti-windup), and is kept within ``[u_low - u_ff, u_high - u_ff]``.

Registered in :data:`llm_rl.entropy_control.ENTROPY_CONTROLLERS` as ``gs-pi`` (lazy entry
point, options :class:`GSPIOptions`; its field names avoid ``kp``/``u_max``..., which are the
``pid`` controller's flags).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ctrlbench.options import OptionError, Options, option
from llm_rl.entropy_control import ControlConfig, EntropyController
from llm_rl.validation import check_field

__all__ = ["GSPIOptions", "GainScheduledPI"]


@dataclass(frozen=True)
class GSPIOptions(Options):
    """Options of the ``gs-pi`` entropy controller (bonus actuator)."""

    label: ClassVar[str] = "control"
    gain_p: float = option(1.0, "Proportional gain at H* (bonus per nat).", ge=0)
    gain_i: float = option(0.1, "Integral gain at H* (bonus per nat per step).", ge=0)
    u_ff: float = option(0.0, "Feed-forward bonus: the model's equilibrium bonus at H*.")
    u_low: float = option(0.0, "Lower bonus limit.")
    u_high: float = option(1.0, "Upper bonus limit (> u_low).")
    above_ratio: float = option(1.0, "Gain multiplier while H > H* (>= 1: back off faster).",
                                ge=1)
    sched_power: float = option(0.0, "Gains scaled by (H*/H)^sched_power (0 = fixed gains).",
                                ge=0, le=4)
    sched_max: float = option(4.0, "Bound of the schedule factor: in [1/sched_max, sched_max].",
                              ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "u_high", self.u_high > self.u_low, f"> u_low ({self.u_low})")
        check_field(self, "u_ff", self.u_low <= self.u_ff <= self.u_high,
                    f"in [u_low, u_high] = [{self.u_low}, {self.u_high}]")


class GainScheduledPI(EntropyController):
    """Asymmetric, gain-scheduled PI with feed-forward and conditional integration (module
    doc)."""

    options_class = GSPIOptions

    def __init__(self, config: ControlConfig) -> None:
        super().__init__(config)
        if config.actuator != "entropy_coef":
            raise OptionError(f"the gs-pi controller drives the entropy bonus; needs "
                              f"control.actuator = 'entropy_coef', got {config.actuator!r}")
        self.opts: GSPIOptions = config.options
        self.integral = 0.0
        self.value = float(self.opts.u_ff)

    def schedule(self, entropy: float) -> float:
        """The gain factor ``s`` at the reading ``entropy`` (1 at H*)."""
        o = self.opts
        if o.sched_power == 0.0:
            return 1.0
        s = (self.config.setpoint / max(entropy, 1e-6)) ** o.sched_power
        return min(max(s, 1.0 / o.sched_max), o.sched_max)

    def _update(self, entropy: float) -> float:
        o = self.opts
        e = self.config.setpoint - entropy
        g = self.schedule(entropy) * (o.above_ratio if e < 0 else 1.0)
        raw = o.u_ff + self.integral + g * o.gain_p * e
        u = min(max(raw, o.u_low), o.u_high)
        # conditional integration: not further into a limit the output sits at
        if not ((u >= o.u_high and e > 0) or (u <= o.u_low and e < 0)):
            self.integral = min(max(self.integral + g * o.gain_i * e, o.u_low - o.u_ff),
                                o.u_high - o.u_ff)
        return u

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "integral": self.integral}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.integral = float(state["integral"])
