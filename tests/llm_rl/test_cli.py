import json

from llm_rl.cli import main


def test_train_and_resume_via_cli(sft_dir, tmp_path, capsys):
    args = ["train", "--steps", "2", "--prompts_per_step", "2", "--group_size", "2",
            "--sft_dir", sft_dir, "--out_dir", str(tmp_path), "--tensorboard", "false",
            "--control.name", "pid", "--loss.dual_clip", "3"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["step"] == 1
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["control"]["name"] == "pid" and saved["loss"]["dual_clip"] == 3.0
    assert main([*args, "--steps", "3", "--resume"]) == 0  # steps may grow on resume
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--loss.name", "nope", "--out_dir", str(tmp_path)]) == 2
    assert "valid loss names: clip-cov, grpo, kl-cov" in capsys.readouterr().err
    assert main(["list"]) == 0
    assert "sumpair" in capsys.readouterr().out


def test_reviewed_bad_flags_exit_2_with_the_field(tmp_path, capsys):
    base = ["train", "--out_dir", str(tmp_path / "o"), "--sft_dir", str(tmp_path / "s")]
    cases = [
        (["--control.actuator", "temperature", "--control.name", "pid"], "control.value = 0.0"),
        (["--eval_every", "0"], "TrainConfig.eval_every = 0"),
        (["--checkpoint_every", "0"], "TrainConfig.checkpoint_every = 0"),
        (["--steps", "-1"], "TrainConfig.steps = -1"),
        (["--loss.eps_low", "5"], "LossConfig.eps_low = 5.0"),
        (["--control.name", "constant", "--control.kp", "9"], "ignores control field(s) ['kp']"),
        (["--control.actuator", "clip_cov_ratio"], "has no effect with loss 'grpo'"),
    ]
    for flags, message in cases:
        assert main([*base, *flags]) == 2, flags
        assert message in capsys.readouterr().err, flags
    assert not list(tmp_path.iterdir())  # rejected before any work


def test_help_carries_the_config_field_docs(capsys):
    import pytest

    from llm_rl.cli import main as llm_main

    with pytest.raises(SystemExit):
        llm_main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Target token-mean entropy H* (nats). (default: 0.6)" in out
