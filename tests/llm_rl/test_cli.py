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
