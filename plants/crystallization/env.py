"""``ctrlbench/Crystallization-v0``: mean-size control of a dextrose batch cooling crystallizer."""

from __future__ import annotations

from typing import Any, SupportsFloat

import numpy as np
from numpy.typing import NDArray

from ctrlbench.model import PlantModel
from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec
from plants.crystallization.model import (
    CONTROL_PERIOD,
    CrystalParams,
    PopulationBalance,
    SizeGrid,
    SolverFailure,
)
from plants.crystallization.moments import (
    INPUTS,
    MEAN_SIZE,
    STATES,
    crystallization_model,
    scale_moments,
)
from plants.crystallization.options import CrystallizationOptions
from plants.crystallization.references import (
    GRADES,
    Conditions,
    draw_conditions,
    random_jacket_profile,
    reached_size,
)

__all__ = ["BATCH_STEPS", "Crystallization"]

Obs = NDArray[np.float64]
BATCH_STEPS = 144
"""Control periods per batch (24 h of 10 min)."""


class Crystallization(Plant):
    """Mean crystal size of a dextrose batch cooling crystallizer, driven by the jacket.

    The plant is the finite-volume population balance of :mod:`plants.crystallization.model`
    (MODELS.md section 3: Sitapure & Kwon 2023); ``model()`` is the method-of-moments model of
    :mod:`plants.crystallization.moments` with nominal kinetics.

    ## Observation

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0-4 | ``mu0`` .. ``mu4`` | 1e9 (100 um)^j / kg | [0, 1e4] .. [0, 100] | scaled moments |
    | 5 | ``c`` | kg/kg | [0, 1.5] | dissolved dextrose per kg slurry |
    | 6 | ``T`` | degC | [0, 60] | slurry temperature |
    | 7 | ``mean_size`` | um | [0, 500] | ``mu_4 / mu_3`` |
    | 8 | ``mean_size_ref`` | um | [0, 500] | set-point of ``mean_size`` (``tracks``) |
    | 9 | ``T_j_applied`` | degC | [0, 60] | jacket temperature applied over the last period |

    Signals 0-7 are measurements: with ``noise > 0`` each is multiplied by
    ``1 + noise * N(0, 1)`` (then clipped to its bounds); the set-point and the applied jacket
    temperature (the actuator's own read-back, after the rate limit) are exact. Signal 9 follows
    the ``<action>_applied`` convention (plants/README.md), so controllers that limit moves (the
    generic ``"mpc"``, the ``"pid"`` design) start from the value the plant really holds; at reset
    it is the initial slurry temperature.

    ## Action

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``T_j`` | degC | [5, 40] | jacket temperature command |

    The applied jacket temperature moves from its previous value toward the command by at most
    ``action_rate_limit = rate_limit * 10`` C per period (default 0.5 C/min: 5 C) and is held
    over the period (``info["T_j_applied"]``, ``info["rate_limited"]``); it starts at the
    initial slurry temperature. A command outside [5, 40] C or NaN raises ``ActionError``
    naming the value.

    ## Reward
    ``-((mean_size_ref - mean_size) / mean_size_ref)^2`` per period (true, noise-free size).

    ## Starting state
    Seeds normal (mean, sd, mass fraction), dissolved dextrose ``c0`` and slurry temperature
    ``T0``: from the grade, or (``grade="random"``) drawn uniformly from the option ranges by the
    reset seed, with the set-point the final size a random hourly jacket profile reaches
    (:mod:`plants.crystallization.references`). With ``kinetic_uncertainty`` the six kinetic
    constants are multiplied by factors uniform in ``1 +- growth_spread`` (``k_g, E_g, g``) and
    ``1 +- nucleation_spread`` (``k_b, b, n_b``), drawn per reset seed; the set-point is then
    computed on that system. ``info`` of ``reset`` lists all of it.

    ## Episode end
    Truncates after 144 periods, the end of the 24 h batch (``info["final_deviation"]`` is the
    relative final set-point deviation ``(ref - size) / ref``); a further ``step`` raises
    ``EpisodeEndedError`` until ``reset``. Terminates when the stiff integrator fails: then
    ``info["solver_failed"]`` is ``True``, ``info["solver_message"]`` says why and the
    observation is the last finite one. The registered id also truncates at 144 steps.

    ## Arguments
    Keyword options of :class:`~plants.crystallization.options.CrystallizationOptions`.

    ## Version history
    - v0: first version.
    """

    def __init__(self, **options: Any) -> None:
        opts = CrystallizationOptions.build(options, what="plant 'Crystallization-v0'")
        self.options = opts
        self.dt = CONTROL_PERIOD
        self.grid = SizeGrid(n_cells=opts.n_cells)
        self._nominal = CrystalParams()
        self._model = crystallization_model(self._nominal, self.grid.l_min)
        ref = SignalSpec("mean_size_ref", "um", 0.0, 500.0, "mean-size set-point (grade)",
                         tracks="mean_size")
        applied = SignalSpec("T_j_applied", "degC", 0.0, 60.0,
                             "jacket temperature applied over the last period (exact)")
        self.set_signals((*STATES, MEAN_SIZE, ref, applied), INPUTS)
        self._low = np.array([s.low for s in self.observation_signals[:8]])
        self._high = np.array([s.high for s in self.observation_signals[:8]])
        self._max_step = opts.rate_limit * self.dt / 60.0
        #: Largest change of the applied jacket temperature per step [C] (read by MPC and PI).
        self.action_rate_limit = self._max_step
        self._pbe = PopulationBalance(self._nominal, self.grid)
        self._y = np.zeros(self.grid.n_cells + 1)
        self._f_scale = 1.0
        self._temp = self._jacket = 0.0
        self._setpoint = 0.0
        self._k = 0
        self._obs = np.zeros(10)

    def model(self) -> PlantModel:
        """Moments model with nominal kinetics (the plant itself is the PBE)."""
        return self._model

    # -- episode set-up ---------------------------------------------------------------------
    def _draw(self) -> tuple[Conditions, CrystalParams, float, dict[str, Any]]:
        opts, rng = self.options, self.np_random
        info: dict[str, Any] = {"grade": opts.grade}
        if opts.grade == "random":
            cond = draw_conditions(rng, opts.seed_mean_range, opts.seed_sd_range,
                                   opts.seed_mass_range, opts.c0_range, opts.temp0_range)
        else:
            cond = GRADES[opts.grade].conditions
        params = self._nominal
        if opts.kinetic_uncertainty:
            gs, ns = opts.growth_spread, opts.nucleation_spread
            growth = tuple(float(v) for v in rng.uniform(1 - gs, 1 + gs, 3))
            nucleation = tuple(float(v) for v in rng.uniform(1 - ns, 1 + ns, 3))
            params = params.perturbed(growth, nucleation)  # type: ignore[arg-type]
            info.update(growth_factors=growth, nucleation_factors=nucleation)
        if opts.setpoint is not None:
            setpoint = opts.setpoint
        elif opts.grade == "random":
            profile = random_jacket_profile(rng, cond.temp0)
            setpoint = reached_size(params, cond, profile, self.grid)
            info["setpoint_profile"] = profile
        else:
            setpoint = GRADES[opts.grade].setpoint
        return cond, params, min(max(setpoint, 1.0), 500.0), info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Obs, dict[str, Any]]:
        """Start a batch: seeds, concentration, temperature and set-point from the grade or the
        reset seed (see the class docstring)."""
        super().reset(seed=seed)
        cond, params, setpoint, info = self._draw()
        self._pbe = PopulationBalance(params, self.grid)
        self._y, self._f_scale = self._pbe.initial_state(
            cond.seed_mean, cond.seed_sd, cond.seed_mass_fraction, cond.c0)
        self._temp = self._jacket = cond.temp0
        self._setpoint = setpoint
        self._k = 0
        self._obs = self._measure()
        info.update(conditions=cond, params=params, setpoint=setpoint,
                    mean_size_true=self._mean_size())
        return self._obs.copy(), info

    # -- stepping ---------------------------------------------------------------------------
    def _mean_size(self) -> float:
        z, x = self._y[: self._pbe.n], self._pbe.x
        return float((z @ x**4) / max(float(z @ x**3), 1e-300))

    def _measure(self) -> Obs:
        mom = scale_moments(self._pbe.moments(self._y, self._f_scale))
        true = np.concatenate((mom, [self._y[-1], self._temp, self._mean_size()]))
        if self.options.noise > 0:
            true = true * (1.0 + self.options.noise * self.np_random.standard_normal(8))
        return np.concatenate((np.clip(true, self._low, self._high),
                               [self._setpoint, self._jacket]))

    def _step(self, action: NDArray[np.float64]
              ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        command = float(action[0])
        move = min(max(command - self._jacket, -self._max_step), self._max_step)
        applied = self._jacket + move
        info: dict[str, Any] = {"T_j_applied": applied, "rate_limited": applied != command,
                                "t": (self._k + 1) * self.dt, "solver_failed": False}
        try:
            y, temp = self._pbe.advance(self._y, self._f_scale, self._k * self.dt, self._temp,
                                        applied, self.dt, rtol=self.options.rtol,
                                        method=self.options.method)
        except SolverFailure as exc:
            info.update(solver_failed=True, solver_message=str(exc))
            err = (self._setpoint - self._mean_size()) / self._setpoint
            return self._obs.copy(), -(err**2), True, False, info
        self._y, self._temp, self._jacket = y, temp, applied
        self._k += 1
        self._obs = self._measure()
        size = self._mean_size()
        err = (self._setpoint - size) / self._setpoint
        info.update(mean_size_true=size, top_mass_fraction=self._top_fraction())
        batch_over = self._k >= BATCH_STEPS
        if batch_over:  # the batch is over: truncated, and stepping on is refused until reset
            info["final_deviation"] = err
            self._ended = "truncated"
        return self._obs.copy(), -(err**2), False, batch_over, info

    def _top_fraction(self) -> float:
        z, x3 = self._y[: self._pbe.n], self._pbe.x**3
        return float(z[-1] * x3[-1] / max(float(z @ x3), 1e-300))
