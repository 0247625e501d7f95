# mypy: ignore-errors
"""DOLFINx 0.5 worker for 2-D Rayleigh–Bénard convection (MODELS.md section 1), run by the
system Python (``/usr/bin/python3.11`` with Debian's ``python3-dolfinx``, numpy 1.x).

It imports nothing from the project or its venv; :mod:`plants.rbc.fem_backend` starts it and
talks to it over stdin/stdout.

Equations (free-fall units, lengths scaled by the half-height)::

    du/dt + (u.grad)u = -grad p + nu lap u + T e_y,   div u = 0,
    dT/dt + u.grad T = kappa lap T,   nu = sqrt(Pr/Ra),  kappa = 1/sqrt(Pr Ra),

on x in [0, 2 pi) (periodic), y in [-1, 1]: no-slip walls, T = 1 on top, the given profile on
the bottom.

Discretisation
--------------
- A rectangle mesh of ``nx x ny`` quadrilaterals, graded towards the walls by
  ``y = tanh(s eta) / tanh(s)`` (``s = stretch``; 0 is uniform).
- Taylor–Hood Q2/Q1 velocity–pressure, Q2 temperature.
- SBDF2 in time: BDF2 for the time derivative, diffusion, pressure and incompressibility
  implicit; advection (skew-symmetric in the momentum equation) extrapolated,
  ``f* = 2 f^n - f^(n-1)``; temperature first, then the momentum equation with the new
  temperature's buoyancy (less the conduction profile, whose hydrostatic pressure is absorbed
  into p; this keeps conduction an exact discrete steady state). The first step uses
  ``f^(-1) = f^0``. Both matrices are constant, so each is factorised once (scipy SuperLU).
- Periodicity and Dirichlet conditions by a prolongation ``x = P x_free + g``: the dofs on
  x = 2 pi are copies of those on x = 0 (same component, same y); wall dofs take their
  Dirichlet values; one pressure dof (nearest (pi, 0)) is pinned to 0. Each solve is
  ``(P^T A P) x_free = P^T (b - A g)``.
- Physical Nusselt numbers from the discrete equation's residual at the wall dofs (the
  variationally consistent wall flux), over the conductive flux ``kappa Delta T / H``:
  ``Nu_bottom = R(1_bottom) / (2 pi kappa / 2)``, ``Nu_top = -R(1_top) / (2 pi kappa / 2)``.

Protocol
--------
Every message, both ways, is a sequence of frames; a frame is an 8-byte little-endian unsigned
length followed by that many bytes. A message is one JSON frame (UTF-8 object) followed by
``n_arrays`` frames, each one array written by ``np.save(..., allow_pickle=False)`` (float64).
Requests (``cmd`` and its fields; arrays after the header):

- ``init``: ``ra, pr, nx, ny, dt, stretch`` -> reply ``n_dofs`` (W, T), arrays
  ``[x_bottom]``: the x of the bottom-wall temperature dofs in [0, 2 pi), increasing.
- ``reset``: ``seed, noise, start`` ("authors" or "conduction"), optional ``mode_k,
  mode_amp`` (adds ``mode_amp sin(mode_k x) (1 - y^2)`` to T) -> at rest, time 0.
- ``set_bottom``: arrays ``[values]`` at ``x_bottom`` (applied at once and kept by resets).
- ``advance``: ``n`` -> ``time, blown_up``; arrays ``[t, nu_bottom, nu_top]`` per step.
- ``probes``: arrays ``[points (n, 2)]`` -> arrays ``[values (n, 3)]`` = (u_x, u_y, T).
- ``bottom_values`` -> arrays ``[T at x_bottom]``.
- ``nusselt`` -> ``bottom, top, volume``.
- ``quit`` -> reply, then the worker exits.

Every reply has ``ok`` (true) and ``time``; a failed request gets ``{"ok": false, "error":
message}`` and the worker keeps serving.
"""

import io
import json
import math
import os
import struct
import sys

import numpy as np

TWO_PI = 2.0 * math.pi
T_TOP = 1.0
T_BOTTOM_MEAN = 2.0
COND_FLUX_OVER_KAPPA = (T_BOTTOM_MEAN - T_TOP) / 2.0
BLOWUP = 50.0


# ------------------------------------------------------------------------------ framing
def read_frame(stream):
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def write_message(stream, header, arrays=()):
    header = dict(header)
    header["n_arrays"] = len(arrays)
    frames = [json.dumps(header).encode("utf-8")]
    for arr in arrays:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr, dtype=np.float64), allow_pickle=False)
        frames.append(buf.getvalue())
    for f in frames:
        stream.write(struct.pack("<Q", len(f)))
        stream.write(f)
    stream.flush()


def read_message(stream):
    raw = read_frame(stream)
    if raw is None:
        return None, []
    header = json.loads(raw.decode("utf-8"))
    arrays = []
    for _ in range(int(header.get("n_arrays", 0))):
        data = read_frame(stream)
        if data is None:
            return None, []
        arrays.append(np.load(io.BytesIO(data), allow_pickle=False))
    return header, arrays


# ------------------------------------------------------------------------------ solver
def _positive(name, value):
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
    return value


def _cells(name, value):
    if not (isinstance(value, int) and 2 <= value <= 1024):
        raise ValueError(f"{name} = {value!r}: must be an integer in [2, 1024]")
    return value


class Boussinesq:
    """The discretised problem and its state (see the module docstring)."""

    def __init__(self, ra, pr, nx, ny, dt, stretch):
        import scipy.sparse as sp
        import ufl
        from dolfinx import fem, mesh
        from dolfinx.fem.petsc import assemble_matrix
        from mpi4py import MPI

        ra, pr, dt = _positive("ra", ra), _positive("pr", pr), _positive("dt", dt)
        nx, ny = _cells("nx_cells", nx), _cells("ny_cells", ny)
        stretch = float(stretch)
        if not (math.isfinite(stretch) and 0.0 <= stretch <= 4.0):
            raise ValueError(f"stretch = {stretch!r}: must be in [0, 4]")
        self.fem, self.sp = fem, sp
        self.nu, self.kappa, self.dt = math.sqrt(pr / ra), 1.0 / math.sqrt(pr * ra), dt
        msh = mesh.create_rectangle(MPI.COMM_SELF, [np.array([0.0, -1.0]),
                                                    np.array([TWO_PI, 1.0])], [nx, ny],
                                    mesh.CellType.quadrilateral)
        if stretch > 0.0:
            gy = msh.geometry.x[:, 1]
            msh.geometry.x[:, 1] = np.tanh(stretch * gy) / math.tanh(stretch)
        self.mesh = msh
        cell = msh.ufl_cell()
        vel_el = ufl.VectorElement("Lagrange", cell, 2)
        pre_el = ufl.FiniteElement("Lagrange", cell, 1)
        self.W = fem.FunctionSpace(msh, ufl.MixedElement([vel_el, pre_el]))
        self.Q = fem.FunctionSpace(msh, ("Lagrange", 2))
        self.V, self.v_map = self.W.sub(0).collapse()
        self.v_map = np.asarray(self.v_map, dtype=np.int64)

        # functions: history and extrapolations
        W, Q = self.W, self.Q
        self.w_n, self.w_nm1 = fem.Function(W), fem.Function(W)
        self.t_n, self.t_nm1, self.t_new = fem.Function(Q), fem.Function(Q), fem.Function(Q)
        self.w_star, self.t_star = fem.Function(W), fem.Function(Q)
        self.u_out = fem.Function(self.V)

        idt = fem.Constant(msh, 1.0 / dt)
        nu, kappa = fem.Constant(msh, self.nu), fem.Constant(msh, self.kappa)
        ey = fem.Constant(msh, np.array([0.0, 1.0]))
        u_n, _ = ufl.split(self.w_n)
        u_nm1, _ = ufl.split(self.w_nm1)
        u_s, _ = ufl.split(self.w_star)
        dx = ufl.dx

        # temperature
        T, s = ufl.TrialFunction(Q), ufl.TestFunction(Q)
        a_t = (1.5 * idt * T * s + kappa * ufl.dot(ufl.grad(T), ufl.grad(s))) * dx
        l_t = ((2.0 * self.t_n - 0.5 * self.t_nm1) * idt * s
               - ufl.dot(u_s, ufl.grad(self.t_star)) * s) * dx
        # momentum + continuity
        u, p = ufl.TrialFunctions(W)
        v, q = ufl.TestFunctions(W)
        a_w = (1.5 * idt * ufl.dot(u, v) + nu * ufl.inner(ufl.grad(u), ufl.grad(v))
               - p * ufl.div(v) - q * ufl.div(u)) * dx
        adv = 0.5 * (ufl.dot(ufl.dot(ufl.grad(u_s), u_s), v)
                     - ufl.dot(ufl.dot(ufl.grad(v), u_s), u_s))
        # buoyancy relative to the conduction profile: its hydrostatic part goes into the
        # pressure exactly, so conduction is an exact discrete steady state (Q1 pressure
        # cannot balance a linear T's quadratic hydrostatic pressure)
        y_coord = ufl.SpatialCoordinate(msh)[1]
        t_cond = 0.5 * (T_TOP + T_BOTTOM_MEAN) - 0.5 * (T_BOTTOM_MEAN - T_TOP) * y_coord
        l_w = (ufl.dot((2.0 * u_n - 0.5 * u_nm1) * idt, v) - adv
               + (self.t_new - t_cond) * ufl.dot(ey, v)) * dx
        self.l_t, self.l_w = fem.form(l_t), fem.form(l_w)
        self.b_t = np.zeros(len(self.t_n.x.array))
        self.b_w = np.zeros(len(self.w_n.x.array))

        def to_csr(form):
            mat = assemble_matrix(fem.form(form))
            mat.assemble()
            indptr, indices, data = mat.getValuesCSR()
            n = mat.getSize()
            return sp.csr_matrix((data, indices, indptr), shape=n)

        self.A_t, self.A_w = to_csr(a_t), to_csr(a_w)
        self._build_constraints()
        self.lu_t = self._factor(self.A_t, self.P_t)
        self.lu_w = self._factor(self.A_w, self.P_w)
        self._build_probes_machinery()
        self.bottom = np.full(len(self.x_bottom), T_BOTTOM_MEAN)
        self.time = 0.0
        self.blown_up = False
        self.last_nu = (float("nan"), float("nan"))
        self.reset(0, 0.0, "conduction")

    # -------------------------------------------------------------- constraints
    def _prolongation(self, n, slave_to_master, fixed):
        """P (n x n_free) mapping free dofs to all dofs; slaves copy their master."""
        sp = self.sp
        is_slave = np.zeros(n, dtype=bool)
        is_slave[list(slave_to_master)] = True
        free = ~is_slave & ~fixed
        index = -np.ones(n, dtype=np.int64)
        index[free] = np.arange(int(free.sum()))
        rows, cols = list(np.nonzero(free)[0]), list(index[free])
        for s, m in slave_to_master.items():
            if fixed[s] != fixed[m]:
                raise RuntimeError(f"periodic dof pair ({s}, {m}) constrained inconsistently")
            if not fixed[s]:
                rows.append(s)
                cols.append(index[m])
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, int(free.sum())))

    @staticmethod
    def _periodic_pairs(dofs, xy, tol):
        """{slave: master} for dofs of one scalar component: x = 2 pi onto x = 0."""
        left = {round(float(y) * 1e9): int(d) for d, (x, y) in zip(dofs, xy) if abs(x) < tol}
        out = {}
        for d, (x, y) in zip(dofs, xy):
            if abs(x - TWO_PI) < tol:
                key = round(float(y) * 1e9)
                if key not in left:
                    raise RuntimeError(f"no periodic partner for the dof at ({x}, {y})")
                out[int(d)] = left[key]
        return out

    def _build_constraints(self):
        tol = 1e-8
        n_w = len(self.w_n.x.array)
        pairs, fixed = {}, np.zeros(n_w, dtype=bool)
        p_dofs = None
        subs = ((self.W.sub(0).sub(0), True), (self.W.sub(0).sub(1), True),
                (self.W.sub(1), False))
        for sub, is_velocity in subs:
            space, dofs = sub.collapse()
            dofs = np.asarray(dofs, dtype=np.int64)
            xy = space.tabulate_dof_coordinates()[:, :2]
            pairs.update(self._periodic_pairs(dofs, xy, tol))
            if is_velocity:                        # no-slip walls
                fixed[dofs[np.abs(np.abs(xy[:, 1]) - 1.0) < tol]] = True
            else:
                p_dofs = (dofs, xy)
        dofs, xy = p_dofs                          # the pressure, collapsed last
        pin = dofs[np.argmin((xy[:, 0] - math.pi) ** 2 + xy[:, 1] ** 2)]
        fixed[pin] = True
        self.P_w, self.g_w = self._prolongation(n_w, pairs, fixed), np.zeros(n_w)

        xy = self.Q.tabulate_dof_coordinates()[:, :2]
        n_t = len(xy)
        dofs = np.arange(n_t)
        pairs_t = self._periodic_pairs(dofs, xy, tol)
        top = np.abs(xy[:, 1] - 1.0) < tol
        bot = np.abs(xy[:, 1] + 1.0) < tol
        self.P_t = self._prolongation(n_t, pairs_t, top | bot)
        self.top_dofs, self.bot_dofs = np.nonzero(top)[0], np.nonzero(bot)[0]
        # bottom dofs on x in [0, 2 pi), by increasing x; their slaves at 2 pi follow x = 0
        main = self.bot_dofs[xy[self.bot_dofs, 0] < TWO_PI - tol]
        main = main[np.argsort(xy[main, 0])]
        self.bot_main, self.x_bottom = main, xy[main, 0].copy()
        slaves = [s for s in self.bot_dofs if s in pairs_t]
        self.bot_slaves = np.array(slaves, dtype=np.int64)
        self.bot_slave_masters = np.array([pairs_t[s] for s in slaves], dtype=np.int64)
        self.pairs_t = pairs_t
        self.g_t = np.zeros(n_t)
        self.g_t[self.top_dofs] = T_TOP
        self.t_xy = xy

    def _factor(self, a, p):
        from scipy.sparse.linalg import splu
        return splu((p.T @ a @ p).tocsc())

    def _solve(self, lu, a, p, g, b):
        return p @ lu.solve(p.T @ (b - a @ g)) + g

    # -------------------------------------------------------------- probes
    def _build_probes_machinery(self):
        from dolfinx import geometry
        self.geometry = geometry
        self.tree = geometry.BoundingBoxTree(self.mesh, self.mesh.topology.dim)

    def _cells_for(self, pts):
        geometry = self.geometry
        pts3 = np.zeros((len(pts), 3))
        pts3[:, 0] = np.mod(pts[:, 0], TWO_PI)
        pts3[:, 1] = pts[:, 1]
        bad = np.abs(pts[:, 1]) > 1.0 + 1e-12
        if bad.any():
            raise ValueError(f"probe point y = {pts[np.argmax(bad), 1]!r} lies outside "
                             "[-1, 1]")
        pts3[:, 1] = np.clip(pts3[:, 1], -1.0, 1.0)
        cand = geometry.compute_collisions(self.tree, pts3)
        hits = geometry.compute_colliding_cells(self.mesh, cand, pts3)
        cells = np.empty(len(pts3), dtype=np.int32)
        for i in range(len(pts3)):
            links = hits.links(i)
            if len(links) == 0:
                raise ValueError(f"no mesh cell contains the probe point {tuple(pts[i])}")
            cells[i] = links[0]
        return pts3, cells

    def probes(self, pts):
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        pts3, cells = self._cells_for(pts)
        self.u_out.x.array[:] = self.w_n.x.array[self.v_map]
        vel = self.u_out.eval(pts3, cells).reshape(len(pts), 2)
        temp = self.t_n.eval(pts3, cells).reshape(len(pts), 1)
        return np.hstack([vel, temp])

    # -------------------------------------------------------------- state
    def set_bottom(self, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.shape != self.x_bottom.shape:
            raise ValueError(f"bottom values have {values.size} entries, the mesh's bottom "
                             f"wall has {self.x_bottom.size} temperature dofs")
        if not np.all(np.isfinite(values)):
            raise ValueError("bottom values must be finite")
        self.bottom = values.copy()
        self._apply_bottom()

    def _apply_bottom(self):
        g = self.g_t
        g[self.bot_main] = self.bottom
        g[self.bot_slaves] = g[self.bot_slave_masters]
        for f in (self.t_n, self.t_nm1):
            f.x.array[self.bot_dofs] = g[self.bot_dofs]
            f.x.array[self.top_dofs] = g[self.top_dofs]

    def reset(self, seed, noise, start, mode_k=0, mode_amp=0.0):
        noise, mode_amp = float(noise), float(mode_amp)
        if not (math.isfinite(noise) and noise >= 0.0):
            raise ValueError(f"noise = {noise!r}: must be a finite number >= 0")
        if start not in ("authors", "conduction"):
            raise ValueError(f"start = {start!r}: must be 'authors' or 'conduction'")
        y = self.t_xy[:, 1]
        temp = 1.5 - y / 2.0
        if start == "authors":
            temp = temp + 0.125 * np.sin(math.pi * y)
        if not (isinstance(mode_k, int) and mode_k >= 0 and math.isfinite(mode_amp)):
            raise ValueError(f"mode_k = {mode_k!r}, mode_amp = {mode_amp!r}: need an integer "
                             ">= 0 and a finite amplitude")
        if mode_amp != 0.0:
            x = self.t_xy[:, 0]
            temp = temp + mode_amp * np.sin(mode_k * x) * (1.0 - y) * (1.0 + y)
        if noise > 0.0:
            rng = np.random.default_rng(None if seed is None else int(seed))
            temp = temp + noise * rng.standard_normal(len(y)) * (1.0 - y) * (1.0 + y)
        for s, m in self.pairs_t.items():
            temp[s] = temp[m]
        for f in (self.w_n, self.w_nm1):
            f.x.array[:] = 0.0
        self.t_n.x.array[:] = temp
        self.t_nm1.x.array[:] = temp
        self._apply_bottom()
        self.time, self.blown_up = 0.0, False
        self.last_nu = self._wall_flux_steady()

    def _wall_flux_steady(self):
        """Nu at rest (no time derivative, no flow): kappa grad T . grad 1_wall."""
        r = (self.A_t @ self.t_n.x.array) - 1.5 / self.dt * (self._mass_t() @ self.t_n.x.array)
        return self._nu_from_residual(r)

    def _mass_t(self):
        if not hasattr(self, "_m_t"):
            import ufl
            from dolfinx.fem.petsc import assemble_matrix
            fem = self.fem
            T, s = ufl.TrialFunction(self.Q), ufl.TestFunction(self.Q)
            mat = assemble_matrix(fem.form(T * s * ufl.dx))
            mat.assemble()
            indptr, indices, data = mat.getValuesCSR()
            self._m_t = self.sp.csr_matrix((data, indices, indptr), shape=mat.getSize())
        return self._m_t

    def _nu_from_residual(self, r):
        scale = TWO_PI * self.kappa * COND_FLUX_OVER_KAPPA
        return float(r[self.bot_dofs].sum() / scale), float(-r[self.top_dofs].sum() / scale)

    def step(self):
        fem = self.fem
        self.w_star.x.array[:] = 2.0 * self.w_n.x.array - self.w_nm1.x.array
        self.t_star.x.array[:] = 2.0 * self.t_n.x.array - self.t_nm1.x.array
        self.b_t[:] = 0.0
        fem.assemble_vector(self.b_t, self.l_t)
        t_new = self._solve(self.lu_t, self.A_t, self.P_t, self.g_t, self.b_t)
        self.t_new.x.array[:] = t_new
        nu = self._nu_from_residual(self.A_t @ t_new - self.b_t)
        self.b_w[:] = 0.0
        fem.assemble_vector(self.b_w, self.l_w)
        w_new = self._solve(self.lu_w, self.A_w, self.P_w, self.g_w, self.b_w)
        vmax = float(np.abs(w_new[self.v_map]).max())
        if not (np.all(np.isfinite(t_new)) and math.isfinite(vmax) and vmax < BLOWUP):
            self.blown_up = True
            return
        self.w_nm1.x.array[:] = self.w_n.x.array
        self.w_n.x.array[:] = w_new
        self.t_nm1.x.array[:] = self.t_n.x.array
        self.t_n.x.array[:] = t_new
        self.time += self.dt
        self.last_nu = nu

    def advance(self, n):
        if not (isinstance(n, int) and n >= 0):
            raise ValueError(f"n = {n!r}: must be an integer >= 0")
        out = np.full((3, n), np.nan)
        for i in range(n):
            if not self.blown_up:
                self.step()
            out[:, i] = (self.time, *self.last_nu)
        return out

    def volume_nusselt(self):
        """1 + <u_y T> / (kappa Delta T / H), the volume average."""
        import ufl
        fem = self.fem
        if not hasattr(self, "_vol_form"):
            u, _ = ufl.split(self.w_n)
            self._vol_form = fem.form(u[1] * self.t_n * ufl.dx)
        vt = fem.assemble_scalar(self._vol_form) / (2.0 * TWO_PI)
        return 1.0 + vt / (self.kappa * COND_FLUX_OVER_KAPPA)


# ------------------------------------------------------------------------------ loop
def handle(state, header, arrays):
    cmd = header.get("cmd")
    if cmd == "init":
        solver = Boussinesq(header["ra"], header["pr"], header["nx"], header["ny"],
                            header["dt"], header.get("stretch", 0.0))
        state["solver"] = solver
        return ({"n_dofs_w": len(solver.w_n.x.array), "n_dofs_t": len(solver.t_n.x.array)},
                [solver.x_bottom])
    solver = state.get("solver")
    if solver is None:
        raise RuntimeError(f"command {cmd!r} before 'init'")
    if cmd == "reset":
        solver.reset(header.get("seed"), header.get("noise", 0.0),
                     header.get("start", "authors"), header.get("mode_k", 0),
                     header.get("mode_amp", 0.0))
        return {}, []
    if cmd == "set_bottom":
        if len(arrays) != 1:
            raise ValueError("set_bottom needs one array of values")
        solver.set_bottom(arrays[0])
        return {}, []
    if cmd == "advance":
        series = solver.advance(header.get("n"))
        return {"blown_up": solver.blown_up}, list(series)
    if cmd == "probes":
        if len(arrays) != 1:
            raise ValueError("probes needs one array of points (n, 2)")
        return {}, [solver.probes(arrays[0])]
    if cmd == "bottom_values":
        return {}, [solver.t_n.x.array[solver.bot_main]]
    if cmd == "nusselt":
        b, t = solver.last_nu
        return {"bottom": b, "top": t, "volume": solver.volume_nusselt()}, []
    raise ValueError(f"unknown command {cmd!r}")


def main():
    # the frames go to a private copy of fd 1; fd 1 itself (C-level output of PETSc / DOLFINx)
    # and Python's prints then go to stderr, so nothing stray lands in the frame stream
    stdin = sys.stdin.buffer
    sys.stdout.flush()
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    state = {}
    while True:
        header, arrays = read_message(stdin)
        if header is None:
            return 0
        if header.get("cmd") == "quit":
            write_message(stdout, {"ok": True})
            return 0
        try:
            reply, out = handle(state, header, arrays)
            solver = state.get("solver")
            reply.update(ok=True, time=solver.time if solver is not None else 0.0)
            write_message(stdout, reply, out)
        except Exception as exc:            # report and keep serving
            write_message(stdout, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    sys.exit(main())
