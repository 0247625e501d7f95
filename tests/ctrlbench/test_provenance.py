"""Provenance: commit, dirty flag, versions, command; kept per session by studies, in reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ctrlbench import provenance as prov
from ctrlbench.cli import main
from ctrlbench.provenance import PACKAGES, format_provenance, git_state, provenance
from ctrlbench.study import StudySpec, run_study

ROOT = Path(__file__).resolve().parents[2]
MSD = "ctrlbench/MassSpringDamper-v0"


def _head() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_records_the_commit_of_this_checkout_and_the_machine():
    before = _head()
    p = provenance()
    assert p["git_commit"] in {before, _head()}  # another commit may land meanwhile
    assert isinstance(p["git_dirty"], bool)
    assert set(p["packages"]) == {"python", *PACKAGES}
    assert p["packages"]["numpy"] != "not installed"
    assert p["threads"]["cpu_count"] == os.cpu_count() and isinstance(p["cpu"], str)
    assert isinstance(p["command"], str) and p["utc"].endswith("+00:00")
    json.dumps(p)  # JSON-ready
    block = format_provenance(p)
    assert block.startswith("## Provenance\n") and p["git_commit"] in block
    assert ("uncommitted changes" in block) == p["git_dirty"]


def test_outside_a_git_checkout_the_commit_is_none(tmp_path, monkeypatch):
    assert git_state(tmp_path) == (None, None)
    assert git_state(ROOT / "ctrlbench") == (None, None)  # inside a checkout, not its root
    monkeypatch.setattr(prov, "_package_root", lambda: tmp_path)
    p = provenance()
    assert p["git_commit"] is None and p["git_dirty"] is None
    assert "not a git checkout" in format_provenance(p)
    monkeypatch.setattr(prov, "_package_root", lambda: ROOT)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert provenance()["git_commit"] is None


def test_command_is_the_line_that_ran(monkeypatch):
    assert provenance(["ctrlbench", "study", "a b.toml"])["command"] == \
        "ctrlbench study 'a b.toml'"
    monkeypatch.setattr(sys, "argv", ["studies/x.py", "--smoke"])
    monkeypatch.setattr(sys, "orig_argv", ["/opt/py/bin/python3", "-u", "studies/x.py", "--smoke"])
    assert provenance()["command"] == "python -u studies/x.py --smoke"
    script = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "ctrlbench")
    monkeypatch.setattr(sys, "argv", [script, "study", "s.toml"])
    assert provenance()["command"] == "ctrlbench study s.toml"


def test_study_keeps_each_sessions_provenance_and_the_report_shows_it(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "p"\nplants = ["{MSD}"]\ncontrollers = ["zero"]\nseeds = [0]\n'
                    'steps = 5\n')
    out = tmp_path / "out"
    assert main(["study", str(spec), "--out", str(out)]) == 0
    first = json.loads((out / "provenance.json").read_text())["sessions"]
    assert len(first) == 1 and first[0]["workers"] == 1
    run_study(StudySpec.from_file(spec), out)  # a rerun (nothing left to run) is a session too
    sessions = json.loads((out / "provenance.json").read_text())["sessions"]
    assert len(sessions) == 2 and sessions[0] == first[0]
    capsys.readouterr()
    assert main(["report", str(out), "--no-figures"]) == 0
    report = capsys.readouterr().out
    section = report[report.index("## Provenance"):]
    assert "### Session 1" in section and "### Session 2" in section
    assert sessions[1]["git_commit"] in section and sessions[1]["cpu"] in section
    # a damaged file is set aside, naming it, and a new one started
    (out / "provenance.json").write_text("{")
    warnings: list[str] = []
    run_study(StudySpec.from_file(spec), out, on_warning=warnings.append)
    assert any("provenance.json" in w for w in warnings)
    assert (out / "quarantine" / "provenance.json").read_text() == "{"
    assert len(json.loads((out / "provenance.json").read_text())["sessions"]) == 1
