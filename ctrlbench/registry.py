"""Lazy registries: plants live in gymnasium's own registry, controllers in :data:`CONTROLLERS`.

Entries are ``"module:attr"`` strings imported on first use, so listing names never imports a
heavy library. Plant and controller families register themselves through the
``ctrlbench.plugins`` entry-point group (see ``pyproject.toml``); :func:`load_plugins` runs each
plugin once. Duplicate names are rejected; unknown names and unknown keyword arguments raise errors
that list the valid choices.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

import gymnasium as gym

__all__ = [
    "CONTROLLERS",
    "NAMESPACE",
    "Registry",
    "load_entry_point",
    "load_plugins",
    "make_controller",
    "make_plant",
    "plant_ids",
    "plant_info",
    "register_plant",
    "valid_kwargs",
]

NAMESPACE = "ctrlbench"
T = TypeVar("T")
_PLUGINS_LOADED: set[str] = set()


def load_entry_point(entry_point: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``"package.module:attr"`` (or pass a callable through)."""
    if callable(entry_point):
        return entry_point
    module, _, attr = entry_point.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def _unknown(kind: str, name: str, valid: list[str]) -> KeyError:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    names = ", ".join(sorted(valid))
    return KeyError(f"unknown {kind} {name!r}.{hint} valid {kind} names: {names}")


def valid_kwargs(factory: Callable[..., Any], skip: int = 0) -> list[str] | None:
    """Keyword names ``factory`` accepts (``None`` when it takes ``**kwargs``)."""
    params = list(inspect.signature(factory).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]


_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,), "int": (int,), "float": (int, float), "str": (str,),
}


def _type_error(kind: str, name: str, option: str, value: Any, annotation: Any) -> str | None:
    """A message when ``value`` does not fit a simple annotation (bool/int/float/str[, None])."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = [p.strip() for p in str(text).split("|")]
    allowed: tuple[type, ...] = ()
    for part in parts:
        if part == "None":
            if value is None:
                return None
            continue
        if part not in _SIMPLE_TYPES:
            return None  # not a simple annotation: leave it to the factory
        allowed += _SIMPLE_TYPES[part]
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if ok:
        return None
    return f"{kind} {name!r}: option {option}={value!r} must be {' | '.join(parts)}"


def check_kwargs(kind: str, name: str, factory: Callable[..., Any], kwargs: Mapping[str, Any],
                 skip: int = 0) -> None:
    """Raise ``TypeError`` for options ``factory`` does not take (listing the valid ones) or
    whose value does not fit a simple annotation (``bool``, ``int``, ``float``, ``str``)."""
    valid = valid_kwargs(factory, skip)
    if valid is not None:
        bad = sorted(set(kwargs) - set(valid))
        if bad:
            raise TypeError(f"{kind} {name!r} got unknown option(s) {bad}; valid options: {valid}")
    params = inspect.signature(factory).parameters
    for option, value in kwargs.items():
        if option in params:
            msg = _type_error(kind, name, option, value, params[option].annotation)
            if msg:
                raise TypeError(msg)


@dataclass(frozen=True)
class Entry:
    """A registered name: lazy entry point and a one-line description."""

    name: str
    entry_point: Any
    description: str


class Registry(Generic[T]):
    """Name -> lazy entry point (an object, or a ``"module:attr"`` string imported on use).

    Parameters
    ----------
    kind:
        What the registry holds, used in error messages (``"controller"``, ``"loss"``).
    plugin_group:
        Entry-point group whose registration hooks run before the first lookup (the global
        controller registry uses ``"ctrlbench.plugins"``); ``None`` for a self-contained registry.
    """

    def __init__(self, kind: str, plugin_group: str | None = None) -> None:
        self.kind = kind
        self.plugin_group = plugin_group
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, entry_point: T | str, description: str = "") -> None:
        """Add ``name``; a duplicate name raises ``ValueError``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, entry_point, description)

    def _plugins(self) -> None:
        if self.plugin_group is not None:
            load_plugins(self.plugin_group)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._plugins()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` for ``name``; unknown names raise ``KeyError`` listing valid ones."""
        self._plugins()
        if name not in self._entries:
            raise _unknown(self.kind, name, list(self._entries))
        return self._entries[name]

    def load(self, name: str) -> T:
        """The object behind ``name``, importing a lazy ``"module:attr"`` entry on first use."""
        entry = self.entry(name)
        if isinstance(entry.entry_point, str):
            obj = load_entry_point(entry.entry_point)
            self._entries[name] = Entry(name, obj, entry.description)
            return obj  # type: ignore[return-value]
        return entry.entry_point  # type: ignore[no-any-return]

    get = load

    def __contains__(self, name: object) -> bool:
        self._plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


CONTROLLERS: Registry[Callable[..., Any]] = Registry("controller", "ctrlbench.plugins")
"""Controller factories ``factory(plant, **options) -> Controller``."""

_PLANT_DESCRIPTIONS: dict[str, str] = {}


def load_plugins(group: str = "ctrlbench.plugins") -> None:
    """Run every registration hook in entry-point ``group`` once."""
    for ep in entry_points(group=group):
        key = f"{group}:{ep.name}"
        if key in _PLUGINS_LOADED:
            continue
        _PLUGINS_LOADED.add(key)
        ep.load()()


def register_plant(name: str, entry_point: str, description: str, **kwargs: Any) -> str:
    """Register ``ctrlbench/<name>`` in gymnasium's registry; returns the full id."""
    env_id = f"{NAMESPACE}/{name}"
    if env_id in gym.registry:
        raise ValueError(f"plant {env_id!r} is already registered")
    gym.register(id=env_id, entry_point=entry_point, **kwargs)
    _PLANT_DESCRIPTIONS[env_id] = description
    return env_id


def plant_ids() -> list[str]:
    """Ids of all registered ctrlbench plants."""
    load_plugins()
    return sorted(_PLANT_DESCRIPTIONS)


def plant_info(plant_id: str) -> tuple[str, str]:
    """``(full_id, description)``; accepts ids with or without the ``ctrlbench/`` prefix."""
    load_plugins()
    full = plant_id if plant_id.startswith(f"{NAMESPACE}/") else f"{NAMESPACE}/{plant_id}"
    if full not in _PLANT_DESCRIPTIONS:
        raise _unknown("plant", plant_id, plant_ids())
    return full, _PLANT_DESCRIPTIONS[full]


def plant_kwargs(plant_id: str) -> list[str] | None:
    """Keyword options the plant's constructor takes."""
    full, _ = plant_info(plant_id)
    spec = gym.spec(full)
    factory = load_entry_point(spec.entry_point)  # type: ignore[arg-type]
    return valid_kwargs(factory)


def make_plant(plant_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """Build a registered plant; unknown ids or options raise errors listing the valid ones."""
    full, _ = plant_info(plant_id)
    spec = gym.spec(full)
    factory = load_entry_point(spec.entry_point)  # type: ignore[arg-type]
    check_kwargs("plant", full, factory, kwargs)
    return gym.make(full, disable_env_checker=True, **kwargs)


def make_controller(name: str, plant: gym.Env[Any, Any], **kwargs: Any) -> Any:
    """Build controller ``name`` for ``plant``; unknown names or options raise.

    A plant may recommend options per controller in a ``controller_defaults`` mapping
    (``{"lqr": {"reference_tau": 0.3}}``); explicit ``kwargs`` override them.
    """
    factory = CONTROLLERS.load(name)
    defaults: Mapping[str, Any] = {}
    if plant is not None:
        defaults = getattr(plant.unwrapped, "controller_defaults", {}).get(name, {})
    options = {**defaults, **kwargs}
    check_kwargs("controller", name, factory, options, skip=1)
    return factory(plant, **options)
