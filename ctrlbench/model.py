"""Plant models written once over an array namespace: numpy to evaluate, casadi to optimise.

A :class:`PlantModel` holds continuous dynamics ``dx/dt = f(x, u, p)`` and an output map
``y = h(x, u, p)``. Both are plain functions ``fn(x, u, p, ops) -> sequence`` where ``ops`` is an
:class:`Ops` namespace (``sin``, ``exp``, ..., ``if_else(cond, a, b)``). With :data:`NUMPY_OPS`
they return floats; with the casadi namespace they build a symbolic graph, so an MPC uses the
plant's own equations. A deliberately mismatched model is one :meth:`PlantModel.with_params`
call away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ctrlbench.signals import SignalSpec, names_of

__all__ = ["NUMPY_OPS", "Ops", "PlantModel", "casadi_ops"]

Ops = SimpleNamespace
"""Namespace of elementwise math used by model functions (``sin``, ``cos``, ``exp``, ...)."""

ModelFn = Callable[[Any, Any, Mapping[str, float], Ops], Sequence[Any]]

NUMPY_OPS = Ops(
    sin=np.sin,
    cos=np.cos,
    tan=np.tan,
    exp=np.exp,
    log=np.log,
    sqrt=np.sqrt,
    tanh=np.tanh,
    fabs=np.abs,
    fmax=np.maximum,
    fmin=np.minimum,
    sign=np.sign,
    power=np.power,
    if_else=np.where,
)


def casadi_ops() -> Ops:
    """The casadi counterpart of :data:`NUMPY_OPS` (imports casadi)."""
    import casadi as ca

    return Ops(
        sin=ca.sin,
        cos=ca.cos,
        tan=ca.tan,
        exp=ca.exp,
        log=ca.log,
        sqrt=ca.sqrt,
        tanh=ca.tanh,
        fabs=ca.fabs,
        fmax=ca.fmax,
        fmin=ca.fmin,
        sign=ca.sign,
        power=ca.power,
        if_else=ca.if_else,
    )


@dataclass(frozen=True)
class PlantModel:
    """Continuous-time state-space model ``dx/dt = f(x, u, p)``, ``y = h(x, u, p)``.

    Parameters
    ----------
    name:
        Model identifier (e.g. ``"dc_motor"``); controllers may dispatch gain design on it.
    states, inputs, outputs:
        Signal specifications, in vector order.
    params:
        Parameter values by name (SI units documented by the plant family).
    dynamics:
        ``f(x, u, p, ops)`` returning the state derivative as a sequence of length ``nx``.
    output:
        ``h(x, u, p, ops)`` returning the outputs; ``None`` means ``y = x``.
    meta:
        Free-form facts (source, notes).
    x_op, u_op:
        Operating point that LQR and MPC linearize and track around (``None``: not declared;
        :meth:`equilibrium` can solve for one).
    """

    name: str
    states: tuple[SignalSpec, ...]
    inputs: tuple[SignalSpec, ...]
    outputs: tuple[SignalSpec, ...]
    params: Mapping[str, float]
    dynamics: ModelFn
    output: ModelFn | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    x_op: tuple[float, ...] | None = None
    u_op: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if (self.x_op is None) != (self.u_op is None):
            raise ValueError(f"{self.name}: give both x_op and u_op or neither")
        if self.x_op is not None and self.u_op is not None:
            x, u = np.asarray(self.x_op, float), np.asarray(self.u_op, float)
            if x.shape != (self.nx,) or u.shape != (self.nu,) or not (
                    np.all(np.isfinite(x)) and np.all(np.isfinite(u))):
                raise ValueError(
                    f"{self.name}: operating point needs {self.nx} finite states and {self.nu} "
                    f"finite inputs, got x_op={self.x_op}, u_op={self.u_op}"
                )

    def operating_point(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(x_op, u_op)`` as arrays.

        Raises
        ------
        ValueError
            When the model declares none (build one with :meth:`equilibrium`).
        """
        if self.x_op is None or self.u_op is None:
            raise ValueError(
                f"model {self.name!r} declares no operating point; pass x_op/u_op or use "
                "model.equilibrium(u)"
            )
        return np.asarray(self.x_op, dtype=float), np.asarray(self.u_op, dtype=float)

    def equilibrium(self, u: ArrayLike, x_guess: ArrayLike | None = None,
                    tol: float = 1e-9) -> PlantModel:
        """A copy whose operating point is the steady state ``f(x, u) = 0`` for input ``u``.

        Solved by :func:`scipy.optimize.root` from ``x_guess`` (default zeros).

        Raises
        ------
        ValueError
            When no steady state is found (the message gives the residual).
        """
        from scipy.optimize import root

        ua = np.asarray(u, dtype=float).reshape(-1)
        x0 = np.zeros(self.nx) if x_guess is None else np.asarray(x_guess, float).reshape(-1)
        self._check(x0, ua)
        sol = root(lambda x: self.f(x, ua), x0, tol=tol)
        residual = float(np.max(np.abs(self.f(sol.x, ua))))
        scale = max(1.0, float(np.max(np.abs(self.f(x0, ua)))))
        if not (sol.success and residual <= 1e-6 * scale):
            raise ValueError(
                f"model {self.name!r}: no steady state for u={ua.tolist()} (residual "
                f"{residual:.3g}: {sol.message})"
            )
        return dataclasses.replace(self, x_op=tuple(sol.x.tolist()), u_op=tuple(ua.tolist()))

    @property
    def nx(self) -> int:
        """Number of states."""
        return len(self.states)

    @property
    def nu(self) -> int:
        """Number of inputs."""
        return len(self.inputs)

    @property
    def ny(self) -> int:
        """Number of outputs."""
        return len(self.outputs)

    def with_params(self, **overrides: float) -> PlantModel:
        """A copy with some parameters replaced; unknown names raise ``KeyError``."""
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise KeyError(f"unknown parameter(s) {unknown}; valid: {sorted(self.params)}")
        return dataclasses.replace(self, params={**self.params, **overrides})

    # -- numpy evaluation ---------------------------------------------------------------------
    def f(self, x: ArrayLike, u: ArrayLike) -> NDArray[np.float64]:
        """State derivative at ``(x, u)`` (numpy)."""
        xa, ua = self._check(x, u)
        return np.asarray(self.dynamics(xa, ua, self.params, NUMPY_OPS), dtype=float)

    def h(self, x: ArrayLike, u: ArrayLike) -> NDArray[np.float64]:
        """Output at ``(x, u)`` (numpy)."""
        xa, ua = self._check(x, u)
        if self.output is None:
            return xa.copy()
        return np.asarray(self.output(xa, ua, self.params, NUMPY_OPS), dtype=float)

    def step(self, x: ArrayLike, u: ArrayLike, dt: float, substeps: int = 1) -> NDArray[np.float64]:
        """Integrate ``dt`` with zero-order-hold input by classic RK4 in ``substeps`` pieces."""
        xk = np.asarray(x, dtype=float).copy()
        h = dt / substeps
        for _ in range(substeps):
            k1 = self.f(xk, u)
            k2 = self.f(xk + 0.5 * h * k1, u)
            k3 = self.f(xk + 0.5 * h * k2, u)
            k4 = self.f(xk + h * k3, u)
            xk = xk + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return xk

    def linearize(
        self, x0: ArrayLike, u0: ArrayLike, eps: float = 1e-6
    ) -> tuple[NDArray[np.float64], ...]:
        """Jacobians ``(A, B, C, D)`` at ``(x0, u0)`` by central differences."""
        x0a, u0a = self._check(x0, u0)

        def jac(fn: Callable[[NDArray[Any], NDArray[Any]], NDArray[Any]], wrt_x: bool) -> Any:
            base = x0a if wrt_x else u0a
            cols = []
            for i in range(base.size):
                d = np.zeros_like(base)
                d[i] = eps * max(1.0, abs(base[i]))
                if wrt_x:
                    cols.append((fn(x0a + d, u0a) - fn(x0a - d, u0a)) / (2 * d[i]))
                else:
                    cols.append((fn(x0a, u0a + d) - fn(x0a, u0a - d)) / (2 * d[i]))
            return np.stack(cols, axis=1)

        return jac(self.f, True), jac(self.f, False), jac(self.h, True), jac(self.h, False)

    # -- casadi graph -------------------------------------------------------------------------
    def casadi_functions(self) -> tuple[Any, Any]:
        """``(F, H)`` casadi ``Function`` objects ``F(x, u) -> dx``, ``H(x, u) -> y``."""
        import casadi as ca

        ops = casadi_ops()
        x = ca.SX.sym("x", self.nx)
        u = ca.SX.sym("u", self.nu)
        dx = ca.vertcat(*self.dynamics(x, u, self.params, ops))
        y = x if self.output is None else ca.vertcat(*self.output(x, u, self.params, ops))
        return (
            ca.Function("f", [x, u], [dx], ["x", "u"], ["dx"]),
            ca.Function("h", [x, u], [y], ["x", "u"], ["y"]),
        )

    def _check(self, x: ArrayLike, u: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        xa = np.asarray(x, dtype=float).reshape(-1)
        ua = np.asarray(u, dtype=float).reshape(-1)
        if xa.size != self.nx:
            raise ValueError(
                f"{self.name}: x has {xa.size} entries, expected {names_of(self.states)}"
            )
        if ua.size != self.nu:
            raise ValueError(
                f"{self.name}: u has {ua.size} entries, expected {names_of(self.inputs)}"
            )
        return xa, ua
