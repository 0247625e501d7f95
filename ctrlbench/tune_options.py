"""Controller options files: what ``ctrlbench tune`` writes and ``ctrlbench run --options`` and
study specs (``controller_options = {pid = "best.json"}``) read.

A file is JSON (``.json``) or TOML (``.toml``): either a flat table of options
(``t_sigma = 2e-4``) or a table with an ``options`` table and optional facts about where the
options come from (``controller``, ``plant``, ``metric``, ``value``, ``trials``, ...), as
:func:`write_options_file` writes it. Options are checked later, against the controller's own
options dataclass, where the controller is built.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctrlbench.io import atomic_write_bytes

__all__ = ["read_options_file", "read_options_meta", "write_options_file"]

_SUFFIXES = (".json", ".toml")


def _load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.suffix not in _SUFFIXES:
        raise ValueError(f"options file {str(path)!r} must be .json or .toml")
    if not path.is_file():
        raise FileNotFoundError(f"options file {str(path)!r} does not exist or is not a file")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"options file {str(path)!r} is not valid "
                         f"{path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"options file {str(path)!r} must hold a table of options, got a "
                         f"{type(data).__name__}")
    return data


def read_options_meta(path: str | Path) -> dict[str, Any]:
    """Everything in the file except the options (``{}`` for a flat table of options)."""
    data = _load(path)
    return {k: v for k, v in data.items() if k != "options"} if "options" in data else {}


def read_options_file(path: str | Path, controller: str | None = None) -> dict[str, Any]:
    """The controller options in ``path``.

    Raises ``FileNotFoundError`` / ``ValueError`` naming the file when it is missing, not JSON /
    TOML or not a table, and ``ValueError`` when it says it was written for another controller
    than ``controller`` (when given).
    """
    data = _load(path)
    if "options" not in data:
        return data
    options = data["options"]
    if not isinstance(options, dict):
        raise ValueError(f"options file {str(path)!r}: 'options' must be a table, got "
                         f"{type(options).__name__}")
    made_for = data.get("controller")
    if controller is not None and made_for is not None and made_for != controller:
        raise ValueError(f"options file {str(path)!r} holds options of controller {made_for!r}, "
                         f"not {controller!r}")
    return dict(options)


def write_options_file(
    path: str | Path, options: Mapping[str, Any], meta: Mapping[str, Any] | None = None
) -> Path:
    """Write ``{**meta, "options": options}`` atomically as JSON (``.json``) or, for ``.toml``,
    as TOML of scalars (``meta`` values that are not numbers, strings or booleans are left
    out there)."""
    path, meta = Path(path), dict(meta or {})
    if path.suffix not in _SUFFIXES:
        raise ValueError(f"options file {str(path)!r} must be .json or .toml")
    if path.suffix == ".json":
        text = json.dumps({**meta, "options": dict(options)}, indent=1) + "\n"
    else:
        lines = [f"{k} = {_toml(v)}" for k, v in meta.items() if _toml(v) is not None]
        lines += ["", "[options]", *(f"{k} = {_toml(v)}" for k, v in options.items())]
        text = "\n".join(lines) + "\n"
    return atomic_write_bytes(path, text.encode())


def _toml(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    return None
