"""Mean +- std over seeds of a study's per-run table (issue 16: claims over seeds).

Each input is a study's ``results.json`` written with one seed (for example
``studies/llm_entropy_collapse.py --seed S --out_dir DIR``); its ``rows`` are per-run dicts. Rows
are matched across the inputs by the key columns (``task,method`` by default) and every numeric
column is reduced to mean +- sample standard deviation (ddof = 1) over the inputs that have the
row. The table goes to standard output and, with ``--out``, to ``results.md`` and
``results.json`` in that folder (written atomically), together with each input's provenance
(commit, dirty flag, seed) so the table says what produced it.

    python studies/seed_table.py /tmp/c_s0/results.json /tmp/c_s2/results.json \
        /tmp/c_s3/results.json --out results/collapse_seeds
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from ctrlbench.io import atomic_write_bytes
from ctrlbench.provenance import format_provenance, provenance

#: Columns never averaged (bookkeeping, not results).
SKIP = frozenset({"config_hash", "steps", "n_eval", "wall_s"})


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load(path: str | Path, table: str = "rows", seed_arg: str = "seed") -> dict[str, Any]:
    """One input: its ``table`` (per-run rows by default), seed and provenance.

    ``table`` names the list in ``results.json`` to reduce (``rows``, or a study's summary such as
    ``table``); ``seed_arg`` the entry of its ``args`` that holds the seed (``seed``, or e.g.
    ``train_seed``). A file that is not such a results file is a clear error.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no results file at {p}")
    data = json.loads(p.read_text())
    if not isinstance(data, dict) or not isinstance(data.get(table), list):
        lists = sorted(k for k, v in data.items() if isinstance(v, list)) \
            if isinstance(data, dict) else []
        raise ValueError(f"{p} has no {table!r} list: not a study's results.json "
                         f"(its lists: {', '.join(lists) or 'none'})")
    args = data.get("args") or {}
    return {"path": str(p), "rows": data[table], "seed": args.get(seed_arg),
            "provenance": data.get("provenance") or {}}


def aggregate(inputs: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows keyed by ``keys``; each numeric column as ``(mean, std, n)`` over the inputs.

    ``std`` is the sample standard deviation (``nan`` for one value); ``None`` entries and
    non-finite values are left out of a column's statistics and counted out of its ``n``.
    """
    order: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for inp in inputs:
        for row in inp["rows"]:
            missing = [k for k in keys if k not in row]
            if missing:
                raise KeyError(f"{inp['path']}: a row has no key column {missing[0]!r} "
                               f"(its columns: {sorted(row)})")
            cols = order.setdefault(tuple(row[k] for k in keys), {})
            for name, value in row.items():
                if name in keys or name in SKIP or not _numeric(value):
                    continue
                if math.isfinite(value):
                    cols.setdefault(name, []).append(float(value))
    out = []
    for key, cols in order.items():
        stats = {name: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else math.nan,
                        len(v)) for name, v in cols.items()}
        out.append({**dict(zip(keys, key, strict=True)), "stats": stats})
    return out


def markdown(rows: list[dict[str, Any]], keys: tuple[str, ...], columns: list[str],
             inputs: list[dict[str, Any]]) -> str:
    """The mean +- std table, then where each seed's numbers came from."""
    lines = ["| " + " | ".join([*keys, *columns]) + " |",
             "|" + "---|" * (len(keys) + len(columns))]
    for r in rows:
        cells = []
        for c in columns:
            mean, std, n = r["stats"].get(c, (math.nan, math.nan, 0))
            cells.append("-" if n == 0 else f"{mean:.3f} +- {std:.3f}" if n > 1 else f"{mean:.3f}")
        lines.append("| " + " | ".join([*(str(r[k]) for k in keys), *cells]) + " |")
    lines += ["", f"Mean +- sample std (ddof 1) over {len(inputs)} seeds:"]
    for inp in inputs:
        prov = inp["provenance"]
        commit = prov.get("git_commit", prov.get("commit"))
        dirty = prov.get("git_dirty", prov.get("dirty"))
        lines.append(f"- seed {inp['seed']}: {inp['path']} (commit {commit}, dirty {dirty})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print (and with ``--out`` write) the mean +- std table of several seeds' results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", help="results.json of each seed's run")
    p.add_argument("--keys", default="task,method", help="columns that identify a row")
    p.add_argument("--columns", default="",
                   help="numeric columns to show, comma-separated (default: all)")
    p.add_argument("--out", default="", help="folder for results.md / results.json")
    p.add_argument("--table", default="rows",
                   help="the list in results.json to reduce (per-run 'rows', or a summary)")
    p.add_argument("--seed_arg", default="seed",
                   help="the entry of each results.json's args that holds its seed")
    a = p.parse_args(argv)
    if len(a.results) < 2:
        p.error(f"need results of >= 2 seeds for a spread, got {len(a.results)}")
    keys = tuple(k for k in a.keys.split(",") if k)
    try:
        inputs = [load(r, a.table, a.seed_arg) for r in a.results]
    except (OSError, ValueError) as err:
        p.error(str(err))
    rows = aggregate(inputs, keys)
    available = list(dict.fromkeys(c for r in rows for c in r["stats"]))
    columns = [c for c in a.columns.split(",") if c] or available
    unknown = [c for c in columns if c not in available]
    if unknown:
        p.error(f"unknown column {unknown[0]!r}; the numeric columns are: {', '.join(available)}")
    prov = provenance()
    text = markdown(rows, keys, columns, inputs) + "\n" + format_provenance(
        prov, heading="## Provenance of this table")
    print(text)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "results.md", text.encode())
        table = [{**{k: r[k] for k in keys},
                  **{c: {"mean": m, "std": None if math.isnan(s) else s, "n": n}
                     for c, (m, s, n) in r["stats"].items()}}
                 for r in rows]
        atomic_write_bytes(out / "results.json", json.dumps(
            {"keys": keys, "rows": table, "provenance": prov, "inputs": [
                {"path": i["path"], "seed": i["seed"], "provenance": i["provenance"]}
                for i in inputs]}, indent=1, default=float).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
