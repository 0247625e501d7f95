"""System identification of the entropy dynamics of a training run, from its logged metrics.

The plant: input ``u_k`` = the actuator value applied in GRPO step ``k`` (the metrics row's
``actuator``), output ``H_k`` = the token-mean entropy measured on step ``k``'s rollout (the row's
``entropy``, before step ``k``'s update). ``u_k`` acts through step ``k``'s update, so it first
shows in ``H_{k+1}``. Models (sklearn style: settings in the constructor, :meth:`fit` returns
``self``, fitted attributes end in ``_``):

- :class:`ARXModel`: ``H_{k+1} = sum_i a_i H_{k+1-i} + sum_j b_j u_{k+1-j} + c`` (orders
  ``na``, ``nb``, with an intercept), by least squares over every run (regressors never straddle
  two runs). ``q_`` is the one-step residual variance (``SSR / (n - p)``).
- :class:`SINDyModel`: discrete-time SINDy with control (pysindy 2.x ``DiscreteSINDy``,
  polynomial library in ``(H_k, u_k)`` of ``degree``, STLSQ); evaluated in numpy from its
  coefficients, so it saves to JSON.

Evaluation on held-out runs (:func:`prediction_errors`): one-step RMSE (the model fed the
measured past) next to persistence (``H_hat_{k+1} = H_k``), and free-run RMSE over
``horizon``-step windows (the model simulated from the measured initial condition, driven by the
logged ``u``) next to the constant predictor (``H_hat = H_0`` over the window).

Measurement noise (:func:`noise_estimate`): the std of the residual of the entropy about its
centred moving average of ``window`` steps, divided by ``sqrt(1 - 1/window)`` (for white noise
of variance ``r`` that residual has variance ``r (1 - 1/window)``). On open-loop runs (constant
actuator) the slow trend is the plant and the fast part is mostly the sampling noise of the
token-mean of one rollout, so this is an estimate of ``sqrt(r)`` (an upper bound: fast plant
motion counts as noise).

:func:`save_model` / :func:`load_model`: JSON, written atomically.
:meth:`ARXModel.kalman_options` gives the scalar Kalman filter's ``a, b, c, q, r``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.io import atomic_write_bytes

__all__ = ["ARXModel", "EntropyModel", "RunData", "SINDyModel", "load_model", "load_runs",
           "noise_estimate", "prediction_errors", "run_data", "save_model", "truncate"]

FloatArray = np.ndarray


@dataclass(frozen=True)
class RunData:
    """One run's entropy and actuator series (equal length, finite, in step order)."""

    entropy: FloatArray
    actuator: FloatArray
    name: str = ""

    def __post_init__(self) -> None:
        h, u = np.asarray(self.entropy, float), np.asarray(self.actuator, float)
        if h.ndim != 1 or u.shape != h.shape:
            raise ValueError(f"run {self.name!r}: entropy and actuator must be 1-D of equal "
                             f"length, got shapes {h.shape} and {u.shape}")
        if h.size == 0:
            raise ValueError(f"run {self.name!r} is empty: no metrics rows")
        for what, x in (("entropy", h), ("actuator", u)):
            bad = np.flatnonzero(~np.isfinite(x))
            if bad.size:
                raise ValueError(f"run {self.name!r}: {what} is not finite at index "
                                 f"{int(bad[0])} (value {x[bad[0]]!r})")
        object.__setattr__(self, "entropy", h)
        object.__setattr__(self, "actuator", u)

    def __len__(self) -> int:
        return int(self.entropy.size)


def run_data(rows: Sequence[Mapping[str, Any]], name: str = "") -> RunData:
    """A :class:`RunData` from metrics rows (``step``, ``entropy``, ``actuator``); the rows must
    be consecutive steps (a gap would join two different times)."""
    if not rows:
        raise ValueError(f"run {name!r} has no metrics rows (empty log)")
    for key in ("step", "entropy", "actuator"):
        missing = [i for i, r in enumerate(rows) if key not in r]
        if missing:
            raise ValueError(f"run {name!r}: row {missing[0]} has no {key!r} (keys: "
                             f"{sorted(rows[missing[0]])})")
    steps = [int(r["step"]) for r in rows]
    gaps = [i for i in range(1, len(steps)) if steps[i] != steps[i - 1] + 1]
    if gaps:
        raise ValueError(f"run {name!r}: step {steps[gaps[0]]} follows step "
                         f"{steps[gaps[0] - 1]}; the rows must be consecutive steps")
    return RunData(np.array([float(r["entropy"]) for r in rows]),
                   np.array([float(r["actuator"]) for r in rows]), name)


def load_runs(paths: Iterable[str | os.PathLike[str]]) -> list[RunData]:
    """Runs from ``metrics.jsonl`` files or the run directories holding them."""
    runs = []
    for p in paths:
        path = Path(p)
        path = path / "metrics.jsonl" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no metrics log at {path}")
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        runs.append(run_data(rows, str(path.parent)))
    if not runs:
        raise ValueError("no runs given")
    return runs


def truncate(runs: Sequence[RunData], h_max: float) -> list[RunData]:
    """Each run up to (not including) its first step with ``H > h_max``; runs left with fewer
    than 2 steps are dropped. A local model of the operating region: beyond ``h_max`` the
    entropy can run away to the uniform distribution (a regime a linear model does not hold)."""
    if not math.isfinite(h_max) or h_max <= 0:
        raise ValueError(f"h_max = {h_max!r} is not valid; valid: finite > 0")
    out = []
    for r in runs:
        above = np.flatnonzero(r.entropy > h_max)
        n = int(above[0]) if above.size else len(r)
        if n >= 2:
            out.append(RunData(r.entropy[:n], r.actuator[:n], r.name))
    return out


def _check_runs(runs: Sequence[RunData], need: int) -> None:
    if isinstance(runs, RunData):
        raise TypeError("pass a list of runs, e.g. [run]")
    if not runs:
        raise ValueError("no runs given: need at least one RunData")
    if not any(len(r) > need for r in runs):
        raise ValueError(f"every run is too short: the model needs more than {need} steps in "
                         f"one run, the longest has {max(len(r) for r in runs)}")


class EntropyModel:
    """Base of the identified models: one-step map and free-run simulation."""

    #: Steps of history one prediction needs.
    lag: int = 1

    def step(self, h_hist: FloatArray, u_hist: FloatArray) -> float:
        """``H_{k+1}`` from the last ``lag`` entropies and inputs (oldest first, ending at k)."""
        raise NotImplementedError

    def one_step(self, run: RunData) -> FloatArray:
        """Predictions of ``H_k`` for ``k = lag .. n-1`` from the measured past."""
        L, h, u = self.lag, run.entropy, run.actuator
        return np.array([self.step(h[k - L:k], u[k - L:k]) for k in range(L, len(run))])

    def simulate(self, h_init: FloatArray, u: FloatArray) -> FloatArray:
        """Free run: ``h_init`` (the ``lag`` measured values ``H_0 .. H_{lag-1}``), driven by
        ``u`` (``u_0 ..``); returns ``H_0 .. H_{len(u)}`` (measured start included)."""
        L = self.lag
        h = list(np.asarray(h_init, float)[-L:])
        if len(h) != L:
            raise ValueError(f"h_init needs {L} values, got {len(h)}")
        u = np.asarray(u, float)
        for k in range(L - 1, len(u)):
            h.append(self.step(np.array(h[k - L + 1:k + 1]), u[k - L + 1:k + 1]))
        return np.array(h)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings and fitted values."""
        raise NotImplementedError


class ARXModel(EntropyModel):
    """``H_{k+1} = sum_{i<na} a_i H_{k-i} + sum_{j<nb} b_j u_{k-j} + c`` by least squares.

    Parameters
    ----------
    na, nb:
        Output and input orders (>= 1).
    intercept:
        Fit ``c`` (else ``c = 0``).

    Fitted: ``a_`` (na,), ``b_`` (nb,), ``c_``, ``q_`` (one-step residual variance),
    ``n_samples_``.
    """

    def __init__(self, na: int = 1, nb: int = 1, intercept: bool = True) -> None:
        for name, v in (("na", na), ("nb", nb)):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 20:
                raise ValueError(f"ARX order {name} = {v!r} is not valid; valid: an integer "
                                 f"1 <= {name} <= 20")
        self.na, self.nb, self.intercept = na, nb, bool(intercept)
        self.lag = max(na, nb)

    def _regressors(self, run: RunData) -> tuple[FloatArray, FloatArray]:
        L, h, u = self.lag, run.entropy, run.actuator
        rows = [np.concatenate([h[k - self.na:k][::-1], u[k - self.nb:k][::-1],
                                [1.0] if self.intercept else []]) for k in range(L, len(run))]
        return np.array(rows).reshape(-1, self.na + self.nb + self.intercept), h[L:]

    def fit(self, runs: Sequence[RunData]) -> ARXModel:
        """Least squares over all runs; returns ``self``."""
        _check_runs(runs, self.lag)
        parts = [self._regressors(r) for r in runs if len(r) > self.lag]
        X = np.vstack([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        theta, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ theta
        dof = max(len(y) - X.shape[1], 1)
        self.a_ = theta[:self.na]
        self.b_ = theta[self.na:self.na + self.nb]
        self.c_ = float(theta[-1]) if self.intercept else 0.0
        self.q_ = float(resid @ resid / dof)
        self.n_samples_ = len(y)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "a_"):
            raise RuntimeError("ARXModel is not fitted: call fit(runs) or load_model(path)")

    def step(self, h_hist: FloatArray, u_hist: FloatArray) -> float:
        self._check_fitted()
        h = np.asarray(h_hist, float)[::-1][:self.na]
        u = np.asarray(u_hist, float)[::-1][:self.nb]
        return float(self.a_ @ h + self.b_ @ u + self.c_)

    def equilibrium_input(self, h: float) -> float:
        """The constant input that holds ``H = h`` on the model."""
        self._check_fitted()
        return float((h * (1.0 - self.a_.sum()) - self.c_) / self.b_.sum())

    def kalman_options(self, r: float) -> dict[str, float]:
        """``a, b, c, q, r`` of a scalar Kalman filter on this (first-order) model, with
        measurement-noise variance ``r`` (e.g. :func:`noise_estimate` squared)."""
        self._check_fitted()
        if self.na != 1 or self.nb != 1:
            raise ValueError(f"kalman_options needs a first-order model (na = nb = 1), got "
                             f"na = {self.na}, nb = {self.nb}")
        if not math.isfinite(r) or r < 0:
            raise ValueError(f"noise variance r = {r!r} must be finite and >= 0")
        return {"a": float(self.a_[0]), "b": float(self.b_[0]), "c": self.c_, "q": self.q_,
                "r": float(r)}

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"kind": "arx", "na": self.na, "nb": self.nb, "intercept": self.intercept,
                "a": self.a_.tolist(), "b": self.b_.tolist(), "c": self.c_, "q": self.q_,
                "n_samples": self.n_samples_}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ARXModel:
        """Inverse of :meth:`to_dict`."""
        m = cls(int(d["na"]), int(d["nb"]), bool(d["intercept"]))
        m.a_, m.b_ = np.asarray(d["a"], float), np.asarray(d["b"], float)
        if m.a_.shape != (m.na,) or m.b_.shape != (m.nb,):
            raise ValueError(f"ARX model file: a has {m.a_.size} values for na = {m.na}, b has "
                             f"{m.b_.size} for nb = {m.nb}")
        m.c_, m.q_, m.n_samples_ = float(d["c"]), float(d["q"]), int(d["n_samples"])
        return m


class SINDyModel(EntropyModel):
    """Discrete-time SINDy with control: ``H_{k+1} = Theta(H_k, u_k) xi`` (pysindy 2.x).

    Parameters
    ----------
    degree:
        Polynomial library degree in ``(H, u)`` (bias included).
    threshold:
        STLSQ threshold on the coefficients (in the data's units).
    alpha:
        STLSQ ridge penalty.

    Fitted: ``coefficients_`` (terms,), ``powers_`` (terms, 2) of ``H`` and ``u``,
    ``feature_names_``, ``q_`` (one-step residual variance).
    """

    def __init__(self, degree: int = 2, threshold: float = 0.02, alpha: float = 1e-3) -> None:
        if not isinstance(degree, int) or isinstance(degree, bool) or not 1 <= degree <= 5:
            raise ValueError(f"SINDy degree = {degree!r} is not valid; valid: an integer "
                             f"1 <= degree <= 5")
        for name, v in (("threshold", threshold), ("alpha", alpha)):
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"SINDy {name} = {v!r} is not valid; valid: finite >= 0")
        self.degree, self.threshold, self.alpha = degree, float(threshold), float(alpha)
        self.lag = 1

    def fit(self, runs: Sequence[RunData]) -> SINDyModel:
        """Fit on all runs (pysindy's multiple-trajectory fit); returns ``self``."""
        import pysindy as ps

        _check_runs(runs, 1)
        runs = [r for r in runs if len(r) > 1]
        lib = ps.PolynomialLibrary(degree=self.degree, include_bias=True)
        opt = ps.STLSQ(threshold=self.threshold, alpha=self.alpha)
        model = ps.DiscreteSINDy(optimizer=opt, feature_library=lib)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit([r.entropy[:, None] for r in runs], t=1,
                      u=[r.actuator[:, None] for r in runs], feature_names=["H", "u"])
        self.coefficients_ = np.asarray(model.coefficients(), float).reshape(-1)
        self.powers_ = np.asarray(lib.powers_, int).reshape(-1, 2)
        self.feature_names_ = list(model.get_feature_names())
        resid = np.concatenate([r.entropy[1:] - self.one_step(r) for r in runs])
        self.q_ = float(resid @ resid / max(resid.size - np.count_nonzero(self.coefficients_),
                                            1))
        return self

    def step(self, h_hist: FloatArray, u_hist: FloatArray) -> float:
        if not hasattr(self, "coefficients_"):
            raise RuntimeError("SINDyModel is not fitted: call fit(runs) or load_model(path)")
        z = np.array([float(np.asarray(h_hist)[-1]), float(np.asarray(u_hist)[-1])])
        return float(np.prod(z ** self.powers_, axis=1) @ self.coefficients_)

    def equation(self) -> str:
        """``H[k+1] = ...`` with the non-zero terms."""
        terms = [f"{c:+.4g} {n}" for c, n in zip(self.coefficients_, self.feature_names_,
                                                  strict=True) if c != 0]
        return "H[k+1] = " + (" ".join(terms) if terms else "0")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "sindy", "degree": self.degree, "threshold": self.threshold,
                "alpha": self.alpha, "coefficients": self.coefficients_.tolist(),
                "powers": self.powers_.tolist(), "feature_names": self.feature_names_,
                "q": self.q_}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SINDyModel:
        """Inverse of :meth:`to_dict`."""
        m = cls(int(d["degree"]), float(d["threshold"]), float(d["alpha"]))
        m.coefficients_ = np.asarray(d["coefficients"], float)
        m.powers_ = np.asarray(d["powers"], int).reshape(-1, 2)
        if m.powers_.shape[0] != m.coefficients_.size:
            raise ValueError("SINDy model file: powers and coefficients differ in length")
        m.feature_names_, m.q_ = list(d["feature_names"]), float(d["q"])
        return m


def prediction_errors(model: EntropyModel, runs: Sequence[RunData], horizon: int = 50,
                      stride: int = 10) -> dict[str, float]:
    """One-step and free-run errors of ``model`` on ``runs``, beside the naive predictors.

    Returns RMSE (nats) for: ``one_step`` (model), ``persistence`` (``H_k`` for ``H_{k+1}``),
    ``free_run`` (``horizon``-step simulations from the measured start of every window starting
    at ``lag, lag + stride, ...`` that fits in a run) and ``constant`` (``H_hat = H_start`` over
    the same windows), plus ``windows``, the number of windows.
    """
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"horizon = {horizon!r} is not valid; valid: an integer >= 1")
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride = {stride!r} is not valid; valid: an integer >= 1")
    _check_runs(runs, model.lag)
    L = model.lag
    one, pers, free, const = [], [], [], []
    for r in runs:
        h, u = r.entropy, r.actuator
        if len(r) <= L:
            continue
        one.append(h[L:] - model.one_step(r))
        pers.append(h[L:] - h[L - 1:-1])
        for s in range(L - 1, len(r) - horizon, stride):
            sim = model.simulate(h[s - L + 1:s + 1], u[s - L + 1:s + horizon])
            free.append(h[s + 1:s + horizon + 1] - sim[L:])
            const.append(h[s + 1:s + horizon + 1] - h[s])
    if not free:
        raise ValueError(f"no run is long enough for a {horizon}-step window (longest "
                         f"{max(len(r) for r in runs)} steps)")

    def rms(parts: list[FloatArray]) -> float:
        x = np.concatenate(parts)
        return float(np.sqrt(np.mean(x ** 2)))

    return {"one_step": rms(one), "persistence": rms(pers), "free_run": rms(free),
            "constant": rms(const), "windows": float(len(free))}


def noise_estimate(runs: Sequence[RunData], window: int = 9) -> float:
    """Measurement-noise std: residual std about a centred ``window``-step moving average,
    over all runs (edges dropped), divided by ``sqrt(1 - 1/window)`` (see the module doc)."""
    if not isinstance(window, int) or isinstance(window, bool) or window < 3 or window % 2 == 0:
        raise ValueError(f"window = {window!r} is not valid; valid: an odd integer >= 3")
    _check_runs(runs, window - 1)
    kernel = np.ones(window) / window
    res = [r.entropy[window // 2:-(window // 2)] - np.convolve(r.entropy, kernel, "valid")
           for r in runs if len(r) >= window]
    x = np.concatenate(res)
    return float(np.std(x, ddof=1) / math.sqrt(1.0 - 1.0 / window))


_KINDS: dict[str, Any] = {"arx": ARXModel, "sindy": SINDyModel}


def save_model(path: str | os.PathLike[str], model: EntropyModel,
               extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` (and JSON-able ``extra`` facts, e.g. the noise estimate) atomically."""
    data = {**model.to_dict(), "extra": dict(extra or {})}
    return atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def load_model(path: str | os.PathLike[str]) -> EntropyModel:
    """Read a model written by :func:`save_model`."""
    d = json.loads(Path(path).read_text())
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{path}: unknown model kind {kind!r}; valid: {', '.join(_KINDS)}")
    return _KINDS[kind].from_dict(d)  # type: ignore[no-any-return]
