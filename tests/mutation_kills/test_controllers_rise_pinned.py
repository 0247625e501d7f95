"""controllers.rise pinned (kills mutmut's survivors): the span rule, ``make_rise``'s reading of
the plant (tracked signal, bias at the bounds, scales, anti-windup), the constructor's checks,
and the law's conditional integration worked out by hand step by step, also where the output
lands exactly on a bound."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins)
from controllers.rise import RISE, RISEOptions, _span, make_rise
from ctrlbench.options import OptionError
from ctrlbench.signals import SignalSpec


def test_span_takes_the_first_finite_positive_span():
    free, flat = SignalSpec("free"), SignalSpec("flat", low=1.0, high=1.0)
    assert _span(free, flat, SignalSpec("half", low=0.25, high=0.75)) == 0.5
    assert _span(free, flat) == 1.0


class FakePlant(gym.Env):  # type: ignore[type-arg]
    def __init__(self, obs: tuple[SignalSpec, ...], act: SignalSpec) -> None:
        self.observation_signals, self.action_signals, self.dt = obs, (act,), 0.05


X = SignalSpec("x", "m", -2.0, 2.0)
X_REF = SignalSpec("x_ref", "m", tracks="x")  # unbounded reference: the error scale is x's
V = SignalSpec("v", "m/s", -1.0, 1.0)
V_REF = SignalSpec("v_ref", "m/s", -0.5, 0.5, tracks="v")
U = SignalSpec("F", "N", -3.0, 5.0)


def test_make_rise_reads_the_plant():
    plant = FakePlant((X, X_REF, V, V_REF), U)
    r = make_rise(plant, RISEOptions(bias=5.0, anti_windup=False))
    assert (r.measured, r.reference, r.bias, r.anti_windup) == (0, 1, 5.0, False)
    assert (r.error_scale, r.output_scale, r.dt) == (4.0, 8.0, 0.05)
    r = make_rise(plant, RISEOptions(bias=-3.0, track="v"))
    assert (r.measured, r.reference, r.bias, r.anti_windup) == (2, 3, -3.0, True)
    assert r.error_scale == 1.0  # the reference's own span first
    with pytest.raises(OptionError, match=r"track = 'w' is out of range; valid: one of 'x', "
                                          r"'v'$"):
        make_rise(plant, RISEOptions(track="w"))


def test_constructor_checks():
    kw: dict[str, Any] = dict(ks=1.0, alpha1=1.0, alpha2=1.0, beta=0.0, tau_d=0.0)
    assert RISE(0.1, 0, 1, -1.0, 2.0, bias=2.0, **kw).bias == 2.0
    with pytest.raises(ValueError, match=r"^bias 2\.5 is outside the action bounds "
                                         r"\[-1\.0, 2\.0\]$"):
        RISE(0.1, 0, 1, -1.0, 2.0, bias=2.5, **kw)
    for es, us in ((0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match=rf"^scales must be positive, got {es}, {us}$"):
            RISE(0.1, 0, 1, -1.0, 2.0, bias=0.0, error_scale=es, output_scale=us, **kw)
    r = RISE(0.1, 0, 1, -1.0, 2.0, bias=0.0, **kw)
    with pytest.raises(ValueError, match=r"^RISE: the tracking error must be finite, got nan$"):
        r.update(math.nan)
    with pytest.raises(ValueError, match=r"^RISE: observation must be finite, got measured nan, "
                                         r"reference 1\.0$"):
        r.compute(np.array([math.nan, 1.0]))


def rise(alpha2: float = 5.0) -> RISE:
    """dt 1, k1 = ks + 1 = 2, alpha1 1, no sign term, no filter; output 0.5 + 2 law in [-1, 2]."""
    return RISE(1.0, 0, 1, -1.0, 2.0, ks=1.0, alpha1=1.0, alpha2=alpha2, beta=0.0, tau_d=0.0,
                bias=0.5, output_scale=2.0)


def step(r: RISE, e: float) -> tuple[float, float, float, float]:
    u = r.update(e)
    i = r.last_info
    return u, i["integral"], i["saturated"], i["integrating"]


def test_a_zero_error_integrates_nothing():
    r = rise()
    assert step(r, 0.0) == (0.5, 0.0, 0.0, 1.0)
    assert step(r, 0.0) == (0.5, 0.0, 0.0, 1.0)  # sgn(0) = 0: no beta term either


def test_clamped_at_the_top_keeps_only_what_reaches_the_bound():
    r = rise()
    assert step(r, 0.5) == (0.5, 0.0, 0.0, 1.0)  # e2(0) = 0.5; no integral at the first step
    # e2 = 0.5, prop = 0, increment 1 * 2 * 5 * 0.5 = 5: 0.5 + 2 * 5 > 2, so the integral
    # becomes (2 - 0.5) / 2 - 0 = 0.75 (1.5 in output units)
    assert step(r, 0.5) == (2.0, 1.5, 1.0, 0.0)
    r = rise()
    step(r, 0.1)
    # e1 0.2: e1' = 0.1, e2 = 0.3, prop = 2 (0.3 - 0.1) = 0.4, increment 3: the integral keeps
    # max(0, 0.75 - 0.4) = 0.35
    u, integral, sat, integrating = step(r, 0.2)
    assert (u, sat, integrating) == (2.0, 1.0, 0.0)
    assert integral == pytest.approx(0.7, rel=1e-14)


def test_clamped_at_the_bottom_keeps_only_what_reaches_the_bound():
    r = rise()
    step(r, -0.5)
    assert step(r, -0.5) == (-1.0, -1.5, -1.0, 0.0)  # min(0, (-1 - 0.5) / 2 - 0) = -0.75
    r = rise()
    step(r, -0.1)
    # e2 = -0.3, prop = -0.4, increment -3: min(0, -0.75 + 0.4) = -0.35
    u, integral, sat, integrating = step(r, -0.2)
    assert (u, sat, integrating) == (-1.0, -1.0, 0.0)
    assert integral == pytest.approx(-0.7, rel=1e-14)


def test_landing_exactly_on_a_bound_is_not_saturation():
    # alpha2 0.75: increment 1 * 2 * 0.75 * 0.5 = 0.75, output 0.5 + 2 * 0.75 = 2.0 exactly
    r = rise(alpha2=0.75)
    step(r, 0.5)
    assert step(r, 0.5) == (2.0, 1.5, 0.0, 1.0)
    r = rise(alpha2=0.75)
    step(r, -0.5)
    assert step(r, -0.5) == (-1.0, -1.5, 0.0, 1.0)


def test_no_increment_no_clamp_even_beyond_a_bound():
    r = rise()
    step(r, -1.0)  # e2(0) = -1
    assert step(r, -1.0) == (-1.0, -1.5, -1.0, 0.0)  # clamped at the bottom: integral -0.75
    # e1 -0.5: e1' = 0.5, e2 = 0: no increment; prop = 2 (0 + 1) = 2, output 0.5 + 2 * 1.25 = 3:
    # beyond the top, saturated, but nothing was clamped (the integral stays)
    assert step(r, -0.5) == (2.0, -1.5, 1.0, 1.0)
    r = rise()
    step(r, 1.0)
    assert step(r, 1.0) == (2.0, 1.5, 1.0, 0.0)
    # e1 0.5: e2 = -0.5 + 0.5 = 0, prop = -2, output 0.5 + 2 (-2 + 0.75) = -2: below, unclamped
    assert step(r, 0.5) == (-1.0, 1.5, -1.0, 1.0)


def test_a_small_positive_increment_below_the_bottom_is_integrated():
    r = rise(alpha2=0.05)
    step(r, 1.0)  # e2(0) = 1
    # e1 0.2: e1' = -0.8, e2 = -0.6, increment 2 * 0.05 * (-0.6) = -0.06 < 0 and the output
    # 0.5 + 2 (2 (-1.6) - 0.06) = -6.02 is below: clamped to min(0, -0.75 + 3.2) = 0
    assert step(r, 0.2) == (-1.0, 0.0, -1.0, 0.0)
    # e1 0.35: e1' = 0.15, e2 = 0.5, increment 0.05 (in (0, 1)), prop = 2 (0.5 - 1) = -1:
    # output 0.5 + 2 (-1 + 0.05) = -1.4, below the bottom but rising: integrated, not clamped
    u, integral, sat, integrating = step(r, 0.35)
    assert (u, sat, integrating) == (-1.0, -1.0, 1.0)
    assert integral == pytest.approx(0.1, rel=1e-12)
