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

pysindy is used for the library and the sparse regression (``ps.DiscreteSINDy``,
``ps.TensoredLibrary``, ``ps.STLSQ``) and imported inside the functions that need it;
stable-baselines3 is not imported here (the caller's ``make_agent`` builds the agent). The fitted
models evaluate their library in numpy (checked against pysindy's ``transform`` at every fit),
since the surrogate calls them once per step.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations_with_replacement
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrlbench.options import Options, option
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


# ====================================================================== polynomial features
def _monomials(n: int, degree: int) -> list[tuple[int, ...]]:
    """Index tuples of the monomials up to ``degree`` in pysindy's ``PolynomialLibrary`` order
    (bias first)."""
    out: list[tuple[int, ...]] = [()]
    for d in range(1, degree + 1):
        out += list(combinations_with_replacement(range(n), d))
    return out


def _monomial_name(idx: tuple[int, ...], names: Sequence[str]) -> str:
    if not idx:
        return "1"
    parts = []
    for i in sorted(set(idx)):
        k = idx.count(i)
        parts.append(names[i] if k == 1 else f"{names[i]}^{k}")
    return " ".join(parts)


def _poly(z: FloatArray, terms: list[tuple[int, ...]]) -> FloatArray:
    """Monomials ``terms`` of the rows of ``z`` (shape ``(b, d)``), shape ``(b, len(terms))``."""
    cols = [np.prod(z[:, list(t)], axis=1) if t else np.ones(len(z)) for t in terms]
    return np.column_stack(cols)


def _rows(a: ArrayLike, width: int, what: str) -> tuple[FloatArray, bool]:
    """``a`` as rows of ``width`` floats and whether it was a single row."""
    arr = np.asarray(a, dtype=np.float64)
    single = arr.ndim == 1
    arr2 = arr.reshape(1, -1) if single else arr
    if arr2.ndim != 2 or arr2.shape[1] != width:
        raise ValueError(f"{what} must have shape ({width},) or (batch, {width}), got {arr.shape}")
    return arr2, single


def _stlsq(theta: FloatArray, y: FloatArray, threshold: float, alpha: float, max_iter: int,
           normalize: bool) -> FloatArray:
    """``ps.STLSQ`` on a library matrix; coefficients of shape ``(targets, terms)``."""
    import pysindy as ps

    opt = ps.STLSQ(threshold=threshold, alpha=alpha, max_iter=max_iter,
                   normalize_columns=normalize)
    with warnings.catch_warnings():  # "sparsity too big" / non-convergence: a member may be empty
        warnings.simplefilter("ignore")
        opt.fit(theta, y)
    return np.atleast_2d(np.asarray(opt.coef_, dtype=np.float64))


# ====================================================================== dynamics model
@dataclass(frozen=True)
class SINDyConfig(Options):
    """Settings of :class:`EnsembleSINDy`.

    The defaults (degree 3, threshold 5e-4, increments) suit observations of order one with a
    short control period, e.g. Pendulum-v1's ``(cos, sin, thdot)`` at 50 ms, whose update is a
    cubic in them; the threshold is in the units of the data, so rescale other plants' signals or
    tune it."""

    degree: int = option(3, "polynomial degree in the state of f(x) and g(x) in f(x) + g(x) u",
                         ge=1, le=5)
    threshold: float = option(5e-4, "STLSQ threshold on the coefficients", ge=0)
    alpha: float = option(1e-5, "ridge penalty of STLSQ", ge=0)
    max_iter: int = option(20, "STLSQ iterations", ge=1, le=1000)
    n_models: int = option(20, "models in the ensemble (the median of their coefficients is "
                           "the model)", ge=1, le=1000)
    subset_fraction: float = option(0.6, "fraction of the samples each model is fitted on "
                                    "(drawn without replacement)", gt=0, le=1)
    library_ensemble: bool = option(True, "also drop library_drop random library terms per "
                                    "model")
    library_drop: int = option(1, "library terms each model drops (library ensembling)", ge=1)
    increment: bool = option(True, "regress the increment x[k+1] - x[k] (threshold acts on the "
                             "change) instead of x[k+1]")
    normalize_columns: bool = option(False, "STLSQ on unit-norm library columns")
    seed: int = option(0, "seed of the bagging and library draws", ge=0)


class EnsembleSINDy:
    """Ensemble discrete-time SINDy with control: ``x[k+1] = Theta(x[k], u[k]) xi``.

    ``Theta`` is control-affine: the monomials ``p(x)`` of the state up to ``degree`` (with a
    bias), tensored with ``[1, u_1, ..., u_m]`` (pysindy's ``TensoredLibrary`` of two
    ``PolynomialLibrary``), so the model is ``f(x) + g(x) u`` with polynomial ``f``, ``g``.
    ``n_models`` STLSQ regressions are fitted, each on a random ``subset_fraction`` of the samples
    (bagging) and, with ``library_ensemble``, without ``library_drop`` random terms; the model is
    the element-wise **median** of their coefficients. The draws come from a
    ``numpy.random.Generator`` seeded with ``seed`` (pysindy's ``EnsembleOptimizer`` draws from
    numpy's global generator instead). With ``increment`` the regression target is
    ``x[k+1] - x[k]``; the identity is added back, so :meth:`coefficients` always gives
    ``x[k+1]``.

    Parameters
    ----------
    config:
        :class:`SINDyConfig` (or a subclass such as :class:`SindyRLConfig`); default settings if
        ``None``.

    Attributes
    ----------
    coef_:
        Median coefficients of ``x[k+1]``, shape ``(n, n_terms)``.
    coef_list_:
        Each member's coefficients, shape ``(n_models, n, n_terms)``.
    sindy_:
        A ``ps.DiscreteSINDy`` fitted on all samples with one STLSQ (its library defines
        ``Theta``); its optimizer's coefficients are replaced by the ensemble median of the
        regression target (the increment when ``increment``).
    n_state_, n_control_:
        Sizes of ``x`` and ``u``.
    train_rmse_:
        One-step RMSE of the median model on the training samples, per state.
    """

    def __init__(self, config: SINDyConfig | None = None) -> None:
        self.config = config if config is not None else SINDyConfig()
        if not isinstance(self.config, SINDyConfig):
            raise TypeError(f"config must be a SINDyConfig, got {type(config).__name__}")
        self.coef_: FloatArray | None = None
        self.coef_list_: FloatArray = np.zeros((0, 0, 0))
        self.sindy_: Any = None
        self.n_state_ = 0
        self.n_control_ = 0
        self.train_rmse_: FloatArray = np.zeros(0)
        self._terms: list[tuple[int, ...]] = []
        self._names: list[str] = []
        self._state_names: list[str] = []

    # ------------------------------------------------------------------ fit
    def fit(self, xs: Sequence[ArrayLike], us: Sequence[ArrayLike], *,
            state_names: Sequence[str] | None = None,
            control_names: Sequence[str] | None = None) -> EnsembleSINDy:
        """Fit on trajectories ``xs[i]`` of shape ``(T_i + 1, n)`` driven by ``us[i]`` of shape
        ``(T_i, m)``; returns ``self``.

        Raises
        ------
        ValueError
            No trajectories, mismatched shapes, or non-finite entries (the trajectory is named).
        FloatingPointError
            The regression produced non-finite coefficients.
        """
        import pysindy as ps

        x, u, xn = _stack(xs, us)
        n, m = x.shape[1], u.shape[1]
        cfg = self.config
        sn = list(state_names) if state_names is not None else [f"x{i}" for i in range(n)]
        cn = list(control_names) if control_names is not None else [f"u{j}" for j in range(m)]
        if len(sn) != n or len(cn) != m:
            raise ValueError(f"got {len(sn)} state and {len(cn)} control names for n = {n}, "
                             f"m = {m}")
        self.n_state_, self.n_control_, self._state_names = n, m, sn
        self._terms = _monomials(n, cfg.degree)
        self._names = [_affine_name(_monomial_name(t, sn), c)
                       for t in self._terms for c in ["1", *cn]]
        y = xn - x if cfg.increment else xn
        lib = ps.TensoredLibrary(
            [ps.PolynomialLibrary(degree=cfg.degree), ps.PolynomialLibrary(degree=1)],
            inputs_per_library=[list(range(n)), list(range(n, n + m))])
        sindy = ps.DiscreteSINDy(feature_library=lib, optimizer=ps.STLSQ(
            threshold=cfg.threshold, alpha=cfg.alpha, max_iter=cfg.max_iter,
            normalize_columns=cfg.normalize_columns))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sindy.fit([x], t=1, x_next=[y], u=[u], feature_names=sn + cn)
        theta = self.features(x, u)
        ref = np.asarray(lib.transform(np.column_stack([x[:50], u[:50]])))
        if ref.shape != theta[:50].shape or not np.allclose(ref, theta[:50], rtol=1e-9,
                                                            atol=1e-9):
            raise RuntimeError(f"library evaluation differs from pysindy's ({theta.shape} vs "
                               f"{ref.shape})")
        members = self._ensemble(theta, y)
        target = np.median(members, axis=0)
        if not np.all(np.isfinite(target)):
            raise FloatingPointError("EnsembleSINDy: the regression gave non-finite coefficients "
                                     "(ill-conditioned library: lower degree or scale the data)")
        sindy.optimizer.coef_ = target
        self.sindy_ = sindy
        eye = np.zeros_like(target)
        if cfg.increment:
            for i in range(n):
                eye[i, (1 + i) * (m + 1)] = 1.0  # the term x_i (times the factor 1)
        self.coef_ = target + eye
        self.coef_list_ = members + eye
        self.train_rmse_ = np.sqrt(np.mean((theta @ self.coef_.T - xn) ** 2, axis=0))
        return self

    def _ensemble(self, theta: FloatArray, y: FloatArray) -> FloatArray:
        """Each member's coefficients of the target ``y``, shape ``(n_models, n, n_terms)``."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        rows, p = theta.shape
        size = max(1, min(rows, round(cfg.subset_fraction * rows)))
        drop = cfg.library_drop if cfg.library_ensemble and cfg.library_drop < p else 0
        out = np.zeros((cfg.n_models, y.shape[1], p))
        for k in range(cfg.n_models):
            r = np.sort(rng.choice(rows, size=size, replace=False))
            cols = np.sort(rng.choice(p, size=p - drop, replace=False)) if drop else np.arange(p)
            out[k][:, cols] = _stlsq(theta[np.ix_(r, cols)], y[r], cfg.threshold, cfg.alpha,
                                     cfg.max_iter, cfg.normalize_columns)
        return out

    # ------------------------------------------------------------------ evaluate
    def _fitted(self) -> FloatArray:
        if self.coef_ is None:
            raise RuntimeError("EnsembleSINDy is not fitted: call fit first")
        return self.coef_

    def features(self, x: ArrayLike, u: ArrayLike) -> FloatArray:
        """The library ``Theta(x, u)`` for rows of states and inputs, shape ``(b, n_terms)``."""
        xr, _ = _rows(x, self.n_state_, "x")
        ur, _ = _rows(u, self.n_control_, "u")
        if len(ur) != len(xr):
            ur = np.broadcast_to(ur, (len(xr), self.n_control_))
        px = _poly(xr, self._terms)
        aff = np.column_stack([np.ones(len(ur)), ur])
        out: FloatArray = (px[:, :, None] * aff[:, None, :]).reshape(len(xr), -1)
        return out

    def predict(self, x: ArrayLike, u: ArrayLike) -> FloatArray:
        """``x[k+1]`` of the median model: shape ``(n,)`` for one state, ``(b, n)`` for rows."""
        coef = self._fitted()
        _, single = _rows(x, self.n_state_, "x")
        out: FloatArray = self.features(x, u) @ coef.T
        return out[0] if single else out

    def predict_std(self, x: ArrayLike, u: ArrayLike) -> FloatArray:
        """Standard deviation of the members' ``x[k+1]`` (the ensemble's disagreement)."""
        self._fitted()
        _, single = _rows(x, self.n_state_, "x")
        each = np.einsum("bp,knp->kbn", self.features(x, u), self.coef_list_)
        out: FloatArray = each.std(axis=0)
        return out[0] if single else out

    def coefficients(self) -> FloatArray:
        """Median coefficients of ``x[k+1]`` over :meth:`feature_names`, shape ``(n, n_terms)``."""
        return self._fitted().copy()

    def feature_names(self) -> list[str]:
        """Names of the library terms (``"1"``, ``"u0"``, ``"x0"``, ``"x0 u0"``, ``"x0^2"``...)."""
        self._fitted()
        return list(self._names)

    def equations(self, precision: int = 4) -> list[str]:
        """``"x0[k+1] = 0.9 x0 + 0.1 x1"`` per state (terms at ``k``, zeros omitted)."""
        coef = self._fitted()
        return [f"{s}[k+1] = {_poly_text(row, self._names, precision)}"
                for s, row in zip(self._state_names, coef)]


def _affine_name(mono: str, factor: str) -> str:
    if factor == "1":
        return mono
    return factor if mono == "1" else f"{mono} {factor}"


def _poly_text(row: FloatArray, names: Sequence[str], precision: int) -> str:
    parts = [f"{c:.{precision}g}" + ("" if name == "1" else f" {name}")
             for c, name in zip(row, names) if c != 0.0]
    return " + ".join(parts).replace("+ -", "- ") if parts else "0"


def _stack(xs: Sequence[ArrayLike], us: Sequence[ArrayLike]
           ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rows ``x[k]``, ``u[k]``, ``x[k+1]`` of all trajectories, validated."""
    if len(xs) == 0 or len(xs) != len(us):
        raise ValueError(f"need one or more trajectories and one input sequence each, got "
                         f"{len(xs)} state and {len(us)} input trajectories")
    x0, u0, x1 = [], [], []
    for i, (xa, ua) in enumerate(zip(xs, us)):
        xi, ui = np.asarray(xa, dtype=np.float64), np.asarray(ua, dtype=np.float64)
        if ui.ndim == 1:
            ui = ui[:, None]
        if xi.ndim != 2 or ui.ndim != 2 or len(xi) != len(ui) + 1 or len(ui) == 0:
            raise ValueError(f"trajectory {i}: states must have shape (T + 1, n) and inputs "
                             f"(T, m) with T >= 1, got {xi.shape} and {ui.shape}")
        if xi.shape[1] != np.shape(xs[0])[1] or ui.shape[1] != _input_width(us):
            raise ValueError(f"trajectory {i}: widths {xi.shape[1]}, {ui.shape[1]} differ from "
                             f"trajectory 0's")
        for what, arr in (("states", xi), ("inputs", ui)):
            if not np.all(np.isfinite(arr)):
                k = int(np.argwhere(~np.isfinite(arr))[0][0])
                raise ValueError(f"trajectory {i}: non-finite {what} at row {k}: "
                                 f"{arr[k].tolist()}")
        x0.append(xi[:-1])
        x1.append(xi[1:])
        u0.append(ui)
    return np.concatenate(x0), np.concatenate(u0), np.concatenate(x1)


def _input_width(us: Sequence[ArrayLike]) -> int:
    """Width of the first input sequence (a 1-D sequence is one input)."""
    shape = np.shape(us[0])
    return 1 if len(shape) == 1 else int(shape[1])


# ====================================================================== reward model
class RewardModel:
    """Sparse polynomial regression of the reward on ``z = (x, u, x_next)`` (STLSQ).

    The features are the monomials of ``z`` up to ``degree`` (pysindy's ``PolynomialLibrary``
    order, bias first), evaluated in numpy.

    Parameters
    ----------
    degree:
        Polynomial degree (1..4).
    threshold:
        STLSQ threshold on the coefficients.
    alpha:
        Ridge penalty of STLSQ.

    Attributes
    ----------
    coef_:
        Coefficients over :meth:`feature_names`, shape ``(n_terms,)``.
    train_rmse_:
        RMSE on the training samples.
    """

    def __init__(self, degree: int = 2, threshold: float = 1e-3, alpha: float = 1e-5) -> None:
        if not (isinstance(degree, int) and 1 <= degree <= 4):
            raise ValueError(f"RewardModel.degree = {degree!r} is out of range; valid: 1..4")
        for name, v in (("threshold", threshold), ("alpha", alpha)):
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"RewardModel.{name} = {v!r} is out of range; valid: finite >= 0")
        self.degree, self.threshold, self.alpha = degree, float(threshold), float(alpha)
        self.coef_: FloatArray | None = None
        self.train_rmse_ = math.nan
        self._widths = (0, 0)
        self._terms: list[tuple[int, ...]] = []

    def fit(self, x: ArrayLike, u: ArrayLike, x_next: ArrayLike, r: ArrayLike) -> RewardModel:
        """Fit ``r[k] ~ p(x[k], u[k], x_next[k])`` on rows; returns ``self``.

        Raises
        ------
        ValueError
            Mismatched row counts or non-finite entries.
        """
        import pysindy as ps

        xa, ua, xna = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (x, u, x_next))
        ra = np.asarray(r, dtype=np.float64).reshape(-1)
        if ua.shape[0] == 1 and ua.shape[1] == len(ra) != 1:
            ua = ua.T  # one input given as a flat sequence
        if not len(xa) == len(ua) == len(xna) == len(ra) or xa.shape != xna.shape:
            raise ValueError(f"RewardModel.fit: x {xa.shape}, u {ua.shape}, x_next {xna.shape} "
                             f"and r {ra.shape} must have the same number of rows")
        z = np.column_stack([xa, ua, xna])
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(ra))):
            raise ValueError("RewardModel.fit: non-finite entries in the data")
        self._widths = (xa.shape[1], ua.shape[1])
        self._terms = _monomials(z.shape[1], self.degree)
        theta = _poly(z, self._terms)
        ref = np.asarray(ps.PolynomialLibrary(degree=self.degree).fit_transform(z[:50]))
        if not np.allclose(ref, theta[:50], rtol=1e-9, atol=1e-9):
            raise RuntimeError("RewardModel: library evaluation differs from pysindy's")
        coef = _stlsq(theta, ra[:, None], self.threshold, self.alpha, 20, False)[0]
        if not np.all(np.isfinite(coef)):
            raise FloatingPointError("RewardModel: the regression gave non-finite coefficients")
        self.coef_ = coef
        self.train_rmse_ = float(np.sqrt(np.mean((theta @ coef - ra) ** 2)))
        return self

    def predict(self, x: ArrayLike, u: ArrayLike, x_next: ArrayLike) -> Any:
        """The predicted reward: a float for one transition, an array for rows."""
        if self.coef_ is None:
            raise RuntimeError("RewardModel is not fitted: call fit first")
        n, m = self._widths
        xr, single = _rows(x, n, "x")
        ur, _ = _rows(u, m, "u")
        xnr, _ = _rows(x_next, n, "x_next")
        out = _poly(np.column_stack([xr, np.broadcast_to(ur, (len(xr), m)), xnr]),
                    self._terms) @ self.coef_
        return float(out[0]) if single else out

    __call__ = predict

    def feature_names(self) -> list[str]:
        """Term names over ``x0.., u0.., n0..`` (``n`` for the next state)."""
        n, m = self._widths
        names = ([f"x{i}" for i in range(n)] + [f"u{j}" for j in range(m)]
                 + [f"n{i}" for i in range(n)])
        return [_monomial_name(t, names) for t in self._terms]


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
