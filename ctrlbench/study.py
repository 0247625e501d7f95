"""Studies: a frozen spec (plants x controllers x seeds x parameter grid) expanded into runs.

Each run writes its trajectory, then its record (``records/<run_id>.json``, one JSON line)
atomically; a record's presence means the run is finished, so a rerun skips it and a study killed
at any point loses at most the runs in flight. A failing run is recorded with its error and the
study goes on. Runs execute in a local process pool (one torch/BLAS thread per worker).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import runpy
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctrlbench.capabilities import Provides
from ctrlbench.io import atomic_write_bytes
from ctrlbench.trajectory import jsonable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunSpec", "StudySpec", "execute_run", "load_records", "records_frame", "run_study"]


@dataclass(frozen=True)
class RunSpec:
    """One closed-loop run of a study."""

    plant: str
    controller: str
    seed: int
    steps: int | None = None
    plant_options: Mapping[str, Any] = field(default_factory=dict)
    controller_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """Stable id from the run's content: same spec, same id."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        name = f"{self.plant.split('/')[-1]}__{self.controller}__s{self.seed}"
        return f"{name}__{hashlib.sha1(blob).hexdigest()[:10]}"


@dataclass(frozen=True)
class StudySpec:
    """What to run.

    Parameters
    ----------
    name:
        Study name (used in reports).
    plants:
        Plant ids (``ctrlbench/<Name>-v<N>`` or any gymnasium id).
    controllers:
        Controller names from the controller registry.
    seeds:
        Seeds; each (plant, controller, grid point) runs once per seed.
    steps:
        Steps per run; ``None`` runs each episode to its end.
    plant_options:
        Fixed options for every plant.
    controller_options:
        Fixed options per controller name; a key ``"<controller>@<plant id>"`` adds options for
        that controller on that plant only (e.g. a set-point prefilter one plant needs).
    grid:
        Parameter grid ``{"plant.<option>" | "controller.<option>": [values, ...]}``; the study
        runs the Cartesian product.
    """

    name: str
    plants: tuple[str, ...]
    controllers: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int | None = None
    plant_options: Mapping[str, Any] = field(default_factory=dict)
    controller_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.grid:
            if not key.startswith(("plant.", "controller.")):
                raise ValueError(f"grid key {key!r} must start with 'plant.' or 'controller.'")
        for key in self.controller_options:
            ctrl, _, plant = key.partition("@")
            if ctrl not in self.controllers or (plant and plant not in self.plants):
                raise ValueError(
                    f"controller_options key {key!r} must be a controller of "
                    f"{list(self.controllers)} or '<controller>@<plant>' with a plant of "
                    f"{list(self.plants)}"
                )

    @classmethod
    def from_file(cls, path: str | Path) -> StudySpec:
        """Read a ``.toml`` spec (top-level keys = fields) or a ``.py`` file defining ``SPEC``."""
        path = Path(path)
        if path.suffix == ".py":
            spec = runpy.run_path(str(path)).get("SPEC")
            if not isinstance(spec, cls):
                raise ValueError(f"{path} must define SPEC = StudySpec(...)")
            return spec
        if path.suffix != ".toml":
            raise ValueError(f"study spec must be .toml or .py, got {path}")
        data = tomllib.loads(path.read_text())
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudySpec:
        """Build from a mapping; unknown keys raise, listing the valid ones."""
        valid = set(cls.__dataclass_fields__)
        bad = sorted(set(data) - valid)
        if bad:
            raise KeyError(f"unknown study spec key(s) {bad}; valid keys: {sorted(valid)}")
        d = dict(data)
        for key in ("plants", "controllers", "seeds"):
            if key in d:
                d[key] = tuple(d[key])
        if "grid" in d:
            d["grid"] = {k: tuple(v) for k, v in d["grid"].items()}
        return cls(**d)

    def validate(self) -> None:
        """Check every plant id, controller name and option against the registries.

        Builds each distinct plant once (with its options) and checks every controller's options
        on it. Raises ``KeyError`` / :class:`~ctrlbench.options.OptionError` naming the bad
        value and the valid choices, before any run starts.
        """
        from ctrlbench.registry import CONTROLLERS, make_plant, plant_info

        for name in self.controllers:
            CONTROLLERS.entry(name)
        plants: dict[str, Any] = {}
        try:
            for run in self.runs():
                key = json.dumps([plant_info(run.plant)[0], run.plant_options], sort_keys=True,
                                 default=str)
                if key not in plants:
                    plants[key] = make_plant(run.plant, **run.plant_options)
                CONTROLLERS.build_options(run.controller, run.controller_options, plants[key])
        finally:
            for env in plants.values():
                env.close()

    def skipped(self) -> list[tuple[str, str, str]]:
        """``(plant, controller, reason)`` for the pairs left out as not applicable."""
        from ctrlbench.capabilities import missing
        from ctrlbench.registry import CONTROLLERS, PLANTS, plant_info

        out = []
        for plant, ctrl in itertools.product(self.plants, self.controllers):
            provides = PLANTS.entry(plant_info(plant)[0]).provides
            lacks = missing(CONTROLLERS.entry(ctrl).resolved_requires(), provides or Provides())
            if lacks:
                out.append((plant, ctrl, "; ".join(lacks)))
        return out

    def runs(self) -> list[RunSpec]:
        """The Cartesian product of plants, controllers, grid points and seeds, over the
        applicable (plant, controller) pairs only (:meth:`skipped` lists the others)."""
        keys = list(self.grid)
        out = []
        skip = {(p, c) for p, c, _ in self.skipped()}
        for plant, ctrl in itertools.product(self.plants, self.controllers):
            if (plant, ctrl) in skip:
                continue
            for values in itertools.product(*(self.grid[k] for k in keys)):
                p_opts = dict(self.plant_options)
                c_opts = {**self.controller_options.get(ctrl, {}),
                          **self.controller_options.get(f"{ctrl}@{plant}", {})}
                for k, v in zip(keys, values):
                    scope, _, opt = k.partition(".")
                    (p_opts if scope == "plant" else c_opts)[opt] = v
                for seed in self.seeds:
                    out.append(RunSpec(plant, ctrl, seed, self.steps, p_opts, c_opts))
        return out


def _init_worker() -> None:
    """One BLAS/torch thread per worker process."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def execute_run(run: RunSpec, out_dir: str | Path) -> dict[str, Any]:
    """Run one closed loop and write its trajectory and record; errors become records."""
    from ctrlbench.metrics import summary, units
    from ctrlbench.registry import make_controller, make_plant
    from ctrlbench.simulate import simulate

    out = Path(out_dir)
    record: dict[str, Any] = {"run_id": run.run_id, **asdict(run)}
    try:
        plant = make_plant(run.plant, **run.plant_options)
        ctrl = make_controller(run.controller, plant, **run.controller_options)
        traj = simulate(
            plant,
            ctrl,
            steps=run.steps,
            seed=run.seed,
            meta={"plant": run.plant, "controller": run.controller},
        )
        plant.close()
        traj_path = traj.save(out / "trajectories" / run.run_id)
        record.update(
            status="ok", metrics=summary(traj), units=units(traj),
            trajectory=str(traj_path.relative_to(out)),
        )
    except Exception as exc:
        record.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=5),
        )
    line = json.dumps(record, default=jsonable, allow_nan=True) + "\n"
    atomic_write_bytes(out / "records" / f"{run.run_id}.json", line.encode())
    return record


def load_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """All run records of a study folder, sorted by run id."""
    rec_dir = Path(out_dir) / "records"
    if not rec_dir.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(rec_dir.glob("*.json"))]


def records_frame(out_dir: str | Path) -> pd.DataFrame:
    """The study's records as one pandas DataFrame: a row per run, columns ``plant``,
    ``controller``, ``seed``, ``status``, ``plant.<option>``, ``controller.<option>`` and one per
    metric (``iae``, ``omega_ref.overshoot``, ``terminated``, ...)."""
    import pandas as pd

    rows = []
    for rec in load_records(out_dir):
        row: dict[str, Any] = {k: rec.get(k) for k in ("run_id", "plant", "controller", "seed",
                                                        "status", "error")}
        row.update({f"plant.{k}": v for k, v in rec.get("plant_options", {}).items()})
        row.update({f"controller.{k}": v for k, v in rec.get("controller_options", {}).items()})
        row.update(rec.get("metrics", {}))
        rows.append(row)
    return pd.DataFrame(rows)


def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    workers: int = 1,
    retry_failed: bool = True,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Execute the runs of ``spec`` that have no record yet; return all records.

    Raises before running anything when a plant, controller or option is unknown
    (:meth:`StudySpec.validate`).

    Parameters
    ----------
    spec:
        The study.
    out_dir:
        Folder for ``spec.json``, ``records/`` and ``trajectories/``.
    workers:
        Process-pool size; 1 runs in this process.
    retry_failed:
        Re-run runs whose record says ``"error"``.
    on_done:
        Called with each new record (progress reporting).
    """
    spec.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        out / "spec.json", json.dumps(asdict(spec), indent=1, default=jsonable).encode()
    )
    done = {r["run_id"]: r for r in load_records(out)}
    todo = [
        r
        for r in spec.runs()
        if r.run_id not in done or (retry_failed and done[r.run_id].get("status") != "ok")
    ]
    for record in _execute(todo, out, workers):
        if on_done is not None:
            on_done(record)
    return load_records(out)


def _execute(todo: list[RunSpec], out: Path, workers: int) -> Iterable[dict[str, Any]]:
    if workers <= 1:
        for run in todo:
            yield execute_run(run, out)
        return
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker) as pool:
        pending: set[Future[dict[str, Any]]] = {pool.submit(execute_run, r, out) for r in todo}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
