"""Frozen option dataclasses: one default and one one-line doc per field, validated on build.

Every registered kind (plant controllers, PID designs, losses, entropy controllers, ...) takes its
settings as a subclass of :class:`Options`. A field is declared with :func:`option`, which records
its doc and range; ``__post_init__`` checks each value's type (from the annotation) and range and
raises ``ValueError`` naming ``<Class>.<field>``, the value and what is allowed. The same field
metadata drives ``--set`` parsing, study TOML validation and the generated CLI flags (with
:func:`parse_value` / :func:`parse_bool`),
so no hand-written "which options does it use" table exists anywhere.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Gains(Options):
...     kp: float = option(1.0, "proportional gain", ge=0)
>>> Gains.build({"kp": 2}).kp
2.0
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

__all__ = ["OptionError", "Options", "describe", "option", "parse_bool", "parse_flags",
           "parse_value"]

OptT = TypeVar("OptT", bound="Options")
_MISSING = dataclasses.MISSING


class OptionError(TypeError, ValueError):
    """A bad option: unknown name, wrong type or out of range (the message says which).

    Both a ``TypeError`` (as Python raises for an unknown keyword) and a ``ValueError``.
    """


def option(
    default: Any,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
) -> Any:
    """A dataclass field with a one-line ``doc`` and an allowed range.

    Parameters
    ----------
    default:
        The default value (immutable: numbers, strings, tuples, ``None``).
    doc:
        One line describing the field, with its unit.
    ge, gt, le, lt:
        Bounds for numbers (``>=``, ``>``, ``<=``, ``<``); NaN and infinities are always rejected
        unless a bound is infinite.
    choices:
        The allowed values (strings or numbers).

    Returns
    -------
    dataclasses.Field
        To be assigned to an annotated class attribute of an :class:`Options` subclass.
    """
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices}
    return field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if get_origin(tp) is tuple:
        args = get_args(tp)
        return f"tuple of {_type_name(args[0])}" if args else "tuple"
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """``(ok, value)``: ``value`` converted to ``tp`` where that loses nothing (int -> float,
    list -> tuple), else ``(False, value)``. Bools are never numbers, strings never numbers."""
    origin = get_origin(tp)
    if tp is Any:
        return True, value
    if tp is type(None):
        return value is None, value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(tp, value)
    if origin is Literal:
        return value in get_args(tp) and not isinstance(value, bool), value
    if origin is tuple:
        return _coerce_tuple(tp, value)
    return _coerce_plain(tp, value)


def _coerce_union(tp: Any, value: Any) -> tuple[bool, Any]:
    for arg in get_args(tp):
        ok, out = _coerce(arg, value)
        if ok:
            return True, out
    return False, value


def _coerce_tuple(tp: Any, value: Any) -> tuple[bool, Any]:
    if not isinstance(value, list | tuple):
        return False, value
    args = get_args(tp)
    item = args[0] if args else Any
    out = []
    for v in value:
        ok, c = _coerce(item, v)
        if not ok:
            return False, value
        out.append(c)
    return True, tuple(out)


def _coerce_plain(tp: Any, value: Any) -> tuple[bool, Any]:
    if tp is bool:
        return isinstance(value, bool), value
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is str:
        return isinstance(value, str), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def _num(b: float) -> str:
    """A bound as written: ``4294967295`` for a large integer, ``0.001`` or ``1e+08`` else."""
    if b.is_integer() and abs(b) < 1e16 and abs(b) >= 1e6 and not f"{b:g}".startswith("1e"):
        return str(int(b))
    return f"{b:g}"


def _range_error(meta: Mapping[str, Any], value: Any) -> str | None:
    """What the value violates (``"finite >= 0"``), or ``None`` when it is fine."""
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        return "one of " + ", ".join(repr(c) for c in choices)
    nums = [value] if isinstance(value, int | float) else (
        list(value) if isinstance(value, tuple) else [])
    nums = [v for v in nums if isinstance(v, int | float) and not isinstance(v, bool)]
    bounds: list[tuple[str, float]] = [
        (k, float(meta[k])) for k in ("ge", "gt", "le", "lt") if meta.get(k) is not None]
    allow_inf = any(not math.isfinite(b) for _, b in bounds)
    text = " and ".join(f"{ {'ge': '>=', 'gt': '>', 'le': '<=', 'lt': '<'}[k]} {_num(b)}"
                        for k, b in bounds)
    for v in nums:
        bad = math.isnan(v) or (math.isinf(v) and not allow_inf)
        for k, b in bounds:
            bad |= {"ge": v < b, "gt": v <= b, "le": v > b, "lt": v >= b}[k]
        if bad:
            return ("finite " + text).strip() if text else "finite"
    return None


@dataclass(frozen=True)
class Options:
    """Base of every options dataclass: type and range checks on construction.

    Subclasses are ``@dataclass(frozen=True)`` with fields declared by :func:`option`. Build one
    from user input with :meth:`build`, which also rejects unknown keys.
    """

    #: Shown in error messages instead of the class name (e.g. ``"controller 'pid'"``).
    label: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            ok, coerced = _coerce(hints.get(f.name, Any), value)
            if not ok:
                raise OptionError(
                    f"{self._where()}.{f.name} = {value!r} has the wrong type; valid: "
                    f"{_type_name(hints.get(f.name, Any))}"
                )
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
            problem = _range_error(f.metadata, coerced)
            if problem is not None:
                raise OptionError(
                    f"{self._where()}.{f.name} = {value!r} is out of range; valid: {problem}"
                )

    def _where(self) -> str:
        return type(self).label or type(self).__name__

    @classmethod
    def build(cls: type[OptT], values: Mapping[str, Any] | None = None, *, what: str = ""
              ) -> OptT:
        """An instance from ``values``; unknown keys raise :class:`OptionError` listing the valid.

        Parameters
        ----------
        values:
            Field values; missing fields take their defaults.
        what:
            Names the owner in errors (``"controller 'lqr'"``); default the class name.
        """
        values = dict(values or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise OptionError(
                f"{what or cls.__name__} got unknown option(s) {unknown}; valid options: {names}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Field values as a plain dict (tuples stay tuples)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def describe(cls: type[Options]) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, doc)`` for every field of ``cls`` (for help texts and docs)."""
    hints = _hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not _MISSING else None
        rows.append((f.name, _type_name(hints.get(f.name, Any)), default,
                     f.metadata.get("doc", "")))
    return rows


_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal (``3``, ``2e-4``, ``[1, 2]``), ``true`` /
    ``false`` / ``none`` in any case, ``nan``/``inf`` as floats, or else the text itself."""
    low = text.strip().lower()
    if low in _WORDS:
        return _WORDS[low]
    if low in ("nan", "inf", "+inf", "-inf"):
        return float(low)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def parse_bool(text: str) -> bool:
    """A command-line boolean: ``1/true/yes/on`` or ``0/false/no/off`` in any case."""
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {text!r}")


def parse_flags(cls: type[OptT], argv: list[str] | None = None, *, description: str = "",
                presets: Mapping[str, Mapping[str, Any]] | None = None) -> OptT:
    """``cls`` built from ``--<field> VALUE`` flags, one per field (a study script's command line).

    Values go through :func:`parse_value` (booleans through :func:`parse_bool`; a bare
    ``--flag`` is true). ``presets`` maps a boolean field to the values it implies when given
    true (e.g. ``{"smoke": SMOKE}``): they fill the fields not given explicitly. Bad values raise
    :class:`OptionError` from :meth:`Options.build`.
    """
    parser = argparse.ArgumentParser(description=description)
    for name, kind, default, doc in describe(cls):
        if kind == "bool":
            parser.add_argument(f"--{name}", nargs="?", const=True, type=parse_bool,
                                default=None, help=doc)
        else:
            parser.add_argument(f"--{name}", type=parse_value, default=None,
                                help=f"{doc} (default {default})")
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    for flag, implied in (presets or {}).items():
        if given.get(flag):
            given = {**implied, **given}
    return cls.build(given)
