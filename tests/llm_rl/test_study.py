"""The collapse study's --smoke run (CleanRL style: scripts are run in tests)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_study():
    spec = importlib.util.spec_from_file_location(
        "llm_entropy_collapse", ROOT / "studies" / "llm_entropy_collapse.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_smoke_runs_writes_records_and_resumes(tmp_path, capsys):
    study = _load_study()
    out = tmp_path / "study"
    assert study.main(["--smoke", "--out_dir", str(out)]) == 0
    text = (out / "results.md").read_text()
    for method in study.METHODS:
        assert f"| sumpair | {method} |" in text and f"| countdown-lite | {method} |" in text
    assert "Pooled R = -a exp(H) + b on sumpair" in text
    assert (out / "curves.png").stat().st_size > 0
    summary = json.loads((out / "sumpair" / "open-loop" / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["cov_mean"] > 0
    # A rerun skips every finished run (no new metrics lines, same table).
    before = (out / "sumpair" / "pid" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert study.main(["--smoke", "--out_dir", str(out)]) == 0
    assert (out / "sumpair" / "pid" / "metrics.jsonl").read_text() == before
    assert (out / "results.md").read_text() == text


def test_unknown_method_is_reported(tmp_path):
    study = _load_study()
    with pytest.raises(KeyError, match="open-loop"):
        study.main(["--smoke", "--methods", "magic", "--out_dir", str(tmp_path)])
