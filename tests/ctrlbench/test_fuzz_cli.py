"""Property-based fuzzing of the command line, study specs and records (Hypothesis).

Whatever the arguments, spec or record files: ``ctrlbench`` exits 0 (or 1 for failed runs or
checks, saying so), or 2 with one ``error:`` line (warnings may precede it) — never a traceback;
and no record says "ok" with NaN metrics, each run is recorded once. ``CTRLBENCH_FUZZ=slow``
runs many more examples (see ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ctrlbench.cli import main
from ctrlbench.records import scan_records
from ctrlbench.study import StudySpec, run_study

MSD = "ctrlbench/MassSpringDamper-v0"
PLANT_IDS = [MSD, "ctrlbench/DCSpeed-v0", "ctrlbench/PMSMCurrent-v0"]
PLANT_ARGS = ["MassSpringDamper-v0", *PLANT_IDS, "Nope-v0", "", "ctrlbench/", "../x", "[/x]"]
CTRLS = ["pid", "lqr", "zero"]
CTRL_ARGS = [*CTRLS, "nope", "", "[bold]x", "pid "]
OPTION_KEYS = ["m", "k", "c", "dt", "ref_range", "reference", "step_to", "omega", "bandwidth",
               "q_state", "r_input", "t_integral", "state_weights", "reference_tau", "nope",
               "plant.k", "controller.bandwidth", "plant.nope", "controller.", ".x", "a=b"]
RAW_VALUES = ["nan", "inf", "-inf", "1e308", "-1e308", "1e-308", "0", "-1", "1", "2.5", "abc",
              "None", "true", "[1,2", "(1, 2)", "(1, 2, 3)", "[/x]", "[bold]", "step", "gem",
              "9" * 400, "''", "{1: 2}"]
STEP_METRICS = (".overshoot", ".rise_time", ".settling_time")


def fewer(divisor: int) -> settings:
    """The loaded profile's example count divided by ``divisor``, for costly examples (each
    runs closed loops and writes files); the ``slow`` profile scales it up with the rest."""
    return settings(max_examples=max(5, settings.default.max_examples // divisor))


def raw_value() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(RAW_VALUES), st.floats().map(repr),
                     st.integers().map(str), st.text(max_size=6))


def check_exit(rc: int, out: str, err: str, may_fail: bool = False) -> None:
    """Exit 0, or 1 when runs or checks failed (said on stdout), or 2 with one error line."""
    assert "Traceback" not in out + err, err
    event(f"exit {rc}")
    if rc == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines and ": error: " in lines[-1], err
        assert all(": warning: " in line for line in lines[:-1]), err
        return
    assert rc == 0 or (may_fail and rc == 1), (rc, out, err)


def check_records(out: Path, spec: StudySpec) -> None:
    """Every run recorded exactly once, every record valid, no NaN metric recorded as ok."""
    ids = {r.run_id for r in spec.runs()}
    scan = scan_records(out, ids, check_trajectories=True)
    assert scan.problems == []
    assert set(scan.records) == ids and len(list((out / "records").glob("*.json"))) == len(ids)
    for rec in scan.records.values():
        if rec["status"] == "ok":
            assert all(math.isfinite(v) for k, v in rec["metrics"].items()
                       if not k.endswith(STEP_METRICS)), rec


@st.composite
def run_argv(draw: Any) -> list[str]:
    valid = draw(st.booleans())  # half the time real names and steps, so runs happen
    argv = ["run", draw(st.sampled_from(PLANT_IDS if valid else PLANT_ARGS)),
            draw(st.sampled_from(CTRLS if valid else CTRL_ARGS))]
    argv += ["--steps", draw(st.integers(1, 5).map(str) if valid else st.one_of(
        st.integers(-2, 5).map(str), st.sampled_from(["abc", "1e3", "", "0x2"])))]
    if draw(st.booleans()):
        argv += ["--seed", draw(st.one_of(st.integers(-3, 3), st.sampled_from(
            [2**32 - 1, 2**32, 10**30])).map(str))]
    for _ in range(draw(st.integers(0, 1 if valid else 3))):
        key = draw(st.sampled_from(OPTION_KEYS))
        argv += ["--set", draw(st.sampled_from([f"{key}=", key, f"{key}=={{}}"])).replace(
            "{}", "") if draw(st.integers(0, 9)) == 0 else f"{key}={draw(raw_value())}"]
    return argv


@fewer(2)
@given(argv=run_argv())
def test_fuzz_run(argv, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        capsys.readouterr()
        rc = main([*argv, "--out", str(Path(tmp) / "out")])
        out, err = capsys.readouterr()
        check_exit(rc, out, err)


@given(
    plant=st.sampled_from(["MassSpringDamper-v0", "Nope-v0", "[/x]"]),
    steps=st.sampled_from(["1", "3", "0", "-3", "x", "-0", "1.5"]),
    seed=st.sampled_from(["0", "2", "-1", str(2**40), "s"]),
)
def test_fuzz_check(plant, steps, seed, capsys):
    capsys.readouterr()
    rc = main(["check", plant, "--steps", steps, "--seed", seed])
    out, err = capsys.readouterr()
    check_exit(rc, out, err, may_fail=True)


@given(argv=st.lists(st.sampled_from(["list", "report", "study", "run", "check", "--help", "-x",
                                      "--steps", "5", "[/x]", "--no-figures", ""]),
                     max_size=4))
def test_fuzz_other_argv(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of the repository is read or written
    capsys.readouterr()
    rc = main(argv)
    out, err = capsys.readouterr()
    check_exit(rc, out, err)


# ---- study specs ---------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(),
                    st.floats(allow_nan=True), st.text(max_size=5),
                    st.sampled_from(["ctrlbench/DCSpeed-v0", "pid", "step", "[/x]", "../x"]))
ANY = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.text(max_size=4), inner,
                                                                    max_size=2)), max_leaves=5)
GRID_KEYS = ["plant.k", "plant.m", "plant.reference", "controller.bandwidth",
             "controller.q_state", "controller.nope", "plant.", "kp"]
GRID_VALUES = st.one_of(st.sampled_from([0.5, 1.0, 2.0, 4.0, 8.0, "step", "gem", 1e9]),
                        st.floats(-10, 10), st.integers(-2, 10), SCALARS)
# options every chosen plant (controller) takes, with values in range
PLANT_GRID = {"msd": {"plant.k": [1.0, 2.0, 3.0], "plant.m": [0.5, 1.0]},
              "gem": {"plant.reference": ["step", "gem"]}}
CTRL_GRID = {"pid": {"controller.bandwidth": [2.0, 4.0, 8.0]},
             "lqr": {"controller.q_state": [1.0, 100.0], "controller.r_input": [0.1, 1.0]}}


@st.composite
def valid_specs(draw: Any) -> dict[str, Any]:
    """A coherent spec: its grid and options apply to every chosen plant and controller."""
    plants = draw(st.lists(st.sampled_from(PLANT_IDS), min_size=1, max_size=2, unique=True))
    ctrls = draw(st.lists(st.sampled_from(CTRLS), min_size=1, max_size=2, unique=True))
    data: dict[str, Any] = {"name": draw(st.sampled_from(["fuzz", "f-1", "f.2"])),
                            "plants": plants, "controllers": ctrls,
                            "seeds": draw(st.lists(st.integers(0, 2**32 - 1), min_size=1,
                                                   max_size=2, unique=True))}
    if draw(st.booleans()):
        data["steps"] = draw(st.one_of(st.integers(1, 10**12), st.none()))
    grid_options: dict[str, list[Any]] = {}
    kinds = {"msd" if p == MSD else "gem" for p in plants}
    if len(kinds) == 1:
        grid_options.update(PLANT_GRID[kinds.pop()])
    if len(ctrls) == 1 and ctrls[0] in CTRL_GRID:
        grid_options.update(CTRL_GRID[ctrls[0]])
    if grid_options and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(grid_options)))
        data["grid"] = {key: draw(st.lists(st.sampled_from(grid_options[key]), min_size=1,
                                           max_size=2, unique=True))}
    return data


FIELDS = ["name", "plants", "controllers", "seeds", "steps", "grid", "plant_options",
          "controller_options"]
RANDOM_FIELDS = {
    **dict.fromkeys(FIELDS, ANY),
    "name": st.one_of(st.sampled_from(["../x", "a/b", "", ".", "x" * 101, "ok"]), ANY),
    "plants": st.one_of(st.sampled_from(PLANT_IDS), st.lists(st.sampled_from(PLANT_ARGS),
                                                               max_size=3), ANY),
    "controllers": st.one_of(st.sampled_from(CTRLS), st.lists(st.sampled_from(CTRL_ARGS),
                                                                max_size=3), ANY),
    "seeds": st.one_of(st.lists(st.one_of(st.integers(-2, 4), st.booleans(), st.floats()),
                                max_size=3), ANY),
    "steps": st.one_of(st.integers(-2, 3), st.floats(), st.booleans(), ANY),
    "grid": st.one_of(st.dictionaries(st.sampled_from(GRID_KEYS),
                                      st.one_of(st.lists(GRID_VALUES, max_size=3), ANY),
                                      max_size=2), ANY),
    "plant_options": st.one_of(st.dictionaries(
        st.sampled_from(["k", "m", "c", "dt", "reference", "nope"]), GRID_VALUES, max_size=2),
        ANY),
    "controller_options": st.one_of(st.dictionaries(
        st.sampled_from([*CTRLS, "nope", f"pid@{MSD}"]), st.dictionaries(
            st.sampled_from(["bandwidth", "q_state", "nope"]), GRID_VALUES, max_size=1),
        max_size=2), ANY),
    "extra": ANY,
}


@st.composite
def spec_dicts(draw: Any) -> dict[str, Any]:
    """A coherent spec with zero to three fields replaced by random values or types (or an
    unknown key added, or a required key removed)."""
    data = draw(valid_specs())
    n = draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]))
    for key in draw(st.lists(st.sampled_from([*FIELDS, "extra", "-name", "-plants"]),
                             min_size=n, max_size=n, unique=True)):
        if key.startswith("-"):
            data.pop(key[1:], None)
        else:
            data[key] = draw(RANDOM_FIELDS[key])
    return data


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}"
                               for k, x in v.items() if x is not None) + "}"
    raise TypeError(v)


def to_toml(data: dict[str, Any]) -> str:
    """TOML for ``data`` (``None`` has no TOML form and is left out)."""
    return "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in data.items()
                   if v is not None)


@given(data=spec_dicts())
def test_fuzz_spec_dicts_raise_clear_errors_or_validate(data):
    try:
        spec = StudySpec.from_dict(data)
        spec.validate()
    except (KeyError, TypeError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        assert isinstance(msg, str) and msg and "object is not iterable" not in msg
        return
    assert all(isinstance(s, int) and s >= 0 for s in spec.seeds)
    assert len(set(spec.plants)) == len(spec.plants)


@fewer(2)
@given(data=spec_dicts(), steps=st.integers(1, 3),
       workers=st.sampled_from(["1", "1", "1", "0", "-1", "257", "x"]))
def test_fuzz_study_toml(data, steps, workers, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out = Path(tmp) / "spec.toml", Path(tmp) / "out"
        spec_path.write_text(to_toml(data))
        capsys.readouterr()
        rc = main(["study", str(spec_path), "--out", str(out), "--steps", str(steps),
                   "--workers", workers])
        stdout, err = capsys.readouterr()
        check_exit(rc, stdout, err, may_fail=True)
        if rc in (0, 1):
            spec = StudySpec.from_file(spec_path)
            check_records(out, StudySpec.from_dict({**_fields(spec), "steps": steps}))
            assert (rc == 1) == ("(0 failed)" not in stdout)


def _fields(spec: StudySpec) -> dict[str, Any]:
    return {k: getattr(spec, k) for k in StudySpec.__dataclass_fields__}


# ---- damaged records -----------------------------------------------------------------------

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                              st.text(max_size=5)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=6), inner,
                                                            max_size=3)), max_leaves=8)


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz-study")
    spec = StudySpec("fuzz", (MSD,), ("pid", "zero"), seeds=(0, 1), steps=3)
    run_study(spec, out)
    return out, spec


@st.composite
def damage(draw: Any) -> tuple[int, Any]:
    """Which record (0-3) and what to write into it: random JSON, raw bytes, or the record with
    one field replaced."""
    which = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["json", "bytes", "field"]))
    if kind == "json":
        return which, json.dumps(draw(JSON)).encode()
    if kind == "bytes":
        return which, draw(st.binary(max_size=40))
    key = draw(st.sampled_from(["run_id", "plant", "controller", "seed", "steps", "status",
                                "metrics", "trajectory", "plant_options", "error", "units"]))
    return which, (key, draw(JSON))


@fewer(3)
@given(hurt=damage())
def test_fuzz_damaged_records_are_named_and_redone(hurt, study_folder, capsys):
    folder, spec = study_folder
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "study"
        shutil.copytree(folder, out)
        which, content = hurt
        path = sorted((out / "records").glob("*.json"))[which]
        if isinstance(content, tuple):
            rec = json.loads(path.read_text())
            rec[content[0]] = content[1]
            content = json.dumps(rec).encode()
        path.write_bytes(content)
        capsys.readouterr()
        rc = main(["report", str(out), "--no-figures"])
        stdout, err = capsys.readouterr()
        check_exit(rc, stdout, err)
        redone = run_study(spec, out, on_warning=lambda _: None)
        assert sorted(r["run_id"] for r in redone) == sorted(r.run_id for r in spec.runs())
        check_records(out, spec)


TRAIN_KEYS = ["learning_rate", "buffer_size", "learning_starts", "batch_size", "net_arch",
              "eval_every", "eval_steps", "checkpoint_every", "normalize_obs", "tensorboard",
              "seed", "train.steps", "sac.tau", "plant.m", "m", "nope", "random_steps", "gamma"]


@fewer(3)
@given(algo=st.sampled_from(["sac", "td3", "ppo", "sindy-rl", "nope", "", "SAC"]),
       plant=st.sampled_from(["MassSpringDamper-v0", "Pendulum-v1", "CartPole-v1", "Nope-v0"]),
       sets=st.lists(st.tuples(st.sampled_from(TRAIN_KEYS), raw_value()), max_size=3),
       steps=st.sampled_from(["2", "0", "-1", "nan", "x"]))
def test_fuzz_train(algo: str, plant: str, sets: list[tuple[str, str]], steps: str) -> None:
    """``ctrlbench train`` with any algorithm, plant, --steps and --set: a 2-step run that
    finishes, or one clear error (a huge value is refused before anything heavy starts)."""
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", algo, plant, "--steps", steps, "--out", str(Path(tmp) / "r"),
                "--set", "tensorboard=false", "--set", "eval_steps=2"]
        for key, value in sets:
            argv += ["--set", f"{key}={value}"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
        check_exit(rc, out.getvalue(), err.getvalue())
