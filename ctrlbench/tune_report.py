"""The report of a tuning: ``tune.md`` with the best options and every trial, the optimization
history and the parameter importances drawn by Optuna (``history.png``, ``importance.png``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ctrlbench.io import atomic_write_bytes

__all__ = ["build_tune_report"]


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.5g}"
    return "-" if x is None else str(x)


def _save(ax: Any, path: Path) -> Path:
    import io

    fig = ax.figure
    fig.set_size_inches(7, 4)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _plots(study: Any, out: Path) -> list[str]:
    """History and importance figures; a figure Optuna cannot draw yet is said, not faked."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as vis

    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        lines.append(f"![optimization history]({_save(vis.plot_optimization_history(study), out / 'history.png').name})")  # noqa: E501
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if len(complete) >= 2 and len(study.best_trial.params) >= 1:
            try:
                ax = vis.plot_param_importances(study)
                lines.append(f"![parameter importances]({_save(ax, out / 'importance.png').name})")
            except (RuntimeError, ValueError) as exc:
                lines.append(f"Parameter importances not drawn: {exc}")
        else:
            lines.append("Parameter importances need two complete trials.")
    return lines


def build_tune_report(study: Any, result: Any, out_dir: str | Path, *,
                      figures: bool = True) -> Path:
    """Write ``tune.md`` (and the figures) for ``study`` and its :class:`~ctrlbench.tune.TuneResult`
    into ``out_dir``; return its path."""
    out = Path(out_dir)
    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    lines = [
        f"# Tuning: {study.study_name}",
        "",
        f"{len(trials)} trials ({', '.join(f'{n} {k.lower()}' for k, n in sorted(result.counts.items()))}); "  # noqa: E501
        f"{result.finished} count towards the budget. Best: trial {result.best_trial}, "
        f"value {_fmt(result.best_value)}, parameters "
        + ", ".join(f"{k} = {_fmt(v)}" for k, v in result.best_params.items())
        + f". Options file: `{result.options_file.name}`.",
        "",
        "| trial | state | value (mean over seeds) | " + " | ".join(names) + " | note |",
        "|" + "---|" * (4 + len(names)),
    ]
    for t in trials:
        note = t.user_attrs.get("error") or t.user_attrs.get("lost") or ""
        value = t.value if t.state.name == "COMPLETE" else None
        if t.state.name == "PRUNED" and t.intermediate_values:
            step = max(t.intermediate_values)
            note = (f"pruned after {step + 1} seed(s), running mean "
                    f"{_fmt(t.intermediate_values[step])}")
        lines.append(f"| {t.number} | {t.state.name} | {_fmt(value)} | "
                     + " | ".join(_fmt(t.params.get(n)) for n in names)
                     + f" | {' '.join(str(note).split())[:120].replace('|', '/')} |")
    if figures:
        lines += ["", *_plots(study, out)]
    return atomic_write_bytes(out / "tune.md", ("\n".join(lines) + "\n").encode())
