"""The collapse study's --smoke run (CleanRL style: scripts are run in tests)."""

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from llm_rl.config import config_hash

ROOT = Path(__file__).resolve().parents[2]


def _load_study():
    spec = importlib.util.spec_from_file_location(
        "llm_entropy_collapse", ROOT / "studies" / "llm_entropy_collapse.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~45 s: `make test-all` runs it (the default suite stays under 2 min)
def test_smoke_runs_writes_records_and_resumes(tmp_path, capsys):
    study = _load_study()
    out = tmp_path / "study"
    assert study.main(["--smoke", "--out_dir", str(out)]) == 0
    text = (out / "results.md").read_text()
    for method in study.METHODS:
        assert f"| sumpair | {method} |" in text and f"| countdown-lite | {method} |" in text
    assert "Pooled R = -a exp(H) + b on sumpair" in text
    assert "sumpair: pass@1/pass@8 are measured on training prompts" in text
    assert "countdown-lite: pass@1" not in text
    assert (out / "curves.png").stat().st_size > 0
    summary = json.loads((out / "sumpair" / "open-loop" / "summary.json").read_text())
    assert summary["steps"] == study.SMOKE["steps"] and summary["cov_mean"] > 0
    # A rerun skips every finished run (no new metrics lines, same table).
    before = (out / "sumpair" / "pid" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert study.main(["--smoke", "--out_dir", str(out)]) == 0
    assert (out / "sumpair" / "pid" / "metrics.jsonl").read_text() == before
    assert (out / "results.md").read_text() == text
    # Each summary carries its run's config hash ...
    args = study.parse_args(["--smoke", "--out_dir", str(out)])
    done = out / "sumpair" / "open-loop" / "summary.json"
    assert summary["config_hash"] == config_hash(study.train_config("sumpair", "open-loop", args))
    # ... a summary of another config is not reported: the run is redone (here: resumed from its
    # finished checkpoint, so no new metrics) and the record rewritten with the right hash.
    done.write_text(json.dumps({**summary, "config_hash": "stale", "pass@1": -1.0}))
    one = ["--smoke", "--out_dir", str(out), "--tasks", "sumpair", "--methods", "open-loop"]
    assert study.main(one) == 0
    redone = json.loads(done.read_text())
    assert redone == {**summary, "wall_s": redone["wall_s"]}
    # A directory holding another config's run (e.g. smoke numbers, then a full run) is refused.
    with pytest.raises(ValueError, match="holds a run with another config"):
        study.main([*one, "--lr", "0.002"])


def test_smoke_has_its_own_default_out_dir():
    study = _load_study()
    assert study.parse_args(["--smoke"]).out_dir != study.parse_args([]).out_dir
    assert study.parse_args(["--smoke", "--out_dir", "x"]).out_dir == "x"


def test_unknown_method_is_reported(tmp_path):
    study = _load_study()
    with pytest.raises(KeyError, match="open-loop"):
        study.main(["--smoke", "--methods", "magic", "--out_dir", str(tmp_path)])


def test_help_gives_every_flag_a_description_and_default(capsys):
    study = _load_study()
    with pytest.raises(SystemExit):
        study.parse_args(["--help"])
    flat = "".join(capsys.readouterr().out.split())  # argparse wraps lines (also at hyphens)
    for f in dataclasses.fields(study.Args):
        help_text = f"{f.metadata['doc']} (default: {f.default})"
        assert "".join(help_text.split()) in flat, f.name
    assert f"under{study.SMOKE_BUDGET_S}s" in flat


def test_args_are_validated():
    study = _load_study()
    with pytest.raises(ValueError, match=r"Args.steps = 0 is out of range; valid: finite >= 1"):
        study.parse_args(["--steps", "0"])
    assert study.parse_args(["--smoke", "false"]).smoke is False
