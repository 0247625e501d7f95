"""NMPC solve time per step: ctrlbench's ``"mpc"`` against the same OCP through do-mpc.

For each plant (``PMSMCurrent-v0``; ``Crystallization-v0`` when it is registered), one closed
loop driven by ctrlbench's NMPC. At every step the same observation also goes to a do-mpc MPC
built from the *same* OCP: the discrete-time model is the NMPC's own RK4 map ``Phi``, the stage
cost tracks the same signals at the next state with the same Bryson-scaled weights, the same
input bounds, moves penalised in the same scaled units (do-mpc's ``rterm`` acts on scaled
inputs), soft bounds at the next state with the same L1 penalty, and a rate limit through the
previous input carried as a state when the plant declares one. Both start from the same
previous input (the one the plant reports as applied when it observes it, e.g. the
crystallizer's ``T_j_applied``; else the NMPC's last command); the two calls alternate which goes
first. Timed: ctrlbench's ``compute()`` and do-mpc's ``make_step()`` (what a user calls), after
``warmup`` steps. Both solutions are scored
with the NMPC's own objective ``J(w, p)``, so "equal optimal cost" is checked on one function.

do-mpc is not a project dependency: install it for the benchmark only, e.g.
``pip install --target /tmp/dompc --no-deps do-mpc`` and ``PYTHONPATH=/tmp/dompc``; without it
the do-mpc columns are skipped with a message. Reports medians and ratios, then the provenance
(commit, command, CPU, threads, versions); never asserts (goal: ctrlbench <= 0.5x do-mpc's time
at equal optimal cost).

Run: ``python studies/bench/mpc_solve.py`` (~1-2 min), ``--smoke`` (~10 s).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from controllers.mpc import NMPC
from controllers.mpc_ocp import ShootingOCP
from ctrlbench.machine import describe
from ctrlbench.provenance import format_provenance, provenance
from ctrlbench.registry import make_controller, make_plant, plant_ids

#: do-mpc's IPOPT Hessian per plant (all exact: the crystallizer's kinetics are written with
#: ``if_else`` so that their second derivatives stay finite below saturation).
DO_MPC_HESSIAN: dict[str, str] = {}


@dataclass(frozen=True)
class Args:
    """Benchmark settings."""

    steps: dict[str, int] = field(default_factory=lambda: {
        "ctrlbench/PMSMCurrent-v0": 400, "ctrlbench/Crystallization-v0": 144})
    """closed-loop steps per plant (timed after the warm-up)"""
    warmup: int = 5
    """untimed steps first (and not scored)"""
    seed: int = 0
    """plant reset seed"""
    smoke: bool = False
    """tiny version (PMSM 30 steps, crystallizer 12)"""


def _import_do_mpc() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import do_mpc
    except ImportError as exc:
        print(f"do-mpc not importable ({exc}): its columns are skipped. Install it for the "
              "benchmark only (pip install --target DIR --no-deps do-mpc; PYTHONPATH=DIR).")
        return None
    return do_mpc


# -- the same OCP through do-mpc ------------------------------------------------------------------
def build_do_mpc(do_mpc: Any, ocp: ShootingOCP, ctrl: NMPC, hessian: str = "exact"
                 ) -> tuple[Any, dict[str, Any]]:
    """A do-mpc MPC of the NMPC's OCP and the mutable time-varying reference it reads.

    ``hessian="limited-memory"`` gives do-mpc IPOPT's L-BFGS Hessian, for models whose exact
    second derivatives are not finite where the NMPC retries with one (do-mpc has no retry).
    """
    import casadi as ca

    p0 = ctrl.nlp_parameters(np.zeros(ctrl.observation_shape or (1,)))
    nx, nu, n_ref = ocp.nx, ocp.nu, ocp.n_ref
    q = p0[nx + n_ref + nu : nx + 2 * n_ref + nu]
    m = p0[nx + 2 * n_ref + nu : nx + 2 * n_ref + 2 * nu]
    q_terminal, rho = p0[nx + 2 * n_ref + 2 * nu : nx + 2 * n_ref + 2 * nu + 2]
    if q_terminal != 1.0 or ctrl.terminal is not None:
        raise ValueError("the do-mpc twin covers q_terminal = 1 and terminal='none' only")
    model = do_mpc.model.Model("discrete", "SX")
    x = model.set_variable("_x", "x", (nx, 1))
    rated = ocp.max_move is not None
    u_last = model.set_variable("_x", "u_last", (nu, 1)) if rated else None
    u = model.set_variable("_u", "u", (nu, 1))
    r = model.set_variable("_tvp", "r", (n_ref, 1))
    x_next = ocp.phi(x, u)
    y_next = ocp.h(x_next, u)
    model.set_rhs("x", x_next)
    if u_last is not None:
        model.set_rhs("u_last", u)
    z = ca.vertcat(*[x_next[t.index] if t.kind == "state" else y_next[t.index]
                     for t in ocp.tracked])
    err = (z - r) / ca.DM([t.scale for t in ocp.tracked])
    stage = ca.dot(ca.DM(q), err * err)
    if u_last is not None:
        du = (u - u_last) / ca.DM(ocp.u_scale)
        stage += ca.dot(ca.DM(m), du * du)
    model.set_expression("stage", stage)
    model.setup()
    mpc = do_mpc.controller.MPC(model)
    mpc.settings.n_horizon = ocp.horizon
    mpc.settings.t_step = ocp.dt
    mpc.settings.store_full_solution = False
    mpc.settings.nlpsol_opts = {"ipopt.max_iter": 100, "ipopt.tol": 1e-8}
    if hessian != "exact":
        mpc.settings.nlpsol_opts["ipopt.hessian_approximation"] = hessian
    mpc.settings.supress_ipopt_output()
    mpc.set_objective(lterm=model.aux["stage"], mterm=ca.DM(0))
    if u_last is None:
        mpc.set_rterm(u=np.asarray(m))  # acts on scaled inputs: (du / u_scale)^2
    mpc.scaling["_x", "x"] = ocp.x_scale
    mpc.scaling["_u", "u"] = ocp.u_scale
    mpc.bounds["lower", "_u", "u"] = ocp.u_low
    mpc.bounds["upper", "_u", "u"] = ocp.u_high
    # after setup the model's symbols are new ones: rebuild the constraint expressions on them
    x, u = model.x["x"], model.u["u"]
    x_next = ocp.phi(x, u)
    y_next = ocp.h(x_next, u)
    for i, b in enumerate(ocp.bounds):
        zb = (x_next[b.index] if b.kind == "state" else y_next[b.index]) / b.scale
        if np.isfinite(b.high):
            mpc.set_nl_cons(f"hi{i}", zb, ub=b.high / b.scale, soft_constraint=True,
                            penalty_term_cons=float(rho))
        if np.isfinite(b.low):
            mpc.set_nl_cons(f"lo{i}", -zb, ub=-b.low / b.scale, soft_constraint=True,
                            penalty_term_cons=float(rho))
    if u_last is not None and ocp.max_move is not None:
        du = (u - model.x["u_last"]) / ca.DM(ocp.u_scale)
        mm = ocp.max_move / ocp.u_scale
        mpc.set_nl_cons("rate_up", du, ub=mm)
        mpc.set_nl_cons("rate_down", -du, ub=mm)
    ref: dict[str, Any] = {"r": np.zeros(n_ref)}
    tvp = mpc.get_tvp_template()

    def tvp_fun(_t: float) -> Any:
        for k in range(ocp.horizon + 1):
            tvp["_tvp", k, "r"] = ref["r"]
        return tvp

    mpc.set_tvp_fun(tvp_fun)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mpc.setup()
    return mpc, ref


def _score(ocp: ShootingOCP, p: np.ndarray, xs: np.ndarray, us: np.ndarray) -> float:
    """``J(w, p)`` of a physical trajectory ``(X, U)``, its slacks set to the bound violations
    (so IPOPT's bound relaxation of ``eps >= 0`` cannot make a cost look lower)."""
    eps = np.zeros((ocp.horizon, ocp.n_soft))
    for k in range(ocp.horizon):
        y = np.asarray(ocp.h(xs[k + 1], us[k])).ravel()
        for i, b in enumerate(ocp.bounds):
            zb = xs[k + 1, b.index] if b.kind == "state" else y[b.index]
            eps[k, i] = max(0.0, (b.low - zb) / b.scale, (zb - b.high) / b.scale)
    w = np.concatenate([(xs / ocp.x_scale).ravel(), (us / ocp.u_scale).ravel(), eps.ravel()])
    return float(ocp.cost_fn(w, p))


def _do_mpc_plan(ocp: ShootingOCP, mpc: Any) -> tuple[np.ndarray, np.ndarray]:
    """do-mpc's optimal ``(X, U)`` in physical units (the carried previous input dropped)."""
    sol = mpc.opt_x_num_unscaled
    xs = np.stack([np.asarray(sol["_x", k, 0, -1]).ravel()[: ocp.nx]
                   for k in range(ocp.horizon + 1)])
    us = np.stack([np.asarray(sol["_u", k, 0]).ravel() for k in range(ocp.horizon)])
    return xs, us


# -- one plant --------------------------------------------------------------------------------
def _timed_ours(ctrl: NMPC, obs: np.ndarray) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    a = ctrl.compute(obs)
    return a, time.perf_counter() - t0


def _timed_theirs(twin: tuple[Any, dict[str, Any]], ocp: ShootingOCP, p: np.ndarray,
                  u_prev: np.ndarray) -> tuple[np.ndarray, float]:
    """do-mpc's step from the NMPC's parameters ``p`` (state, references) and previous input."""
    mpc, ref = twin
    x = p[: ocp.nx]
    ref["r"] = p[ocp.nx : ocp.nx + ocp.n_ref]
    x0 = x if ocp.max_move is None else np.concatenate([x, u_prev])
    mpc.u0 = u_prev
    if not ref.get("started"):
        mpc.x0 = x0
        mpc.set_initial_guess()
        ref["started"] = True
    t0 = time.perf_counter()
    a = np.asarray(mpc.make_step(x0)).ravel()
    return a, time.perf_counter() - t0


def bench_plant(plant_id: str, steps: int, args: Args, do_mpc: Any) -> dict[str, Any]:
    """Closed loop of ``steps`` with ctrlbench's NMPC, do-mpc solving alongside.

    A step without a known previous input (the NMPC's first move is free, do-mpc's is not) is
    run by the NMPC alone; do-mpc joins from the next.
    """
    plant = make_plant(plant_id)
    ctrl = make_controller("mpc", plant)
    ocp = ctrl.ocp
    hessian = DO_MPC_HESSIAN.get(plant_id, "exact")
    twin = build_do_mpc(do_mpc, ocp, ctrl, hessian) if do_mpc is not None else None
    obs, _ = plant.reset(seed=args.seed)
    ctrl.reset()
    rows: list[dict[str, float]] = []
    for k in range(steps):
        p = ctrl.nlp_parameters(obs)
        u_prev = ctrl.previous_input(obs)
        row: dict[str, float] = {}
        if twin is None or u_prev is None:
            a, row["t_ours"] = _timed_ours(ctrl, obs)
        elif k % 2 == 0:  # alternate which goes first
            a, row["t_ours"] = _timed_ours(ctrl, obs)
            _, row["t_theirs"] = _timed_theirs(twin, ocp, p, u_prev)
        else:
            _, row["t_theirs"] = _timed_theirs(twin, ocp, p, u_prev)
            a, row["t_ours"] = _timed_ours(ctrl, obs)
        info = ctrl.last_info
        row.update(t_solver=info["solve_time"], it_ours=info["iterations"],
                   ok=float(info["success"]))
        if ctrl.prediction is not None:
            row["j_ours"] = _score(ocp, p, *ctrl.prediction)
        if "t_theirs" in row and twin is not None:
            stats = twin[0].solver_stats
            row.update(it_theirs=float(stats.get("iter_count", np.nan)),
                       ok_theirs=float(stats.get("success", False)),
                       j_theirs=_score(ocp, p, *_do_mpc_plan(ocp, twin[0])))
        if k >= args.warmup:
            rows.append(row)
        obs, _, terminated, truncated, _ = plant.step(a)
        if terminated or truncated:
            break
    plant.close()
    return _summarise(plant_id, ocp, rows)


def _summarise(plant_id: str, ocp: ShootingOCP, rows: list[dict[str, float]]
               ) -> dict[str, Any]:
    def med(key: str) -> float:
        vals = [r[key] for r in rows if key in r and np.isfinite(r[key])]
        return statistics.median(vals) if vals else float("nan")

    out = {"plant": plant_id, "steps": len(rows), "nw": ocp.n_w, "ng": ocp.n_g,
           "ours_ms": 1e3 * med("t_ours"), "solver_ms": 1e3 * med("t_solver"),
           "ours_it": med("it_ours"), "ours_fail": sum(r["ok"] == 0 for r in rows),
           "j_ours": med("j_ours")}
    if rows and all("t_theirs" in r for r in rows):
        rel = [(r["j_ours"] - r["j_theirs"]) / max(abs(r["j_theirs"]), 1e-12) for r in rows]
        out.update(theirs_ms=1e3 * med("t_theirs"), theirs_it=med("it_theirs"),
                   theirs_fail=sum(r["ok_theirs"] == 0 for r in rows), j_theirs=med("j_theirs"),
                   ratio=med("t_ours") / med("t_theirs"), rel_cost_median=statistics.median(rel),
                   rel_cost_max=max(rel, key=abs))
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and print one line per plant; returns the summaries."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny version (PMSM 30 steps, crystallizer 12)")
    ap.add_argument("--seed", type=int, default=0, help="plant reset seed")
    ns = ap.parse_args(argv)
    args = Args(seed=ns.seed, smoke=ns.smoke)
    steps = dict(args.steps)
    if args.smoke:
        steps = {"ctrlbench/PMSMCurrent-v0": 30, "ctrlbench/Crystallization-v0": 12}
    print(describe(["numpy", "casadi", "do-mpc"], threads="1 thread, no GPU"))
    do_mpc = _import_do_mpc()
    out = []
    for plant_id, n in steps.items():
        if plant_id not in plant_ids():
            print(f"{plant_id}: not registered in this checkout, skipped")
            continue
        res = bench_plant(plant_id, n, args, do_mpc)
        out.append(res)
        line = (f"{plant_id}: {res['steps']} steps, NLP {res['nw']} vars / {res['ng']} cons | "
                f"ctrlbench compute {res['ours_ms']:.2f} ms (IPOPT call {res['solver_ms']:.2f} ms,"
                f" {res['ours_it']:.0f} it, {res['ours_fail']} failed, J {res['j_ours']:.4g})")
        if "theirs_ms" in res:
            line += (f" | do-mpc make_step {res['theirs_ms']:.2f} ms ({res['theirs_it']:.0f} it,"
                     f" {res['theirs_fail']} failed, J {res['j_theirs']:.4g}) | ratio "
                     f"{res['ratio']:.2f} | (J_ctrlbench - J_do-mpc)/J_do-mpc median "
                     f"{res['rel_cost_median']:.1e}, extreme {res['rel_cost_max']:.1e}")
        print(line)
    print("\n" + format_provenance(provenance()), end="")
    return out


if __name__ == "__main__":
    main()
