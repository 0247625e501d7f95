"""Patient models of ``ctrlbench/NMESKnee-v0`` identified from past stimulation sessions.

Arcolezi et al. (MODELS.md section 5) tune RISE offline on neural-network models of each patient
identified from earlier sessions. This module provides the pieces:

- :func:`past_session`: a logged "past rehabilitation session" of a virtual patient (plant option
  ``patient="random"``, the patient fixed by ``patient_seed``): pulse-width levels drawn at random
  in ``[0, p_high_us]`` and held 0.5-3 s, with a therapist's safety rule (no stimulation while the
  measured angle exceeds ``safe_high_deg``), the measured angle and velocity with Gaussian noise
  from the log's own generator (``session_seed``), and the true states for scoring.
- :class:`InputFeatures`: the summary of the pulse history a model sees, the last ``n_lags``
  pulses and exponentially filtered pulses (one filter near the activation lag, one slow one that
  follows fatigue), all in units of the stimulator limit.
- Two discrete-time models ``x_(k+1) = x_k + f(x_k, h_k)`` on the measured ``x = (theta, omega)``
  with ``h_k`` those features: :class:`MLPPatientModel` (a small torch MLP, one thread, weights
  kept as numpy arrays after training) and :class:`SINDyPatientModel` (``pysindy.DiscreteSINDy``
  with a polynomial + sin/cos library, sparse regression by STLSQ). Both are sklearn-style (``fit``
  returns ``self``, fitted attributes end in ``_``), and :meth:`~PatientModel.simulator` gives a
  batched simulator (``reset(x0)``, ``step(u)``) to close loops on.
- :func:`prediction_errors`: one-step and open-loop (``horizon`` steps, 5 s by default) RMSE of the
  angle on a held-out session against the true angle, with the hold predictor for reference.

torch and pysindy are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "InputFeatures",
    "MLPPatientModel",
    "ModelSimulator",
    "PatientModel",
    "SINDyPatientModel",
    "SessionLog",
    "past_session",
    "prediction_errors",
]

FloatArray = NDArray[np.float64]
PLANT = "ctrlbench/NMESKnee-v0"
P_SCALE = 500.0
"""Pulse widths enter the models divided by the stimulator limit [us]."""
OMEGA_SCALE = 5.0
"""Velocities enter the models divided by this [rad/s] (the shank swings at a few rad/s)."""


@dataclass(frozen=True)
class SessionLog:
    """One logged session (``n`` control periods of ``dt`` seconds).

    Attributes
    ----------
    dt:
        Control period [s].
    pulse:
        Commanded pulse width per period [us], shape ``(n,)``.
    theta, omega:
        Measured angle [rad] and velocity [rad/s] at the period boundaries, shape ``(n + 1,)``.
    theta_true, omega_true, fitness:
        True angle, velocity and muscle fitness at the boundaries (for scoring only).
    patient_seed, session_seed:
        The virtual patient and the session's excitation and noise.
    """

    dt: float
    pulse: FloatArray
    theta: FloatArray
    omega: FloatArray
    theta_true: FloatArray
    omega_true: FloatArray
    fitness: FloatArray
    patient_seed: int
    session_seed: int


def _session(opts: dict[str, Any], patient_seed: int, rng: np.random.Generator, steps: int,
             p_high: float, safe: float, noise_theta: float
             ) -> tuple[float, list[float], list[tuple[float, float, float]]] | None:
    """One session under the excitation and safety rule; ``None`` if it left the range."""
    from ctrlbench.registry import make_plant

    plant = make_plant(PLANT, **opts)
    try:
        # the plant measures without noise here, so its observation is the true state
        x, _ = plant.reset(seed=patient_seed)
        true = [(float(x[0]), float(x[1]), float(x[3]))]
        pulses: list[float] = []
        level, left = 0.0, 0
        meas_theta = float(x[0])
        for _ in range(steps):
            if left <= 0:  # a new level held 0.5-3 s
                level = float(rng.uniform(0.0, p_high))
                left = int(rng.integers(10, 61))
            left -= 1
            if meas_theta > safe:  # the therapist stops and lowers this level and the next
                u, level, p_high = 0.0, 0.7 * level, 0.9 * p_high
            else:
                u = level
            x, _, _, _, info = plant.step(np.array([u]))
            if info.get("out_of_range") or info.get("solver_failed"):
                return None
            true.append((float(x[0]), float(x[1]), float(x[3])))
            pulses.append(u)
            meas_theta = float(x[0]) + noise_theta * float(rng.standard_normal())
        return float(plant.unwrapped.dt), pulses, true
    finally:
        plant.close()


def past_session(patient_seed: int, session_seed: int, *, steps: int = 800,
                 p_high_us: float = 260.0, safe_high_deg: float = 70.0,
                 noise_theta: float = 0.005, noise_omega: float = 0.05,
                 **plant_options: Any) -> SessionLog:
    """Simulate a past stimulation session of virtual patient ``patient_seed``.

    Parameters
    ----------
    patient_seed:
        Reset seed of the plant (``patient="random"``): fixes the patient's parameters.
    session_seed:
        Seed of the stimulation profile and of the measurement noise.
    steps:
        Control periods (50 ms each); more than one plant episode is not allowed (<= 800).
    p_high_us:
        Highest pulse-width level [us] (a nominal patient holds ~85 deg at 240 us).
    safe_high_deg:
        No stimulation while the measured angle is above this [deg]; each such period also
        lowers the current level by 30 % and the highest level by 10 % (a therapist's reaction).
        A session that still leaves the range of motion is run again (new levels) with 80 % of
        the highest level, up to four times.
    noise_theta, noise_omega:
        Std of the Gaussian measurement noise [rad], [rad/s].
    plant_options:
        Further options of ``ctrlbench/NMESKnee-v0`` (``patient`` is always ``"random"``).

    Raises
    ------
    ValueError
        A setting out of range (named with its value), or the session left the range of motion.
    """
    if not 1 <= steps <= 800:
        raise ValueError(f"steps = {steps!r} is out of range; valid: 1..800")
    if not 0.0 < p_high_us <= P_SCALE:
        raise ValueError(f"p_high_us = {p_high_us!r} is out of range; valid: (0, 500]")
    if noise_theta < 0 or noise_omega < 0:
        raise ValueError(f"noise stds must be >= 0, got {noise_theta!r}, {noise_omega!r}")
    opts = {**plant_options, "patient": "random", "noise_theta": 0.0, "noise_omega": 0.0}
    rng = np.random.default_rng(session_seed)
    cap = p_high_us
    for _ in range(4):  # a session that left the range is repeated with 80 % of the levels
        done = _session(opts, patient_seed, rng, steps, cap, math.radians(safe_high_deg),
                        noise_theta)
        if done is not None:
            break
        cap *= 0.8
    else:
        raise ValueError(f"past session of patient {patient_seed} (session seed "
                         f"{session_seed}) left the range of motion even with levels up to "
                         f"{cap / 0.8:.0f} us; lower p_high_us = {p_high_us}")
    dt, pulses, true = done
    arr = np.asarray(true)
    n1 = len(arr)
    theta = arr[:, 0] + noise_theta * rng.standard_normal(n1)
    omega = arr[:, 1] + noise_omega * rng.standard_normal(n1)
    return SessionLog(dt=dt, pulse=np.asarray(pulses), theta=theta, omega=omega,
                      theta_true=arr[:, 0], omega_true=arr[:, 1], fitness=arr[:, 2],
                      patient_seed=patient_seed, session_seed=session_seed)


@dataclass(frozen=True)
class InputFeatures:
    """Pulse-history features ``h_k`` (pulses in units of :data:`P_SCALE`).

    ``h_k = [u_k, u_(k-1), ..., u_(k-n_lags+1), z_1, ..., z_m]`` with the filters
    ``z_(i,k) = z_(i,k-1) + (dt / tau_i)(u_k - z_(i,k-1))``, zero before the session.

    Attributes
    ----------
    n_lags:
        Pulses kept (covers the electromechanical delay).
    taus:
        Time constants of the filtered pulses [s].
    dt:
        Control period [s].
    """

    n_lags: int = 3
    taus: tuple[float, ...] = (0.95, 20.0)
    dt: float = 0.05

    def __post_init__(self) -> None:
        if self.n_lags < 1:
            raise ValueError(f"n_lags = {self.n_lags!r} is out of range; valid: >= 1")
        if any(not t > 0 for t in self.taus):
            raise ValueError(f"taus = {self.taus!r}: every time constant must be > 0")

    @property
    def size(self) -> int:
        """Length of ``h_k``."""
        return self.n_lags + len(self.taus)

    def initial(self, n: int = 1) -> FloatArray:
        """Features before any pulse, shape ``(n, size)`` (all zero: rested, no stimulation)."""
        return np.zeros((n, self.size))

    def push(self, h: FloatArray, u_us: FloatArray | float) -> FloatArray:
        """The features after the pulse ``u_us`` [us] (per row of ``h``)."""
        u = np.broadcast_to(np.asarray(u_us, dtype=float) / P_SCALE, (h.shape[0],))
        out = np.empty_like(h)
        out[:, 0] = u
        out[:, 1:self.n_lags] = h[:, :self.n_lags - 1]
        for i, tau in enumerate(self.taus):
            j = self.n_lags + i
            out[:, j] = h[:, j] + (self.dt / tau) * (u - h[:, j])
        return out

    def sequence(self, pulse_us: FloatArray) -> FloatArray:
        """``h_k`` for every period of a pulse sequence, shape ``(n, size)``."""
        h = self.initial()
        rows = []
        for u in pulse_us:
            h = self.push(h, float(u))
            rows.append(h[0])
        return np.asarray(rows)


def _scale_x(theta: FloatArray, omega: FloatArray) -> FloatArray:
    return np.column_stack([theta, omega / OMEGA_SCALE])


@dataclass
class PatientModel:
    """Base of the identified models: ``x_(k+1) = x_k + f(x_k, h_k)``, ``x = (theta, omega)``.

    Subclasses implement :meth:`_fit` and :meth:`delta` (on scaled states ``(theta [rad],
    omega / OMEGA_SCALE)``).
    """

    features: InputFeatures = field(default_factory=InputFeatures)

    def fit(self, logs: list[SessionLog]) -> PatientModel:
        """Identify from the measured signals of ``logs``; returns ``self``.

        Raises
        ------
        ValueError
            No logs, or a log whose control period differs from the features'.
        """
        if not logs:
            raise ValueError("fit needs at least one SessionLog, got none")
        xs, hs, dxs = [], [], []
        for log in logs:
            if not math.isclose(log.dt, self.features.dt):
                raise ValueError(f"log dt = {log.dt} differs from the features' dt = "
                                 f"{self.features.dt}")
            x = _scale_x(log.theta, log.omega)
            xs.append(x[:-1])
            hs.append(self.features.sequence(log.pulse))
            dxs.append(np.diff(x, axis=0))
        self._fit(np.concatenate(xs), np.concatenate(hs), np.concatenate(dxs), logs)
        return self

    def _fit(self, x: FloatArray, h: FloatArray, dx: FloatArray, logs: list[SessionLog]
             ) -> None:
        raise NotImplementedError

    def delta(self, x: FloatArray, h: FloatArray) -> FloatArray:
        """``f(x, h)`` for rows of scaled states and features, shape ``(n, 2)``."""
        raise NotImplementedError

    def simulator(self, n: int = 1) -> ModelSimulator:
        """A batched simulator of ``n`` copies of the identified patient."""
        return ModelSimulator(self, n)


class ModelSimulator:
    """Closed-loop simulator on an identified model (gymnasium-free, batched).

    Parameters
    ----------
    model:
        A fitted :class:`PatientModel`.
    n:
        Number of independent copies stepped together (one per row).
    """

    def __init__(self, model: PatientModel, n: int = 1) -> None:
        if n < 1:
            raise ValueError(f"n = {n!r} is out of range; valid: >= 1")
        self.model, self.n = model, n
        self.x = np.zeros((n, 2))
        self.h = model.features.initial(n)

    def reset(self, x0: FloatArray | tuple[float, float], h0: FloatArray | None = None
              ) -> FloatArray:
        """Start at ``x0 = (theta [rad], omega [rad/s])`` (one row or one per copy) with the
        pulse-history features ``h0`` (default: no past stimulation); returns the angles."""
        x0 = np.atleast_2d(np.asarray(x0, dtype=float))
        self.x = np.broadcast_to(_scale_x(x0[:, 0], x0[:, 1]), (self.n, 2)).copy()
        h = self.model.features.initial(self.n) if h0 is None else np.atleast_2d(h0)
        self.h = np.broadcast_to(h, (self.n, self.model.features.size)).copy()
        return self.x[:, 0].copy()

    def step(self, u_us: FloatArray | float) -> FloatArray:
        """Apply the pulse widths ``u_us`` [us] for one period; the new angles [rad]."""
        self.h = self.model.features.push(self.h, u_us)
        self.x = self.x + self.model.delta(self.x, self.h)
        self.x[:, 0] = np.clip(self.x[:, 0], -math.pi, math.pi)  # keep a diverged copy finite
        self.x[:, 1] = np.clip(self.x[:, 1], -20.0, 20.0)
        return self.x[:, 0].copy()

    @property
    def omega(self) -> FloatArray:
        """Velocities [rad/s] of the copies."""
        return self.x[:, 1] * OMEGA_SCALE


@dataclass
class MLPPatientModel(PatientModel):
    """A tanh MLP ``f(x, h)`` trained on one-step increments (torch, one thread, Adam).

    Attributes
    ----------
    hidden:
        Units per hidden layer.
    layers:
        Hidden layers.
    epochs:
        Full-batch Adam steps.
    lr:
        Learning rate.
    weight_decay:
        L2 penalty of Adam.
    seed:
        Torch seed of the initial weights.
    weights_:
        Fitted ``[(W, b), ...]`` as numpy arrays (the model runs in numpy).
    x_scale_, y_scale_:
        Scales of the inputs and of the increments.
    train_rmse_:
        One-step RMSE of the scaled increments on the training data.
    """

    hidden: int = 32
    layers: int = 2
    epochs: int = 1500
    lr: float = 3e-3
    weight_decay: float = 1e-6
    seed: int = 0
    weights_: list[tuple[FloatArray, FloatArray]] = field(default_factory=list)
    x_scale_: FloatArray = field(default_factory=lambda: np.ones(1))
    y_scale_: FloatArray = field(default_factory=lambda: np.ones(2))
    train_rmse_: float = math.nan

    def __post_init__(self) -> None:
        for name, value, low in (("hidden", self.hidden, 1), ("layers", self.layers, 1),
                                 ("epochs", self.epochs, 1)):
            if not (isinstance(value, int) and value >= low):
                raise ValueError(f"MLPPatientModel.{name} = {value!r} is out of range; valid: "
                                 f"an integer >= {low}")
        if not self.lr > 0:
            raise ValueError(f"MLPPatientModel.lr = {self.lr!r} is out of range; valid: > 0")

    def _fit(self, x: FloatArray, h: FloatArray, dx: FloatArray, logs: list[SessionLog]
             ) -> None:
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(self.seed)
        inp = np.column_stack([x, h])
        self.x_scale_ = np.maximum(inp.std(axis=0), 1e-3)
        self.y_scale_ = np.maximum(dx.std(axis=0), 1e-6)
        xin = torch.as_tensor(inp / self.x_scale_, dtype=torch.float32)
        yt = torch.as_tensor(dx / self.y_scale_, dtype=torch.float32)
        mods: list[Any] = []
        width = xin.shape[1]
        for _ in range(self.layers):
            mods += [torch.nn.Linear(width, self.hidden), torch.nn.Tanh()]
            width = self.hidden
        mods.append(torch.nn.Linear(width, 2))
        net = torch.nn.Sequential(*mods)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.epochs)
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = torch.mean((net(xin) - yt) ** 2)
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            self.train_rmse_ = float(torch.sqrt(torch.mean((net(xin) - yt) ** 2)))
        self.weights_ = [(m.weight.detach().numpy().astype(float).T.copy(),
                          m.bias.detach().numpy().astype(float).copy())
                         for m in net if isinstance(m, torch.nn.Linear)]

    def delta(self, x: FloatArray, h: FloatArray) -> FloatArray:
        """The network's increment for rows of scaled states and features."""
        if not self.weights_:
            raise RuntimeError("MLPPatientModel is not fitted: call fit first")
        a = np.column_stack([x, h]) / self.x_scale_
        for w, b in self.weights_[:-1]:
            a = np.tanh(a @ w + b)
        w, b = self.weights_[-1]
        out: FloatArray = (a @ w + b) * self.y_scale_
        return out


@dataclass
class SINDyPatientModel(PatientModel):
    """``pysindy.DiscreteSINDy`` on the scaled states with the pulse features as control.

    The library is polynomial (degree ``degree``) + Fourier (sin/cos, one frequency) of the
    states and features; STLSQ selects the terms. The model predicts ``x_(k+1)`` directly (the
    identity is among the library's terms); :meth:`delta` subtracts ``x_k``.

    Attributes
    ----------
    degree:
        Polynomial degree of the library.
    threshold:
        STLSQ threshold on the coefficients.
    alpha:
        Ridge penalty of STLSQ.
    model_:
        The fitted ``DiscreteSINDy``.
    coef_:
        Its coefficient matrix, shape ``(2, n_terms)``.
    """

    degree: int = 2
    threshold: float = 1e-3
    alpha: float = 1e-5
    model_: Any = None
    coef_: FloatArray = field(default_factory=lambda: np.zeros((2, 0)))

    def __post_init__(self) -> None:
        if not (isinstance(self.degree, int) and 1 <= self.degree <= 4):
            raise ValueError(f"SINDyPatientModel.degree = {self.degree!r} is out of range; "
                             f"valid: 1..4")
        if not self.threshold >= 0:
            raise ValueError(f"SINDyPatientModel.threshold = {self.threshold!r} is out of "
                             f"range; valid: >= 0")

    def _fit(self, x: FloatArray, h: FloatArray, dx: FloatArray, logs: list[SessionLog]
             ) -> None:
        import pysindy as ps

        n_in = 2 + self.features.size
        lib = ps.GeneralizedLibrary(
            [ps.PolynomialLibrary(degree=self.degree), ps.FourierLibrary(n_frequencies=1)],
            inputs_per_library=[list(range(n_in)), [0]])  # sin/cos of the angle only
        model = ps.DiscreteSINDy(feature_library=lib,
                                 optimizer=ps.STLSQ(threshold=self.threshold, alpha=self.alpha))
        xs, xn, us = [], [], []
        for log in logs:  # one trajectory per log: x_k, x_(k+1) and h_k as control
            x = _scale_x(log.theta, log.omega)
            xs.append(x[:-1])
            xn.append(x[1:])
            us.append(self.features.sequence(log.pulse))
        model.fit(xs, t=self.features.dt, x_next=xn, u=us)
        self.model_ = model
        self.coef_ = np.asarray(model.coefficients())
        # the simulator evaluates the library in numpy (pysindy's transform costs ms per call);
        # check it against pysindy's on the training data
        z = np.column_stack([xs[0], us[0]])
        mine, ref = self._terms(z), np.asarray(model.feature_library.transform(z))
        if mine.shape != ref.shape or not np.allclose(mine, ref, rtol=1e-9, atol=1e-9):
            raise RuntimeError(f"library evaluation differs from pysindy's ({mine.shape} vs "
                               f"{ref.shape})")

    def _terms(self, z: FloatArray) -> FloatArray:
        """Library terms: monomials up to ``degree`` (pysindy's order), then sin, cos of
        the angle."""
        from itertools import combinations_with_replacement

        cols = [np.ones(len(z))]
        for d in range(1, self.degree + 1):
            for idx in combinations_with_replacement(range(z.shape[1]), d):
                cols.append(np.prod(z[:, list(idx)], axis=1))
        cols += [np.sin(z[:, 0]), np.cos(z[:, 0])]
        return np.column_stack(cols)

    def delta(self, x: FloatArray, h: FloatArray) -> FloatArray:
        """Library terms times coefficients, minus ``x``."""
        if self.model_ is None:
            raise RuntimeError("SINDyPatientModel is not fitted: call fit first")
        out: FloatArray = self._terms(np.column_stack([x, h])) @ self.coef_.T - x
        return out

    def equations(self) -> list[str]:
        """The identified update equations (``x0`` angle, ``x1`` scaled velocity)."""
        if self.model_ is None:
            raise RuntimeError("SINDyPatientModel is not fitted: call fit first")
        return list(self.model_.equations(precision=4))


def prediction_errors(model: PatientModel, log: SessionLog, *, horizon: int = 100,
                      stride: int = 20) -> dict[str, float]:
    """Angle RMSE [deg] of ``model`` on a held-out ``log`` against the true angle.

    ``one_step``: from each measured state; ``open_loop``: ``horizon``-step runs from the measured
    state every ``stride`` periods, fed the logged pulses (features from the session start);
    ``hold_one_step`` / ``hold_open_loop``: the hold predictor (the measured angle stays).

    Raises
    ------
    ValueError
        ``horizon`` not in ``1..len(log.pulse)``.
    """
    n = len(log.pulse)
    if not 1 <= horizon <= n:
        raise ValueError(f"horizon = {horizon!r} is out of range; valid: 1..{n}")
    feats = model.features
    hseq = feats.sequence(log.pulse)
    x = _scale_x(log.theta, log.omega)
    pred1 = x[:-1, 0] + model.delta(x[:-1], hseq)[:, 0]
    one = float(np.sqrt(np.mean((pred1 - log.theta_true[1:]) ** 2)))
    hold1 = float(np.sqrt(np.mean((log.theta[:-1] - log.theta_true[1:]) ** 2)))
    starts = np.arange(0, n - horizon + 1, stride)
    sim = model.simulator(len(starts))
    sim.x = x[starts].copy()
    sim.h = np.vstack([feats.initial() if s == 0 else hseq[s - 1:s] for s in starts])
    err, herr = [], []
    for j in range(horizon):
        th = sim.step(log.pulse[starts + j])
        err.append(th - log.theta_true[starts + j + 1])
        herr.append(log.theta[starts] - log.theta_true[starts + j + 1])
    return {"one_step": math.degrees(one), "open_loop": math.degrees(
        float(np.sqrt(np.mean(np.square(err))))), "hold_one_step": math.degrees(hold1),
        "hold_open_loop": math.degrees(float(np.sqrt(np.mean(np.square(herr))))),
        "horizon_s": horizon * log.dt}
