"""The machine a benchmark ran on, for the line every ``studies/bench`` script prints first."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

__all__ = ["cpu_name", "describe", "library_versions"]


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (else ``platform.processor()``, else "unknown")."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions(libs: Sequence[str]) -> str:
    """``"numpy 2.4.6, casadi 3.8.2, do-mpc (not installed)"`` for the distributions ``libs``."""
    out = []
    for lib in libs:
        try:
            out.append(f"{lib} {version(lib)}")
        except PackageNotFoundError:
            out.append(f"{lib} (not installed)")
    return ", ".join(out)


def describe(libs: Sequence[str], threads: str = "no GPU used") -> str:
    """One line: CPU, logical cores, ``threads`` note, Python and the library versions."""
    return (f"{cpu_name()}, {os.cpu_count()} logical cores, {threads}; Python "
            f"{platform.python_version()}; {library_versions(libs)}")
