"""The README's commands run as written (steps reduced where a flag allows) and do what it says.

The ``ctrlbench llm ...`` commands are checked in ``tests/llm_rl/test_readme_commands.py``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from ctrlbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _core_commands() -> list[list[str]]:
    cmds = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("ctrlbench ") and not line.startswith("ctrlbench llm"):
                cmds.append(shlex.split(line)[1:])
    return cmds


COMMANDS = _core_commands()


def test_readme_lists_the_core_commands():
    names = {c[0] for c in COMMANDS}
    assert {"list", "run", "check", "train", "study", "report"} <= names


def test_readme_python_tour_runs(tmp_path, monkeypatch):
    (code,) = [b for b in _blocks("python") if "make_plant" in b]
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    traj = scope["traj"]
    assert (tmp_path / "run.npz").exists() and (tmp_path / "run.json").exists()
    # "IAE, overshoot, settling time": a step response, settled, without early termination
    summary = scope["ctrlbench"].metrics.summary(traj)  # type: ignore[attr-defined]
    assert not summary["terminated"] and summary["i_sq_ref.overshoot"] < 10.0
    assert np.isfinite(summary["i_sq_ref.settling_time"])


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """The README's study command, 200 steps per run instead of the spec's 2000."""
    out = tmp_path_factory.mktemp("study")
    (argv,) = [c for c in COMMANDS if c[0] == "study"]
    assert main([*argv, "--steps", "200", "--out", str(out)]) == 0
    return out, argv


#: ``train`` as written but short: few steps, a short evaluation, no TensorBoard.
SHORT_TRAIN = ["--steps", "60", "--set", "learning_starts=20", "--set", "eval_steps=20",
               "--set", "tensorboard=false"]


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    """The README's train command, 60 steps; its ``--out`` folder mapped to a temporary one."""
    (written,) = [c for c in COMMANDS if c[0] == "train"]
    out = tmp_path_factory.mktemp("train")
    argv, i = list(written), written.index("--out")
    argv = [a for k, a in enumerate(argv) if k not in (i, i + 1, argv.index("--steps"),
                                                       argv.index("--steps") + 1)]
    assert main([*argv, *SHORT_TRAIN, "--out", str(out)]) == 0
    return out, written[i + 1]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_readme_command_runs_as_written(argv, tmp_path, monkeypatch, capsys, study_dir,
                                        train_dir):
    monkeypatch.chdir(ROOT)
    argv = [a.replace(f"sb3:{train_dir[1]}", f"sb3:{train_dir[0]}") for a in argv]
    if argv[0] == "train":  # ran in the fixture: a rerun without --resume refuses the folder
        capsys.readouterr()
        assert main([*argv[:argv.index("--out")], "--out", str(train_dir[0])]) == 2
        assert "already holds a run" in capsys.readouterr().err
        assert (train_dir[0] / "model.zip").exists() and (train_dir[0] / "eval.jsonl").exists()
        return
    if argv[0] == "run":
        argv += ([] if "--steps" in argv else ["--steps", "300"]) + ["--out", str(tmp_path / "run")]
    if argv[0] == "study":  # "resumable; prints the report path": a rerun records nothing new
        capsys.readouterr()
        assert main([*argv, "--steps", "200", "--out", str(study_dir[0])]) == 0
        out = capsys.readouterr().out
        assert "24 runs recorded (0 failed); report:" in out
        assert (study_dir[0] / "records.csv").exists()
        return
    if argv[0] == "report":
        argv = ["report", str(study_dir[0]), *argv[2:]]
    if argv[0] == "check":
        argv += ["--steps", "50"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    if argv[0] == "list":
        assert "applicability (plant x controller)" in out
    if argv[0] == "run":
        assert "trajectory:" in out and list((tmp_path / "run").glob("*.png"))
    if argv[0] == "report":
        assert "# Study report" in out
