"""The interventions and Mirostat studies' --smoke runs (CleanRL style: scripts run in tests)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "studies" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_interventions_smoke_two_methods(tmp_path):
    study = _load("llm_interventions")
    out = tmp_path / "s"
    argv = ["--smoke", "--out_dir", str(out), "--tasks", "sumpair-heldout",
            "--methods", "open-loop,steer"]
    assert study.main(argv) == 0
    text = (out / "results.md").read_text()
    assert "| sumpair-heldout | open-loop |" in text and "| sumpair-heldout | steer |" in text
    assert "excluded from training" in text
    summary = json.loads((out / "sumpair-heldout" / "steer" / "summary.json").read_text())
    assert summary["steps"] == study.SMOKE["steps"] and 0 <= summary["touched_frac"] <= 1
    # a rerun skips finished runs (no new metrics lines)
    before = (out / "sumpair-heldout" / "steer" / "metrics.jsonl").read_text()
    assert study.main(argv) == 0
    assert (out / "sumpair-heldout" / "steer" / "metrics.jsonl").read_text() == before
    with pytest.raises(KeyError, match="unknown method 'ppo'; valid: open-loop"):
        study.parse_args(["--methods", "ppo"])


@pytest.mark.slow  # ~12 s: every method on both tasks
def test_interventions_smoke_every_method(tmp_path):
    study = _load("llm_interventions")
    assert study.main(["--smoke", "--out_dir", str(tmp_path)]) == 0
    text = (tmp_path / "results.md").read_text()
    for task in ("sumpair-heldout", "countdown-lite"):
        for method in study.METHODS:
            assert f"| {task} | {method} |" in text
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_mirostat_study_smoke(tmp_path):
    study = _load("mirostat")
    out = tmp_path / "m"
    assert study.main(["--smoke", "--out_dir", str(out), "--tokens", "60", "--vocab",
                       "2000"]) == 0
    result = json.loads((out / "results.json").read_text())
    rows = result["rows"]
    prov = result["provenance"]  # the commit, versions, threads, machine and command behind it
    assert {"git_commit", "git_dirty", "packages", "threads", "cpu", "gpu", "command"} <= set(prov)
    assert prov["packages"]["torch"] == torch.__version__
    assert prov["threads"]["torch"] == 1 and prov["command"] and prov["cpu"]
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    assert {(r["source"], r["mode"]) for r in rows} == {
        (s, m) for s in ("zipf", "tiny-lm") for m in ("plain", "v1", "v2")}
    for r in rows:
        assert 0 <= r["repetition_4gram"] <= 1
        if r["mode"] == "plain":  # unconstrained sampling is far above tau = 3 bits here
            assert r["surprise_last_half"] > 4
        else:
            assert r["surprise_last_half"] == pytest.approx(3.0, rel=0.25)
    text = (out / "results.md").read_text()
    assert "| zipf | v2 | 3.0 |" in text and "## Provenance" in text
