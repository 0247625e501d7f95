"""Study spec validation: every field checked by type and range with a message naming the field,
the value and what is allowed; the same for dict, TOML and ``.py`` specs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ctrlbench.cli import main
from ctrlbench.study import StudySpec

MSD = "ctrlbench/MassSpringDamper-v0"
BASE = {"name": "s", "plants": [MSD], "controllers": ["pid"]}


def spec(**fields):
    return StudySpec.from_dict({**BASE, **fields})


@pytest.mark.parametrize(("fields", "kind", "message"), [
    # wrongly typed fields name the field, the value and the expected type
    ({"seeds": 5}, TypeError, "field 'seeds' = 5 (int) must be a list of integer seeds"),
    ({"plants": 3}, TypeError, "field 'plants' = 3 (int) must be a list of plant ids"),
    ({"controllers": {"pid": 1}}, TypeError, "field 'controllers' = {'pid': 1} (dict)"),
    ({"grid": [1, 2]}, TypeError, "field 'grid' = [1, 2] (list) must be a table"),
    ({"grid": {"plant.k": 3}}, TypeError, "field \"grid['plant.k']\" = 3 (int)"),
    ({"plant_options": ["k"]}, TypeError, "field 'plant_options' = ['k'] (list) must be a table"),
    ({"controller_options": {"pid": 1}}, TypeError, "controller_options['pid'] = 1 (int)"),
    ({"name": 7}, TypeError, "field 'name' = 7 (int) must be a string"),
    ({"plants": [MSD, 1]}, TypeError, "'plants': item 1 = 1 (int) must be a non-empty string"),
    ({"plant_options": {"k": object}}, TypeError, "must be a number, string, boolean, None"),
    # a bare string is never split into characters
    ({"plants": "ctrlbench/DCSpeed-v0"}, TypeError,
     "field 'plants' must be a list of plant ids, got the string 'ctrlbench/DCSpeed-v0'"),
    ({"controllers": "pid"}, TypeError, "got the string 'pid'; write ['pid']"),
    ({"grid": {"plant.reference": "abc"}}, TypeError,
     "field \"grid['plant.reference']\" must be a list of option values, got the string 'abc'"),
    # duplicates are named, never run twice
    ({"plants": [MSD, MSD]}, ValueError, f"field 'plants' lists '{MSD}' twice"),
    ({"controllers": ["pid", "lqr", "pid"]}, ValueError, "field 'controllers' lists 'pid' twice"),
    ({"seeds": [0, 1, 0]}, ValueError, "field 'seeds' lists 0 twice"),
    ({"grid": {"plant.k": [1.0, 2.0, 1.0]}}, ValueError, "lists 1.0 twice"),
    ({"grid": {"plant.k": [1, 1.0]}}, ValueError, "lists 1.0 twice (same as 1)"),
    ({"grid": {"plant.k": [float("nan"), float("nan")]}}, ValueError, "lists nan twice"),
    # empty lists
    ({"seeds": []}, ValueError, "field 'seeds' is empty"),
    ({"grid": {"plant.k": []}}, ValueError, "is empty"),
    # seeds are ints >= 0 (not bool), steps an int >= 1 or absent
    ({"seeds": [True]}, TypeError, "item 0 = True (bool) must be an integer in [0, 4294967295]"),
    ({"seeds": [-1]}, ValueError, "item 0 = -1 is out of range"),
    ({"seeds": [1.5]}, TypeError, "item 0 = 1.5 (float)"),
    ({"seeds": [2**32]}, ValueError, "item 0 = 4294967296 is out of range"),
    ({"seeds": ["1"]}, TypeError, "item 0 = '1' (str)"),
    ({"steps": 0}, ValueError, "field 'steps' = 0 is out of range; valid: integers >= 1"),
    ({"steps": -5}, ValueError, "field 'steps' = -5 is out of range"),
    ({"steps": True}, TypeError, "field 'steps' = True (bool) must be an integer >= 1"),
    ({"steps": 2.5}, TypeError, "field 'steps' = 2.5 (float)"),
    ({"steps": "10"}, TypeError, "field 'steps' = '10' (str)"),
    # grid keys
    ({"grid": {"kp": [1]}}, ValueError, "must start with 'plant.' or 'controller.'"),
    ({"grid": {"plant.": [1]}}, ValueError, "and name an option"),
])
def test_bad_fields_raise_naming_field_value_and_type(fields, kind, message):
    with pytest.raises(kind, match=re.escape(message)):
        spec(**fields)


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".", "..", "/abs", "-x", "a\\b",
                                  "x" * 101, "a b", "a\x00b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ValueError, match="is not a safe folder name"):
        spec(name=name)


def test_good_specs_normalise_to_tuples_and_plain_values():
    s = spec(seeds=range(3), steps=np.int64(10), grid={"plant.k": [np.float64(1.0), 2]},
             plant_options={"c": np.float32(0.5)})
    assert s.seeds == (0, 1, 2) and s.steps == 10 and type(s.steps) is int
    assert s.grid == {"plant.k": (1.0, 2)} and type(s.grid["plant.k"][0]) is float
    assert s.plant_options == {"c": 0.5} and type(s.plant_options["c"]) is float
    assert spec(steps=None).steps is None


def test_missing_and_unknown_keys_and_non_table():
    with pytest.raises(KeyError, match=r"missing required key\(s\) \['controllers'\]"):
        StudySpec.from_dict({"name": "s", "plants": [MSD]})
    with pytest.raises(KeyError, match="valid keys"):
        StudySpec.from_dict({**BASE, "seed": [1]})
    with pytest.raises(TypeError, match="a study spec must be a table of fields"):
        StudySpec.from_dict([1, 2])  # type: ignore[arg-type]


def test_same_plant_under_two_spellings_is_a_duplicate():
    with pytest.raises(ValueError, match="the same plant; list each plant once"):
        spec(plants=[MSD, "MassSpringDamper-v0"]).validate()


@pytest.mark.parametrize(("text", "message"), [
    ('name = "t"\nplants = "x"\ncontrollers = ["pid"]\n', "must be a list"),
    ('name = "t"\nplants = [\n', "is not valid TOML"),
    ('name = "t"\nplants = ["a"]\ncontrollers = ["pid"]\nseeds = 3\n', "'seeds' = 3 (int)"),
    ('name = "t"\n', "missing required key(s)"),
])
def test_toml_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises((KeyError, TypeError, ValueError)) as info:
        StudySpec.from_file(path)
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize(("code", "message"), [
    ("raise RuntimeError('boom')", "failed to run: RuntimeError: boom"),
    ("SPEC = 3", "must define SPEC = StudySpec(...), got 3"),
    ("x = (", "failed to run: SyntaxError"),
    ("import sys; sys.exit(3)", "exited (sys.exit(3)) instead of defining SPEC"),
    ("from ctrlbench.study import StudySpec\nSPEC = StudySpec('s', 'pid', ('pid',))",
     "got the string 'pid'"),
])
def test_py_spec_errors_name_the_file(tmp_path, code, message):
    path = tmp_path / "bad.py"
    path.write_text(code)
    with pytest.raises((TypeError, ValueError)) as info:
        StudySpec.from_file(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_spec_file_missing_or_a_folder_or_other_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist or is not a file"):
        StudySpec.from_file(tmp_path / "nope.toml")
    (tmp_path / "d.toml").mkdir()
    with pytest.raises(FileNotFoundError, match="not a file"):
        StudySpec.from_file(tmp_path / "d.toml")
    with pytest.raises(ValueError, match=r"must be a \.toml or \.py file"):
        StudySpec.from_file(tmp_path / "s.yaml")


def test_cli_refuses_unsafe_name_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(f'name = "../../escape"\nplants = ["{MSD}"]\n'
                                     'controllers = ["pid"]\nsteps = 2\n')
    assert main(["study", "s.toml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a safe folder name" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
    assert not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize(("fields", "kind", "message"), [
    ({"timeout_s": 0}, ValueError, "'timeout_s' = 0 is out of range; valid: a finite number"),
    ({"timeout_s": "5"}, TypeError, "'timeout_s' = '5' (str) must be a number of seconds"),
    ({"resources": {"gpus": 1}}, KeyError, "unknown resource 'gpus'"),
    ({"resources": {"num_cpus": -1}}, ValueError, "'resources'['num_cpus'] = -1 must be"),
    ({"controller_options": {"pid": "missing.json"}}, FileNotFoundError,
     "options file 'missing.json' does not exist"),
])
def test_execution_fields_and_options_files_are_checked(fields, kind, message):
    with pytest.raises((kind, ValueError)) as err:
        spec(**fields)
    assert message in str(err.value)


def test_options_file_relative_to_the_toml_spec_and_execution_fields_may_change(tmp_path):
    from ctrlbench.study import run_study

    (tmp_path / "best.json").write_text('{"controller": "pid", "options": {"bandwidth": 6.0}}')
    path = tmp_path / "s.toml"
    path.write_text(f'name = "s"\nplants = ["{MSD}"]\ncontrollers = ["pid"]\nsteps = 5\n'
                    'timeout_s = 30\nresources = {num_cpus = 1}\n\n'
                    '[controller_options]\npid = "best.json"\n')
    loaded = StudySpec.from_file(path)
    assert loaded.controller_options == {"pid": {"bandwidth": 6.0}}
    assert loaded.timeout_s == 30.0 and loaded.resources == {"num_cpus": 1.0}
    out = tmp_path / "out"
    first = run_study(loaded, out)
    assert first[0]["controller_options"] == {"bandwidth": 6.0}
    # a resume with another timeout and resources is the same study; other steps are not
    ran: list[dict] = []
    again = run_study(StudySpec.from_dict({**BASE, "steps": 5, "timeout_s": 60,
                                           "controller_options": {"pid": {"bandwidth": 6.0}}}),
                      out, on_done=ran.append)
    assert ran == [] and [r["run_id"] for r in again] == [r["run_id"] for r in first]
    with pytest.raises(ValueError, match="the specs differ in steps"):
        run_study(StudySpec.from_dict({**BASE, "steps": 6, "controller_options": {
            "pid": {"bandwidth": 6.0}}}), out)
