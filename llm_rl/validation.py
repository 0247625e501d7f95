"""Range checks for the frozen configs: errors name the field, the bad value and the valid range."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["check_field", "finite"]


def check_field(owner: Any, name: str, ok: bool, valid: str) -> None:
    """Raise ``ValueError`` naming ``<Class>.<name>``, its value and ``valid`` unless ``ok``."""
    if not ok:
        value = getattr(owner, name)
        raise ValueError(
            f"{type(owner).__name__}.{name} = {value!r} is out of range; valid: {valid}"
        )


def finite(x: Any) -> bool:
    """True for a finite real number (bools excluded)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
