"""Closed-loop results: :class:`Trajectory` with ``to_pandas``, ``plot``, ``save``/``load``."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.io import atomic_write_bytes
from ctrlbench.signals import SignalSpec, index_of, names_of

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["Trajectory", "jsonable"]

FloatArray = NDArray[np.float64]


@dataclass
class Trajectory:
    """One closed-loop episode.

    Attributes
    ----------
    time:
        Sample times, shape ``(T + 1,)``; ``time[k]`` is when ``observations[k]`` was measured.
    observations:
        Shape ``(T + 1, n_obs)``, including the initial observation.
    actions:
        Shape ``(T, n_act)``; ``actions[k]`` is applied over ``[time[k], time[k + 1])``.
    rewards:
        Shape ``(T,)``.
    observation_signals, action_signals:
        Names, units and bounds of the columns.
    terminated, truncated:
        How the episode ended.
    info:
        Numeric per-step ``info`` entries, each of shape ``(T,)`` (non-numeric entries dropped).
    meta:
        JSON-serialisable facts about the run (plant id, controller, seed, options).
    """

    time: FloatArray
    observations: FloatArray
    actions: FloatArray
    rewards: FloatArray
    observation_signals: tuple[SignalSpec, ...]
    action_signals: tuple[SignalSpec, ...]
    terminated: bool = False
    truncated: bool = False
    info: dict[str, FloatArray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        """Number of control steps."""
        return int(self.actions.shape[0])

    @property
    def dt(self) -> float:
        """Control period (from the time column)."""
        return float(self.time[1] - self.time[0]) if self.time.size > 1 else float("nan")

    def signal(self, name: str) -> FloatArray:
        """Observation column ``name`` (``T + 1`` samples) or action column (``T`` samples)."""
        if name in names_of(self.observation_signals):
            return self.observations[:, index_of(self.observation_signals, name)]
        if name in names_of(self.action_signals):
            return self.actions[:, index_of(self.action_signals, name)]
        valid = names_of(self.observation_signals) + names_of(self.action_signals)
        raise KeyError(f"unknown signal {name!r}; valid signals: {valid}")

    @property
    def tracking_pairs(self) -> list[tuple[str, str]]:
        """``(reference, tracked)`` signal-name pairs declared by the observation signals."""
        return [(s.name, s.tracks) for s in self.observation_signals if s.tracks is not None]

    def error(self, reference: str | None = None) -> FloatArray:
        """Tracking error ``reference - tracked`` over the ``T + 1`` samples.

        ``reference`` defaults to the first reference signal.
        """
        pairs = dict(self.tracking_pairs)
        if not pairs:
            raise ValueError("trajectory has no reference signal (no SignalSpec with tracks=...)")
        ref = reference if reference is not None else next(iter(pairs))
        if ref not in pairs:
            raise KeyError(f"unknown reference {ref!r}; valid references: {sorted(pairs)}")
        return self.signal(ref) - self.signal(pairs[ref])

    # -- conversion ----------------------------------------------------------------------------
    def to_pandas(self) -> pd.DataFrame:
        """One row per sample; actions and rewards are NaN on the final sample."""
        import pandas as pd

        n = self.time.size
        data: dict[str, Any] = {"time": self.time}
        for j, s in enumerate(self.observation_signals):
            data[s.name] = self.observations[:, j]
        pad = np.full((1,), np.nan)
        for j, s in enumerate(self.action_signals):
            data[s.name if s.name not in data else f"action.{s.name}"] = np.concatenate(
                [self.actions[:, j], pad]
            )
        data["reward"] = np.concatenate([self.rewards, pad])
        for k, v in self.info.items():
            data[f"info.{k}"] = np.concatenate([v, np.full((n - v.size,), np.nan)])
        return pd.DataFrame(data)

    def plot(self, signals: Sequence[str] | None = None) -> Figure:
        """Tracked signals with their references, then the actions; returns the figure."""
        from matplotlib.figure import Figure

        pairs = self.tracking_pairs
        tracked: list[tuple[str, str | None]] = [(t, r) for r, t in pairs]
        if signals is not None:
            tracked = [(s, dict((b, a) for a, b in pairs).get(s)) for s in signals]
        elif not tracked:
            tracked = [(s.name, None) for s in self.observation_signals[:4]]
        rows = len(tracked) + len(self.action_signals)
        fig = Figure(figsize=(8, 1.8 * rows), layout="constrained")
        axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
        units = {s.name: s.unit for s in self.observation_signals + self.action_signals}
        for ax, (name, ref) in zip(axes, tracked):
            ax.plot(self.time, self.signal(name), label=name)
            if ref is not None:
                ax.plot(self.time, self.signal(ref), "--", label=ref)
            ax.set_ylabel(f"{name} [{units.get(name, '')}]")
            ax.legend(loc="best", fontsize="small")
        for ax, s in zip(axes[len(tracked) :], self.action_signals):
            ax.step(self.time[:-1], self.signal(s.name), where="post")
            ax.set_ylabel(f"{s.name} [{s.unit}]")
        axes[-1].set_xlabel("time")
        title = " / ".join(str(self.meta[k]) for k in ("plant", "controller") if k in self.meta)
        if title:
            fig.suptitle(title)
        return fig

    # -- persistence (npz + json sidecar, no pickle) -------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (signals, flags, meta) atomically."""
        import io

        base = Path(path).with_suffix("")
        buf = io.BytesIO()
        arrays = {
            "time": self.time,
            "observations": self.observations,
            "actions": self.actions,
            "rewards": self.rewards,
        }
        arrays.update({f"info.{k}": v for k, v in self.info.items()})
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(base.with_suffix(".npz"), buf.getvalue())
        sidecar = {
            "observation_signals": [asdict(s) for s in self.observation_signals],
            "action_signals": [asdict(s) for s in self.action_signals],
            "terminated": self.terminated,
            "truncated": self.truncated,
            "meta": self.meta,
        }
        atomic_write_bytes(
            base.with_suffix(".json"), json.dumps(sidecar, default=jsonable).encode()
        )
        return base.with_suffix(".npz")

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        """Read a trajectory written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            Either file is missing.
        ctrlbench.runfolder.CorruptFileError
            A file is truncated, not ours, or inconsistent (a ``ValueError`` naming the file).
        """
        from ctrlbench.runfolder import CorruptFileError

        base = Path(path).with_suffix("")
        current = base.with_suffix(".json")
        try:
            side = json.loads(current.read_text())
            if not isinstance(side, dict) or "observation_signals" not in side:
                raise ValueError("not a trajectory sidecar (a JSON object with the signals)")
            current = base.with_suffix(".npz")
            with np.load(current, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            return cls._from_parts(side, arrays)
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
                zipfile.BadZipFile) as exc:
            raise CorruptFileError(current, f"{type(exc).__name__}: {exc}") from None

    @classmethod
    def _from_parts(cls, side: Any, arrays: dict[str, Any]) -> Trajectory:
        n = len(arrays["time"])
        obs, act = arrays["observations"], arrays["actions"]
        n_obs, n_act = len(side["observation_signals"]), len(side["action_signals"])
        if obs.shape != (n, n_obs) or act.shape != (max(n - 1, 0), n_act):
            raise ValueError(
                f"array shapes observations {obs.shape}, actions {act.shape} do not match "
                f"{n} time points and {n_obs}/{n_act} signals"
            )
        return cls(
            time=arrays.pop("time"),
            observations=arrays.pop("observations"),
            actions=arrays.pop("actions"),
            rewards=arrays.pop("rewards"),
            observation_signals=tuple(_spec(d) for d in side["observation_signals"]),
            action_signals=tuple(_spec(d) for d in side["action_signals"]),
            terminated=bool(side["terminated"]),
            truncated=bool(side["truncated"]),
            info={k.removeprefix("info."): v for k, v in arrays.items()},
            meta=side["meta"],
        )


def _spec(d: Mapping[str, Any]) -> SignalSpec:
    kw: dict[str, Any] = {k: (float(v) if k in ("low", "high") else v) for k, v in d.items()}
    return SignalSpec(**kw)


def jsonable(obj: Any) -> Any:
    """``json.dumps`` fallback: numpy scalars and arrays, tuples and sets, else ``str``."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set):
        return list(obj)
    return str(obj)
