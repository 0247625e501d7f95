"""The machine a benchmark ran on, for the line every ``studies/bench`` script prints first, and
the pieces :mod:`ctrlbench.provenance` records with every study's results."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

__all__ = ["cpu_name", "describe", "gpu_name", "library_versions", "load_average",
           "package_versions"]


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


def gpu_name() -> str | None:
    """The name of CUDA device 0, when torch is already imported and sees a GPU; else None.

    Never imports torch (``import ctrlbench`` stays light), and never raises.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else None
    except Exception:  # a broken driver must not fail the caller
        return None


def package_versions(libs: Sequence[str]) -> dict[str, str]:
    """``{"numpy": "2.4.6", "do-mpc": "not installed"}`` for the distributions ``libs``."""
    out = {}
    for lib in libs:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def library_versions(libs: Sequence[str]) -> str:
    """``"numpy 2.4.6, casadi 3.8.2, do-mpc (not installed)"`` for the distributions ``libs``."""
    return ", ".join(f"{lib} ({v})" if v == "not installed" else f"{lib} {v}"
                     for lib, v in package_versions(libs).items())


def describe(libs: Sequence[str], threads: str = "no GPU used") -> str:
    """One line: CPU, logical cores, ``threads`` note, Python and the library versions."""
    return (f"{cpu_name()}, {os.cpu_count()} logical cores, {threads}; Python "
            f"{platform.python_version()}; {library_versions(libs)}")


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (rounded to 0.01), or ``None`` where the platform
    has none; benchmarks print it because other processes share the cores."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
