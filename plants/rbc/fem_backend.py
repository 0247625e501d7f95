"""The DOLFINx (Taylor–Hood FEM) backend of the Rayleigh–Bénard plant, run in a worker process.

DOLFINx 0.5 comes from Debian (``python3-dolfinx``, ``make fem``) and runs under the system
``/usr/bin/python3.11`` with Debian's numpy 1.x, which cannot be imported into this project's
numpy-2 venv. :class:`FEMBackend` therefore starts ``plants/rbc/fem_worker.py`` under the system
Python and exchanges length-prefixed JSON headers and ``np.save`` frames with it over
stdin/stdout (never pickles; the protocol and the discretisation are described in the worker's
docstring).

Usage::

    with FEMBackend(RBCParams(ra=1e4, pr=0.7), nx_cells=64, ny_cells=32, dt=0.01) as fem:
        fem.reset(seed=0, noise=1e-3)
        fem.set_bottom(segment_temperatures(action))
        series = fem.advance(150)          # (3, 150): time, Nu_bottom, Nu_top per step
        nu = fem.nusselt()["bottom"]
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import struct
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from plants.rbc.model import N_SEGMENTS, RBCParams, bottom_profile

__all__ = ["SYSTEM_PYTHON", "WORKER", "FEMBackend", "FEMWorkerError", "available"]

SYSTEM_PYTHON = "/usr/bin/python3.11"
"""The interpreter that has Debian's DOLFINx 0.5."""
WORKER = Path(__file__).with_name("fem_worker.py")
"""The worker script run by :data:`SYSTEM_PYTHON`."""


class FEMWorkerError(RuntimeError):
    """The worker process died, or answered a request with an error (its message included)."""


@functools.lru_cache(maxsize=8)
def available(python: str = SYSTEM_PYTHON) -> tuple[bool, str]:
    """Whether the DOLFINx backend can run here, and why not (``(True, "")`` when it can).

    Checks (once per interpreter path, ~1 s) that ``python`` exists and imports dolfinx 0.5,
    ufl, scipy, mpi4py and petsc4py.
    """
    if not os.path.exists(python):
        return False, (f"{python} not found: the DOLFINx backend needs Debian's system Python "
                       "3.11 with python3-dolfinx (`make fem` on Debian 12)")
    probe = ("import dolfinx, ufl, scipy, mpi4py, petsc4py; "
             "print(dolfinx.__version__)")
    try:
        done = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                              timeout=120, env=_worker_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{python} could not import dolfinx: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return False, (f"{python} cannot import dolfinx ({last}): install python3-dolfinx "
                       "(`make fem` on Debian 12)")
    version = done.stdout.strip()
    if not version.startswith("0.5."):
        return False, f"dolfinx {version} found under {python}; the worker is written for 0.5"
    return True, ""


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
    return float(value)


def _check_cells(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 1024:
        raise ValueError(f"{name} = {value!r}: must be an integer in [2, 1024]")
    return value


class FEMBackend:
    """Taylor–Hood Q2/Q1 (+ Q2 temperature) Boussinesq solver in a DOLFINx worker process.

    Parameters
    ----------
    params:
        ``ra`` and ``pr`` are used (``nx``, ``ny`` and ``dt`` are the spectral solver's).
    nx_cells, ny_cells:
        Quadrilateral cells in x and y (64 x 32: 129 x 65 velocity/temperature nodes).
    dt:
        Time step. Advection is explicit (SBDF2): 0.01 is stable at Ra 1e4 on 64 x 32,
        0.02 is not.
    stretch:
        Wall grading ``y = tanh(s eta) / tanh(s)`` (0: uniform).
    python:
        The system interpreter with DOLFINx 0.5.
    """

    def __init__(self, params: RBCParams | None = None, nx_cells: int = 64, ny_cells: int = 32,
                 dt: float = 0.01, stretch: float = 1.2, python: str = SYSTEM_PYTHON) -> None:
        self.params = RBCParams() if params is None else params
        self.nx_cells = _check_cells("nx_cells", nx_cells)
        self.ny_cells = _check_cells("ny_cells", ny_cells)
        self.dt = _check_positive("dt", dt)
        if isinstance(stretch, bool) or not isinstance(stretch, int | float) \
                or not (math.isfinite(stretch) and 0 <= stretch <= 4):
            raise ValueError(f"stretch = {stretch!r}: must be a number in [0, 4]")
        self.stretch = float(stretch)
        self.python = python
        self.time = 0.0
        """Simulated time of the current state."""
        self.blown_up = False
        """True once a step produced non-finite or huge (> 50) velocities; the state is then
        frozen at the last good one."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        ok, why = available(python)
        if not ok:
            raise FEMWorkerError(why)
        self._start()
        try:
            header, arrays = self._call({"cmd": "init", "ra": self.params.ra,
                                         "pr": self.params.pr, "nx": self.nx_cells,
                                         "ny": self.ny_cells, "dt": self.dt,
                                         "stretch": self.stretch})
        except BaseException:
            self.close()                     # no worker left behind by a failed start
            raise
        self.x_bottom: NDArray[np.float64] = arrays[0]
        """x of the bottom-wall temperature dofs in [0, 2 pi), increasing."""
        self.n_dofs = (int(header["n_dofs_w"]), int(header["n_dofs_t"]))
        """Degrees of freedom of (velocity + pressure, temperature)."""

    # ------------------------------------------------------------------ process
    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([self.python, str(WORKER)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr,
                                      env=_worker_env(), cwd=tempfile.gettempdir())

    def _stderr_tail(self, n: int = 2000) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in text.splitlines() if not ln.startswith("INFO:")]
        return "\n".join(lines)[-n:]

    def _died(self, what: str) -> FEMWorkerError:
        code = None if self._proc is None else self._proc.poll()
        if self._proc is not None and code is None:
            try:
                code = self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        tail = self._stderr_tail()
        how = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit code {code}")
        msg = f"DOLFINx worker ({self.python} {WORKER.name}) died {what} ({how})"
        return FEMWorkerError(msg + (f"; its stderr ends:\n{tail}" if tail else ""))

    @staticmethod
    def _frame(data: bytes) -> bytes:
        return struct.pack("<Q", len(data)) + data

    def _read_frame(self) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        head = self._proc.stdout.read(8)
        if len(head) < 8:
            raise self._died("while answering")
        (size,) = struct.unpack("<Q", head)
        data = self._proc.stdout.read(size)
        if len(data) < size:
            raise self._died("in the middle of a reply")
        return data

    def _call(self, header: dict[str, Any], arrays: tuple[NDArray[Any], ...] = ()
              ) -> tuple[dict[str, Any], list[NDArray[np.float64]]]:
        """Send one request, return the reply's header and arrays; raise on errors."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise FEMWorkerError("the DOLFINx worker is closed")
        if proc.poll() is not None:
            raise self._died("before the request")
        msg = dict(header, n_arrays=len(arrays))
        payload = [self._frame(json.dumps(msg).encode("utf-8"))]
        for arr in arrays:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arr, dtype=np.float64), allow_pickle=False)
            payload.append(self._frame(buf.getvalue()))
        try:
            proc.stdin.write(b"".join(payload))
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died("before reading the request") from None
        reply = json.loads(self._read_frame().decode("utf-8"))
        out = [np.load(io.BytesIO(self._read_frame()), allow_pickle=False)
               for _ in range(int(reply.get("n_arrays", 0)))]
        if not reply.get("ok", False):
            raise FEMWorkerError(f"DOLFINx worker: {reply.get('error', 'unknown error')} "
                                 f"(request {header.get('cmd')!r})")
        self.time = float(reply.get("time", self.time))
        return reply, out

    def close(self) -> None:
        """Stop the worker (politely, then by force); safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.poll() is None and proc.stdin is not None:
                    quit_msg = json.dumps({"cmd": "quit", "n_arrays": 0}).encode("utf-8")
                    proc.stdin.write(self._frame(quit_msg))
                    proc.stdin.flush()
                    proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None and not pipe.closed:
                        try:
                            pipe.close()
                        except OSError:
                            pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> FEMBackend:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:       # interpreter shutdown: nothing left to do
            pass

    @property
    def pid(self) -> int | None:
        """The worker's process id (None once closed)."""
        return None if self._proc is None else self._proc.pid

    # ------------------------------------------------------------------ physics API
    def reset(self, seed: int | None = 0, noise: float = 1e-3, start: str = "authors",
              mode: tuple[int, float] | None = None) -> None:
        """At rest, time 0, from the authors' start ``T = 1.5 - y/2 + 0.125 sin(pi y)``
        (``start="conduction"``: ``1.5 - y/2``) plus ``noise * randn * (1 - y)(1 + y)`` per
        temperature dof (the worker's numpy generator seeded by ``seed``), plus, with
        ``mode = (k, a)``, ``a sin(k x) (1 - y)(1 + y)`` (``k = 2`` seeds 4 rolls). The bottom
        profile set last is kept."""
        if isinstance(noise, bool) or not isinstance(noise, int | float) \
                or not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise = {noise!r}: must be a finite number >= 0")
        if start not in ("authors", "conduction"):
            raise ValueError(f"start = {start!r}: must be 'authors' or 'conduction'")
        k, amp = (0, 0.0) if mode is None else (int(mode[0]), float(mode[1]))
        if k < 0 or not math.isfinite(amp):
            raise ValueError(f"mode = {mode!r}: must be (integer k >= 0, finite amplitude)")
        self._call({"cmd": "reset", "seed": None if seed is None else int(seed),
                    "noise": float(noise), "start": start, "mode_k": k, "mode_amp": amp})
        self.blown_up = False

    def set_bottom_profile(self, values: NDArray[np.float64]) -> None:
        """The bottom-wall temperature at :attr:`x_bottom` (applied from now on)."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != self.x_bottom.shape:
            raise ValueError(f"bottom values have shape {v.shape}, expected "
                             f"{self.x_bottom.shape} (one per x_bottom)")
        if not np.all(np.isfinite(v)):
            raise ValueError("bottom values must be finite")
        self._call({"cmd": "set_bottom"}, (v,))

    def set_bottom(self, temps: NDArray[np.float64]) -> None:
        """The 10 segment temperatures; the wall gets :func:`plants.rbc.model.bottom_profile`
        evaluated here at :attr:`x_bottom`."""
        t = np.asarray(temps, dtype=np.float64)
        if t.shape != (N_SEGMENTS,):
            raise ValueError(f"segment temperatures have shape {t.shape}, expected "
                             f"({N_SEGMENTS},)")
        self.set_bottom_profile(bottom_profile(t, self.x_bottom))

    def bottom_values(self) -> NDArray[np.float64]:
        """The temperature the solver holds at :attr:`x_bottom` (the Dirichlet values)."""
        return self._call({"cmd": "bottom_values"})[1][0]

    def advance(self, n_steps: int) -> NDArray[np.float64]:
        """Step ``n_steps`` times; returns ``(3, n_steps)``: time, physical Nu at the bottom
        and at the top wall after each step (frozen after a blow-up, see :attr:`blown_up`)."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) \
                or n_steps < 0:
            raise ValueError(f"n_steps = {n_steps!r}: must be an integer >= 0")
        header, arrays = self._call({"cmd": "advance", "n": int(n_steps)})
        self.blown_up = bool(header.get("blown_up", False))
        return np.stack(arrays) if arrays else np.zeros((3, 0))

    def nusselt(self) -> dict[str, float]:
        """Physical Nusselt numbers of the current state: ``bottom`` and ``top`` wall fluxes
        (consistent residual fluxes) and the ``volume`` average ``1 + <u_y T>/(kappa/2)``,
        all over the conductive flux ``kappa Delta T / H``."""
        header, _ = self._call({"cmd": "nusselt"})
        return {k: float(header[k]) for k in ("bottom", "top", "volume")}

    def probes(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(u_x, u_y, T)`` on the grid ``x`` by ``y``: shape ``(3, len(y), len(x))``; x is
        taken modulo 2 pi, y must lie in [-1, 1]."""
        xs = np.asarray(x, dtype=np.float64).ravel()
        ys = np.asarray(y, dtype=np.float64).ravel()
        pts = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), axis=-1).reshape(-1, 2)
        vals = self._call({"cmd": "probes"}, (pts,))[1][0]
        out: NDArray[np.float64] = vals.reshape(len(ys), len(xs), 3).transpose(2, 0, 1)
        return out

    def uy_midline(self, n: int = 96) -> NDArray[np.float64]:
        """``u_y`` along y = 0 at ``n`` uniform x points (for
        :func:`plants.rbc.model.roll_count`)."""
        return self.probes(2.0 * np.pi * np.arange(n) / n, np.zeros(1))[1, 0]
