"""CLI edges: ranges of --steps/--seed/--workers, output folders that are files or read-only,
usage errors and rich markup in names, options and errors: exit 2 with one line, or the text
printed literally — never a traceback."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from ctrlbench.check import CheckReport
from ctrlbench.cli import main
from ctrlbench.registry import CONTROLLERS

MSD = "ctrlbench/MassSpringDamper-v0"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def one_line_error(capsys) -> str:
    """The one ``error:`` line of stderr (warnings may precede it); no traceback."""
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err + captured.out and lines, captured.err
    assert "error:" in lines[-1] and all(": warning: " in line for line in lines[:-1]), lines
    return lines[-1]


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "MassSpringDamper-v0", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["check", "MassSpringDamper-v0", "--steps", "-3"], "--steps must be an integer >= 1"),
    (["check", "MassSpringDamper-v0", "--seed", "-1"], "--seed must be an integer in [0, "),
    (["run", "MassSpringDamper-v0", "pid", "--seed", "-1"], "--seed must be an integer in"),
    (["run", "MassSpringDamper-v0", "pid", "--seed", str(2**32)], "got 4294967296"),
    (["run", "MassSpringDamper-v0", "pid", "--steps", "0"], "--steps must be an integer >= 1"),
    (["study", "x.toml", "--workers", "0"], "--workers must be an integer in [1, 256], got 0"),
    (["study", "x.toml", "--workers", "-2"], "--workers must be an integer in [1, 256]"),
    (["study", "x.toml", "--workers", "100000"], "got 100000"),
    (["study", "x.toml", "--steps", "0"], "--steps must be an integer >= 1"),
    (["study", "nope.toml"], "study spec 'nope.toml' does not exist"),
    (["run", "MassSpringDamper-v0"], "the following arguments are required: controller"),
    (["run", "MassSpringDamper-v0", "pid", "--steps", "abc"], "invalid int value: 'abc'"),
    (["nope"], "invalid choice: 'nope'"),
    ([], "the following arguments are required: command"),
    (["run", "MassSpringDamper-v0", "pid", "--set", "bandwidth=nan", "--steps", "2"],
     "bandwidth = nan is out of range"),
    (["run", "MassSpringDamper-v0", "lqr", "--set", "q_state=1e308", "--steps", "2"],
     "q_state"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "results").exists()


def test_help_exits_0(capsys):
    assert main(["study", "--help"]) == 0
    assert "--overwrite" in capsys.readouterr().out


def test_run_out_that_is_a_file_or_below_a_file_is_refused_before_running(tmp_path, capsys):
    target = tmp_path / "f"
    target.write_text("x")
    assert main(["run", "MassSpringDamper-v0", "pid", "--steps", "2", "--out", str(target)]) == 2
    assert f"--out folder {str(target)!r} is a file, not a folder" in one_line_error(capsys)
    assert main(["run", "MassSpringDamper-v0", "pid", "--steps", "2",
                 "--out", str(target / "sub")]) == 2
    assert "cannot create --out folder" in one_line_error(capsys)


def test_study_out_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\nplants = ["{MSD}"]\ncontrollers = ["pid"]\nsteps = 2\n')
    assert main(["study", str(spec), "--out", str(tmp_path / "f" / "out")]) == 2
    assert "cannot create study folder" in one_line_error(capsys)


@pytest.mark.parametrize("command", ["run", "study"])
def test_read_only_output_folders_are_refused(tmp_path, monkeypatch, capsys, command):
    ro = tmp_path / "ro"
    ro.mkdir()
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\nplants = ["{MSD}"]\ncontrollers = ["pid"]\nsteps = 2\n')
    if ROOT:  # root writes anywhere: deny as a read-only folder would for anyone else
        real = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
            False if Path(path) == ro and mode & os.W_OK else real(path, mode, **kw)))
    ro.chmod(0o555)
    try:
        argv = (["run", "MassSpringDamper-v0", "pid", "--steps", "2", "--out", str(ro)]
                if command == "run" else ["study", str(spec), "--out", str(ro)])
        assert main(argv) == 2
        assert f"{str(ro)!r} is not writable" in one_line_error(capsys)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


MARKUP = "[/x] [bold]loud[/bold] [red]:smile:"


@pytest.fixture
def markup_controller():
    name = "mk[/x]:smile:"

    def make_broken(plant):
        raise ValueError(f"bad gain {MARKUP}")

    CONTROLLERS.register(name, make_broken, description=f"test {MARKUP}")
    yield name
    CONTROLLERS.unregister(name)


def test_rich_markup_in_names_records_and_errors_is_printed_literally(
        tmp_path, capsys, markup_controller):
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "mk"\nplants = ["{MSD}"]\ncontrollers = ["{markup_controller}"]\n'
                    'steps = 2\n')
    out = tmp_path / "o[/x]"
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert markup_controller in listed and "[/x] [bold]loud[/bold]" in listed
    assert main(["study", str(spec), "--out", str(out)]) == 1  # one run, failed
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and f"report: {out}" in captured.out.replace("\n", "")
    assert main(["report", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"ValueError: bad gain {MARKUP}" in report
    assert main(["run", "MassSpringDamper-v0", markup_controller, "--steps", "2",
                 "--out", str(tmp_path / "run")]) == 2
    assert f"bad gain {MARKUP}" in one_line_error(capsys)


def test_check_prints_failures_with_markup_literally(monkeypatch, capsys):
    def fake_check(pid, steps, seed):
        return CheckReport(pid, {"api": None, "weird": f"broke {MARKUP}\nsecond line"})

    monkeypatch.setattr("ctrlbench.check.check_plant", fake_check)
    assert main(["check", "MassSpringDamper-v0", "--steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAIL broke [/x] [bold]loud[/bold]" in out and "[red]:smile: second line" in out


def test_run_writes_into_a_fresh_nested_out_folder(tmp_path, capsys):
    out = tmp_path / "a" / "b"
    assert main(["run", "MassSpringDamper-v0", "pid", "--steps", "3", "--out", str(out)]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".json", ".npz", ".png"]
    assert Path(out / "MassSpringDamper-v0__pid__s0.npz").stat().st_mode & 0o044  # readable


class _InterruptInFinalizer:
    """Sends SIGINT to this process while being finalized: Python cannot raise from
    ``__del__`` and prints "Exception ignored ... Traceback" unless the CLI keeps it quiet."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)


class _FinalizingController:
    def reset(self) -> None:
        pass

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        _InterruptInFinalizer()  # dropped at once: the interrupt lands in its finalizer
        return np.zeros(1), None


def _make_finalizing(plant):
    return _FinalizingController()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_inside_a_finalizer_ends_the_command_quietly(tmp_path, capsys):
    CONTROLLERS.register("finalizer-test", _make_finalizing, description="test")
    try:
        assert main(["run", "MassSpringDamper-v0", "finalizer-test", "--steps", "50",
                     "--out", str(tmp_path)]) == 130
    finally:
        CONTROLLERS.unregister("finalizer-test")
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Exception ignored" not in captured.err
    assert "ctrlbench run: interrupted (SIGINT)" in captured.err
    assert list(tmp_path.iterdir()) == []
