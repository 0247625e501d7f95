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
    assert saved["control"]["name"] == "pid" and saved["loss"]["options"]["dual_clip"] == 3.0
    assert saved["control"]["options"]["kp"] == 1.0  # the PID defaults are saved with the run
    assert main([*args, "--steps", "3", "--resume"]) == 0  # steps may grow on resume
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--loss.name", "nope", "--out_dir", str(tmp_path)]) == 2
    assert ("valid loss names: clip-cov, epo, grpo, hapo, kl-cov, lp-reg, siren, steer"
            in capsys.readouterr().err)
    assert main(["list"]) == 0
    assert "sumpair" in capsys.readouterr().out


def test_reviewed_bad_flags_exit_2_with_the_field(tmp_path, capsys):
    base = ["train", "--out_dir", str(tmp_path / "o"), "--sft_dir", str(tmp_path / "s")]
    cases = [
        (["--control.actuator", "temperature", "--control.name", "pid"], "control.value = 0.0"),
        (["--eval_every", "0"], "TrainConfig.eval_every = 0"),
        (["--checkpoint_every", "0"], "TrainConfig.checkpoint_every = 0"),
        (["--steps", "-1"], "TrainConfig.steps = -1"),
        (["--loss.eps_low", "5"], "loss.eps_low = 5 is out of range; valid: finite >= 0 and < 1"),
        (["--control.name", "pid", "--control.kp", "-1"],
         "control.kp = -1 is out of range; valid: finite >= 0"),
        (["--steps", "2.5"], "TrainConfig.steps = 2.5 has the wrong type; valid: int"),
        (["--control.actuator", "clip_cov_ratio"], "has no effect with loss 'grpo'"),
        (["--control.name", "mpc"], "valid entropy controller names: aepo, constant, dual"),
    ]
    for flags, message in cases:
        assert main([*base, *flags]) == 2, flags
        assert message in capsys.readouterr().err, flags
    assert not list(tmp_path.iterdir())  # rejected before any work


def test_flag_of_another_entry_names_the_entry_and_its_options(tmp_path, capsys):
    base = ["train", "--out_dir", str(tmp_path / "o"), "--sft_dir", str(tmp_path / "s")]
    cases = [
        (["--control.kp", "9"],  # default controller: constant
         "--control.kp does not apply to entropy controller 'constant' (it is an option of pid); "
         "options of 'constant': --control.value"),
        (["--control.name", "aepo", "--control.actuator", "temperature", "--control.u_max", "2"],
         "--control.u_max does not apply to entropy controller 'aepo' (it is an option of dual, "
         "pid, sign); options of 'aepo': --control.t_low, --control.t_high, "
         "--control.aepo_fraction, --control.aepo_max_splice"),
        (["--loss.clip_cov_ratio", "0.02"],
         "--loss.clip_cov_ratio does not apply to loss 'grpo' (it is an option of clip-cov); "
         "options of 'grpo': --loss.eps_low, --loss.eps_high, --loss.dual_clip"),
        (["--loss.name", "kl-cov", "--loss.eps_high", "0.28"],
         "--loss.eps_high does not apply to loss 'kl-cov' (it is an option of clip-cov, epo, "
         "grpo, hapo, lp-reg, siren, steer)"),
    ]
    for flags, message in cases:
        assert main([*base, *flags]) == 2, flags
        assert message in " ".join(capsys.readouterr().err.split()), flags
    assert not list(tmp_path.iterdir())


def test_option_flags_reach_the_chosen_entry(tmp_path, monkeypatch):
    import llm_rl.cli as cli

    seen = []
    monkeypatch.setattr(cli, "_train", lambda args: seen.append(cli._config_from_args(args)) or 0)
    assert main(["train", "--loss.name", "clip-cov", "--loss.clip_cov_ratio", "0.02",
                 "--control.name", "pid", "--control.kp", "0.5", "--control.u_max", "0.3"]) == 0
    cfg = seen[0]
    assert cfg.loss.options.clip_cov_ratio == 0.02 and cfg.loss.options.eps_low == 0.2
    assert (cfg.control.options.kp, cfg.control.options.ki, cfg.control.options.u_max) == (
        0.5, 0.1, 0.3)  # ki: the PID default


def _help(capsys, *argv):
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_carries_the_config_field_docs(capsys):
    out = _help(capsys, "train")
    assert "Target token-mean entropy H* (nats). (default: 0.6)" in out
    # option flags say which entries take them and each entry's default
    assert ("--control.kp FLOAT PID proportional gain (actuator units per nat). "
            "[control.name: pid] (default: 1.0)") in out
    assert ("--control.u_max FLOAT Upper actuator limit (>= u_min). [control.name: dual, pid, "
            "sign] (default: 0.05 (dual, sign), 1.0 (pid))") in out
    flat = out.replace(" ", "")  # argparse may wrap at the hyphen of "clip-cov"
    assert ("--loss.eps_lowFLOATLowerratioclip(r>=1-eps_low).[loss.name:clip-cov,epo,grpo,hapo,"
            "lp-reg,siren,steer]") in flat
    assert "--resume continue the run in out_dir from its checkpoint.pt (default: false)" in out
    assert "--overwrite start a new run even if out_dir holds one" in out


def test_every_flag_has_a_description_and_a_default():
    import argparse

    from llm_rl.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("train", "sft"):
        for action in subs.choices[name]._actions:
            if action.option_strings and action.dest != "help":
                text = action.help or ""
                assert "(default: " in text and len(text.split("(default:")[0]) > 5, action.dest


def test_sft_help_lists_only_the_flags_sft_reads(capsys):
    out = _help(capsys, "sft")
    import re

    flags = set(re.findall(r"--([\w.]+)", out))
    assert flags == {"help", "task", "policy.arch", "policy.n_layer", "policy.n_embd",
                     "policy.n_head", "policy.max_positions", "sft.steps", "sft.batch", "sft.lr",
                     "sft.teacher_noise", "sft_dir", "seed", "device"}
    assert "Optimizer steps (300: the warm start the PID defaults were tuned on). (default: 300)" \
        in " ".join(out.split())
    capsys.readouterr()
    assert main(["sft", "--control.name", "pid"]) == 2  # a GRPO flag is not an sft flag
    assert capsys.readouterr().err == (
        "ctrlbench llm sft: error: unrecognized arguments: --control.name pid (--control.name "
        "is a flag of ctrlbench llm train); see ctrlbench llm sft --help\n")
