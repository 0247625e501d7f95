"""SIGINT / SIGTERM during ``llm train``: a message, exit 130 / 143, whole log lines, an intact
checkpoint (of the last finished step when the loop could finish it), and a ``--resume`` that
ends exactly where the uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from llm_rl.checkpoint import load_checkpoint
from llm_rl.cli import main
from llm_rl.trainer import GRPOTrainer


def _rows(out):
    text = (out / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n")  # whole lines only
    return [{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in text.splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_sft_dir):
    """The uninterrupted 6-step tiny run: its log and final weights."""
    out = tmp_path_factory.mktemp("reference") / "run"
    flags = ["--policy.n_layer", "1", "--policy.n_embd", "16", "--policy.n_head", "2",
             "--sft.steps", "5", "--steps", "6", "--prompts_per_step", "2", "--group_size", "2",
             "--eval_size", "4", "--pass_k", "2", "--eval_every", "2", "--checkpoint_every",
             "2", "--tensorboard", "false", "--sft_dir", tiny_sft_dir]
    assert main(["train", *flags, "--out_dir", str(out)]) == 0
    return flags, _rows(out), load_checkpoint(out / "checkpoint.pt")["model"]


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _signal_during(monkeypatch, method, at_step, *signums):
    """Send ``signums`` to this process from inside ``GRPOTrainer.<method>`` at ``at_step``."""
    original = getattr(GRPOTrainer, method)

    def wrapped(self, *args, **kwargs):
        if self.step == at_step:
            for s in signums:
                os.kill(os.getpid(), s)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GRPOTrainer, method, wrapped)


def test_sigterm_finishes_the_step_saves_it_and_resume_matches(reference, tmp_path, monkeypatch,
                                                               capsys):
    from ctrlbench.cli import main as ctrlbench_main

    flags, rows, weights = reference
    out = tmp_path / "run"
    _signal_during(monkeypatch, "_update", 2, signal.SIGTERM)  # mid-step (after the rollout)
    assert ctrlbench_main(["llm", "train", *flags, "--out_dir", str(out)]) == 143
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "SIGTERM received: finishing the current step, then saving a checkpoint" in err
    assert (f"interrupted (SIGTERM); the run in {out} is saved at step 3 of 6: continue with "
            f"the same command plus --resume") in " ".join(err.split())
    assert _rows(out) == rows[:3]  # the step in progress was finished and logged
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3  # ... and checkpointed
    monkeypatch.undo()
    assert main(["train", *flags, "--out_dir", str(out), "--resume"]) == 0
    assert _rows(out) == rows
    assert _same_weights(load_checkpoint(out / "checkpoint.pt")["model"], weights)


def test_a_second_sigint_stops_at_once_and_resume_matches(reference, tmp_path, monkeypatch,
                                                          capsys):
    flags, rows, weights = reference
    out = tmp_path / "run"
    _signal_during(monkeypatch, "_update", 3, signal.SIGINT, signal.SIGINT)
    assert main(["train", *flags, "--out_dir", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted (SIGINT)" in err
    assert "saved at step 2 of 6" in err  # the periodic checkpoint; step 3 was abandoned
    assert _rows(out) == rows[:3]  # whole lines: steps 0-2 (step 2 is redone on resume)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    monkeypatch.undo()
    assert main(["train", *flags, "--out_dir", str(out), "--resume"]) == 0
    assert _rows(out) == rows
    assert _same_weights(load_checkpoint(out / "checkpoint.pt")["model"], weights)


def test_sigint_during_the_warm_start_leaves_nothing_half_made(reference, tmp_path, monkeypatch,
                                                               capsys):
    import llm_rl.sft as sft

    flags, _, _ = reference
    flags = [*flags[:-1], str(tmp_path / "sft"), "--steps", "1"]  # an empty warm-start cache
    original = sft.sft_train

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(sft, "sft_train", interrupted)
    out = tmp_path / "run"
    assert main(["train", *flags, "--out_dir", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted (SIGINT) while setting up" in err
    assert not list((tmp_path / "sft").glob("sumpair-*"))  # no half-built cache entry
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # the folder holds no run
    monkeypatch.undo()
    assert main(["train", *flags, "--out_dir", str(out)]) == 0  # the same command again


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_real_signal_to_the_command_then_resume(reference, tmp_path, signum):
    """The command in its own process, signalled from outside while it trains."""
    flags = [*reference[0], "--steps", "40", "--eval_every", "5", "--checkpoint_every", "7"]
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "llm_rl.cli", "train", *flags, "--out_dir", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    log = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "interrupted" in err
    done = _rows(out)
    saved = load_checkpoint(out / "checkpoint.pt")["step"]
    assert len(done) == saved  # the step in progress was finished, logged and checkpointed
    resumed = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ref = tmp_path / "ref"
    assert main(["train", *flags, "--out_dir", str(ref)]) == 0
    assert _rows(out) == _rows(ref)
    assert _same_weights(load_checkpoint(out / "checkpoint.pt")["model"],
                         load_checkpoint(ref / "checkpoint.pt")["model"])
