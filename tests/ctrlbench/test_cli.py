"""The command line: listing, running, errors that name the valid choices."""

import pytest

from ctrlbench.cli import main, parse_sets


def test_list_shows_plants_and_controllers(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ctrlbench/MassSpringDamper-v0" in out and "controllers" in out


def test_run_unknown_plant_exits_nonzero_listing_valid(capsys):
    assert main(["run", "ctrlbench/Nope-v0", "pid"]) == 2
    err = capsys.readouterr().err
    assert "unknown plant 'ctrlbench/Nope-v0'" in err and "ctrlbench/MassSpringDamper-v0" in err


def test_run_unknown_controller_exits_nonzero_listing_valid(capsys):
    assert main(["run", "MassSpringDamper-v0", "nope"]) == 2
    assert "unknown controller 'nope'" in capsys.readouterr().err


def test_parse_sets_routes_and_rejects():
    p, c = parse_sets(["k=3.5", "controller.kp=2", "ref_range=0.5"], ["k", "ref_range"], ["kp"])
    assert p == {"k": 3.5, "ref_range": 0.5} and c == {"kp": 2}
    with pytest.raises(KeyError, match=r"valid plant options: \['k'\]"):
        parse_sets(["mass=1"], ["k"], ["kp"])
    with pytest.raises(KeyError, match="ambiguous"):
        parse_sets(["dt=1"], ["dt"], ["dt"])
    with pytest.raises(ValueError, match="key=value"):
        parse_sets(["k"], ["k"], [])


def test_check_command_on_one_plant(capsys):
    assert main(["check", "MassSpringDamper-v0", "--steps", "20"]) == 0
    assert "determinism" in capsys.readouterr().out


def test_set_values_parse_booleans_and_none_and_are_type_checked(capsys):
    _, c = parse_sets(["controller.prefilter=false", "controller.t_sigma=None", "a=4"], ["x"],
                      ["prefilter", "t_sigma", "a"])
    assert c == {"prefilter": False, "t_sigma": None, "a": 4}
    assert main(["run", "DCSpeed-v0", "pid", "--set", "prefilter=nope", "--steps", "2"]) == 2
    assert "prefilter = 'nope' has the wrong type; valid: bool" in capsys.readouterr().err


def test_check_smoke_and_set_reach_the_plant(capsys):
    assert main(["check", "RBC-v0", "--smoke", "--steps", "3", "--set", "ny=10"]) == 0
    out = capsys.readouterr().out
    assert "plant.nx=16" in out and "plant.ny=10" in out  # smoke options, then --set over them
    assert main(["check", "--set", "nx=16"]) == 2
    assert "--set needs one plant" in capsys.readouterr().err
    assert main(["check", "RBC-v0", "--set", "nx=17"]) == 2
    assert "nx = 17" in capsys.readouterr().err
