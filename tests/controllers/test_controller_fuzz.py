"""Controllers under fuzzed options: a clear ``OptionError`` naming the option, or a controller
whose closed loop gives a finite trajectory or a clear error (never NaN as a result)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctrlbench.capabilities import NotApplicableError
from ctrlbench.options import OptionError
from ctrlbench.plant import ActionError
from ctrlbench.registry import (
    CONTROLLERS,
    check_applicable,
    controller_options,
    make_controller,
    make_plant,
    plant_ids,
    smoke_options,
)
from ctrlbench.simulate import simulate

_plants: dict[str, Any] = {}


def _plant(pid: str) -> Any:
    if pid not in _plants:
        _plants[pid] = make_plant(pid, **smoke_options(pid))
    return _plants[pid]


def _pairs() -> list[tuple[str, str]]:
    out = []
    for pid in (p for p in plant_ids() if p.startswith("ctrlbench/")):
        for name in CONTROLLERS.names():
            try:
                check_applicable(name, _plant(pid))
            except NotApplicableError:
                continue
            if controller_options(name, _plant(pid)) is not None:
                out.append((pid, name))
    return out


_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=1e-3, max_value=1e3),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)


#: Cheap sizes for the costly controllers (a setting search's default budget takes minutes, an
#: NMPC's default horizon seconds per build): a fuzzed valid integer above one is capped at it,
#: an invalid value still reaches the options check.
_CHEAP: dict[str, dict[str, Any]] = {"bo": {"budget": 6, "sampler": "tpe"},
                                     "de": {"budget": 30}, "mpc": {"horizon": 5}}


def _capped(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    cheap = _CHEAP.get(name, {})
    out = {**cheap, **opts}
    for key, small in cheap.items():
        value = out[key]
        if isinstance(small, int) and isinstance(value, int) and not isinstance(value, bool) \
                and value > small:
            out[key] = small
    return out


@pytest.mark.parametrize(("pid", "name"), _pairs())
@given(data=st.data())
def test_fuzzed_controller_options(pid: str, name: str, data: st.DataObject) -> None:
    plant = _plant(pid)
    cls = controller_options(name, plant)
    fields = [f.name for f in dataclasses.fields(cls)]
    keys = data.draw(st.lists(st.sampled_from([*fields, "bogus"]), max_size=3, unique=True))
    opts = _capped(name, {k: data.draw(_VALUE) for k in keys})
    try:
        ctrl = make_controller(name, plant, **opts)
    except OptionError as exc:
        assert any(k in str(exc) for k in keys), f"error does not name the option: {exc}"
        return
    except ValueError as exc:  # a design that cannot be met (e.g. bandwidth beyond Nyquist)
        assert str(exc)
        return
    try:
        traj = simulate(plant, ctrl, steps=20, seed=0)
    except (ActionError, ValueError) as exc:  # a diverging or saturating design: named
        assert "action" in str(exc) or "non-finite" in str(exc), exc
        return
    assert np.isfinite(traj.observations).all() and np.isfinite(traj.actions).all()
