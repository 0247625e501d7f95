"""Training data of the LSTMc: plant batches under random jacket profiles, cached on disk.

Each batch is one episode of ``ctrlbench/Crystallization-v0`` with ``grade="random"``: the reset
seed draws the operating conditions (seed distribution, concentration, temperature) and an hourly
random-walk jacket profile (:mod:`plants.crystallization.references`), and the batch is run under
that profile on the plant itself (the population balance). The set-point of a batch is the true
mean size it reached at its end (MODELS.md section 3: "set-points in their data = the final size
reached by random T_j runs"); the set-point error of step ``k`` is ``set-point - mean_size_k``.

Batch ``i`` of data seed ``s`` resets the plant with seed ``1_000_000 * (1 + s) + i``, so data
seeds never meet the small seeds (< 1,000,000) that studies evaluate on.

The cache is a folder of chunk files ``chunk-<i>.npz`` (``DataSettings.chunk`` batches each),
each written atomically and followed by a ``chunk-<i>.json`` sidecar holding its SHA-256, the
settings key and the batch count; ``cache.json`` names the settings. Before use every chunk is
checked (sidecar, checksum, settings, shapes, finiteness); a damaged, foreign or mismatched file is
moved to ``<cache>/quarantine/`` with a note saying why, the warning names it, and the chunk is
simulated again: a bad cache is never used. A generation stopped part-way keeps its finished
chunks, so a rerun simulates only the rest; asking for more batches with the same settings reuses
the chunks already there.

Generation runs in a ``spawn`` process pool (one thread per worker, workers ignore SIGINT and
exit with the driver) with a progress bar; ``workers=1`` runs in this process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench.io import atomic_write_bytes
from ctrlbench.options import Options, option
from ctrlbench.runfolder import lock_folder, quarantine
from ctrlbench.study_pool import prepare_worker

__all__ = [
    "FORMAT",
    "PLANT_ID",
    "SEED_BASE",
    "BatchData",
    "DataSettings",
    "ensure_data",
    "make_windows",
    "simulate_batches",
    "train_lstmc",
]

FORMAT = "ctrlbench-lstmc-data/2"
PLANT_ID = "ctrlbench/Crystallization-v0"
SEED_BASE = 1_000_000
"""Batch ``i`` of ``data_seed`` ``s`` uses reset seed ``SEED_BASE * (1 + s) + i``."""

FloatArray = NDArray[np.float64]
Warn = Callable[[str], None]


@dataclass(frozen=True)
class DataSettings(Options):
    """How the LSTMc training batches are simulated (all but ``runs`` key the cache)."""

    label = "LSTMc data"
    runs: int = option(7000, "simulated batches (operating conditions)", ge=1, le=SEED_BASE - 1)
    data_seed: int = option(
        0, "data seed: batch i resets the plant with seed 1e6 * (1 + data_seed) + i",
        ge=0, le=4000)
    chunk: int = option(50, "batches per work unit and cache file", ge=1, le=10_000)
    steps: int = option(144, "control periods per batch (144 = the whole 24 h)", ge=2, le=144)
    n_cells: int = option(250, "finite-volume cells of the plant's size grid", ge=50, le=2000)
    noise: float = option(0.0, "plant measurement noise during the data batches [-]",
                          ge=0.0, le=0.5)
    kinetic_uncertainty: bool = option(
        False, "draw the kinetic constants per batch (data from several systems)")

    def key(self) -> str:
        """Hash of every setting but ``runs``: chunks with the same key are interchangeable."""
        fields = {k: v for k, v in self.to_dict().items() if k != "runs"}
        text = json.dumps({"format": FORMAT, **fields}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def plant_options(self) -> dict[str, Any]:
        """Options of the data plant."""
        return {"grade": "random", "noise": self.noise, "n_cells": self.n_cells,
                "kinetic_uncertainty": self.kinetic_uncertainty}

    def n_chunks(self) -> int:
        """Number of chunk files ``runs`` needs."""
        return -(-self.runs // self.chunk)

    def chunk_runs(self, index: int) -> range:
        """Batch numbers of chunk ``index``."""
        return range(index * self.chunk, min((index + 1) * self.chunk, self.runs))


@dataclass(frozen=True)
class BatchData:
    """Simulated batches (failed ones dropped).

    Attributes
    ----------
    measured:
        ``(n, steps + 1, m)`` measured signals at the period boundaries (as observed).
    jacket:
        ``(n, steps)`` jacket temperature applied over each period [C].
    size_true:
        ``(n, steps + 1)`` true (noise-free) mean size [um].
    seeds:
        ``(n,)`` reset seeds.
    signals:
        Names of the ``m`` measured signals.
    tracked:
        Position of the tracked signal (``mean_size``) in ``signals``.
    """

    measured: FloatArray
    jacket: FloatArray
    size_true: FloatArray
    seeds: NDArray[np.int64]
    signals: tuple[str, ...]
    tracked: int

    @property
    def setpoint(self) -> FloatArray:
        """The size each batch reached (its set-point) [um]."""
        return self.size_true[:, -1]

    def __len__(self) -> int:
        return int(self.seeds.size)


# -- simulation (runs in the workers) ----------------------------------------------------------
def _layout(env: Any) -> tuple[list[int], tuple[str, ...], int]:
    from ctrlbench.plant import signals_of

    obs, _ = signals_of(env)
    idx = [i for i, s in enumerate(obs) if s.tracks is None]  # measured, not references
    tracked_name = next(s.tracks for s in obs if s.tracks is not None)
    names = tuple(obs[i].name for i in idx)
    return idx, names, names.index(str(tracked_name))


def simulate_batches(settings: DataSettings, runs: range) -> dict[str, Any]:
    """Simulate batches ``runs`` of ``settings`` on the plant; arrays keyed as in a chunk file.

    A batch whose integrator fails is kept with ``ok = False`` (and zeros); nothing is NaN.
    """
    from ctrlbench.registry import make_plant

    env = make_plant(PLANT_ID, **settings.plant_options())
    idx, names, _ = _layout(env)
    n, steps = len(runs), settings.steps
    out = {"measured": np.zeros((n, steps + 1, len(idx))), "jacket": np.zeros((n, steps)),
           "size_true": np.zeros((n, steps + 1)), "seeds": np.zeros(n, dtype=np.int64),
           "ok": np.zeros(n, dtype=bool)}
    for j, i in enumerate(runs):
        seed = SEED_BASE * (1 + settings.data_seed) + i
        out["seeds"][j] = seed
        obs, info = env.reset(seed=seed)
        profile = np.asarray(info["setpoint_profile"], dtype=np.float64)
        meas, jac, true = [obs[idx]], [], [float(info["mean_size_true"])]
        for k in range(steps):
            obs, _, _, _, step_info = env.step(profile[k: k + 1])
            if step_info.get("solver_failed"):
                break
            meas.append(obs[idx])
            jac.append(float(step_info["T_j_applied"]))
            true.append(float(step_info["mean_size_true"]))
        if len(jac) == steps:
            out["measured"][j], out["jacket"][j] = np.stack(meas), jac
            out["size_true"][j], out["ok"][j] = true, True
    env.close()
    out["signals"] = np.array(names)
    return out


def _worker_chunk(settings: dict[str, Any], index: int) -> tuple[int, dict[str, Any]]:
    opts = DataSettings(**settings)
    return index, simulate_batches(opts, opts.chunk_runs(index))


# -- the cache ---------------------------------------------------------------------------------
def _chunk_paths(folder: Path, index: int) -> tuple[Path, Path]:
    return folder / f"chunk-{index:05d}.npz", folder / f"chunk-{index:05d}.json"


def _write_chunk(folder: Path, settings: DataSettings, index: int, arrays: dict[str, Any]
                 ) -> None:
    npz, side = _chunk_paths(folder, index)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(npz, data)
    meta = {"format": FORMAT, "key": settings.key(), "index": index,
            "runs": len(settings.chunk_runs(index)), "sha256": hashlib.sha256(data).hexdigest()}
    atomic_write_bytes(side, json.dumps(meta).encode())


def _chunk_problem(folder: Path, settings: DataSettings, index: int
                   ) -> tuple[str | None, dict[str, Any] | None]:
    """``(problem, arrays)``: what is wrong with chunk ``index`` (``None``: it is good)."""
    npz, side = _chunk_paths(folder, index)
    if not side.exists():
        return "no checksum sidecar (an interrupted write?)", None
    try:
        meta = json.loads(side.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return f"unreadable sidecar {side.name}: {exc}", None
    if not npz.exists():
        return f"{npz.name} is missing", None
    want = {"format": FORMAT, "key": settings.key(), "index": index,
            "runs": len(settings.chunk_runs(index))}
    for k, v in want.items():
        if meta.get(k) != v:
            return f"sidecar says {k}={meta.get(k)!r}, this cache needs {v!r}", None
    data = npz.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return "checksum mismatch (the file changed or is truncated)", None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        return f"unreadable arrays: {type(exc).__name__}: {exc}", None
    return _shape_problem(arrays, settings, index), arrays


def _shape_problem(arrays: dict[str, Any], settings: DataSettings, index: int) -> str | None:
    n, s = len(settings.chunk_runs(index)), settings.steps
    need = {"measured": 3, "jacket": 2, "size_true": 2, "seeds": 1, "ok": 1, "signals": 1}
    if set(arrays) != set(need):
        return f"arrays {sorted(arrays)}, expected {sorted(need)}"
    m = arrays["signals"].shape[0]
    shapes = {"measured": (n, s + 1, m), "jacket": (n, s), "size_true": (n, s + 1),
              "seeds": (n,), "ok": (n,)}
    for k, shape in shapes.items():
        if arrays[k].shape != shape:
            return f"{k} has shape {arrays[k].shape}, expected {shape}"
    ok = arrays["ok"].astype(bool)
    for k in ("measured", "jacket", "size_true"):
        if not np.isfinite(arrays[k][ok]).all():
            return f"{k} holds non-finite values"
    first = SEED_BASE * (1 + settings.data_seed) + settings.chunk_runs(index).start
    if not np.array_equal(arrays["seeds"], np.arange(first, first + n)):
        return "seeds are not this chunk's"
    return None


def _set_aside(folder: Path, paths: list[Path], reason: str, warn: Warn) -> None:
    for path in paths:
        if path.exists():
            where = quarantine(path, folder, reason)
            warn(f"LSTMc data cache: {path} {reason}; moved to {where} and rebuilt")


def _check_folder(folder: Path, settings: DataSettings, warn: Warn) -> None:
    """Quarantine every file of a cache made with other settings; (re)write ``cache.json``."""
    head = folder / "cache.json"
    wanted: dict[str, Any] = {k: v for k, v in settings.to_dict().items() if k != "runs"}
    want = {"format": FORMAT, "key": settings.key(), "settings": wanted}
    old: dict[str, Any] | None = None
    if head.exists():
        try:
            loaded = json.loads(head.read_text())
            old = loaded if isinstance(loaded, dict) else {"content": loaded}
        except (OSError, ValueError) as exc:
            old = {"unreadable": str(exc)}
    if old is not None and old.get("key") != want["key"]:
        before = old.get("settings")
        before = before if isinstance(before, dict) else {}
        diff = sorted(k for k in wanted if before.get(k) != wanted[k])
        reason = (f"was made with other settings ({', '.join(diff) or 'format'} differ: "
                  f"{ {k: before.get(k) for k in diff} } vs requested "
                  f"{ {k: wanted[k] for k in diff} })")
        _set_aside(folder, [*sorted(folder.glob("chunk-*")), head], reason, warn)
    for tmp in folder.glob(".*.tmp"):  # left by a killed writer; we hold the lock
        tmp.unlink(missing_ok=True)
    atomic_write_bytes(head, json.dumps(want, indent=1).encode())


def _generate(settings: DataSettings, todo: list[int], workers: int, progress: bool
              ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Simulate the chunks ``todo``, yielding ``(index, arrays)`` as each finishes."""
    from tqdm import tqdm

    total = sum(len(settings.chunk_runs(i)) for i in todo)
    bar = tqdm(total=total, unit="batch", desc="LSTMc data", disable=not progress,
               dynamic_ncols=True)
    try:
        if workers <= 1 or len(todo) <= 1:
            for index in todo:
                yield index, simulate_batches(settings, settings.chunk_runs(index))
                bar.update(len(settings.chunk_runs(index)))
            return
        yield from _generate_pool(settings, todo, workers, bar)
    finally:
        bar.close()


def _generate_pool(settings: DataSettings, todo: list[int], workers: int, bar: Any
                   ) -> Iterator[tuple[int, dict[str, Any]]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                               initializer=prepare_worker, initargs=(os.getpid(),))
    pending: set[Future[tuple[int, dict[str, Any]]]] = set()
    queue = list(reversed(todo))
    try:
        while queue or pending:
            while queue and len(pending) < 2 * workers:  # a short queue: Ctrl-C stops soon
                pending.add(pool.submit(_worker_chunk, settings.to_dict(), queue.pop()))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                index, arrays = fut.result()
                bar.update(len(settings.chunk_runs(index)))
                yield index, arrays
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):  # our workers, by pid
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def ensure_data(settings: DataSettings, folder: str | os.PathLike[str], *, workers: int = 1,
                progress: bool = False, warn: Warn | None = None) -> BatchData:
    """The batches of ``settings`` from the cache in ``folder``, simulating what is missing.

    Parameters
    ----------
    settings:
        What to simulate.
    folder:
        Cache folder (created if missing; one writer at a time).
    workers:
        Processes for the simulation (1: this process).
    progress:
        Show a progress bar (stderr).
    warn:
        Called with a message for every file set aside (default: print to stderr).

    Returns
    -------
    BatchData
        The batches in order, failed ones dropped.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    say = warn or (lambda m: print(m, file=sys.stderr))
    root = Path(folder)
    with lock_folder(root, "LSTMc data cache"):
        _check_folder(root, settings, say)
        chunks: dict[int, dict[str, Any]] = {}
        for index in range(settings.n_chunks()):
            problem, arrays = _chunk_problem(root, settings, index)
            if problem is None and arrays is not None:
                chunks[index] = arrays
            elif any(p.exists() for p in _chunk_paths(root, index)):
                _set_aside(root, list(_chunk_paths(root, index)), problem or "bad", say)
        todo = [i for i in range(settings.n_chunks()) if i not in chunks]
        for index, arrays in _generate(settings, todo, workers, progress):
            _write_chunk(root, settings, index, arrays)
            chunks[index] = arrays
    return _assemble([chunks[i] for i in range(settings.n_chunks())])


def _assemble(chunks: list[dict[str, Any]]) -> BatchData:
    ok = np.concatenate([c["ok"] for c in chunks]).astype(bool)
    names = tuple(str(s) for s in chunks[0]["signals"])
    return BatchData(
        measured=np.concatenate([c["measured"] for c in chunks])[ok],
        jacket=np.concatenate([c["jacket"] for c in chunks])[ok],
        size_true=np.concatenate([c["size_true"] for c in chunks])[ok],
        seeds=np.concatenate([c["seeds"] for c in chunks])[ok],
        signals=names, tracked=names.index("mean_size"))


# -- supervised windows ------------------------------------------------------------------------
def make_windows(data: BatchData, window: int, samples_per_run: int | None = None,
                 seed: int = 0, runs: NDArray[np.int64] | None = None, noise: float = 0.0
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Inputs and targets for the LSTMc: ``X (n, window, m + 1)``, ``y (n,)``.

    Sample ``(run, k)`` holds the measured signals and the set-point error
    ``set-point - tracked`` of steps ``k - window + 1 .. k`` (steps before 0 repeat step 0, as
    the controller does at the start of a batch); its target is the jacket temperature applied
    over period ``k``.

    Parameters
    ----------
    data:
        The batches.
    window:
        Steps per window ``W`` (>= 1).
    samples_per_run:
        Periods drawn per batch without replacement (``None``: every period).
    seed:
        Seed of that draw and of the noise.
    runs:
        Batch positions to use (``None``: all).
    noise:
        Augmentation: each window's measured signals are multiplied by ``1 + s N(0, 1)``
        (independently per step and signal, the plant's sensor-noise model) with ``s`` drawn
        uniformly in ``[0, noise]`` per window; the error is computed from the noisy size.
        (One level per batch, shared by its windows, was tried too: with 1000 batches it gave
        larger final deviations on every evaluation set of the study.)
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    sel = np.arange(len(data)) if runs is None else np.asarray(runs)
    steps = data.jacket.shape[1]
    rng = np.random.default_rng(seed)
    if samples_per_run is None or samples_per_run >= steps:
        ks = np.tile(np.arange(steps), (sel.size, 1))
    else:
        ks = np.stack([np.sort(rng.choice(steps, samples_per_run, replace=False))
                       for _ in range(sel.size)])
    r = np.repeat(sel, ks.shape[1])
    k = ks.reshape(-1)
    idx = np.maximum(k[:, None] + np.arange(1 - window, 1)[None, :], 0)
    meas = data.measured[r[:, None], idx].astype(np.float32)
    if noise > 0:
        scale = rng.uniform(0.0, noise, (len(r), 1, 1)).astype(np.float32)
        meas *= 1.0 + scale * rng.standard_normal(meas.shape, dtype=np.float32)
    error = data.setpoint[r][:, None].astype(np.float32) - meas[:, :, data.tracked]
    x = np.concatenate((meas, error[..., None]), axis=2)
    return x, data.jacket[r, k].astype(np.float32)


# -- the training pipeline ---------------------------------------------------------------------
def train_lstmc(out: str | Path, data: DataSettings | None = None, train: Any = None, *,
                workers: int = 1, data_dir: str | Path | None = None, progress: bool = False
                ) -> Path:
    """Simulate (or read) the data, fit the LSTMc and write ``<out>/model.pt``; resumable.

    A ``model.pt`` already there with the same data and training settings is returned as is.

    Parameters
    ----------
    out:
        Training folder: ``checkpoint.pt``, ``model.pt`` and, by default, ``data/``.
    data:
        :class:`controllers.lstmc_data.DataSettings` (default: 7000 batches).
    train:
        :class:`controllers.lstmc.TrainSettings` (default: its defaults).
    workers:
        Processes for the data simulation.
    data_dir:
        Data cache folder (default ``<out>/data``).
    progress:
        Progress bar and per-epoch lines on stderr.
    """
    from controllers.lstmc import (
        LSTMcModelError,
        LSTMRegressor,
        TrainSettings,
        feature_layout,
    )
    from ctrlbench.registry import make_plant

    data = data if data is not None else DataSettings()
    train = train if train is not None else TrainSettings()
    out = Path(out)
    with lock_folder(out, "LSTMc training"):
        done = _finished_model(out / "model.pt", data, train)
        if done is not None:
            if progress:
                print(f"LSTMc: {done} is up to date (same data and training settings)",
                      file=sys.stderr)
            return done
        t0 = time.perf_counter()
        batches = ensure_data(data, data_dir if data_dir is not None else out / "data",
                              workers=workers, progress=progress)
        t_data = time.perf_counter() - t0
        plant = make_plant(PLANT_ID, **data.plant_options())
        layout = feature_layout(plant)
        plant.close()
        if (*batches.signals, layout.names[-1]) != layout.names:
            raise LSTMcModelError(f"data signals {batches.signals} do not match the plant's "
                                  f"{layout.names}")
        order = np.random.default_rng(train.seed).permutation(len(batches))
        n_val = round(train.val_fraction * len(batches))
        spr = train.samples_per_run or None
        x, y = make_windows(batches, train.window, spr, train.seed, np.sort(order[n_val:]),
                            train.input_noise)
        xv, yv = make_windows(batches, train.window, spr, train.seed + 1,
                              np.sort(order[:n_val]), train.input_noise)
        est = LSTMRegressor(train.window, train.hidden, train.layers, train.epochs,
                            train.batch_size, train.lr, train.seed, out / "checkpoint.pt",
                            progress)
        t1 = time.perf_counter()
        est.fit(x, y, eval_set=(xv, yv) if n_val else None)
        meta = {"features": list(layout.names), "plant": PLANT_ID, "data": asdict(data),
                "data_key": data.key(), "train": asdict(train), "batches": len(batches),
                "windows": len(y), "data_seconds": t_data,
                "fit_seconds": time.perf_counter() - t1}
        return est.save(out / "model.pt", meta)


def _finished_model(path: Path, data: DataSettings, train: Any) -> Path | None:
    """``path`` when it holds a model of exactly these settings (then nothing is retrained)."""
    from controllers.lstmc import LSTMcModelError, LSTMRegressor
    from ctrlbench.runfolder import CorruptFileError

    if not path.is_file():
        return None
    try:
        meta = LSTMRegressor.load(path).meta_
    except (LSTMcModelError, CorruptFileError):
        return None  # refitted and overwritten
    same = (meta.get("data") == json.loads(json.dumps(asdict(data)))
            and meta.get("train") == json.loads(json.dumps(asdict(train))))
    return path if same else None


def describe_settings(settings: DataSettings) -> dict[str, Any]:
    """Settings and key, for a model's metadata."""
    return {**asdict(settings), "key": settings.key()}
