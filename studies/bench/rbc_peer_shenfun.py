# mypy: ignore-errors
"""Step time of the authors' Rayleigh–Bénard solver (shenfun), for a side-by-side comparison.

Run by the python of a *separate* environment that has shenfun (install in ``studies/README.md``);
it imports nothing from this repository and no torch. It rebuilds the authors' setup (Vignon et
al. 2023, ``RayleighBenard(KMM)`` in their rb_marl.py, on shenfun's channel-flow ``KMM``): a
Chebyshev (wall-normal, 64 points on (-1, 1)) x Fourier (96 points on (0, 2 pi)) Galerkin
method, wall-normal velocity from the KMM fourth-order equation, the other component from the
divergence constraint (its mean from a 1-D Helmholtz problem), temperature with Dirichlet
walls T = 2 (bottom), 1 (top), convection dealiased with 3/2 padding along the walls, IMEX RK3,
dt 0.05, Ra 1e4, Pr 0.7, nu = sqrt(Pr/Ra), kappa = 1/sqrt(Pr Ra). Start: the authors'
T = 1.5 - x/2 + 0.125 sin(pi x) + 1e-3 noise (1 - x)(1 + x), at rest (x wall-normal).

Timed: the step loop only (no observation output, files or checkpoints that their training
loop also does), after ``--warmup`` steps, one MPI rank, OMP_NUM_THREADS=1. Prints one JSON
line: median ms per step over ``--repeats`` samples of ``--steps`` steps, each sample, and the
Nusselt number (volume average) at the end.

Run: ``OMP_NUM_THREADS=1 /path/to/shenfun-venv/bin/python studies/bench/rbc_peer_shenfun.py``.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import shenfun as sf
from mpi4py import MPI

warnings.filterwarnings("ignore")
COMM = MPI.COMM_SELF
N, DOMAIN = (64, 96), ((-1, 1), (0, 2 * np.pi))
RA, PR, DT, BCT, PAD = 1e4, 0.7, 0.05, (2, 1), (1, 1.5)


class RB:
    """The authors' KMM + temperature solver, without files, plots or checkpoints."""

    def __init__(self, seed: int = 0) -> None:
        nu, self.kappa = np.sqrt(PR / RA), 1.0 / np.sqrt(PR * RA)
        fs, tp = sf.FunctionSpace, sf.TensorProductSpace
        B0 = fs(N[0], "C", bc={"left": {"D": 0, "N": 0}, "right": {"D": 0, "N": 0}},
                domain=DOMAIN[0])
        D0, C0 = fs(N[0], "C", bc=(0, 0), domain=DOMAIN[0]), fs(N[0], "C", domain=DOMAIN[0])
        F1 = fs(N[1], "F", dtype="d", domain=DOMAIN[1])
        D00 = fs(N[0], "C", bc=(0, 0), domain=DOMAIN[0])
        self.T0 = fs(N[0], "C", bc=BCT, domain=DOMAIN[0])
        TB, TD, TC, TT = (tp(COMM, (b, F1), modify_spaces_inplace=True)
                          for b in (B0, D0, C0, self.T0))
        BD = sf.VectorSpace([TB, TD])
        self.TDp = TC.get_dealiased(PAD)
        self.u_, self.H_ = sf.Function(BD), sf.Function(sf.VectorSpace(TC))
        self.uT_, self.T_ = sf.Function(BD), sf.Function(TT)
        self.v00, self.h1 = sf.Function(D00), sf.Function(D00.get_orthogonal())
        self.mask = TB.get_mask_nyquist()
        self.X, self.K = TD.local_mesh(bcast=True), TD.local_wavenumbers(scaled=True)
        u = self.u_
        self.dudx = sf.Project(sf.Dx(u[0], 0, 1), TD)
        self.dudy, self.dvdx, self.dvdy = (sf.Project(sf.Dx(u[i], j, 1), TC)
                                           for i, j in ((0, 1), (1, 0), (1, 1)))
        H, rk3 = self.H_, sf.IMEXRK3
        self.pu = rk3(sf.TestFunction(TB), sf.div(sf.grad(u[0])), lambda f: nu * sf.div(sf.grad(f)),
                      [sf.Dx(sf.Dx(H[1], 0, 1), 1, 1) - sf.Dx(H[0], 1, 2), sf.Dx(self.T_, 1, 2)],
                      dt=DT, solver=sf.chebyshev.la.Biharmonic)
        self.pv0 = rk3(sf.TestFunction(D00), self.v00, lambda f: nu * sf.div(sf.grad(f)),
                       -sf.Expr(self.h1), dt=DT, solver=sf.chebyshev.la.Helmholtz)
        self.pT = rk3(sf.TestFunction(TT), self.T_, lambda f: self.kappa * sf.div(sf.grad(f)),
                      -sf.div(self.uT_), dt=DT, solver=sf.chebyshev.la.Helmholtz)
        self.c = self.pu.stages()[2]
        x = self.X[0]
        rng = np.random.default_rng(seed)
        Tb = sf.Array(TT)
        Tb[:] = 1.5 - x / 2 + 0.125 * np.sin(np.pi * x) + 1e-3 * rng.standard_normal(
            Tb.shape) * (1 - x) * (1 + x)
        self.T_ = Tb.forward(self.T_)
        self.T_.mask_nyquist(self.mask)
        for p in (self.pu, self.pv0, self.pT):
            p.assemble()
        self.t = 0.0

    def convection(self, rk: int) -> None:
        H, bw = self.H_.v, {"padding_factor": PAD}
        self.up = self.u_.backward(**bw)
        up = self.up.v
        dudx = self.dudx() if rk == 0 else self.dudx.output_array
        dudxp, dudyp = dudx.backward(**bw).v, self.dudy().backward(**bw).v
        dvdxp, dvdyp = self.dvdx().backward(**bw).v, self.dvdy().backward(**bw).v
        H[0] = self.TDp.forward(up[0] * dudxp + up[1] * dudyp, H[0])
        H[1] = self.TDp.forward(up[0] * dvdxp + up[1] * dvdyp, H[1])
        self.H_.mask_nyquist(self.mask)

    def compute_v(self, rk: int) -> None:
        u = self.u_.v
        self.v00[:] = u[1, :, 0].real
        self.h1[:] = self.H_[1, :, 0].real
        u[1] = 1j * self.dudx() / self.K[1]
        self.pv0.compute_rhs(rk)
        u[1, :, 0] = self.pv0.solve_step(rk)

    def step(self) -> None:
        for rk in range(3):
            self.convection(rk)
            Tp = self.T_.backward(padding_factor=PAD)
            self.uT_ = self.up.function_space().forward(self.up * Tp, self.uT_)
            self.pu.compute_rhs(rk)
            self.pT.compute_rhs(rk)
            self.pu.solve_step(rk)
            self.compute_v(rk)
            tc = self.t + DT * self.c[rk + 1]
            self.T0.bc.update(tc)
            self.T_.get_dealiased_space(PAD).bases[0].bc.update(tc)
            self.pT.solve_step(rk)
        self.t += DT

    def nusselt(self) -> float:
        """1 + <u_wall-normal T> / (kappa dT / H), volume average (dT = 1, H = 2)."""
        ub, Tb = self.u_.backward(), self.T_.backward()
        uT = sf.inner(1, ub[0] * Tb) / (4 * np.pi)
        return float(1 + uT / (0.5 * self.kappa))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="steps per timed sample")
    ap.add_argument("--repeats", type=int, default=1, help="timed samples (median reported)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rb = RB(a.seed)
    for _ in range(a.warmup):
        rb.step()
    samples = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            rb.step()
        samples.append(1e3 * (time.perf_counter() - t0) / a.steps)
    print(json.dumps({
        "solver": "shenfun", "version": sf.__version__, "ms_per_step": statistics.median(samples),
        "samples_ms": samples, "steps": a.steps, "warmup": a.warmup, "grid": list(N), "dt": DT,
        "t_end": rb.t, "nusselt_after": rb.nusselt(), "mpi_ranks": MPI.COMM_WORLD.Get_size(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "setup": "Vignon et al. RayleighBenard(KMM): Ra 1e4, Pr 0.7, bcT (2, 1), pad (1, 1.5), "
                 "Chebyshev x Fourier, IMEXRK3"}))


if __name__ == "__main__":
    main()
