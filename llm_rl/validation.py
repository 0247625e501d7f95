"""Shared helpers of the frozen configs: cross-field checks, registry-built options, devices.

Every config of ``llm_rl`` is a :class:`ctrlbench.options.Options` dataclass: fields declared with
:func:`ctrlbench.options.option` (one-line doc, range), type and range checked on construction.
Only the checks that involve several fields are written by hand, with :func:`check_field`, so
every error names ``<label>.<field>``, the bad value and what is valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ctrlbench.options import OptionError, Options
from ctrlbench.registry import Registry

__all__ = [
    "DEVICE_FORMS",
    "MAX_LR",
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "NonFiniteLossError",
    "check_device",
    "check_field",
    "device_problem",
    "finite",
    "resolve_options",
]

#: The device strings a run accepts (``torch.device`` syntax, restricted to what is supported).
DEVICE_FORMS = "cpu, cuda, cuda:<index>, mps"
#: Lowest sampling temperature (effectively greedy): below it ``logits / T`` can overflow.
MIN_TEMPERATURE = 1e-3
#: Highest sampling temperature (effectively uniform sampling).
MAX_TEMPERATURE = 1e3
#: Highest optimizer step size: AdamW moves each weight by about ``lr`` per step, so anything
#: near it already destroys a model; far beyond it torch cannot even represent the update.
MAX_LR = 1e3
_DEVICE = re.compile(r"(cpu|cuda|cuda:\d{1,3}|mps)")


class NonFiniteLossError(RuntimeError):
    """The loss, a gradient, the weights or the sampling distribution went NaN/inf.

    Raised before a damaged state is checkpointed: the last checkpoint on disk stays good.
    """


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


def device_problem(device: str) -> str | None:
    """What is wrong with the spelling of ``device`` (``None`` when it is one of
    :data:`DEVICE_FORMS`); availability is :func:`check_device`'s job."""
    if _DEVICE.fullmatch(device):
        return None
    return f"one of {DEVICE_FORMS}"


def check_device(device: str) -> None:
    """Raise :class:`~ctrlbench.options.OptionError` unless torch can use ``device`` here.

    Checked before any work so that ``--device cuda`` on a CPU-only build, or a GPU index that
    does not exist, is one clear line instead of a traceback from deep inside torch.
    """
    problem = device_problem(device)
    if problem is not None:
        raise OptionError(f"device = {device!r} is not a device; valid: {problem}")
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA device is visible")
            raise OptionError(f"device = {device!r}: CUDA is not available ({why}; torch "
                              f"{torch.__version__}); use --device cpu")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise OptionError(f"device = {device!r}: no such GPU; valid: cuda:0 .. "
                              f"cuda:{count - 1}")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"device = {device!r}: the MPS backend is not available here; use "
                          f"--device cpu")
