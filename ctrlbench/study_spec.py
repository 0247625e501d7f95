"""Study specs: what to run (:class:`StudySpec`) and each run it expands to (:class:`RunSpec`).

Every field is checked once, whether the spec comes from ``.toml``, a dict or a ``.py`` file:
wrong types, bare strings where a list belongs, duplicates, unsafe names and out-of-range seeds
or steps raise ``TypeError`` / ``ValueError`` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
import runpy
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctrlbench.capabilities import Provides
from ctrlbench.records import run_id_of

__all__ = ["EXECUTION_FIELDS", "MAX_SEED", "RESOURCE_KEYS", "RunSpec", "StudySpec",
           "check_steps", "check_timeout", "plain_value"]

MAX_SEED = 2**32 - 1
"""The largest seed a study (or ``ctrlbench run --seed``) accepts."""
RESOURCE_KEYS = ("num_cpus", "num_gpus")
"""What a run may declare it needs (a Ray task's resources; the local pool runs one run per
worker process)."""
EXECUTION_FIELDS = ("timeout_s", "resources")
"""Spec fields that say how runs execute, not what they compute: a study may be resumed with
other values (they are not compared with the folder's ``spec.json``)."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}..." if len(text) > 63 else text


def _type(value: Any) -> str:
    return type(value).__name__


def _check_name(value: Any) -> str:
    """A study name: 1-100 letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit
    (it names the study folder ``results/<name>``)."""
    if not isinstance(value, str):
        raise TypeError(f"study spec field 'name' = {_show(value)} ({_type(value)}) must be a "
                        f"string")
    if not _SAFE_NAME.fullmatch(value):
        raise ValueError(
            f"study spec field 'name' = {_show(value)} is not a safe folder name: use 1-100 "
            f"letters, digits, '.', '_' or '-', starting with a letter or digit (no '/' or '..')"
        )
    return value


def _sequence(field: str, value: Any, of: str) -> Sequence[Any]:
    if isinstance(value, str | bytes):
        raise TypeError(f"study spec field {field!r} must be a list of {of}, got the string "
                        f"{_show(value)}; write [{_show(value)}]")
    if not isinstance(value, Sequence):
        raise TypeError(f"study spec field {field!r} = {_show(value)} ({_type(value)}) must be "
                        f"a list of {of}")
    if len(value) == 0:
        raise ValueError(f"study spec field {field!r} is empty; list at least one of {of}")
    return value


def _no_duplicates(field: str, values: Sequence[Any]) -> None:
    seen: dict[str, Any] = {}
    for v in values:
        key = _canonical(v)
        if key in seen:
            same = "" if repr(seen[key]) == repr(v) else f" (same as {_show(seen[key])})"
            raise ValueError(f"study spec field {field!r} lists {_show(v)} twice{same}; list "
                             f"each value once")
        seen[key] = v


def _check_names(field: str, value: Any, of: str) -> tuple[str, ...]:
    """A non-empty list of distinct non-empty strings (plant ids, controller names)."""
    seq = _sequence(field, value, of)
    for i, v in enumerate(seq):
        if not isinstance(v, str) or not v.strip():
            raise TypeError(f"study spec field {field!r}: item {i} = {_show(v)} ({_type(v)}) "
                            f"must be a non-empty string ({of})")
    _no_duplicates(field, seq)
    return tuple(seq)


def _check_seeds(value: Any) -> tuple[int, ...]:
    """A non-empty list of distinct integers in ``[0, 2**32 - 1]`` (not booleans)."""
    seq = _sequence("seeds", value, "integer seeds")
    out = []
    for i, v in enumerate(seq):
        if isinstance(v, bool) or not hasattr(v, "__index__"):
            raise TypeError(f"study spec field 'seeds': item {i} = {_show(v)} ({_type(v)}) must "
                            f"be an integer in [0, {MAX_SEED}]")
        n = operator.index(v)
        if not 0 <= n <= MAX_SEED:
            raise ValueError(f"study spec field 'seeds': item {i} = {n} is out of range; valid: "
                             f"integers in [0, {MAX_SEED}]")
        out.append(n)
    _no_duplicates("seeds", out)
    return tuple(out)


def check_steps(value: Any) -> int | None:
    """``None`` (run each episode to its end) or an integer >= 1 (not a boolean)."""
    if value is None:
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"study spec field 'steps' = {_show(value)} ({_type(value)}) must be an "
                        f"integer >= 1, or absent to run each episode to its end")
    n = operator.index(value)
    if n < 1:
        raise ValueError(f"study spec field 'steps' = {n} is out of range; valid: integers >= 1")
    return n


def check_timeout(value: Any, where: str = "study spec field 'timeout_s'") -> float | None:
    """``None`` (no limit) or a wall-clock limit per run in seconds, > 0 and finite."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} = {_show(value)} ({_type(value)}) must be a number of seconds "
                        f"> 0, or absent for no limit")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where} = {value!r} is out of range; valid: a finite number of "
                         f"seconds > 0")
    return float(value)


def _check_resources(value: Any) -> dict[str, float]:
    """``{"num_cpus": n, "num_gpus": m}`` (either may be left out), each a number >= 0."""
    res = _mapping("field 'resources'", value, "num_cpus / num_gpus = number")
    out = {}
    for key, v in res.items():
        if key not in RESOURCE_KEYS:
            raise KeyError(f"unknown resource {key!r} in study spec field 'resources'; valid: "
                           f"{list(RESOURCE_KEYS)}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not (
            math.isfinite(v) and v >= 0
        ):
            raise ValueError(f"study spec field 'resources'[{key!r}] = {_show(v)} must be a "
                             f"finite number >= 0")
        out[key] = float(v)
    return out


def plain_value(where: str, value: Any) -> Any:
    """``value`` as plain JSON-like data (numpy scalars become Python numbers); anything that a
    record cannot hold raises ``TypeError``."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy scalar
        return plain_value(where, value.item())
    for kind in (bool, int, float, str):  # subclasses (IntEnum, ...) as the plain type
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, list | tuple):
        return type(value)(plain_value(f"{where}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        return {_key(where, k): plain_value(f"{where}[{k!r}]", v) for k, v in value.items()}
    raise TypeError(f"study spec {where} = {_show(value)} ({_type(value)}) must be a number, "
                    f"string, boolean, None or a list of them")


def _key(where: str, key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"study spec {where}: key {_show(key)} ({_type(key)}) must be a "
                        f"non-empty string")
    return key


def _mapping(where: str, value: Any, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"study spec {where} = {_show(value)} ({_type(value)}) must be a table "
                        f"of {what}")
    return value


def _check_options(where: str, value: Any) -> dict[str, Any]:
    """A mapping ``{option name: value}`` of plain values."""
    opts = _mapping(where, value, "option = value")
    return {_key(where, k): plain_value(f"{where}[{k!r}]", v) for k, v in opts.items()}


def _check_grid(value: Any) -> dict[str, tuple[Any, ...]]:
    """``{"plant.<option>" | "controller.<option>": [distinct values, ...]}``."""
    grid = _mapping("field 'grid'", value, "'plant.<option>' / 'controller.<option>' = [values]")
    out = {}
    for key, values in grid.items():
        _key("field 'grid'", key)
        scope, dot, name = key.partition(".")
        if scope not in ("plant", "controller") or not dot or not name:
            raise ValueError(f"grid key {key!r} must start with 'plant.' or 'controller.' and "
                             f"name an option")
        field = f"grid[{key!r}]"
        seq = _sequence(field, values, "option values")
        seq = [plain_value(field, v) for v in seq]
        _no_duplicates(field, seq)
        out[key] = tuple(seq)
    return out


def _canonical(value: Any) -> str:
    """Equal for values that give the same option (``1`` and ``1.0``; ``nan`` and ``nan``)."""

    def norm(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return [type(v).__name__, v]
        if isinstance(v, int | float):
            f = float(v) if abs(v) < 2**53 or isinstance(v, float) else v
            return ["num", repr(f) if isinstance(f, float) and not math.isfinite(f) else f]
        if isinstance(v, list | tuple):
            return ["seq", [norm(x) for x in v]]
        if isinstance(v, Mapping):
            return ["map", sorted((str(k), norm(x)) for k, x in v.items())]
        return ["other", repr(v)]

    return json.dumps(norm(value), sort_keys=True, default=str)


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
        return run_id_of(**asdict(self))


_REQUIRED = ("name", "plants", "controllers")


@dataclass(frozen=True)
class StudySpec:
    """What to run.

    Every field is checked on construction (see the module docstring); lists may be given as
    lists or tuples and are stored as tuples.

    Parameters
    ----------
    name:
        Study name: it names the default folder ``results/<name>``, so 1-100 letters, digits,
        ``.``, ``_`` or ``-``, starting with a letter or digit.
    plants:
        Distinct plant ids (``ctrlbench/<Name>-v<N>``).
    controllers:
        Distinct controller names from the controller registry.
    seeds:
        Distinct seeds in ``[0, 2**32 - 1]``; each (plant, controller, grid point) runs once per
        seed.
    steps:
        Steps per run (>= 1); ``None`` runs each episode to its end.
    plant_options:
        Fixed options for every plant.
    controller_options:
        Fixed options per controller name; a key ``"<controller>@<plant id>"`` adds options for
        that controller on that plant only (e.g. a set-point prefilter one plant needs).
    grid:
        Parameter grid ``{"plant.<option>" | "controller.<option>": [distinct values, ...]}``;
        the study runs the Cartesian product.
    timeout_s:
        Wall-clock limit of one run in seconds (``None``: none); a run past it is stopped and
        recorded as failed, naming the limit. May change between sessions of a study.
    resources:
        What one run needs, ``{"num_cpus": 1, "num_gpus": 0}`` by default: the Ray backend
        declares it for each run's task. May change between sessions of a study.

    A controller's options may come from a file: ``controller_options = {pid = "best.json"}``
    (a path, relative to the spec file, to the JSON/TOML file ``ctrlbench tune`` writes, or
    ``{options = {...}}`` tables alike); its options are read into the spec when it is built.
    """

    name: str
    plants: tuple[str, ...]
    controllers: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    steps: int | None = None
    plant_options: Mapping[str, Any] = field(default_factory=dict)
    controller_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    timeout_s: float | None = None
    resources: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "name", _check_name(self.name))
        put(self, "plants", _check_names("plants", self.plants, "plant ids"))
        put(self, "controllers", _check_names("controllers", self.controllers,
                                              "controller names"))
        put(self, "seeds", _check_seeds(self.seeds))
        put(self, "steps", check_steps(self.steps))
        put(self, "plant_options", _check_options("field 'plant_options'", self.plant_options))
        per = _mapping("field 'controller_options'", self.controller_options,
                       "controller = {option = value}")
        put(self, "controller_options", {
            _key("field 'controller_options'", k): _check_options(
                f"controller_options[{k!r}]", _from_file(k, v))
            for k, v in per.items()
        })
        put(self, "grid", _check_grid(self.grid))
        put(self, "timeout_s", check_timeout(self.timeout_s))
        put(self, "resources", _check_resources(self.resources))
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
        """Read a ``.toml`` spec (top-level keys = fields) or a ``.py`` file defining ``SPEC``.

        Errors name the file: a missing file, invalid TOML, a ``.py`` file that fails to run or
        defines no ``SPEC``, and every bad field.
        """
        path = Path(path)
        if path.suffix not in (".toml", ".py"):
            raise ValueError(f"study spec must be a .toml or .py file, got {str(path)!r}")
        if not path.is_file():
            raise FileNotFoundError(f"study spec {str(path)!r} does not exist or is not a file")
        if path.suffix == ".py":
            try:
                spec = runpy.run_path(str(path)).get("SPEC")
            except (KeyError, TypeError, ValueError) as exc:
                raise _same_kind(exc, f"{path}: {_message(exc)}") from None
            except SystemExit as exc:
                raise ValueError(f"{path} exited (sys.exit({exc.code!r})) instead of defining "
                                 f"SPEC") from None
            except Exception as exc:  # the file is user code: any failure is a bad spec
                raise ValueError(f"{path} failed to run: {type(exc).__name__}: {exc}") from None
            if not isinstance(spec, cls):
                raise ValueError(f"{path} must define SPEC = StudySpec(...), got "
                                 f"{_show(spec)}")
            return spec
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid TOML: {exc}") from None
        per = data.get("controller_options")
        if isinstance(per, dict):  # options files are relative to the spec file
            data["controller_options"] = {
                k: str(path.parent / v) if isinstance(v, str) and not Path(v).is_absolute()
                else v for k, v in per.items()}
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise _same_kind(exc, f"{path}: {_message(exc)}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudySpec:
        """Build from a mapping; unknown keys raise ``KeyError`` listing the valid ones, missing
        ones name what is required, and each field is checked as in the constructor."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a study spec must be a table of fields, got {_show(data)} "
                            f"({_type(data)})")
        valid = list(cls.__dataclass_fields__)
        bad = sorted(str(k) for k in data if k not in valid)
        if bad:
            raise KeyError(f"unknown study spec key(s) {bad}; valid keys: {sorted(valid)}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise KeyError(f"study spec is missing required key(s) {missing}; required: "
                           f"{list(_REQUIRED)}")
        return cls(**dict(data))

    def validate(self) -> list[RunSpec]:
        """Check every plant id, controller name and option against the registries; return
        :meth:`runs`.

        Builds each distinct plant once (with its options) and checks every controller's options
        on it. Raises ``KeyError`` / :class:`~ctrlbench.options.OptionError` naming the bad
        value and the valid choices (or ``ValueError`` for two ids of the same plant, or a study
        with no applicable pair), before any run starts.
        """
        from ctrlbench.registry import plant_info, split_controller

        for name in self.controllers:
            split_controller(name)
        full: dict[str, str] = {}
        for plant in self.plants:
            resolved = plant_info(plant)[0]
            if resolved in full:
                raise ValueError(f"study spec field 'plants' lists {full[resolved]!r} and "
                                 f"{plant!r}, the same plant; list each plant once")
            full[resolved] = plant
        runs = self.runs()
        if not runs:
            raise ValueError("the study has no run: no controller applies to any of its "
                             "plants (see `ctrlbench list`)")
        self._check_options(runs, {plant: resolved for resolved, plant in full.items()})
        return runs

    @staticmethod
    def _check_options(runs: list[RunSpec], full: Mapping[str, str]) -> None:
        from ctrlbench.registry import CONTROLLERS, make_plant, split_controller

        plants: dict[str, Any] = {}
        try:
            for run in runs:
                key = json.dumps([full[run.plant], run.plant_options], sort_keys=True,
                                 default=str)
                if key not in plants:
                    plants[key] = make_plant(run.plant, **run.plant_options)
                family, from_name = split_controller(run.controller)
                CONTROLLERS.build_options(family, {**from_name, **run.controller_options},
                                          plants[key])
        finally:
            for env in plants.values():
                env.close()

    def skipped(self) -> list[tuple[str, str, str]]:
        """``(plant, controller, reason)`` for the pairs left out as not applicable."""
        from ctrlbench.capabilities import missing
        from ctrlbench.registry import CONTROLLERS, PLANTS, plant_info, split_controller

        out = []
        for plant, ctrl in itertools.product(self.plants, self.controllers):
            provides = PLANTS.entry(plant_info(plant)[0]).provides
            family = split_controller(ctrl)[0]
            lacks = missing(CONTROLLERS.entry(family).resolved_requires(),
                            provides or Provides())
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


def _from_file(key: str, value: Any) -> Any:
    """A controller's options: the table itself, or read from the options file it names."""
    if not isinstance(value, str | Path):
        return value
    from ctrlbench.tune_options import read_options_file

    try:
        return read_options_file(value)
    except (OSError, ValueError) as exc:
        raise ValueError(f"study spec controller_options[{key!r}] = {str(value)!r}: "
                         f"{exc}") from None


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _same_kind(exc: BaseException, message: str) -> Exception:
    """``KeyError``, ``TypeError`` or ``ValueError`` (as ``exc`` is) with ``message``."""
    for kind in (KeyError, TypeError):
        if isinstance(exc, kind):
            return kind(message)
    return ValueError(message)
