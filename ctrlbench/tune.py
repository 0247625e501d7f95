"""Controller tuning on Optuna: the same closed loop and run records as studies.

A :class:`TuneSpec` names a plant, a controller, the options to tune (:class:`ParamRange`), the
metric to minimize (or maximize) and the seeds each trial is scored on (the mean of the metric
over them). :func:`run_tune` asks Optuna (TPE by default) for trials and runs each trial's runs
as study runs (:func:`ctrlbench.study.execute_run`): one record per run in ``<out>/runs``, written
atomically; the trial's value is told to Optuna's storage.

- **Storage**: embedded SQLite in the tune folder by default (``<out>/optuna.db``), or any Optuna
  RDB URL (``postgresql://user:password@host/db``) to tune from many machines at once, each with
  its own ``--out`` and the same ``--study-name``.
- **Pruning**: with one worker the seeds of a trial run one after another and the running mean is
  reported after each; the pruner (median by default) stops a trial that is already worse than
  the others at that point (``PRUNED``).
- **Parallel trials**: with ``workers > 1`` trials are asked in batches of ``workers`` and their
  runs go through the study backends (the local process pool, or Ray tasks), with the same
  guarantees: a worker that dies fails its run, hence its trial (``FAIL``, the error kept in the
  trial's ``error`` attribute); a run past ``timeout_s`` likewise.
- **Crash-proof**: the tune folder is locked (one tuner per folder). Trials this folder's tuner
  left running when it was killed are marked ``FAIL`` (``lost`` attribute) on the next start and
  their parameters enqueued again; their finished runs are reused (a run's id is its content), so
  after reruns every run is recorded once and the study continues from its storage. The budget
  ``trials`` counts finished trials (complete, pruned, or failed by their own run), not lost ones.
"""

from __future__ import annotations

import dataclasses
import math
import re
import socket
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ctrlbench.study_spec import MAX_SEED, RunSpec, check_steps, check_timeout, plain_value

__all__ = ["SAMPLERS", "ParamRange", "TuneResult", "TuneSpec", "parse_param", "run_tune"]

SAMPLERS = ("tpe", "random")
"""Optuna samplers ``ctrlbench tune`` offers."""
_PRUNERS = ("median", "none")
_PARAM = re.compile(r"(?P<name>[^=]+)=(?P<low>[^:]+):(?P<high>[^:]+)(?::(?P<log>[^:]*))?")


@dataclass(frozen=True)
class ParamRange:
    """One tuned option: a float (or, when ``integer``, an int) in ``[low, high]``."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        for what in ("low", "high"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                    value):
                raise ValueError(f"{where}: {what} = {value!r} must be a finite number")
        if not self.low < self.high:
            raise ValueError(f"{where}: empty range {self.low!r}:{self.high!r} (low must be "
                             f"below high)")
        if self.log and self.low <= 0:
            raise ValueError(f"{where}: a log range needs low > 0, got {self.low!r}")

    def suggest(self, trial: Any) -> float | int:
        """The trial's value for this parameter."""
        if self.integer:
            return int(trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log))
        return float(trial.suggest_float(self.name, self.low, self.high, log=self.log))

    def distribution(self) -> Any:
        """The Optuna distribution (for enqueueing a lost trial's parameters)."""
        import optuna

        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high),
                                                        log=self.log)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)


def parse_param(text: str) -> ParamRange:
    """``NAME=LOW:HIGH[:log]`` (``:int`` or ``:log,int`` for an integer option)."""
    m = _PARAM.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"--param {text!r} must read NAME=LOW:HIGH or NAME=LOW:HIGH:log "
                         f"(e.g. t_sigma=2e-5:2e-3:log)")
    flags = {f for f in (m["log"] or "").split(",") if f}
    bad = flags - {"log", "int"}
    if bad:
        raise ValueError(f"--param {text!r}: unknown flag(s) {sorted(bad)}; valid: log, int")
    nums = []
    for what in ("low", "high"):
        try:
            nums.append(float(m[what]))
        except ValueError:
            raise ValueError(f"--param {text!r}: {what} {m[what]!r} is not a number") from None
    return ParamRange(m["name"].strip(), nums[0], nums[1], "log" in flags, "int" in flags)


@dataclass(frozen=True)
class TuneSpec:
    """What to tune.

    Parameters
    ----------
    plant, controller:
        Registered plant id and controller name.
    params:
        The options to tune; every other option takes ``controller_options`` or its default.
    metric:
        A run metric (``iae``, ``ise``, ``return``, ...); the trial's value is its mean over
        ``seeds``.
    direction:
        ``"minimize"`` or ``"maximize"``.
    trials:
        Finished trials to reach (a rerun continues up to it).
    seeds:
        Episode seeds each trial is scored on (the training seeds).
    steps:
        Steps per run; ``None`` runs each episode to its end.
    plant_options, controller_options:
        Fixed options.
    sampler:
        ``"tpe"`` (default) or ``"random"``.
    pruner:
        ``"median"`` (default) or ``"none"``; acts when seeds run one after another (one worker).
    sampler_seed:
        Seed of the sampler.
    timeout_s:
        Wall-clock limit of one run (a run past it fails its trial).
    """

    plant: str
    controller: str
    params: tuple[ParamRange, ...]
    metric: str = "iae"
    direction: str = "minimize"
    trials: int = 20
    seeds: tuple[int, ...] = (0,)
    steps: int | None = None
    plant_options: Mapping[str, Any] = field(default_factory=dict)
    controller_options: Mapping[str, Any] = field(default_factory=dict)
    sampler: str = "tpe"
    pruner: str = "median"
    sampler_seed: int = 0
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        put = object.__setattr__
        if not self.params:
            raise ValueError("nothing to tune: give at least one --param NAME=LOW:HIGH")
        names = [p.name for p in self.params]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"parameter(s) {twice} given twice; give each once")
        fixed = sorted(set(names) & set(self.controller_options))
        if fixed:
            raise ValueError(f"parameter(s) {fixed} are both tuned and fixed; drop one")
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"direction {self.direction!r} must be 'minimize' or 'maximize'")
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ValueError(f"trials = {self.trials!r} must be an integer >= 1")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; valid: {list(SAMPLERS)}")
        if self.pruner not in _PRUNERS:
            raise ValueError(f"unknown pruner {self.pruner!r}; valid: {list(_PRUNERS)}")
        seeds = tuple(self.seeds)
        if not seeds or len(set(seeds)) != len(seeds) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED
                for s in seeds):
            raise ValueError(f"seeds = {list(seeds)!r} must be distinct integers in "
                             f"[0, {MAX_SEED}], at least one")
        put(self, "seeds", seeds)
        put(self, "params", tuple(self.params))
        put(self, "steps", check_steps(self.steps))
        put(self, "timeout_s", check_timeout(self.timeout_s, "timeout_s"))
        put(self, "plant_options", {k: plain_value(f"plant_options[{k!r}]", v)
                                    for k, v in self.plant_options.items()})
        put(self, "controller_options", {k: plain_value(f"controller_options[{k!r}]", v)
                                         for k, v in self.controller_options.items()})

    def run(self, values: Mapping[str, Any], seed: int) -> RunSpec:
        """The run of one trial (tuned ``values``) on one seed."""
        return RunSpec(self.plant, self.controller, seed, self.steps, dict(self.plant_options),
                       {**self.controller_options, **values})

    def validate(self) -> TuneSpec:
        """Check the plant, controller, parameter names, ranges and the metric; return the spec
        with the plant's full id.

        Errors name the bad value and the valid ones: an option the controller does not take,
        a range bound the option refuses, a metric the runs do not give.
        """
        from ctrlbench.metrics import summary
        from ctrlbench.registry import (
            check_applicable,
            controller_options,
            make_controller,
            make_plant,
            plant_info,
            split_controller,
        )
        from ctrlbench.simulate import simulate

        full = plant_info(self.plant)[0]
        family = split_controller(self.controller)[0]
        plant = make_plant(full, **self.plant_options)
        try:
            check_applicable(self.controller, plant)
            cls = controller_options(self.controller, plant)
            valid = [] if cls is None else [f.name for f in dataclasses.fields(cls)]
            for p in self.params:
                if p.name not in valid:
                    raise KeyError(f"controller {family!r} on {full} takes no option {p.name!r}; "
                                   f"valid options: {valid}")
            for bound in ("low", "high"):  # the option's own range check names the value
                values = {p.name: _cast(getattr(p, bound), p) for p in self.params}
                make_controller(self.controller, plant, **{**self.controller_options, **values})
            mid = {p.name: _cast(_middle(p), p) for p in self.params}
            ctrl = make_controller(self.controller, plant, **{**self.controller_options, **mid})
            metrics = summary(simulate(plant, ctrl, steps=2, seed=self.seeds[0]))
        finally:
            plant.close()
        numeric = sorted(k for k, v in metrics.items()
                         if isinstance(v, int | float) and not isinstance(v, bool))
        if self.metric not in numeric:
            raise KeyError(f"unknown metric {self.metric!r} for {full} / {self.controller}; "
                           f"valid metrics: {numeric}")
        return replace(self, plant=full)


def _cast(value: float, p: ParamRange) -> float | int:
    return int(value) if p.integer else float(value)


def _middle(p: ParamRange) -> float:
    return math.sqrt(p.low * p.high) if p.log else 0.5 * (p.low + p.high)


@dataclass(frozen=True)
class TuneResult:
    """The outcome of :func:`run_tune`."""

    best_params: dict[str, Any]
    """The best trial's parameters (merged with the fixed options in ``options``)."""
    best_value: float
    """Its metric (mean over the seeds)."""
    best_trial: int
    """Its trial number."""
    options: dict[str, Any]
    """The controller options to use: fixed options plus the best parameters."""
    finished: int
    """Trials finished in the study (complete, pruned or failed by their run)."""
    counts: dict[str, int]
    """Trials by state (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ...)."""
    options_file: Path
    """The options file written (``<out>/best_options.json``)."""
    study: Any
    """The ``optuna.Study`` (for plots: :func:`ctrlbench.tune_report.build_tune_report`)."""


def run_tune(
    spec: TuneSpec,
    out_dir: str | Path,
    *,
    storage: str | None = None,
    study_name: str | None = None,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    on_trial: Callable[[Any], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> TuneResult:
    """Tune ``spec`` until ``spec.trials`` trials have finished; write the best options.

    Parameters
    ----------
    spec:
        What to tune (validated here before anything is written).
    out_dir:
        Tune folder: ``optuna.db`` (the default storage), ``runs/`` (records and trajectories
        of every run), ``best_options.json``.
    storage:
        Optuna storage URL; default ``sqlite:///<out>/optuna.db``.
    study_name:
        Optuna study name; default ``<Plant>__<controller>__<metric>``.
    workers:
        Trials run at once (1: one after another, in this process, with pruning).
    backend:
        ``"local"`` or ``"ray"``: where the runs of parallel trials execute.
    address:
        Ray cluster address (``backend="ray"``); default a local Ray.
    on_trial:
        Called with each finished trial (an ``optuna.trial.FrozenTrial``).
    on_warning:
        Called with each warning (lost trials enqueued again).
    """
    from ctrlbench.runfolder import lock_folder
    from ctrlbench.study import BACKENDS, MAX_WORKERS
    from ctrlbench.tune_storage import open_study

    if isinstance(workers, bool) or not isinstance(workers, int) or not (
            1 <= workers <= MAX_WORKERS):
        raise ValueError(f"workers must be an integer in [1, {MAX_WORKERS}], got {workers!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {list(BACKENDS)}")
    if backend == "ray":
        from ctrlbench.study_ray import import_ray

        import_ray()
    spec = spec.validate()
    out = Path(out_dir)
    name = study_name or re.sub(r"[^A-Za-z0-9._-]", "_", f"{spec.plant.split('/')[-1]}__"
                                                         f"{spec.controller}__{spec.metric}")
    with lock_folder(out, "tune"):
        study = open_study(spec, storage or f"sqlite:///{(out / 'optuna.db').resolve()}", name)
        _check_same(study, spec, name)
        owner = f"{socket.gethostname()}:{out.resolve()}"
        for message in _requeue_lost(study, spec, owner):
            (on_warning or (lambda _: None))(message)
        started = False
        if backend == "ray":  # one Ray for the whole tuning, not one per batch
            from ctrlbench.study_ray import start_ray

            started = start_ray(address, workers)
        try:
            loop = _serial(spec, study, out, owner) if workers == 1 and backend == "local" \
                else _batched(spec, study, out, owner, workers, backend, address)
            for trial in loop:
                if on_trial is not None:
                    on_trial(trial)
        finally:
            if started:
                import ray

                ray.shutdown()
        return _finish(spec, study, out, name)


def _identity(spec: TuneSpec) -> dict[str, Any]:
    """What a trial's value means: a study keeps one."""
    import json

    return json.loads(json.dumps({
        "plant": spec.plant, "controller": spec.controller, "metric": spec.metric,
        "seeds": list(spec.seeds), "steps": spec.steps, "plant_options": spec.plant_options,
        "controller_options": spec.controller_options,
        "params": [[p.name, p.low, p.high, p.log, p.integer] for p in spec.params]}))


def _check_same(study: Any, spec: TuneSpec, name: str) -> None:
    """Record the tuning's identity in a new study; refuse a study that tunes something else."""
    mine, theirs = _identity(spec), study.user_attrs.get("ctrlbench_tune")
    if theirs is None:
        study.set_user_attr("ctrlbench_tune", mine)
        return
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        raise ValueError(f"Optuna study {name!r} tunes something else (it differs in "
                         f"{', '.join(differ)}): rerun with the same settings to continue it, "
                         f"or choose another --study-name")


def _finished(study: Any) -> int:
    """Trials that count towards the budget: complete, pruned, failed by their own run."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs))


def _running(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _requeue_lost(study: Any, spec: TuneSpec, owner: str) -> list[str]:
    """Fail this folder's trials a killed tuner left running; enqueue their parameters again."""
    from optuna.trial import TrialState

    messages = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("owner") != owner:
            continue  # another machine's (or folder's) live trial
        study._storage.set_trial_user_attr(t._trial_id, "lost", "the tuner stopped during it")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if set(t.params) == {p.name for p in spec.params}:
            study.enqueue_trial(dict(t.params), skip_if_exists=False)
        messages.append(f"trial {t.number} was left running by a stopped tuner: marked FAIL "
                        f"(lost) and its parameters {dict(t.params)} enqueued again")
    return messages


def _ask(study: Any, spec: TuneSpec, owner: str) -> tuple[Any, dict[str, Any]]:
    trial = study.ask()
    trial.set_user_attr("owner", owner)
    values = {p.name: p.suggest(trial) for p in spec.params}
    return trial, values


def _metric(record: Mapping[str, Any], spec: TuneSpec) -> float:
    """The run's metric; a failed run or a non-finite metric raises ``ValueError``."""
    if record.get("status") != "ok":
        raise ValueError(f"run {record['run_id']} failed: {record.get('error', '?')}")
    value = float(record["metrics"][spec.metric])
    if not math.isfinite(value):
        raise ValueError(f"run {record['run_id']}: {spec.metric} = {value}")
    return value


def _tell_failed(study: Any, trial: Any, why: str) -> Any:
    from optuna.trial import TrialState

    trial.set_user_attr("error", why)
    return study.tell(trial, state=TrialState.FAIL)


def _serial(spec: TuneSpec, study: Any, out: Path, owner: str) -> Generator[Any, None, None]:
    """One trial at a time in this process; the running mean is reported after each seed."""
    import optuna

    from ctrlbench.interrupt import raise_if_interrupted
    from ctrlbench.records import scan_records
    from ctrlbench.study import execute_run

    runs_dir = out / "runs"
    while _finished(study) + _running(study) < spec.trials:
        raise_if_interrupted()
        trial, values = _ask(study, spec, owner)
        scores: list[float] = []
        frozen = None
        for step, seed in enumerate(spec.seeds):
            run = spec.run(values, seed)
            record = scan_records(runs_dir, {run.run_id}).records.get(run.run_id) or \
                execute_run(run, runs_dir)
            try:
                scores.append(_metric(record, spec))
            except ValueError as exc:
                frozen = _tell_failed(study, trial, str(exc))
                break
            trial.report(sum(scores) / len(scores), step)
            if step + 1 < len(spec.seeds) and trial.should_prune():
                frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        if frozen is None:
            trial.set_user_attr("values", scores)
            frozen = study.tell(trial, sum(scores) / len(scores))
        yield frozen


def _batched(
    spec: TuneSpec, study: Any, out: Path, owner: str, workers: int, backend: str,
    address: str | None,
) -> Generator[Any, None, None]:
    """Trials asked ``workers`` at a time; their runs go through a study backend."""
    from contextlib import closing

    from ctrlbench.interrupt import raise_if_interrupted
    from ctrlbench.records import scan_records

    runs_dir = out / "runs"
    while (left := spec.trials - _finished(study) - _running(study)) > 0:
        raise_if_interrupted()
        batch = [_ask(study, spec, owner) for _ in range(min(workers, left))]
        runs = {(t.number, seed): spec.run(values, seed) for t, values in batch
                for seed in spec.seeds}
        done = scan_records(runs_dir, {r.run_id for r in runs.values()}).records
        todo = list({r.run_id: r for r in runs.values() if r.run_id not in done}.values())
        with closing(_backend(todo, runs_dir, workers, spec, backend, address)) as records:
            for record in records:
                done[record["run_id"]] = record
        for trial, _ in batch:
            try:
                scores = [_metric(done[runs[(trial.number, s)].run_id], spec)
                          for s in spec.seeds]
            except ValueError as exc:
                yield _tell_failed(study, trial, str(exc))
                continue
            trial.set_user_attr("values", scores)
            yield study.tell(trial, sum(scores) / len(scores))


def _backend(todo: list[RunSpec], runs_dir: Path, workers: int, spec: TuneSpec, backend: str,
             address: str | None) -> Generator[dict[str, Any], None, None]:
    if backend == "ray":
        from ctrlbench.study_ray import run_ray

        return run_ray(todo, runs_dir, workers, (), address=address, timeout_s=spec.timeout_s)
    from ctrlbench.study_pool import run_pool

    return run_pool(todo, runs_dir, max(1, min(workers, len(todo))), (), spec.timeout_s)


def _finish(spec: TuneSpec, study: Any, out: Path, name: str) -> TuneResult:
    from optuna.trial import TrialState

    from ctrlbench.tune_options import write_options_file

    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    if not counts.get("COMPLETE"):
        raise ValueError(f"no trial of study {name!r} completed ({counts}); see the trials' "
                         f"'error' attributes and the records in {str(out / 'runs')!r}")
    best = study.best_trial
    options = {**spec.controller_options, **best.params}
    path = write_options_file(out / "best_options.json", options, {
        "controller": spec.controller, "plant": spec.plant,
        "plant_options": dict(spec.plant_options), "metric": spec.metric,
        "direction": spec.direction, "value": best.value, "trial": best.number,
        "seeds": list(spec.seeds), "steps": spec.steps, "trials_finished": _finished(study),
        "complete": len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
        "study_name": name})
    return TuneResult(dict(best.params), float(best.value), best.number, options,
                      _finished(study), counts, path, study)


def seeds_of(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) as a tuple of seeds."""
    if not isinstance(text, str):
        return tuple(text)
    out: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, dash, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi) + 1)) if dash else [int(part)]
        except ValueError:
            raise ValueError(f"seeds {text!r}: {part!r} is not an integer or a range "
                             f"LOW-HIGH") from None
    return tuple(out)
