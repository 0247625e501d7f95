"""Shared helpers of the frozen configs: cross-field checks and registry-built options.

Every config of ``llm_rl`` is a :class:`ctrlbench.options.Options` dataclass: fields declared with
:func:`ctrlbench.options.option` (one-line doc, range), type and range checked on construction.
Only the checks that involve several fields are written by hand, with :func:`check_field`, so
every error names ``<label>.<field>``, the bad value and what is valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ctrlbench.options import OptionError, Options
from ctrlbench.registry import Registry

__all__ = ["check_field", "finite", "resolve_options"]


def check_field(owner: Any, name: str, ok: bool, valid: str) -> None:
    """Raise :class:`~ctrlbench.options.OptionError` naming ``<label>.<name>``, its value and
    ``valid`` unless ``ok`` (``label`` is the class's, else its name)."""
    if not ok:
        value = getattr(owner, name)
        where = getattr(type(owner), "label", "") or type(owner).__name__
        raise OptionError(f"{where}.{name} = {value!r} is out of range; valid: {valid}")


def finite(x: Any) -> bool:
    """True for a finite real number (bools excluded)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def resolve_options(registry: Registry[Any], name: str,
                    values: Mapping[str, Any] | Options | None) -> Options:
    """The options instance of registry entry ``name`` from a mapping (validated, unknown keys
    rejected with the valid ones listed), ``None`` (the defaults) or an instance of exactly the
    entry's options class (a subclass instance would carry fields the entry ignores).

    ``KeyError`` for an unknown name lists the valid names.
    """
    cls = registry.options(name)
    if cls is None:
        raise TypeError(f"{registry.kind} {name!r} is registered without an options class")
    if isinstance(values, Options) and type(values) is not cls:
        raise OptionError(f"{registry.kind} {name!r} takes {cls.__name__}, got "
                          f"{type(values).__name__} {values.to_dict()}")
    if values is not None and not isinstance(values, Options | Mapping):
        raise OptionError(f"{registry.kind} {name!r}: options must be a mapping or "
                          f"{cls.__name__}, got {values!r}")
    opts = registry.build_options(name, values)
    assert opts is not None
    return opts
