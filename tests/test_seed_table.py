"""studies/seed_table.py: mean +- sample std over seeds, matched by key columns."""

from __future__ import annotations

import json
import math

import pytest

from studies.seed_table import aggregate, load, main


def _write(path, seed, rows):
    path.write_text(json.dumps({"args": {"seed": seed}, "rows": rows,
                                "provenance": {"git_commit": "abc", "git_dirty": False}}))
    return path


def test_mean_and_sample_std_per_key_and_column(tmp_path):
    a = _write(tmp_path / "a.json", 0, [{"task": "t", "method": "pid", "err": 0.1, "wall_s": 9.0},
                                        {"task": "t", "method": "open", "err": 0.5}])
    b = _write(tmp_path / "b.json", 2, [{"task": "t", "method": "open", "err": 0.7},
                                        {"task": "t", "method": "pid", "err": 0.4, "pass": None}])
    c = _write(tmp_path / "c.json", 3, [{"task": "t", "method": "pid", "err": 0.25,
                                         "bad": float("nan")}])
    rows = aggregate([load(a), load(b), load(c)], ("task", "method"))
    by = {r["method"]: r["stats"] for r in rows}
    mean, std, n = by["pid"]["err"]
    assert n == 3 and mean == pytest.approx(0.25)
    assert std == pytest.approx(math.sqrt(((0.15) ** 2 + 0.15 ** 2 + 0) / 2))  # ddof 1: 0.15
    assert by["open"]["err"] == pytest.approx((0.6, math.sqrt(0.02), 2))
    assert "wall_s" not in by["pid"] and "pass" not in by["pid"]      # bookkeeping, None
    assert "bad" not in by["pid"]                                    # non-finite left out


def test_cli_writes_table_and_names_bad_input(tmp_path, capsys):
    a = _write(tmp_path / "a.json", 0, [{"task": "t", "method": "m", "err": 1.0}])
    b = _write(tmp_path / "b.json", 1, [{"task": "t", "method": "m", "err": 3.0}])
    assert main([str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "results.md").read_text()
    assert "| t | m | 2.000 +- 1.414 |" in text
    assert "seed 1: " in text and "commit abc, dirty False" in text
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["rows"][0]["err"] == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}
    with pytest.raises(SystemExit):
        main([str(a), str(b), "--columns", "nope"])
    assert "unknown column 'nope'" in capsys.readouterr().err
    with pytest.raises(KeyError, match="no key column 'group'"):
        main([str(a), str(b), "--keys", "group"])
    with pytest.raises(FileNotFoundError, match="no results file"):
        load(tmp_path / "missing.json")
    with pytest.raises(SystemExit):
        main([str(a), str(tmp_path / "missing.json")])
    assert "no results file at" in capsys.readouterr().err


def test_summary_table_and_seed_entry_by_flag(tmp_path, capsys):
    """``--table`` reduces a study's summary list, ``--seed_arg`` names the seed entry."""
    for seed, dev in ((1, 1.0), (2, 2.0), (3, 6.0)):
        (tmp_path / f"s{seed}.json").write_text(json.dumps(
            {"args": {"train_seed": seed}, "rows": [{"case": "x"}],
             "table": [{"set": "g", "controller": "lstmc", "dev": dev, "n": 4}]}))
    files = [str(tmp_path / f"s{s}.json") for s in (1, 2, 3)]
    assert main([*files, "--table", "table", "--keys", "set,controller",
                 "--seed_arg", "train_seed", "--out", str(tmp_path / "o")]) == 0
    text = (tmp_path / "o" / "results.md").read_text()
    assert "| g | lstmc | 3.000 +- 2.646 |" in text            # (1, 2, 6): std sqrt(7)
    assert "seed 2: " in text and "seed None" not in text
    assert "## Provenance of this table" in text and "- commit:" in text
    assert json.loads((tmp_path / "o" / "results.json").read_text())["provenance"]["command"]
    with pytest.raises(SystemExit):
        main([*files, "--table", "summary"])
    err = capsys.readouterr().err
    assert "no 'summary' list" in err and "its lists: rows, table" in err
