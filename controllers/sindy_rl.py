"""SINDy-RL (Zolman et al. 2024; MODELS.md section 6): Dyna-style RL on an ensemble-SINDy surrogate.

The loop (:func:`train_sindy_rl`):

1. collect ``random_steps`` real transitions with a uniformly random policy;
2. fit an :class:`EnsembleSINDy` dynamics model (discrete time, control-affine polynomial
   library, STLSQ, bagging and library ensembling, median coefficients) and, when the reward is
   not given in closed form, a sparse polynomial :class:`RewardModel`;
3. train the agent (any SB3 algorithm, built by ``make_agent``) **only** in the
   :class:`~ctrlbench.surrogate.SurrogateEnv` built from them;
4. run the agent on the real env for ``real_steps_per_round`` steps, refit on all real data, and
   go back to 3, ``refits`` times.

Every real interaction is counted (:attr:`SindyRLResult.real_steps`). :func:`distill` then fits a
sparse polynomial policy ``u = p(x)`` to the trained agent (:class:`PolynomialController`).

This module holds the loop (:class:`SindyRLConfig`, :class:`RealData`, :class:`RoundRecord`,
:class:`SindyRLResult`, :func:`train_sindy_rl`) and the distillation
(:class:`PolynomialController`, :func:`distill`). The models -- :class:`EnsembleSINDy`, its
settings :class:`SINDyConfig`, :class:`RewardModel` -- and the polynomial-feature helpers live in
:mod:`controllers.sindy_models`; the three classes are re-exported here.

pysindy is used (through :mod:`controllers.sindy_models`) for the library and the sparse
regression and imported inside the functions that need it; stable-baselines3 is not imported here
(the caller's ``make_agent`` builds the agent).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike, NDArray

from controllers.sindy_models import (
    EnsembleSINDy,
    RewardModel,
    SINDyConfig,
    _monomial_name,
    _monomials,
    _poly,
    _poly_text,
    _rows,
    _stlsq,
)
from ctrlbench.options import option
from ctrlbench.surrogate import SurrogateEnv

__all__ = [
    "EnsembleSINDy",
    "PolynomialController",
    "RealData",
    "RewardModel",
    "RoundRecord",
    "SINDyConfig",
    "SindyRLConfig",
    "SindyRLResult",
    "distill",
    "train_sindy_rl",
]

FloatArray = NDArray[np.float64]
RewardFn = Callable[[FloatArray, FloatArray, FloatArray], SupportsFloat]


# ====================================================================== the Dyna loop
@dataclass(frozen=True)
class SindyRLConfig(SINDyConfig):
    """Settings of :func:`train_sindy_rl` (the SINDy fields are inherited from
    :class:`SINDyConfig`; ``seed`` also seeds the random policy and the surrogate)."""

    random_steps: int = option(1000, "real steps of the uniformly random policy before the "
                               "first fit", ge=1)
    refits: int = option(5, "Dyna rounds: train in the surrogate, collect real data, refit",
                         ge=1)
    real_steps_per_round: int = option(1000, "real steps of the agent per round (stochastic "
                                       "policy)", ge=0)
    surrogate_steps_per_round: int = option(5000, "agent training steps in the surrogate per "
                                            "round", ge=1)
    surrogate_episode_steps: int = option(200, "episode length in the surrogate", ge=1)
    reset_from: str = option("any", "surrogate starts: any recorded real state, or only the "
                             "real reset observations", choices=("any", "initial"))
    termination_margin: float = option(0.1, "a surrogate episode ends when a state leaves the "
                                       "observation box by this fraction of its width",
                                       ge=0, le=math.inf)
    termination_reward: float | None = option(
        None, "surrogate reward per remaining step on termination; None: the lowest real "
        "reward seen (capped at 0)")
    reward_model: str = option("auto", "fit a reward model: auto = when no reward function is "
                               "given; on = always (replaces it); off = never",
                               choices=("auto", "on", "off"))
    reward_degree: int = option(2, "polynomial degree of the reward model", ge=1, le=4)
    reward_threshold: float = option(1e-3, "STLSQ threshold of the reward model", ge=0)


@dataclass
class RealData:
    """All real transitions, one entry per trajectory (an episode, or its part in one phase).

    Attributes
    ----------
    xs:
        Observations, each of shape ``(T_i + 1, n)``.
    us:
        Actions applied (clipped to the box), each ``(T_i, m)``.
    rs:
        Rewards, each ``(T_i,)``.
    starts:
        Observations right after a real ``reset``.
    """

    xs: list[FloatArray] = field(default_factory=list)
    us: list[FloatArray] = field(default_factory=list)
    rs: list[FloatArray] = field(default_factory=list)
    starts: list[FloatArray] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """Number of real transitions."""
        return sum(len(u) for u in self.us)

    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Rows ``x``, ``u``, ``x_next``, ``r`` of all transitions."""
        return (np.concatenate([x[:-1] for x in self.xs]), np.concatenate(self.us),
                np.concatenate([x[1:] for x in self.xs]), np.concatenate(self.rs))


@dataclass(frozen=True)
class RoundRecord:
    """One row of the training history (round 0 is the random-policy phase).

    Attributes
    ----------
    round:
        Round index.
    real_steps, surrogate_steps:
        Totals so far.
    real_return:
        Mean return of the real episodes that ended in this round (NaN if none did).
    real_episodes:
        Real episodes that ended in this round.
    model_rmse:
        One-step RMSE of the refitted dynamics on all real data (mean over states).
    reward_rmse:
        RMSE of the reward used in the surrogate on all real data.
    model_terms:
        Nonzero coefficients of the refitted dynamics.
    """

    round: int
    real_steps: int
    surrogate_steps: int
    real_return: float
    real_episodes: int
    model_rmse: float
    reward_rmse: float
    model_terms: int


@dataclass
class SindyRLResult:
    """What :func:`train_sindy_rl` returns.

    Attributes
    ----------
    agent:
        The trained agent (its env is the last surrogate).
    model:
        The last fitted dynamics.
    reward_model:
        The last fitted reward model (``None`` when the given reward was used).
    surrogate:
        The last surrogate env.
    real_steps, surrogate_steps:
        Real and surrogate interactions in total.
    history:
        One :class:`RoundRecord` per round.
    data:
        All real transitions.
    """

    agent: Any
    model: EnsembleSINDy
    reward_model: RewardModel | None
    surrogate: SurrogateEnv
    real_steps: int
    surrogate_steps: int
    history: list[RoundRecord]
    data: RealData

    def to_pandas(self) -> Any:
        """The history as a ``pandas.DataFrame`` (imports pandas)."""
        import dataclasses

        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(h) for h in self.history])


def _check_spaces(env: gym.Env[Any, Any]) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    obs, act = env.observation_space, env.action_space
    if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1):
        raise ValueError(f"train_sindy_rl needs a 1-D Box observation space, got {obs!r} "
                         f"(flatten it, e.g. gymnasium.wrappers.FlattenObservation)")
    if not (isinstance(act, gym.spaces.Box) and len(act.shape) == 1 and act.is_bounded()):
        raise ValueError(f"train_sindy_rl needs a bounded 1-D Box action space, got {act!r}")
    return obs, act


def _collect(env: gym.Env[Any, Any], act: Callable[[FloatArray], FloatArray], steps: int,
             data: RealData, seed: int | None) -> list[float]:
    """Run ``act`` on the real ``env`` for exactly ``steps`` steps from a reset; append the
    transitions to ``data``; the returns of the episodes that ended."""
    returns: list[float] = []
    if steps == 0:
        return returns
    box = env.action_space
    assert isinstance(box, gym.spaces.Box)
    low, high = box.low.astype(np.float64), box.high.astype(np.float64)
    x = [_finite_obs(env.reset(seed=seed)[0], None)]
    data.starts.append(x[0])
    u: list[FloatArray] = []
    r: list[float] = []
    for k in range(steps):
        a = np.clip(np.asarray(act(x[-1]), dtype=np.float64).reshape(low.shape), low, high)
        a = a.astype(box.dtype)
        obs, rew, terminated, truncated, _ = env.step(a)
        x.append(_finite_obs(obs, float(rew)))
        u.append(a.astype(np.float64))
        r.append(float(rew))
        ended = terminated or truncated
        if ended or k == steps - 1:
            data.xs.append(np.array(x))
            data.us.append(np.array(u))
            data.rs.append(np.array(r))
        if ended:
            returns.append(float(sum(r)))
            if k < steps - 1:
                x, u, r = [_finite_obs(env.reset()[0], None)], [], []
                data.starts.append(x[0])
    return returns


def _finite_obs(obs: Any, reward: float | None) -> FloatArray:
    """A real observation as float64, or ``ValueError`` if it (or the step's reward; ``None``
    after a reset) is not finite."""
    x = np.asarray(obs, dtype=np.float64)
    if not np.all(np.isfinite(x)) or (reward is not None and not math.isfinite(reward)):
        raise ValueError(f"the real env returned a non-finite observation or reward: "
                         f"{x.tolist()}, {reward}")
    return x


def _fit_models(data: RealData, config: SindyRLConfig, reward: RewardFn | None
                ) -> tuple[EnsembleSINDy, RewardModel | None, RewardFn]:
    model = EnsembleSINDy(config).fit(data.xs, data.us)
    if reward is None or config.reward_model == "on":
        x, u, xn, r = data.arrays()
        rm = RewardModel(config.reward_degree, config.reward_threshold, config.alpha).fit(
            x, u, xn, r)
        return model, rm, rm.predict
    assert reward is not None
    return model, None, reward


def _policy(agent: Any, dtype: Any) -> Callable[[FloatArray], FloatArray]:
    """The agent's stochastic action for one observation (collection on the real env)."""

    def act(x: FloatArray) -> FloatArray:
        out: FloatArray = np.asarray(agent.predict(x.astype(dtype), deterministic=False)[0])
        return out

    return act


def _record(i: int, data: RealData, surrogate_steps: int, returns: list[float],
            model: EnsembleSINDy, reward: RewardFn) -> RoundRecord:
    x, u, xn, r = data.arrays()
    pred = model.predict(x, u)
    fitted = getattr(reward, "__self__", None)
    rhat = (np.asarray(fitted.predict(x, u, xn)) if isinstance(fitted, RewardModel)
            else np.array([float(reward(a, b, c)) for a, b, c in zip(x, u, xn)]))
    return RoundRecord(
        round=i, real_steps=data.steps, surrogate_steps=surrogate_steps,
        real_return=float(np.mean(returns)) if returns else math.nan,
        real_episodes=len(returns),
        model_rmse=float(np.mean(np.sqrt(np.mean((pred - xn) ** 2, axis=0)))),
        reward_rmse=float(np.sqrt(np.mean((rhat - r) ** 2))),
        model_terms=int(np.count_nonzero(model.coefficients())))


def train_sindy_rl(env: gym.Env[Any, Any], make_agent: Callable[[SurrogateEnv], Any],
                   config: SindyRLConfig | None = None, *, reward: RewardFn | None = None,
                   callback: Callable[[int, Any, int], bool | None] | None = None
                   ) -> SindyRLResult:
    """SINDy-RL: fit a surrogate from real data, train only in it, refit on on-policy data.

    Parameters
    ----------
    env:
        The real env (a ``gymnasium.Env`` with 1-D Box spaces, bounded actions); it is only
        stepped here, and every step is counted.
    make_agent:
        ``make_agent(surrogate_env)`` -> an SB3 agent (``learn``, ``set_env``, ``predict``), e.g.
        ``lambda e: SAC("MlpPolicy", e, seed=0)``. Called once; later rounds ``set_env`` the new
        surrogate and continue learning (``reset_num_timesteps=False``).
    config:
        :class:`SindyRLConfig`; defaults if ``None``.
    reward:
        ``reward(x, u, x_next) -> float`` on observations, when the reward is known in closed
        form; otherwise a :class:`RewardModel` is fitted (see ``config.reward_model``).
    callback:
        ``callback(round, agent, real_steps)`` after each round (after the refit), e.g. to
        evaluate the agent on a separate env; returning ``False`` stops training.

    Returns
    -------
    SindyRLResult
        The agent, the last models and surrogate, step counts and the per-round history.

    Raises
    ------
    ValueError
        Unsupported spaces, non-finite real data, or ``reward_model='off'`` without ``reward``.
    """
    cfg = config if config is not None else SindyRLConfig()
    if not isinstance(cfg, SindyRLConfig):
        raise TypeError(f"config must be a SindyRLConfig, got {type(config).__name__}")
    obs_space, act_space = _check_spaces(env)
    if reward is None and cfg.reward_model == "off":
        raise ValueError("SindyRLConfig.reward_model = 'off' needs a reward function "
                         "(reward=callable(x, u, x_next))")
    rng = np.random.default_rng(cfg.seed)
    low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
    data = RealData()
    # RANDOM PHASE: uniform actions on the real env
    returns = _collect(env, lambda _x: rng.uniform(low, high), cfg.random_steps, data, cfg.seed)
    model, reward_model, reward_fn = _fit_models(data, cfg, reward)
    history = [_record(0, data, 0, returns, model, reward_fn)]
    agent: Any = None
    surrogate_steps = 0
    for i in range(1, cfg.refits + 1):
        # SURROGATE PHASE: the agent learns only in the model
        surrogate = _surrogate(model, reward_fn, data, cfg, obs_space, act_space, i)
        if agent is None:
            agent = make_agent(surrogate)
        else:
            agent.set_env(surrogate)
        agent.learn(total_timesteps=cfg.surrogate_steps_per_round, reset_num_timesteps=i == 1,
                    progress_bar=False)
        surrogate_steps += surrogate.total_steps
        # REAL PHASE: on-policy data, then refit on all real data
        returns = _collect(env, _policy(agent, obs_space.dtype), cfg.real_steps_per_round,
                           data, None)
        if cfg.real_steps_per_round > 0:
            model, reward_model, reward_fn = _fit_models(data, cfg, reward)
        history.append(_record(i, data, surrogate_steps, returns, model, reward_fn))
        if callback is not None and callback(i, agent, data.steps) is False:
            break
    final = _surrogate(model, reward_fn, data, cfg, obs_space, act_space, cfg.refits + 1)
    return SindyRLResult(agent=agent, model=model, reward_model=reward_model, surrogate=final,
                         real_steps=data.steps, surrogate_steps=surrogate_steps,
                         history=history, data=data)


def _surrogate(model: EnsembleSINDy, reward_fn: RewardFn, data: RealData, cfg: SindyRLConfig,
               obs_space: gym.spaces.Box, act_space: gym.spaces.Box, i: int) -> SurrogateEnv:
    from ctrlbench.surrogate import state_sampler

    starts = (np.array(data.starts) if cfg.reset_from == "initial"
              else np.concatenate([x[:-1] for x in data.xs]))
    term = cfg.termination_reward
    if term is None:
        term = min(0.0, float(min(r.min() for r in data.rs)))
    env = SurrogateEnv(model, obs_space, act_space, reward_fn, state_sampler(starts),
                       max_steps=cfg.surrogate_episode_steps,
                       termination_margin=cfg.termination_margin, termination_reward=term)
    env.reset(seed=cfg.seed + i)  # seeds np_random: later unseeded resets are reproducible
    return env


# ====================================================================== distillation
class PolynomialController:
    """A sparse polynomial policy ``u = clip(P(obs) coef.T, low, high)`` with SB3's ``predict``.

    Built by :func:`distill`.

    Parameters
    ----------
    coef:
        Coefficients, shape ``(m, n_terms)``, over the monomials of the observation up to
        ``degree`` (pysindy's ``PolynomialLibrary`` order, bias first).
    degree:
        Polynomial degree.
    low, high:
        The action bounds.
    """

    def __init__(self, coef: ArrayLike, degree: int, low: ArrayLike, high: ArrayLike) -> None:
        self.coef_ = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        self.low = np.asarray(low, dtype=np.float64).reshape(-1)
        self.high = np.asarray(high, dtype=np.float64).reshape(-1)
        self.degree = int(degree)
        if self.coef_.shape[0] != self.low.shape[0]:
            raise ValueError(f"coef has {self.coef_.shape[0]} rows for {self.low.shape[0]} "
                             f"actions")
        n = 0
        while len(_monomials(n, self.degree)) < self.coef_.shape[1]:
            n += 1
        if len(_monomials(n, self.degree)) != self.coef_.shape[1]:
            raise ValueError(f"coef has {self.coef_.shape[1]} columns: not a full polynomial "
                             f"library of degree {degree}")
        self.n_obs = n
        self._terms = _monomials(n, self.degree)

    def predict(self, observation: ArrayLike, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[FloatArray, None]:
        """The action for one observation (shape ``(m,)``) or for rows ``(b, m)``; SB3's
        ``PolicyPredictor`` signature (``state``, ``episode_start``, ``deterministic`` unused)."""
        obs, single = _rows(observation, self.n_obs, "observation")
        u = np.clip(_poly(obs, self._terms) @ self.coef_.T, self.low, self.high)
        return (u[0] if single else u), None

    def equations(self, precision: int = 4) -> list[str]:
        """``"u0 = ..."`` per action over the observations ``o0, o1, ...`` (before clipping)."""
        names = [_monomial_name(t, [f"o{i}" for i in range(self.n_obs)]) for t in self._terms]
        return [f"u{j} = {_poly_text(row, names, precision)}" for j, row in enumerate(self.coef_)]


def distill(agent: Any, observations: ArrayLike, *, degree: int = 2, threshold: float = 1e-3,
            alpha: float = 1e-5) -> PolynomialController:
    """Fit a sparse polynomial policy to ``agent``'s deterministic actions (STLSQ).

    Parameters
    ----------
    agent:
        An SB3 agent (``predict`` and ``action_space``, a bounded 1-D Box).
    observations:
        States to imitate on, shape ``(N, n)`` (e.g. ``result.data`` observations or surrogate
        rollouts).
    degree, threshold, alpha:
        Polynomial degree of ``P(obs)`` (1..5), STLSQ threshold and ridge penalty.

    Raises
    ------
    ValueError
        Non-finite or empty observations, or a setting out of range.
    """
    obs = np.atleast_2d(np.asarray(observations, dtype=np.float64))
    if obs.size == 0 or not np.all(np.isfinite(obs)):
        raise ValueError(f"distill needs finite observations, got shape {obs.shape}")
    if not (isinstance(degree, int) and 1 <= degree <= 5):
        raise ValueError(f"distill: degree = {degree!r} is out of range; valid: 1..5")
    if not (math.isfinite(threshold) and threshold >= 0 and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"distill: threshold = {threshold!r}, alpha = {alpha!r}; valid: "
                         f"finite >= 0")
    box = agent.action_space
    space = getattr(agent, "observation_space", None)
    dtype = space.dtype if space is not None else np.float32
    actions, _ = agent.predict(obs.astype(dtype), deterministic=True)
    y = np.asarray(actions, dtype=np.float64).reshape(len(obs), -1)
    terms = _monomials(obs.shape[1], degree)
    coef = _stlsq(_poly(obs, terms), y, threshold, alpha, 20, False)
    return PolynomialController(coef, degree, box.low, box.high)
