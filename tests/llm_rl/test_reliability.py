"""``llm train`` under misuse and damage: run-folder lifecycle, one writer, corrupt checkpoints
and logs, impossible flags. Every case ends in a clear one-line error (exit 2) or a note, never
a traceback, and never uses a damaged file."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from llm_rl.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_sft_dir):
    """A finished tiny run (4 steps, checkpoints at 2 and 4); tests work on copies."""
    out = tmp_path_factory.mktemp("finished") / "run"
    flags = ["--policy.n_layer", "1", "--policy.n_embd", "16", "--policy.n_head", "2",
             "--sft.steps", "5", "--steps", "4", "--prompts_per_step", "2", "--group_size", "2",
             "--eval_size", "4", "--pass_k", "2", "--eval_every", "2", "--checkpoint_every",
             "2", "--tensorboard", "false"]
    assert main(["train", *flags, "--sft_dir", tiny_sft_dir, "--out_dir", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


# ---------------------------------------------------------------- one run per folder
def test_a_used_folder_is_refused_without_resume_and_left_untouched(run_copy, tiny, capsys):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file() and
              p.name != ".lock"}
    assert main(tiny(run_copy)) == 2
    err = _err(capsys)
    assert f"'{run_copy}' already holds a run" in err and "--resume" in err
    assert "--overwrite" in err
    after = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file() and
             p.name != ".lock"}
    assert after == before  # the old log is not emptied, the old checkpoint not kept for a new run


def test_overwrite_moves_the_old_run_aside(run_copy, tiny, capsys):
    old_ckpt = (run_copy / "checkpoint.pt").read_bytes()
    assert main(tiny(run_copy, "--overwrite", "--steps", "1")) == 0
    err = _err(capsys)
    aside = [p for p in run_copy.parent.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and f"note: moved the previous run in {run_copy} to {aside[0]}" in err
    assert (aside[0] / "checkpoint.pt").read_bytes() == old_ckpt
    assert len((aside[0] / "metrics.jsonl").read_text().splitlines()) == 4
    assert len((run_copy / "metrics.jsonl").read_text().splitlines()) == 1  # the new run only


def test_overwrite_refuses_to_move_files_no_run_wrote(run_copy, tiny, capsys):
    (run_copy / "notes.txt").write_text("mine")
    assert main(tiny(run_copy, "--overwrite")) == 2
    assert "also holds files that no run wrote (notes.txt)" in _err(capsys)
    assert (run_copy / "notes.txt").is_file() and (run_copy / "checkpoint.pt").is_file()


def test_resume_needs_a_checkpoint(tmp_path, tiny, capsys):
    assert main(tiny(tmp_path / "nothing", "--resume")) == 2
    assert "it holds no run (no checkpoint.pt); drop --resume" in _err(capsys)
    assert not (tmp_path / "nothing").exists()  # nothing created
    started = tmp_path / "started"  # a run killed before its first checkpoint
    started.mkdir()
    (started / "config.json").write_text("{}")
    (started / "metrics.jsonl").write_text("")
    assert main(tiny(started, "--resume")) == 2
    assert "has no checkpoint.pt (the run stopped before its first checkpoint)" in _err(capsys)
    assert main(tiny(started, "--resume", "--overwrite")) == 2
    assert "choose one of --resume and --overwrite" in _err(capsys)


def test_resume_accepts_the_folder_spelled_differently(run_copy, tiny, monkeypatch, capsys):
    monkeypatch.chdir(run_copy.parent)
    for spelling in ("run/", "./run", f"{run_copy}/", "run/../run"):
        assert main(tiny(spelling, "--resume")) == 0, spelling
    assert "config differs" not in _err(capsys)
    assert main(tiny("run", "--resume", "--lr", "0.5")) == 2  # a real change is still refused
    assert "the config differs in lr (0.001 in the checkpoint, 0.5 now)" in _err(capsys)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path, tiny, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from ctrlbench.runfolder import lock_folder
            with lock_folder({str(tmp_path)!r}):
                print("locked", flush=True)
                sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for flags in ((), ("--resume",), ("--overwrite",)):
            assert main(tiny(tmp_path, *flags)) == 2
            assert f"is in use by another llm run (pid {holder.pid})" in _err(capsys)
    finally:
        holder.communicate("")
    assert main(tiny(tmp_path, "--steps", "1")) == 0  # free again once the holder is gone


# ---------------------------------------------------------------- damaged files
def _foreign_torch_file(path):
    torch.save({"weights": torch.ones(3)}, path)


def _foreign_object(path):
    torch.save({"model": torch.nn.Linear(2, 2)}, path)  # a module: not plain data


def _bad_config(path):
    state = torch.load(path, weights_only=False)
    state["config"] = {"task": "sumpair", "lr": "fast"}
    torch.save(state, path)


def _wrong_shapes(path):
    state = torch.load(path, weights_only=False)
    state["model"] = {k: torch.zeros(1) for k in state["model"]}
    torch.save(state, path)


DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "random": lambda p: p.write_bytes(os.urandom(4096)),
    "text": lambda p: p.write_text("not a checkpoint\n"),
    "foreign torch file": _foreign_torch_file,
    "foreign object": _foreign_object,
    "invalid config": _bad_config,
    "tensors that do not fit": _wrong_shapes,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_checkpoint_is_quarantined_and_named(run_copy, tiny, capsys, kind):
    ckpt = run_copy / "checkpoint.pt"
    DAMAGE[kind](ckpt)
    damaged = ckpt.read_bytes()
    assert main(tiny(run_copy, "--resume", "--steps", "6")) == 2
    err = _err(capsys)
    dest = run_copy / "quarantine" / "checkpoint.pt"
    assert f"error: {ckpt} " in err and f"it was moved to {dest}" in err
    assert "--overwrite" in err and len(err.splitlines()) == 1
    assert dest.read_bytes() == damaged and not ckpt.exists()
    assert (run_copy / "quarantine" / "checkpoint.pt.why.txt").is_file()
    # never silently used: a second resume finds no checkpoint; --overwrite starts afresh
    assert main(tiny(run_copy, "--resume")) == 2
    assert "no checkpoint.pt" in _err(capsys)
    assert main(tiny(run_copy, "--overwrite", "--steps", "1")) == 0


@pytest.mark.parametrize(
    ("damage", "why"),
    [(lambda rows: [rows[0], "garbage", *rows[2:]], "line 2 is not a metrics row"),
     (lambda rows: [rows[0], "[1, 2]", *rows[2:]], "line 2 is not a metrics row"),
     (lambda rows: [rows[0], rows[2], rows[3]], "line 2 logs step 2 after step 0"),
     (lambda rows: rows[:1], "ends at step 0 but the checkpoint is at step 4")],
)
def test_a_damaged_log_is_quarantined_then_the_run_continues(run_copy, tiny, capsys, damage,
                                                             why):
    log = run_copy / "metrics.jsonl"
    log.write_text("\n".join(damage(log.read_text().splitlines())) + "\n")
    assert main(tiny(run_copy, "--resume", "--steps", "5")) == 2
    err = _err(capsys)
    assert f"{log} {why}" in err and f"moved to {run_copy / 'quarantine' / 'metrics.jsonl'}" in err
    assert "The checkpoint (step 4) is intact: pass --resume again" in err
    assert main(tiny(run_copy, "--resume", "--steps", "5")) == 0
    assert "note: metrics.jsonl is missing: the log restarts at step 4" in _err(capsys)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [4]


def test_a_torn_last_line_is_the_normal_end_of_a_kill(run_copy, tiny, capsys):
    log = run_copy / "metrics.jsonl"
    log.write_text(log.read_text() + '{"step": 4, "entr')
    assert main(tiny(run_copy, "--resume", "--steps", "5")) == 0
    assert "note" not in _err(capsys) and not (run_copy / "quarantine").exists()
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [0, 1, 2, 3, 4]


def test_a_damaged_warm_start_cache_is_rebuilt(tiny_sft_dir, tiny_flags, tmp_path, capsys):
    cache = tmp_path / "sft"
    shutil.copytree(tiny_sft_dir, cache)
    entry = next(p for p in cache.iterdir() if p.name.startswith("sumpair-"))
    (entry / "model.safetensors").write_bytes(b"\0" * 10)
    argv = ["train", *tiny_flags, "--sft_dir", str(cache), "--steps", "1"]
    assert main([*argv, "--out_dir", str(tmp_path / "a")]) == 0
    err = _err(capsys)
    assert f"note: {entry} cannot be loaded" in err and "It was rebuilt" in err
    assert (cache / "quarantine" / entry.name).is_dir() and (entry / "sft.json").is_file()
    (entry / "sft.json").write_text("{torn")
    assert main(["sft", *tiny_flags[:8], "--sft_dir", str(cache)]) == 0
    assert "sft.json is not readable JSON" in _err(capsys)
    assert json.loads((entry / "sft.json").read_text())["steps"] == 5


def test_unwritable_or_file_out_dir(tmp_path, tiny, capsys):
    (tmp_path / "file").write_text("x")
    assert main(tiny(tmp_path / "file")) == 2
    assert "is a file, not a folder" in _err(capsys)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert main(tiny(ro / "run")) == 2
            assert "cannot create llm run folder" in _err(capsys)
        finally:
            ro.chmod(0o700)


# ---------------------------------------------------------------- impossible flags
@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--device", "nope"], "device = 'nope' is out of range; valid: one of cpu, cuda, "
                            "cuda:<index>, mps"),
     (["--device", "cuda:99"], "device = 'cuda:99'"),
     (["--policy.max_positions", "4"], "policy.max_positions = 4 is too small for task "
                                       "'sumpair'"),
     (["--task", "add-n", "--policy.max_positions", "12"], "need 13 positions; valid: >= 13"),
     (["--control.setpoint", "3.2"], "control.setpoint = 3.2 is unreachable; valid: > 0 and <= "
                                     "ln(vocab size 23) = 3.135494"),
     (["--control.setpoint", "0"], "control.setpoint = 0 is out of range; valid: finite > 0"),
     (["--control.setpoint", "nan"], "control.setpoint = nan is out of range"),
     (["--control.setpoint", "-inf"], "control.setpoint = -inf is out of range"),
     (["--control.value", "-1e-3", "--control.setpoint", "-.5"], "control.setpoint = -0.5 is out "
                                                                 "of range"),
     (["--lr", "inf"], "TrainConfig.lr = inf is out of range; valid: finite > 0 and <= 1000"),
     (["--lr", "1e300"], "TrainConfig.lr = 1e+300 is out of range"),
     (["--loss.eps_high", "1e300"], "loss.eps_high = 1e+300 is out of range"),
     (["--temperature", "1e300"], "TrainConfig.temperature = 1e+300 is out of range"),
     (["--temperature", "1e-9"], "TrainConfig.temperature = 1e-09 is out of range"),
     (["--seed", "-1"], "TrainConfig.seed = -1 is out of range; valid: finite >= 0"),
     (["--seed", str(2**40)], "TrainConfig.seed = 1099511627776 is out of range"),
     (["--minibatches", "99"], "TrainConfig.minibatches = 99 is out of range; valid: <= "
                               "prompts_per_step x group_size (4)"),
     (["--group_size", str(10**9)], "sequences per rollout"),
     (["--pass_k", str(10**9)], "sequences per evaluation"),
     (["--task", "countdown-lite", "--eval_size", "753"], "task 'countdown-lite' has 753 "
                                                          "distinct prompts"),
     (["--policy.n_embd", "1000000"], "policy.n_embd = 1000000 is out of range; valid: a "
                                      "policy of at most 2e+09 parameters"),
     (["--policy.arch", "llama", "--policy.n_embd", "6", "--policy.n_head", "2"],
      "even head size"),
     (["--out_dir", ""], "TrainConfig.out_dir = '' is out of range; valid: a path (not empty)"),
     (["--init", "/nonexistent/policy"], "init = '/nonexistent/policy' is not a saved policy"),
     (["--control.name", "pid", "--control.actuator", "temperature", "--control.value", "1",
       "--control.u_min", "0.0001"], "control.u_min = 0.0001 is not a valid sampling "
                                     "temperature"),
     (["--loss.name", "clip-cov", "--control.actuator", "clip_cov_ratio", "--control.value",
       "2"], "control.value = 2.0 is not a Clip-Cov ratio"),
     (["--stesp", "3"], "unrecognized arguments: --stesp 3 (did you mean --steps?)"),
     (["--steps"], "argument --steps: expected one argument")],
)
def test_impossible_flags_are_one_clear_line(tmp_path, tiny, capsys, flags, message):
    if flags[:2] == ["--device", "cuda:99"] and not torch.cuda.is_available():
        message = "CUDA is not available"
    assert main(tiny(tmp_path / "o", *flags)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in " ".join(err.split()) and "error:" in err
    assert not (tmp_path / "o").exists()  # rejected before any work


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a CPU-only torch build")
def test_cuda_on_a_cpu_build(tmp_path, tiny, capsys):
    assert main(tiny(tmp_path / "o", "--device", "cuda")) == 2
    assert main(["sft", "--device", "cuda", "--sft_dir", str(tmp_path / "s")]) == 2
    err = _err(capsys)
    assert err.count("error: device = 'cuda': CUDA is not available (this torch build has no "
                     "CUDA support") == 2 and "use --device cpu" in err


def test_huge_step_sizes_stop_cleanly(tmp_path, tiny, tiny_flags, capsys):
    assert main(tiny(tmp_path / "o", "--lr", "1000")) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "error: " in err and ("not finite" in err or "non-finite" in err), err
    assert re.search(r"at step \d+.*last good checkpoint: ", err), err
    assert main(["sft", *tiny_flags[:8], "--sft.lr", "1000", "--sft_dir",
                 str(tmp_path / "s")]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "error: " in err and "finite" in err and "sft.lr = 1000" in err, err
    assert not list((tmp_path / "s").glob("sumpair-*"))  # nothing cached
