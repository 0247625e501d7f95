"""Every study and benchmark script records its provenance (issue 16): a static check over
``studies/*.py`` and ``studies/bench/*.py``, plus one benchmark run end to end.

A script passes when it calls ``write_results`` (``llm_rl.study_runs``: provenance into
``results.json`` and ``results.md``), or calls both ``provenance(...)`` and
``format_provenance(...)`` (the results file and the printed or written summary); a script that
writes JSON must also put a ``"provenance"`` key into it. The mirostat, rbc_fem_compare and
rbc_solver smoke tests check the written values (tests/llm_rl/test_interventions_study.py,
tests/plants/test_rbc_fem.py, tests/test_rbc_study.py).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from tests.fixtures.studies import STUDIES, load_study

FOREIGN = {"bench/rbc_peer_shenfun.py": "runs inside the shenfun peer's own venv, without "
                                        "ctrlbench; bench/rbc_solver.py records the provenance"}
"""Scripts that cannot import ctrlbench, with the reason."""

GAPS: dict[str, str] = {}
"""Known gaps: expected to fail the check (strictly, so fixing one means removing it here)."""

WRITERS = {"json.dump", "json.dumps", "atomic_write_bytes", "atomic_write"}
"""Calls that write a results file."""


def _scripts() -> list[str]:
    """Every runnable script (a ``__main__`` guard) in ``studies/`` and ``studies/bench/``;
    data modules such as ``mutation_equivalents.py`` write nothing and are left out."""
    names = [p.relative_to(STUDIES).as_posix()
             for p in sorted([*STUDIES.glob("*.py"), *STUDIES.glob("bench/*.py")])
             if '__name__ == "__main__"' in p.read_text(encoding="utf-8")]
    return [n for n in names if n not in FOREIGN]


def _called(tree: ast.AST) -> set[str]:
    """Names of every function called (``f(...)`` -> ``f``, ``a.b.f(...)`` -> ``a.b.f``)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out.add(ast.unparse(node.func))
    return out


def _has_provenance_key(tree: ast.AST) -> bool:
    """A dict literal with a ``"provenance"`` key, or ``x["provenance"] = ...``."""
    for node in ast.walk(tree):
        keys = node.keys if isinstance(node, ast.Dict) else (
            [t.slice for t in node.targets if isinstance(t, ast.Subscript)]
            if isinstance(node, ast.Assign) else [])
        if any(isinstance(k, ast.Constant) and k.value == "provenance" for k in keys):
            return True
    return False


def missing_provenance(source: str) -> list[str]:
    """What a study script's source lacks for its provenance ([] when nothing)."""
    tree = ast.parse(source)
    called = {name.rsplit(".", 1)[-1] for name in _called(tree)}
    if "write_results" in called:
        return []
    missing = [f"a call to {name}(...)" for name in ("provenance", "format_provenance")
               if name not in called]
    writes = bool(WRITERS & (_called(tree) | called))
    if writes and not _has_provenance_key(tree):
        missing.append('a "provenance" key in the JSON it writes')
    return missing


def test_the_check_catches_a_script_without_provenance() -> None:
    bare = "import json\ndef main():\n    print(json.dumps({'rows': []}))\n"
    assert missing_provenance(bare) == ["a call to provenance(...)",
                                        "a call to format_provenance(...)",
                                        'a "provenance" key in the JSON it writes']
    half = ("from ctrlbench.provenance import provenance\nimport json\n"
            "def main():\n    p = provenance()\n    print(json.dumps({'rows': [], 'p': p}))\n")
    assert missing_provenance(half) == ["a call to format_provenance(...)",
                                        'a "provenance" key in the JSON it writes']
    assert missing_provenance("from llm_rl.study_runs import write_results\n"
                              "write_results('o', {}, [], 'r')\n") == []
    assert FOREIGN.keys() | GAPS.keys() <= {p.relative_to(STUDIES).as_posix()
                                            for p in STUDIES.rglob("*.py")}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=GAPS[n], strict=True)) if n in GAPS else n
    for n in _scripts()])
def test_study_script_records_its_provenance(name: str) -> None:
    missing = missing_provenance((STUDIES / name).read_text(encoding="utf-8"))
    assert not missing, f"studies/{name} lacks " + "; ".join(missing)


def test_a_benchmark_summary_ends_with_the_provenance(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    pytest.importorskip("torch")
    bench = load_study("bench/entropy_sensor")
    assert bench.main(["--positions", "4", "--vocab", "16", "--chunk", "2", "--repeats",
                       "1"]) == 0
    said = capsys.readouterr().out
    table, _, block = said.partition("\n## Provenance\n")
    assert "chunked" in table
    lines = block.strip().splitlines()
    assert [ln.split(":", 1)[0] for ln in lines] == [
        "- commit", "- command", "- machine", "- versions", "- also"]
    assert "torch 1," in lines[2] and "triton" in lines[4]


def test_fem_compare_records_the_worker_versions_or_why_not(tmp_path: Path) -> None:
    """rbc_fem_compare's FEM worker runs outside the venv: its versions are probed apart, and a
    missing interpreter is recorded, not raised (the DOLFINx run itself: test_rbc_fem.py)."""
    from ctrlbench.provenance import provenance

    study = load_study("rbc_fem_compare")
    worker = study.worker_versions(str(tmp_path / "no-python"))
    assert worker["interpreter"] == str(tmp_path / "no-python") and "error" in worker
    prov = provenance()
    args = argparse.Namespace(ra=1e4, pr=0.7)
    data = study.results_data(args, [], {}, prov, worker)
    assert data["provenance"] is prov and data["fem_worker"] is worker
    tail = study.summary_tail(prov, worker)
    assert tail.startswith("## Provenance\n") and tail.endswith(
        f"- FEM worker: `{tmp_path / 'no-python'}`: error {worker['error']}\n")
