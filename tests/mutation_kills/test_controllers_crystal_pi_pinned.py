"""controllers.crystal_pi pinned (kills mutmut's survivors): the SIMC rule at the edges of its
domain, the step-response identification on a synthetic FOPDT plant (the fit must recover the
plant it was given; the PBE runs it would make are checked, not made), the design's reading of
the plant (start signal, rate limit, tau_c) and the PI's output limits."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins)
import plants.crystallization.model as cm
from controllers.crystal_pi import (
    FOPDT_MEDIUM,
    CrystalPI,
    CrystalPIOptions,
    Fopdt,
    design_crystallization_pi,
    identify_step_response,
    simc_pi,
)
from controllers.pid_design import PIGains
from ctrlbench.signals import SignalSpec
from plants.crystallization.references import GRADES


# -- SIMC ------------------------------------------------------------------------------------
def test_simc_at_the_edges_of_its_domain():
    # tau = 0.5 s, tau_c = 0.5 s and theta = 0 are allowed: kp = 0.5 / (-0.5 (0.5 + 0)) = -2,
    # T_i = min(0.5, 4 * 0.5) = 0.5
    g = simc_pi(Fopdt(gain=-0.5, tau=0.5, theta=0.0), tau_c=0.5)
    assert (g.kp, g.ki, g.t_equiv) == pytest.approx((-2.0, -4.0, 0.5), rel=1e-14)
    g = simc_pi(Fopdt(gain=-0.5, tau=4.0, theta=0.5))  # tau_c = theta = 0.5: kp = -8, T_i = 4
    assert (g.kp, g.ki) == pytest.approx((-8.0, -2.0), rel=1e-14)
    for model, tau_c in ((Fopdt(-0.5, 0.0, 1.0), None), (Fopdt(-0.5, 1.0, 1.0), 0.0),
                         (Fopdt(-0.5, 1.0, -1.0), 1.0), (Fopdt(math.inf, 1.0, 1.0), None)):
        with pytest.raises(ValueError, match=r"^SIMC needs gain != 0, tau > 0, tau_c > 0, "
                                             r"theta >= 0; got Fopdt\("):
            simc_pi(model, tau_c)


# -- identification ------------------------------------------------------------------------
K, TAU, THETA = -0.8, 9000.0, 1500.0  # the synthetic plant: um/C, s, s


class FakeBatches:
    """``simulate_open_loop`` replaced by an exact FOPDT plant on the mean size; records calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kw: Any) -> Any:
        self.calls.append(kw)
        profile = np.asarray(kw["jacket_profile"], dtype=float)
        t = np.arange(profile.size + 1) * 600.0
        size = np.full(t.size, 100.0)
        before = 25.0  # each change of the jacket drives K change (1 - exp(-(t - t_i - theta)))
        for i, u in enumerate(profile):
            if u != before:
                lag = np.maximum(t - i * 600.0 - THETA, 0.0)
                size += K * (u - before) * (1.0 - np.exp(-lag / TAU))
                before = u

        class Result:
            pass

        r = Result()
        r.t, r.mean_size = t, size  # type: ignore[attr-defined]
        return r


@pytest.mark.parametrize("kw, k_step", [({}, 12), ({"t_step": 3000.0, "step": -3.0,
                                                      "base": 27.0, "grade": "coarse",
                                                      "n_cells": 40}, 5)])
def test_identification_recovers_a_known_fopdt(monkeypatch, kw, k_step):
    fake = FakeBatches()
    monkeypatch.setattr(cm, "simulate_open_loop", fake)
    fit = identify_step_response(**kw)
    # exact data: the fit lands on the plant to ~1e-14; 1e-10 leaves room for rounding only
    assert (fit.gain, fit.tau, fit.theta) == pytest.approx((K, TAU, THETA), rel=1e-10)
    base, step = kw.get("base", 25.0), kw.get("step", -5.0)
    cond = GRADES[kw.get("grade", "medium")].conditions
    assert len(fake.calls) == 2
    for call, delta in zip(fake.calls, (0.0, step)):
        want = np.full(144, base)
        want[k_step:] += delta
        np.testing.assert_array_equal(call.pop("jacket_profile"), want)
        assert call == dict(seed_mean=cond.seed_mean, seed_sd=cond.seed_sd,
                            seed_mass_fraction=cond.seed_mass_fraction, c0=cond.c0,
                            temp0=cond.temp0, grid=cm.SizeGrid(n_cells=kw.get("n_cells", 250)))


# -- design -----------------------------------------------------------------------------------
MEAN, REF = SignalSpec("mean_size", "um"), SignalSpec("mean_size_ref", "um", tracks="mean_size")
T, TJ = SignalSpec("T", "degC"), SignalSpec("T_j_applied", "degC")
TJ_REF = SignalSpec("T_j_applied", "degC", tracks="T_j")  # a set-point, not the read-back


ABSENT = object()


class FakePlant(gym.Env):  # type: ignore[type-arg]
    """Just what the design reads: signals, dt and (optionally) the rate limit."""

    def __init__(self, obs: tuple[SignalSpec, ...], rate: Any = ABSENT) -> None:
        self.observation_signals = obs
        self.action_signals = (SignalSpec("T_j", "degC", 5.0, 40.0),)
        self.dt = 600.0
        if rate is not ABSENT:
            self.action_rate_limit = rate


def test_design_reads_the_start_signal_rate_limit_and_tau_c():
    opts = CrystalPIOptions(tau_c=5000.0)
    c = design_crystallization_pi(FakePlant((MEAN, T, REF, TJ), rate=np.array([4.0, 3.0])),
                                  None, opts)  # type: ignore[arg-type]
    assert (c.measured, c.reference, c.temperature) == (0, 2, 3)
    assert c.max_step == 3.0 and (c.u_low, c.u_high) == (5.0, 40.0)
    assert c.gains == simc_pi(FOPDT_MEDIUM, 5000.0)
    assert c.gains != simc_pi(FOPDT_MEDIUM)
    c = design_crystallization_pi(FakePlant((TJ_REF, MEAN, T, REF)), None,  # type: ignore[arg-type]
                                  CrystalPIOptions())
    assert c.temperature == 2 and c.max_step == math.inf  # no read-back, no rate limit
    c = design_crystallization_pi(FakePlant((MEAN, REF, T), rate=None), None,  # type: ignore[arg-type]
                                  CrystalPIOptions(bias=12.0))
    assert c.temperature == 2 and c.max_step == math.inf and c.bias == 12.0


def test_pi_output_is_rate_limited_upwards_and_bounded():
    gains = PIGains(kp=-0.2, ki=-1e-3, t_equiv=1.0)
    obs = np.array([160.0, 140.0, 25.0])  # size 20 um above its set-point
    c = CrystalPI(600.0, 0, 1, 2, gains, 5.0, 40.0, max_step=2.0, bias=30.0)
    assert c.compute(obs)[0] == 30.0  # bumpless start at the bias
    # then the integral adds 600 s * 1e-3 * 20 um = 12 C: 42 C asked, 30 + 2 given
    assert c.compute(obs)[0] == 32.0
    c = CrystalPI(600.0, 0, 1, 2, gains, 5.0, 40.0, bias=38.0)
    assert c.compute(obs)[0] == 38.0
    assert c.compute(obs)[0] == 40.0  # 50 C asked: the upper bound
