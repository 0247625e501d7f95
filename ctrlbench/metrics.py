"""Performance metrics: pure functions over a :class:`~ctrlbench.trajectory.Trajectory`.

Tracking metrics use the error ``e = reference - tracked`` over samples ``1..T`` (the samples the
controller influenced). Step-response metrics (overshoot, rise and settling time) are defined for a
reference that is constant or changes once (a step): the final reference value is the target, the
tracked signal's value at the step is the start, and times are counted from the step. For any
other reference they return NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.trajectory import Trajectory

__all__ = [
    "constraint_violations",
    "control_effort",
    "episode_return",
    "iae",
    "ise",
    "itae",
    "overshoot",
    "rise_time",
    "settling_time",
    "steady_state_error",
    "summary",
    "total_variation",
    "units",
]


def _err(traj: Trajectory, reference: str | None) -> NDArray[np.float64]:
    return traj.error(reference)[1:]


def iae(traj: Trajectory, reference: str | None = None) -> float:
    """Integral of absolute error, ``sum |e| dt``."""
    return float(np.sum(np.abs(_err(traj, reference))) * traj.dt)


def ise(traj: Trajectory, reference: str | None = None) -> float:
    """Integral of squared error, ``sum e^2 dt``."""
    return float(np.sum(_err(traj, reference) ** 2) * traj.dt)


def itae(traj: Trajectory, reference: str | None = None) -> float:
    """Integral of time-weighted absolute error, ``sum t |e| dt``."""
    return float(np.sum(traj.time[1:] * np.abs(_err(traj, reference))) * traj.dt)


def _step(
    traj: Trajectory, reference: str | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float] | None:
    """``(y, t, y0, r)`` from the step on, or ``None`` when the reference is not a step."""
    pairs = dict(traj.tracking_pairs)
    ref = reference if reference is not None else next(iter(pairs), None)
    if ref is None or ref not in pairs:
        raise KeyError(f"unknown reference {ref!r}; valid references: {sorted(pairs)}")
    r = traj.signal(ref)
    changes = np.flatnonzero(np.diff(r) != 0)
    if changes.size > 1:
        return None
    k0 = int(changes[0]) + 1 if changes.size else 0
    y = traj.signal(pairs[ref])[k0:]
    k_start = max(k0 - 1, 0)  # the sample just before the step is the starting value
    return y, traj.time[k0:] - traj.time[k0], float(traj.signal(pairs[ref])[k_start]), float(r[-1])


def overshoot(traj: Trajectory, reference: str | None = None) -> float:
    """Peak overshoot past the final reference, in percent of the step size (>= 0)."""
    step = _step(traj, reference)
    if step is None:
        return float("nan")
    y, _, y0, r = step
    size = r - y0
    if size == 0:
        return 0.0
    return float(max(0.0, np.max((y - r) * np.sign(size)) / abs(size) * 100.0))


def rise_time(
    traj: Trajectory, reference: str | None = None, lo: float = 0.1, hi: float = 0.9
) -> float:
    """Time from ``lo`` to ``hi`` of the step (NaN when never reached)."""
    step = _step(traj, reference)
    if step is None:
        return float("nan")
    y, t, y0, r = step
    size = r - y0
    if size == 0:
        return 0.0
    frac = (y - y0) / size
    t_lo = np.flatnonzero(frac >= lo)
    t_hi = np.flatnonzero(frac >= hi)
    if t_lo.size == 0 or t_hi.size == 0:
        return float("nan")
    return float(t[t_hi[0]] - t[t_lo[0]])


def settling_time(traj: Trajectory, reference: str | None = None, band: float = 0.02) -> float:
    """Time after which the tracked signal stays within ``band`` of the step size of its target.

    Counted from the step; NaN when it is outside the band at the last sample.
    """
    step = _step(traj, reference)
    if step is None:
        return float("nan")
    y, t, y0, r = step
    tol = band * max(abs(r - y0), 1e-12)
    outside = np.flatnonzero(np.abs(y - r) > tol)
    if outside.size == 0:
        return 0.0
    if outside[-1] == y.size - 1:
        return float("nan")
    return float(t[outside[-1] + 1])


def steady_state_error(traj: Trajectory, reference: str | None = None, tail: float = 0.1) -> float:
    """Mean absolute error over the last ``tail`` fraction of the samples."""
    e = _err(traj, reference)
    n = max(1, round(tail * e.size))
    return float(np.mean(np.abs(e[-n:])))


def control_effort(traj: Trajectory) -> float:
    """``sum ||u||^2 dt``."""
    return float(np.sum(traj.actions**2) * traj.dt)


def total_variation(traj: Trajectory) -> float:
    """``sum ||u[k+1] - u[k]||_1``: how much the actuator moves."""
    if len(traj) < 2:
        return 0.0
    return float(np.sum(np.abs(np.diff(traj.actions, axis=0))))


def constraint_violations(traj: Trajectory) -> int:
    """Number of observation samples outside the declared signal bounds."""
    low = np.array([s.low for s in traj.observation_signals])
    high = np.array([s.high for s in traj.observation_signals])
    bad = (traj.observations < low) | (traj.observations > high)
    return int(np.sum(np.any(bad, axis=1)))


def episode_return(traj: Trajectory) -> float:
    """Sum of rewards."""
    return float(np.sum(traj.rewards))


_TRACKING = (iae, ise, itae, overshoot, rise_time, settling_time, steady_state_error)


def summary(traj: Trajectory) -> dict[str, Any]:
    """All metrics in one flat dict.

    Tracking metrics are keyed ``"<reference>.<metric>"`` for each reference signal; ``iae``,
    ``ise`` and ``itae`` without a prefix sum over references. ``steps`` and ``duration`` say
    how much was run and ``terminated`` whether the plant ended the episode early (a constraint):
    every other metric then covers only that shorter episode.
    """
    out: dict[str, Any] = {
        "steps": len(traj),
        "duration": float(traj.time[-1] - traj.time[0]) if len(traj) else 0.0,
        "terminated": traj.terminated,
    }
    for ref, _ in traj.tracking_pairs:
        for fn in _TRACKING:
            out[f"{ref}.{fn.__name__}"] = fn(traj, ref)
    if traj.tracking_pairs:
        for fn in (iae, ise, itae):
            out[fn.__name__] = sum(out[f"{r}.{fn.__name__}"] for r, _ in traj.tracking_pairs)
    out["control_effort"] = control_effort(traj)
    out["total_variation"] = total_variation(traj)
    out["constraint_violations"] = constraint_violations(traj)
    out["return"] = episode_return(traj)
    return out


_UNIT_RULES = {
    "iae": "{u}*s", "ise": "({u})^2*s", "itae": "{u}*s^2", "overshoot": "%", "rise_time": "s",
    "settling_time": "s", "steady_state_error": "{u}",
}


def units(traj: Trajectory) -> dict[str, str]:
    """The unit of each :func:`summary` key (``"<ref>.iae"`` of a current: ``"A*s"``).

    Sums over references of different units read ``"mixed"``; ``control_effort`` is in action
    units squared times seconds.
    """
    obs_units = {s.name: s.unit for s in traj.observation_signals}
    out = {"steps": "1", "duration": "s", "terminated": "", "constraint_violations": "samples",
           "return": "1"}
    ref_units = []
    for ref, tracked in traj.tracking_pairs:
        u = obs_units.get(tracked, "1")
        ref_units.append(u)
        for name, rule in _UNIT_RULES.items():
            out[f"{ref}.{name}"] = _unit(rule, u)
    for name in ("iae", "ise", "itae"):
        if ref_units:
            same = len(set(ref_units)) == 1
            out[name] = _unit(_UNIT_RULES[name], ref_units[0]) if same else "mixed"
    act = {s.unit for s in traj.action_signals}
    a = act.pop() if len(act) == 1 else "mixed"
    out["control_effort"] = "mixed" if a == "mixed" else _unit("({u})^2*s", a)
    out["total_variation"] = a
    return out


def _unit(rule: str, u: str) -> str:
    """``rule`` with unit ``u``; a dimensionless ``"1"`` drops out (``"(1)^2*s"`` -> ``"s"``)."""
    if u in ("1", ""):
        return rule.replace("({u})^2*", "").replace("{u}*", "").replace("{u}", "1")
    return rule.format(u=u)
