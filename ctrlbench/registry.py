"""One registration mechanism for every kind: name -> lazy entry point + options dataclass.

A :class:`Registry` maps names to entries. An entry's object and its options class are
``"module:attr"`` strings imported on first use, so listing names never imports a heavy library.
Options are frozen :class:`~ctrlbench.options.Options` dataclasses; :meth:`Registry.make` builds
them from user values (unknown keys, wrong types and out-of-range values raise
:class:`~ctrlbench.options.OptionError` naming the field, the value and what is valid) and calls
the entry with them. Duplicate names are rejected; unknown names raise ``KeyError`` listing the
valid ones.

Plants are registered twice over by :func:`register_plant`: in gymnasium's own registry under
``ctrlbench/<Name>-v<N>`` (so ``gymnasium.make`` and SB3 work unchanged) and in :data:`PLANTS`
with their description, options and :class:`~ctrlbench.capabilities.Provides`. Controllers live
in :data:`CONTROLLERS` with their :class:`~ctrlbench.capabilities.Requires`.

Families register themselves in their package's ``register()`` (one line per entry); third-party
packages add a ``register`` hook to the ``ctrlbench.plugins`` entry-point group, which
``import ctrlbench`` runs once (:func:`load_plugins`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

import gymnasium as gym

from ctrlbench.capabilities import NotApplicableError, Provides, Requires, missing, provides_of
from ctrlbench.controller import FeedbackController
from ctrlbench.options import OptionError, Options

__all__ = [
    "ALGORITHMS",
    "CONTROLLERS",
    "NAMESPACE",
    "PID_DESIGNS",
    "PLANTS",
    "Entry",
    "Registry",
    "controller_options",
    "load_entry_point",
    "load_plugins",
    "make_controller",
    "make_plant",
    "plant_ids",
    "plant_info",
    "plant_options",
    "register_plant",
    "smoke_options",
    "split_controller",
    "unregister_plant",
]

NAMESPACE = "ctrlbench"
T = TypeVar("T")
_PLUGINS_LOADED: set[str] = set()
_GROUPS_SCANNED: set[str] = set()


def load_entry_point(entry_point: Any) -> Any:
    """Import ``"package.module:attr"`` (anything else is returned as it is)."""
    if not isinstance(entry_point, str):
        return entry_point
    module, sep, attr = entry_point.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"entry point {entry_point!r} must read 'package.module:attr'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def unknown_name(kind: str, name: object, valid: list[str]) -> KeyError:
    """A ``KeyError`` for an unknown ``name`` that suggests a close match and lists the valid."""
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    names = ", ".join(sorted(valid))
    return KeyError(f"unknown {kind} {name!r}.{hint} valid {kind} names: {names}")


@dataclass(frozen=True)
class Entry:
    """A registered name.

    Parameters
    ----------
    name:
        The registered name.
    entry_point:
        The object, or a lazy ``"module:attr"`` string.
    description:
        One line for listings.
    options:
        Options dataclass (or ``"module:attr"``), or a function ``options_for(plant) -> class``
        for entries whose options depend on the plant; ``None`` takes no options.
    requires:
        What a controller needs from a plant (controllers only): a :class:`Requires`, or a
        ``"module:attr"`` function returning one (for needs that depend on other registries).
    provides:
        What a plant provides (plants only).
    smoke_options:
        Options that make a costly plant cheap for conformance tests and ``--smoke`` runs (a
        coarse grid, a short control period); empty for plants cheap at their defaults.
    """

    name: str
    entry_point: Any
    description: str = ""
    options: Any = None
    requires: Any = None
    provides: Provides | None = None
    smoke_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def resolved_requires(self) -> Requires:
        """:attr:`requires` as a :class:`Requires` (a lazy ``"module:attr"`` function is called)."""
        req = load_entry_point(self.requires)
        if req is None:
            return Requires()
        if not isinstance(req, Requires) and callable(req):
            req = req()
        if not isinstance(req, Requires):
            raise TypeError(f"{self.name!r}: requires must give a Requires, got {req!r}")
        return req


class Registry(Generic[T]):
    """Name -> :class:`Entry`; the one registry type of ctrlbench.

    Parameters
    ----------
    kind:
        What it holds, for messages (``"controller"``, ``"loss"``, ``"PID design"``).
    plugin_group:
        Entry-point group whose ``register`` hooks run before the first lookup; ``None`` for a
        registry filled by its own module.
    """

    def __init__(self, kind: str, plugin_group: str | None = None) -> None:
        self.kind = kind
        self.plugin_group = plugin_group
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, entry_point: Any = None, *, description: str = "",
                 options: Any = None, requires: Any = None,
                 provides: Provides | None = None,
                 smoke_options: Mapping[str, Any] | None = None) -> Any:
        """Add ``name``; a duplicate raises ``ValueError``.

        Without ``entry_point`` this returns a decorator that registers the decorated object
        (``@LOSSES.register("grpo", options=GRPOOptions)`` on the function itself).

        Parameters
        ----------
        name:
            Unique name.
        entry_point:
            The object or a lazy ``"module:attr"`` string.
        description:
            One line for listings; default the object's first docstring line when it is loaded.
        options:
            Options dataclass, ``"module:attr"`` string, or ``options_for(plant)`` function.
        requires:
            Controller needs (:class:`~ctrlbench.capabilities.Requires`).
        provides:
            Plant facts (:class:`~ctrlbench.capabilities.Provides`).
        smoke_options:
            Options for cheap conformance tests and smoke runs (see :class:`Entry`).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(obj: Any) -> Any:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            desc = description
            if not desc and not isinstance(obj, str):
                desc = (inspect.getdoc(obj) or "").split("\n", 1)[0]
            self._entries[name] = Entry(name, obj, desc, options, requires, provides,
                                        dict(smoke_options or {}))
            return obj

        if entry_point is None:
            return add
        add(entry_point)
        return None

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests, interactive redefinition); unknown names raise ``KeyError``."""
        self.entry(name)
        del self._entries[name]

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
        if not isinstance(name, str) or name not in self._entries:
            raise unknown_name(self.kind, name, list(self._entries))
        return self._entries[name]

    def load(self, name: str) -> T:
        """The object behind ``name``, importing a lazy entry on first use."""
        entry = self.entry(name)
        if isinstance(entry.entry_point, str):
            obj = load_entry_point(entry.entry_point)
            self._entries[name] = dataclasses.replace(entry, entry_point=obj)
            return obj  # type: ignore[no-any-return]
        return entry.entry_point  # type: ignore[no-any-return]

    get = load

    def options(self, name: str, *context: Any) -> type[Options] | None:
        """The options class of ``name`` (``context`` goes to a plant-dependent resolver)."""
        entry = self.entry(name)
        opts = load_entry_point(entry.options)
        if opts is None or (isinstance(opts, type) and issubclass(opts, Options)):
            return opts
        if callable(opts) and not isinstance(opts, type):
            return opts(*context)  # type: ignore[no-any-return]
        raise TypeError(f"{self.kind} {name!r}: options must be an Options class, got {opts!r}")

    def build_options(self, name: str, values: Mapping[str, Any] | Options | None = None,
                      *context: Any) -> Options | None:
        """Validated options for ``name`` from ``values`` (an instance passes through)."""
        cls = self.options(name, *context)
        what = f"{self.kind} {name!r}"
        if isinstance(values, Options):
            if cls is not None and not isinstance(values, cls):
                raise OptionError(f"{what} takes {cls.__name__}, got {type(values).__name__}")
            return values
        if cls is None:
            if values:
                raise OptionError(f"{what} takes no options, got {sorted(values)}")
            return None
        return cls.build(values, what=what)

    def make(self, name: str, *args: Any, options: Mapping[str, Any] | Options | None = None
             ) -> Any:
        """Call the entry as ``obj(*args, opts)`` (``obj(*args)`` when it takes no options)."""
        opts = self.build_options(name, options, *args)
        obj: Any = self.load(name)
        return obj(*args) if opts is None else obj(*args, opts)

    def __contains__(self, name: object) -> bool:
        self._plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


PLANTS: Registry[Any] = Registry("plant", "ctrlbench.plugins")
"""Plants by full id (``ctrlbench/<Name>-v<N>``): class entry point, options, provides."""

CONTROLLERS: Registry[Callable[..., Any]] = Registry("controller", "ctrlbench.plugins")
"""Controller factories ``factory(plant, options) -> Controller``."""

ALGORITHMS: Registry[Callable[..., Any]] = Registry("algorithm", "ctrlbench.plugins")
"""Training algorithms for ``ctrlbench train``: ``trainer(run: TrainRun) -> dict`` with the
algorithm's options dataclass (see :mod:`ctrlbench.training`)."""

PID_DESIGNS: Registry[Any] = Registry("PID design", "ctrlbench.plugins")
"""``model name -> design(plant, model, options)`` with the design's options dataclass (the
``"pid"`` controller of :mod:`controllers.pid_design` looks them up). It lives here, not in
``controllers``, so that a registration hook never imports a controller module: importing
``controllers.pid_design`` first would otherwise re-enter it half-initialised through
``import ctrlbench`` -> :func:`load_plugins`."""


def load_plugins(group: str = "ctrlbench.plugins", *, rescan: bool = False) -> None:
    """Run every registration hook in entry-point ``group`` once (``import ctrlbench`` does).

    The installed entry points are read once per process (a scan costs ~10 ms); pass
    ``rescan=True`` after installing a plugin package into a running interpreter.
    """
    if group in _GROUPS_SCANNED and not rescan:
        return
    _GROUPS_SCANNED.add(group)
    for ep in entry_points(group=group):
        key = f"{group}:{ep.name}"
        if key in _PLUGINS_LOADED:
            continue
        _PLUGINS_LOADED.add(key)
        ep.load()()


def _full_id(plant_id: str) -> str:
    if not isinstance(plant_id, str):
        raise TypeError(f"plant id must be a string, got {plant_id!r}")
    return plant_id if plant_id.startswith(f"{NAMESPACE}/") else f"{NAMESPACE}/{plant_id}"


def register_plant(name: str, entry_point: str, description: str = "", *,
                   options: Any = None, provides: Provides | None = None,
                   max_episode_steps: int | None = None,
                   vector_entry_point: str | None = None,
                   smoke_options: Mapping[str, Any] | None = None) -> str:
    """Register ``ctrlbench/<name>`` in gymnasium's registry and :data:`PLANTS`.

    Parameters
    ----------
    name:
        ``<Name>-v<N>``.
    entry_point:
        ``"module:Class"`` of the :class:`~ctrlbench.plant.Plant` (imported on first make).
    description:
        One line for ``ctrlbench list``.
    options:
        The plant's :class:`~ctrlbench.options.Options` class (or ``"module:attr"`` in a light
        module); the plant takes its fields as keyword arguments.
    provides:
        What the plant provides to controllers; checked against the built plant by conformance.
    max_episode_steps:
        Episode length added by gymnasium's ``TimeLimit``.
    vector_entry_point:
        ``"module:Class"`` of a batched ``gymnasium.vector.VectorEnv`` of the same plant, for
        ``gymnasium.make_vec(id, num_envs, vectorization_mode="vector_entry_point")``; it gets
        ``num_envs``, ``max_episode_steps`` and the plant's options as keyword arguments.
    smoke_options:
        Options that make a costly plant cheap (a coarse grid, a short control period) for the
        conformance tests and smoke runs; :func:`smoke_options` returns them.

    Returns
    -------
    str
        The full id.
    """
    env_id = _full_id(name)
    if env_id in gym.registry or env_id in PLANTS._entries:
        raise ValueError(f"plant {env_id!r} is already registered")
    gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps,
                 disable_env_checker=True, vector_entry_point=vector_entry_point)
    PLANTS.register(env_id, entry_point, description=description, options=options,
                    provides=provides or Provides(), smoke_options=smoke_options)
    return env_id


def smoke_options(plant_id: str) -> dict[str, Any]:
    """The options a plant registered for cheap conformance tests and smoke runs (``{}`` for
    plants cheap at their defaults); ``make_plant(pid, **smoke_options(pid))``."""
    return dict(PLANTS.entry(_full_id(plant_id)).smoke_options)


def unregister_plant(plant_id: str) -> None:
    """Remove a plant from both registries (tests, interactive redefinition)."""
    full = _full_id(plant_id)
    PLANTS.unregister(full)
    gym.registry.pop(full, None)


def plant_ids() -> list[str]:
    """Ids of all registered ctrlbench plants."""
    return PLANTS.names()


def plant_info(plant_id: str) -> tuple[str, str]:
    """``(full_id, description)``; accepts ids with or without the ``ctrlbench/`` prefix."""
    full = _full_id(plant_id)
    if full not in PLANTS:
        raise unknown_name("plant", plant_id, plant_ids())
    return full, PLANTS.entry(full).description


def plant_options(plant_id: str) -> type[Options] | None:
    """The options class of a registered plant (``None``: it takes no options)."""
    return PLANTS.options(plant_info(plant_id)[0])


def make_plant(plant_id: str, **options: Any) -> Any:
    """Build a registered plant (with its ``TimeLimit``) from validated ``options``.

    Unknown ids raise ``KeyError``; unknown, mistyped or out-of-range options raise
    :class:`~ctrlbench.options.OptionError` (a ``TypeError`` and ``ValueError``) naming the field,
    the value and the valid choices. The result is a :class:`~ctrlbench.wrappers.PlantView`:
    ``dt``, the signals and ``model()`` read through the wrappers.
    """
    from ctrlbench.wrappers import PlantView

    full, _ = plant_info(plant_id)
    opts = PLANTS.build_options(full, options)
    kwargs = {} if opts is None else opts.to_dict()
    return PlantView(gym.make(full, **kwargs))


def split_controller(name: str) -> tuple[str, dict[str, Any]]:
    """``(registered name, options)`` of a controller spelled ``name`` or ``family:PATH``.

    ``"sb3:runs/sac"`` is the ``"sb3"`` controller with ``path="runs/sac"`` (any registered
    controller with a ``path`` option reads its file this way, e.g. ``lstmc:model.pt``).

    Raises
    ------
    KeyError
        Neither a registered name nor ``family:PATH`` of a registered family (lists the valid).
    """
    if isinstance(name, str) and ":" in name and name not in CONTROLLERS:
        family, _, path = name.partition(":")
        if family in CONTROLLERS and path:
            return family, {"path": path}
    CONTROLLERS.entry(name)
    return name, {}


def controller_options(name: str, plant: Any) -> type[Options] | None:
    """The options class controller ``name`` (or ``family:PATH``) takes on ``plant``."""
    return CONTROLLERS.options(split_controller(name)[0], plant)


def check_applicable(name: str, plant: Any) -> None:
    """Raise :class:`~ctrlbench.capabilities.NotApplicableError` when ``plant`` lacks a need of
    controller ``name`` (or ``family:PATH``)."""
    family = split_controller(name)[0]
    lacks = missing(CONTROLLERS.entry(family).resolved_requires(), provides_of(plant))
    if lacks:
        spec = getattr(plant.unwrapped, "spec", None)
        label = spec.id if spec is not None else type(plant.unwrapped).__name__
        raise NotApplicableError(
            f"controller {name!r} is not applicable to {label}: the plant lacks "
            + "; ".join(lacks)
        )


def make_controller(name: str, plant: Any, **options: Any) -> Any:
    """Build controller ``name`` (or ``family:PATH``, see :func:`split_controller`) for ``plant``.

    A plant may recommend options per controller in its ``controller_defaults`` mapping
    (``{"lqr": {"reference_tau": 0.3}}``); explicit ``options`` override them.

    Raises
    ------
    KeyError
        Unknown controller name (lists the valid ones).
    NotApplicableError
        The plant lacks something the controller needs (names it).
    OptionError
        Unknown, mistyped or out-of-range option (names the field and the valid choices).
    """
    name, from_name = split_controller(name)  # an unknown name first: it lists the valid ones
    options = {**from_name, **options}
    if not isinstance(plant, gym.Env):
        raise TypeError(f"make_controller needs a plant (a gymnasium env, e.g. from make_plant), "
                        f"got {plant!r}")
    check_applicable(name, plant)
    defaults: Mapping[str, Any] = getattr(plant.unwrapped, "controller_defaults", {}).get(name, {})
    ctrl = CONTROLLERS.make(name, plant, options={**defaults, **options})
    space = plant.observation_space
    if isinstance(ctrl, FeedbackController) and isinstance(space, gym.spaces.Box):
        ctrl.observation_shape = space.shape
    return ctrl
