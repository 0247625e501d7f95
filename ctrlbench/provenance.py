"""Provenance: what produced a result — commit, versions, threads, hardware and the command.

Every study writes :func:`provenance` into its results (``results.json``, and
:func:`format_provenance` at the end of ``results.md``); ``ctrlbench study`` keeps one entry per
session in the study folder's ``provenance.json`` and ``ctrlbench report`` shows them.

Collecting it is cheap (two ``git`` calls with a short timeout, package metadata, ``/proc``),
imports nothing heavy (torch is asked only when already imported) and never fails the caller: a
piece that cannot be found reads ``None``.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ctrlbench.machine import cpu_name, gpu_name, package_versions

__all__ = ["PACKAGES", "PROVENANCE_FILE", "format_provenance", "git_state", "provenance",
           "read_sessions"]

PACKAGES = ("numpy", "scipy", "gymnasium", "torch", "stable-baselines3", "pysindy", "casadi",
            "optuna", "transformers", "gym-electric-motor")
"""The distributions whose versions are recorded (besides Python's)."""

PROVENANCE_FILE = "provenance.json"
"""A study folder's record of its sessions: ``{"sessions": [provenance, ...]}``."""

GIT_TIMEOUT_S = 5.0

def _safe(fn: Callable[[], Any], default: Any) -> Any:
    try:
        return fn()
    except Exception:  # provenance never fails the caller
        return default


def _package_root() -> Path:
    """The folder that holds the imported ``ctrlbench`` package (a checkout's root)."""
    return Path(__file__).resolve().parent.parent


def _git(root: Path, *args: str) -> str | None:
    """``git -C root args`` stdout, or None when git is missing, fails or hangs."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
            timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},  # never take the index lock
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(root: str | os.PathLike[str] | None = None) -> tuple[str | None, bool | None]:
    """``(HEAD commit, dirty)`` of the git checkout whose root is ``root`` (default: the one
    that holds the imported ``ctrlbench``); ``(None, None)`` when ``root`` is not a checkout's
    root (an installed copy of the package is not the checkout around it).

    Dirty means ``git status --porcelain`` lists anything: tracked changes or untracked files
    that ``.gitignore`` does not ignore (``results/`` and ``runs/`` are ignored).
    """
    folder = Path(root) if root is not None else _package_root()
    out = _git(folder, "rev-parse", "--show-toplevel", "HEAD")
    lines = out.split() if out else []
    if len(lines) != 2 or _safe(lambda: Path(lines[0]).resolve() != folder.resolve(), True):
        return None, None
    status = _git(folder, "status", "--porcelain")
    return lines[1], None if status is None else bool(status.strip())


def _command() -> list[str]:
    """The command line that started this process, as one would type it again."""
    argv = list(sys.argv)
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    if argv and argv[0] and not argv[0].endswith(".py") and \
            os.path.dirname(os.path.abspath(argv[0])) == exe_dir:
        return [os.path.basename(argv[0]), *argv[1:]]  # a console script: `ctrlbench study ...`
    orig = getattr(sys, "orig_argv", None)  # keeps `-m pytest`, `-c ...`, interpreter flags
    return ["python", *(orig[1:] if orig else argv)]


def _threads() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    usable = getattr(os, "sched_getaffinity", None)
    return {
        "torch": _safe(lambda: int(torch.get_num_threads()), None) if torch else None,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "usable_cpus": _safe(lambda: len(usable(0)), None) if usable else None,
    }


def provenance(command: Sequence[str] | None = None) -> dict[str, Any]:
    """What produced a result, as a JSON-ready dict.

    Parameters
    ----------
    command:
        The command to record; default: this process's command line (``python`` and the script
        as it was run, or a console script's name such as ``ctrlbench``).

    Returns
    -------
    dict
        ``git_commit`` (None outside a git checkout), ``git_dirty`` (bool; None outside one),
        ``packages`` (Python and :data:`PACKAGES`, ``"not installed"`` where missing),
        ``threads`` (torch's when torch is imported, ``OMP_NUM_THREADS``, CPU counts), ``cpu``
        (model), ``gpu`` (CUDA device name when torch is imported and sees one, else None),
        ``platform``, ``command`` (a shell line), ``cwd`` and ``utc`` (ISO time).
    """
    commit, dirty = _safe(git_state, (None, None))
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": {"python": platform.python_version(),
                     **_safe(lambda: package_versions(PACKAGES), {})},
        "threads": _safe(_threads, {}),
        "cpu": _safe(cpu_name, None),
        "gpu": gpu_name(),
        "platform": _safe(platform.platform, None),
        "command": _safe(lambda: shlex.join(command if command is not None else _command()),
                         None),
        "cwd": _safe(os.getcwd, None),
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _code(text: Any) -> str:
    text = str(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def format_provenance(p: dict[str, Any], heading: str | None = "## Provenance") -> str:
    """A short markdown block (a heading, then four bullet lines) for a summary.

    The time is left out, so rerunning a finished study rewrites the same summary; it is in the
    JSON.
    """
    commit = p.get("git_commit")
    dirty = p.get("git_dirty")
    state = ("not a git checkout" if commit is None else _code(commit) + (
        " + uncommitted changes" if dirty else " (clean)" if dirty is False else ""))
    cwd = f" (in {_code(p['cwd'])})" if p.get("cwd") else ""
    threads = p.get("threads") or {}
    thread_text = ", ".join(
        f"{label} {threads[key]}" for key, label in (
            ("torch", "torch"), ("OMP_NUM_THREADS", "OMP_NUM_THREADS"), ("cpu_count", "CPUs"),
            ("usable_cpus", "usable")) if threads.get(key) is not None) or "unknown"
    packages = p.get("packages") or {}
    have = ", ".join(f"{k} {v}" for k, v in packages.items() if v != "not installed")
    missing = [k for k, v in packages.items() if v == "not installed"]
    lines = [] if heading is None else [heading, ""]
    lines += [
        f"- commit: {state}",
        f"- command: {_code(p.get('command'))}{cwd}",
        f"- machine: CPU {p.get('cpu') or 'unknown'}; GPU {p.get('gpu') or 'none'}; threads: "
        f"{thread_text}",
        f"- versions: {have or 'unknown'}"
        + (f"; not installed: {', '.join(missing)}" if missing else ""),
    ]
    return "\n".join(lines) + "\n"


def read_sessions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The sessions recorded in a study folder's ``provenance.json`` (``[]`` when there is none).

    Raises
    ------
    ValueError
        The file is unreadable or not ``{"sessions": [{...}, ...]}``.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc}") from None
    sessions = data.get("sessions") if isinstance(data, dict) else None
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        raise ValueError(f"{str(path)!r} is not {{\"sessions\": [{{...}}, ...]}}")
    return sessions
