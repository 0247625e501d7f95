"""``simulate``: the one closed loop. Studies, the CLI, tuning and evaluation all call it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ctrlbench.controller import Controller
from ctrlbench.interrupt import pending_signal, raise_if_interrupted
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.trajectory import Trajectory

__all__ = ["StepCallback", "simulate"]

StepCallback = Callable[[int, np.ndarray, np.ndarray, float, dict[str, Any]], bool | None]
"""``callback(k, obs, action, reward, info) -> stop?`` called after every step."""

_MAX_DEFAULT_STEPS = 1_000_000


def simulate(
    plant: gym.Env[Any, Any],
    controller: Controller,
    *,
    steps: int | None = None,
    seed: int | None = None,
    callbacks: Sequence[StepCallback] = (),
    meta: dict[str, Any] | None = None,
) -> Trajectory:
    """Run ``controller`` on ``plant`` for one episode and return the :class:`Trajectory`.

    Parameters
    ----------
    plant:
        Any gymnasium env; ctrlbench plants add signal names, units and references.
    controller:
        Anything with SB3's ``predict`` (a trained SB3 model, a :class:`FeedbackController`).
        ``predict`` is called deterministically with ``episode_start`` true on the first step.
    steps:
        Maximum number of control steps (>= 1); ``None`` runs until the episode terminates or is
        truncated (plants are expected to carry a time limit).
    seed:
        Passed to ``plant.reset``; the same seed gives the same trajectory.
    callbacks:
        Called after each step as ``callback(k, obs, action, reward, info)``; returning ``True``
        stops the episode early.
    meta:
        Extra facts stored in ``Trajectory.meta``.

    Numeric scalars of the plant's ``info`` are kept per step in ``Trajectory.info``; so are
    those of a controller's ``last_info`` dict (if it has one), as ``controller.<key>``.

    Raises
    ------
    ValueError
        The plant returned a non-finite observation (a diverged run is never a result).
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int | np.integer)
                              or steps < 1):
        raise ValueError(f"steps must be an integer >= 1 or None (the whole episode), "
                         f"got {steps!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)
                             or seed < 0):
        raise ValueError(f"seed must be an integer >= 0 or None, got {seed!r}")
    obs_signals, act_signals = signals_of(plant)
    limit = steps if steps is not None else _MAX_DEFAULT_STEPS
    dt = plant_dt(plant)

    obs, _ = plant.reset(seed=seed)
    if hasattr(controller, "reset"):
        controller.reset()
    observations = [np.asarray(obs, dtype=np.float64).ravel()]
    actions: list[np.ndarray] = []
    rewards: list[float] = []
    infos: dict[str, list[float]] = {}
    terminated = truncated = False
    state: Any = None
    episode_start = np.ones((1,), dtype=bool)
    k = 0
    with_controller_info = isinstance(getattr(controller, "last_info", None), dict)
    try:
        while k < limit:
            raise_if_interrupted()  # a Ctrl-C a solver callback swallowed (scipy's ode)
            action, state = controller.predict(
                obs, state=state, episode_start=episode_start, deterministic=True
            )
            episode_start = np.zeros((1,), dtype=bool)
            obs, reward, terminated, truncated, info = plant.step(action)
            a = np.asarray(action, dtype=np.float64).ravel()
            actions.append(a)
            observations.append(np.asarray(obs, dtype=np.float64).ravel())
            rewards.append(float(reward))
            _collect_numeric(infos, info, k)
            if with_controller_info:  # e.g. an MPC's solve status, iterations, solve time
                ctrl_info = getattr(controller, "last_info", None) or {}
                _collect_numeric(infos, {f"controller.{n}": v for n, v in ctrl_info.items()}, k)
            # every callback sees every step, even when an earlier one asks to stop
            stop = any([bool(cb(k, observations[-1], a, float(reward), info)) for cb in callbacks])
            k += 1
            if terminated or truncated or stop:
                break
    except Exception:
        # a solver that swallowed Ctrl-C may fail on the next call: report the interrupt, not
        # a false failure of the run
        if pending_signal() is not None:
            raise_if_interrupted()
        raise
    raise_if_interrupted()
    n = len(actions)
    obs_array = np.stack(observations)
    _check_finite(obs_array, obs_signals)
    return Trajectory(
        time=np.arange(n + 1, dtype=np.float64) * dt,
        observations=obs_array,
        actions=np.stack(actions) if actions else np.zeros((0, len(act_signals))),
        rewards=np.asarray(rewards, dtype=np.float64),
        observation_signals=obs_signals,
        action_signals=act_signals,
        terminated=bool(terminated),
        truncated=bool(truncated),
        info={key: np.asarray(v, dtype=np.float64) for key, v in infos.items() if len(v) == n},
        meta={"seed": seed, "dt": dt, **(meta or {})},
    )


def _check_finite(obs: np.ndarray, signals: Sequence[Any]) -> None:
    """Raise ``ValueError`` naming the first step and signal where the plant returned NaN/inf,
    so a diverged run is an error, never a result."""
    if np.isfinite(obs).all():
        return
    k, i = np.argwhere(~np.isfinite(obs))[0]
    name = signals[i].name if i < len(signals) else f"obs_{i}"
    raise ValueError(
        f"the plant returned a non-finite observation at step {k}: {name} = {obs[k, i]}; "
        f"the simulation diverged (check the plant options and controller gains)"
    )


def _collect_numeric(store: dict[str, list[float]], info: dict[str, Any], k: int) -> None:
    """Append scalar numeric ``info`` entries; keys that appear late or vary in type are dropped."""
    for key, value in info.items():
        if isinstance(value, bool | int | float | np.number) and (key in store or k == 0):
            store.setdefault(key, []).append(float(value))
