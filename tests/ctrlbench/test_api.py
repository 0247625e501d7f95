"""The public API is documented and its docstrings name the real parameters (STYLE 12)."""

import importlib
import inspect
import pkgutil

import pytest

import ctrlbench
from ctrlbench import check, registry

PACKAGES = ("ctrlbench", "plants", "controllers", "llm_rl")


def _modules():
    """Every module of every package (STYLE 12: the whole public API, not just the core)."""
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg_name}."):
            yield importlib.import_module(info.name)


MODULES = tuple(_modules())


def public_objects():
    for mod in MODULES:
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj


@pytest.mark.parametrize(("qualname", "obj"), list(public_objects()))
def test_public_object_has_docstring(qualname, obj):
    assert inspect.getdoc(obj), f"{qualname} has no docstring"
    if inspect.isclass(obj):
        for meth_name, meth in inspect.getmembers(obj, inspect.isfunction):
            if not meth_name.startswith("_") and meth.__qualname__.startswith(obj.__name__):
                assert inspect.getdoc(meth), f"{qualname}.{meth_name} has no docstring"


@pytest.mark.parametrize(("qualname", "obj"), list(public_objects()))
def test_numpydoc_parameters_exist_in_signature(qualname, obj):
    """A ``Parameters`` section may only document names the signature has."""
    doc = inspect.getdoc(obj) or ""
    if "Parameters\n----------" not in doc:
        return
    section = doc.split("Parameters\n----------", 1)[1]
    for stop in ("\nReturns\n", "\nRaises\n", "\nAttributes\n", "\nExamples\n"):
        section = section.split(stop, 1)[0]
    documented = set()
    for line in section.splitlines():
        if line and not line.startswith(" ") and line.rstrip().endswith(":"):
            documented.update(n.strip() for n in line.rstrip(":").split(","))
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = set(inspect.signature(target).parameters) - {"self"}
    assert documented <= params, f"{qualname} documents {documented - params} not in {params}"


# Public callables that take **kwargs, and how each rejects an unknown one (STYLE 9).
KWARGS_APIS = {
    "ctrlbench.make_plant": lambda: ctrlbench.make_plant(
        "ctrlbench/MassSpringDamper-v0", not_an_option=1),
    "ctrlbench.registry.make_plant": lambda: registry.make_plant(
        "ctrlbench/MassSpringDamper-v0", not_an_option=1),
    "ctrlbench.make_controller": lambda: ctrlbench.make_controller(
        "pid", ctrlbench.make_plant("ctrlbench/MassSpringDamper-v0"), not_an_option=1),
    "ctrlbench.registry.make_controller": lambda: registry.make_controller(
        "lqr", ctrlbench.make_plant("ctrlbench/MassSpringDamper-v0"), not_an_option=1),
    "ctrlbench.check.check_plant": lambda: check.check_plant(
        "ctrlbench/MassSpringDamper-v0", steps=2, not_an_option=1),
}


def test_every_public_kwargs_api_is_known():
    found = {q for q, obj in public_objects() if q.startswith("ctrlbench")
             if inspect.isfunction(obj) and any(
                 p.kind is inspect.Parameter.VAR_KEYWORD
                 for p in inspect.signature(obj).parameters.values())}
    assert found == set(KWARGS_APIS), "a new **kwargs API needs a rejection test here"


@pytest.mark.parametrize("qualname", [q for q, f in KWARGS_APIS.items() if f is not None])
def test_kwargs_apis_reject_unknown_options(qualname):
    result = None
    with pytest.raises(TypeError, match="not_an_option"):
        result = KWARGS_APIS[qualname]()
    assert result is None


@pytest.mark.parametrize("plant_id", ctrlbench.plant_ids())
def test_plant_classes_taking_options_reject_unknown_ones(plant_id):
    """Plant classes take ``**options`` validated by their options dataclass."""
    import gymnasium as gym

    cls = registry.load_entry_point(gym.spec(plant_id).entry_point)
    with pytest.raises(TypeError, match="not_an_option"):
        cls(not_an_option=1)
