"""The models of SINDy-RL (:mod:`controllers.sindy_rl`): ensemble SINDy dynamics, sparse reward.

* :class:`EnsembleSINDy` -- discrete-time SINDy with control, ``x[k+1] = f(x) + g(x) u`` with
  polynomial ``f``, ``g`` (control-affine library), fitted by STLSQ with bagging and library
  ensembling; the model is the median of the members' coefficients. Settings:
  :class:`SINDyConfig`.
* :class:`RewardModel` -- sparse polynomial regression (STLSQ) of the reward on
  ``(x, u, x_next)``, for when the reward is not known in closed form.

Also the polynomial-feature helpers shared with :mod:`controllers.sindy_rl` (monomials in
pysindy's ``PolynomialLibrary`` order, their names, their evaluation in numpy, and one STLSQ
regression), which :class:`~controllers.sindy_rl.PolynomialController` and
:func:`~controllers.sindy_rl.distill` use too.

pysindy is used for the library and the sparse regression (``ps.DiscreteSINDy``,
``ps.TensoredLibrary``, ``ps.STLSQ``) and imported inside the functions that need it. The fitted
models evaluate their library in numpy (checked against pysindy's ``transform`` at every fit),
since the surrogate (:class:`~ctrlbench.surrogate.SurrogateEnv`) calls them once per step.

The Dyna loop that fits and uses these models, :func:`~controllers.sindy_rl.train_sindy_rl`, is
in :mod:`controllers.sindy_rl`, which also re-exports the three public classes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrlbench.options import Options, option

__all__ = ["EnsembleSINDy", "RewardModel", "SINDyConfig"]

FloatArray = NDArray[np.float64]

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
    scale_inputs: bool = option(True, "regress with each input divided by its largest |value| "
                                "in the data (coefficients stay in the input's units), so the "
                                "STLSQ threshold does not depend on the input's unit")
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
        :class:`SINDyConfig` (or a subclass such as
        :class:`~controllers.sindy_rl.SindyRLConfig`); default settings if ``None``.

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
        cs = self._input_scaling(u, len(self._terms)) if cfg.scale_inputs else np.ones(
            theta.shape[1])
        members = self._ensemble(theta * cs, y) * cs  # coefficients back in the input's units
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

    def _input_scaling(self, u: FloatArray, n_terms: int) -> FloatArray:
        """Per library column: ``1 / max|u_j|`` on the columns ``g(x) u_j``, else 1."""
        peak = np.max(np.abs(u), axis=0)
        inv = np.where(peak > 0, 1.0 / np.where(peak > 0, peak, 1.0), 1.0)
        return np.tile(np.concatenate([[1.0], inv]), n_terms)

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
