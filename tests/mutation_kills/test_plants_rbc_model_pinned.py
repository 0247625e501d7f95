"""plants.rbc.model pinned (kills mutmut's survivors): the parameter checks at their boundaries,
nu and kappa at parameters where they are exact, the actuation map at hand-derived values (a
batch of two, the clipping factor K2 from a negative deviation), the bottom profile inside the
cubic blends (t = 1/3, 2/3, 3/4 by hand), periodically and for a batch, the Fourier coefficients
of the sharp step (half_width 0, a closed form) and of the blend (its bump transform by
quadrature), the probe grid, the probe Nusselt number against a written-out index gradient, the
agents' columns by integer arithmetic, the recentring shifts by hand, and the roll count on
hand-made lines (zeros, the rest threshold, a batch).

MODELS.md section 1 gives the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from plants.rbc.model import (
    RBCParams,
    agent_columns,
    bottom_coefficients,
    bottom_profile,
    probe_nusselt,
    probe_x,
    probe_y,
    recentre,
    roll_count,
    segment_temperatures,
)

W10 = 2 * math.pi / 10          # segment width
TEMPS = 2.0 + 0.05 * (np.arange(10) - 4.5) + 0.01 * (np.arange(10) % 3)   # distinct values


# -- parameters ----------------------------------------------------------------------------------
def test_defaults_and_exact_diffusivities():
    p = RBCParams()
    assert (p.ra, p.pr, p.nx, p.ny, p.dt) == (1e4, 0.7, 96, 64, 0.05)
    q = RBCParams(ra=2500.0, pr=4.0)    # nu = sqrt(4 / 2500) = 0.04, kappa = 1 / sqrt(1e4) = 0.01
    assert q.nu == pytest.approx(0.04, rel=1e-15) and q.kappa == pytest.approx(0.01, rel=1e-15)


@pytest.mark.parametrize("name", ["ra", "pr", "dt"])
@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1.0"])
def test_positive_finite_numbers(name, bad):
    assert getattr(RBCParams(**{name: 0.5}), name) == 0.5       # > 0, not > 1
    assert getattr(RBCParams(**{name: 3}), name) == 3           # an int is a number
    with pytest.raises(ValueError, match=rf"^RBCParams\.{name} = {bad!r}: must be a finite "
                                         rf"number > 0\.0$"):
        RBCParams(**{name: bad})


@pytest.mark.parametrize(("name", "good", "bad", "rule"), [
    ("nx", (8, 10), (6, 9, 8.0, -8), "must be an even integer >= 8"),
    ("ny", (8, 9, 512), (7, 513, 16.0), r"must be an integer in \[8, 512\]"),
])
def test_grid_sizes(name, good, bad, rule):
    for v in good:
        assert getattr(RBCParams(**{name: v}), name) == v
    for v in bad:
        with pytest.raises(ValueError, match=rf"^RBCParams\.{name} = {v!r}: {rule}$"):
            RBCParams(**{name: v})


# -- actuation -----------------------------------------------------------------------------------
def test_segment_temperatures_by_hand_on_a_batch():
    a = np.array([np.eye(10)[0], [1.0] + [-1.0] * 9, [-1.0] + [1.0] * 9])
    t = segment_temperatures(a)
    # e_0: v0 = 0.75, m = 0.075, max|v - m| = 0.675 -> K2 = 1
    np.testing.assert_allclose(t[0], [2.675] + [1.925] * 9, rtol=0, atol=1e-14)
    # (1, -1 x 9): m = -0.6, v0 - m = 1.35 -> K2 = 1.8
    np.testing.assert_allclose(t[1], [2.75] + [2 - 0.15 / 1.8] * 9, rtol=0, atol=1e-14)
    # (-1, 1 x 9): the largest deviation is negative, -1.35 -> K2 = 1.8 all the same
    np.testing.assert_allclose(t[2], [1.25] + [2 + 0.15 / 1.8] * 9, rtol=0, atol=1e-14)


# -- bottom profile ------------------------------------------------------------------------------
def _blend(i, t):
    """T_{i-1} + (T_i - T_{i-1}) (3 t^2 - 2 t^3), by hand."""
    return TEMPS[i - 1] + (TEMPS[i] - TEMPS[i - 1]) * t * t * (3 - 2 * t)


def test_profile_inside_the_blend_periodically():
    # w = 0.03: 0.01 before an edge t = 1/3 (ramp 7/27), 0.01 after t = 2/3 (ramp 20/27)
    x = np.array([3 * W10 - 0.01, 3 * W10 + 0.01, -0.01, 2 * math.pi + 0.01, 7 * W10,
                  4.5 * W10, 4 * W10 - 0.03, 4 * W10 + 0.03])
    want = [TEMPS[2] + (TEMPS[3] - TEMPS[2]) * 7 / 27, TEMPS[2] + (TEMPS[3] - TEMPS[2]) * 20 / 27,
            TEMPS[9] + (TEMPS[0] - TEMPS[9]) * 7 / 27, TEMPS[9] + (TEMPS[0] - TEMPS[9]) * 20 / 27,
            (TEMPS[6] + TEMPS[7]) / 2, TEMPS[4], TEMPS[3], TEMPS[4]]
    np.testing.assert_allclose(bottom_profile(TEMPS, x), want, rtol=0, atol=1e-13)
    assert want[0] == pytest.approx(_blend(3, 1 / 3)) and want[1] == pytest.approx(_blend(3, 2 / 3))


def test_profile_of_a_wide_blend_and_a_batch():
    # w = 0.1, 0.05 after edge 5: t = 0.75, ramp = 0.5625 * 1.5 = 0.84375
    # 0.05 after edge 0 in each row: the jump T_0 - T_9 of that row (not of the other)
    x = np.array([5 * W10 + 0.05, 5 * W10 - 0.05, 8.5 * W10, 0.05])
    batch = np.stack([TEMPS, TEMPS[::-1] + 0.2])
    got = bottom_profile(batch, x, half_width=0.1)
    assert got.shape == (2, 4)
    for row, t in zip(got, batch, strict=True):
        np.testing.assert_allclose(row, [t[4] + (t[5] - t[4]) * 0.84375,
                                         t[4] + (t[5] - t[4]) * 0.15625, t[8],
                                         t[9] + (t[0] - t[9]) * 0.84375],
                                   rtol=0, atol=1e-13)


# -- Fourier coefficients ------------------------------------------------------------------------
def test_coefficients_of_the_sharp_step():
    # half_width 0: one segment at 1 above 0 elsewhere has c_k = (1 - e^{-ik 2pi/10}) / (2 pi i k)
    t = np.zeros(10)
    t[0] = 1.0
    c = bottom_coefficients(t, 7, half_width=0.0)
    k = np.arange(1, 7)
    assert c[0] == pytest.approx(0.1, abs=1e-16)
    np.testing.assert_allclose(c[1:], (1 - np.exp(-1j * k * W10)) / (2j * np.pi * k),
                               rtol=1e-13, atol=0)


def _bump(k, w):
    """Transform of the blend's derivative 6 t (1 - t) / (2 w) on [-w, w], by quadrature."""
    val, _ = quad(lambda s: 6 * (s + w) / (2 * w) * (1 - (s + w) / (2 * w)) / (2 * w)
                  * math.cos(k * s), -w, w, epsabs=0, epsrel=1e-13)
    return val


# at w = 1e-3 (k w = 2e-3 .. 8e-3) the closed form loses ~1e-10 to cancellation
@pytest.mark.parametrize(("w", "rel"), [(0.03, 1e-11), (0.4, 1e-11), (1e-4, 1e-11), (1e-3, 1e-9)])
def test_coefficients_of_the_blend(w, rel):
    batch = np.stack([TEMPS, TEMPS[::-1] + 0.3])
    c = bottom_coefficients(batch, 9, half_width=w)
    assert c.shape == (2, 9) and c.dtype == np.complex128
    edges = np.arange(10) * W10
    for row, t in zip(c, batch, strict=True):
        assert row[0] == pytest.approx(t.mean(), abs=1e-15)
        jumps = t - np.roll(t, 1)
        for k in range(1, 9):
            want = sum(jumps[i] * np.exp(-1j * k * edges[i]) for i in range(10)) \
                * _bump(k, w) / (2j * math.pi * k)
            assert row[k] == pytest.approx(want, rel=rel, abs=1e-16)


def test_bump_at_k_w_1e_3_is_the_series():
    # k w = 1e-3 exactly (k = 1, w = 1e-3) takes the series 1 - (k w)^2 / 10 (error 4e-15);
    # the closed form there loses ~6e-11 to cancellation
    c = bottom_coefficients(TEMPS, 2, half_width=1e-3)
    edges = np.arange(10) * W10
    jumps = TEMPS - np.roll(TEMPS, 1)
    want = sum(jumps[i] * np.exp(-1j * edges[i]) for i in range(10)) * (1 - 1e-7) / (2j * math.pi)
    assert c[1] == pytest.approx(want, rel=1e-13, abs=0)


def test_one_mode_is_the_mean():
    c = bottom_coefficients(TEMPS, 1)
    assert c.shape == (1,) and c[0] == pytest.approx(TEMPS.mean(), abs=1e-15)


# -- probes --------------------------------------------------------------------------------------
def test_probe_grid():
    np.testing.assert_allclose(probe_x(), [2 * math.pi * 3 * k / 96 for k in range(32)],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(probe_y(), [math.cos(math.pi * (2 * j + 1) / 128)
                                           for j in range(0, 64, 8)], rtol=0, atol=1e-15)


def _probe_nu(uy, temp, kappa):
    rows, cols = temp.shape
    flux = sum(uy[r, c] * temp[r, c] for r in range(rows) for c in range(cols)) / (rows * cols)
    tr = [sum(temp[r]) / cols for r in range(rows)]
    grads = [tr[1] - tr[0]] + [(tr[r + 1] - tr[r - 1]) / 2 for r in range(1, rows - 1)] \
        + [tr[-1] - tr[-2]]
    return (flux - kappa * sum(grads) / rows) / (kappa * 1.0 / 2.0)


def test_probe_nusselt_by_hand_on_a_batch():
    rng = np.random.default_rng(7)
    uy = rng.normal(0, 0.2, (3, 8, 32))
    temp = 1.5 + rng.normal(0, 0.3, (3, 8, 32)) + np.linspace(-0.4, 0.4, 8)[:, None]
    got = probe_nusselt(uy, temp, 0.013)
    assert got.shape == (3,)
    for i in range(3):
        assert got[i] == pytest.approx(_probe_nu(uy[i], temp[i], 0.013), rel=1e-12)


# -- agents --------------------------------------------------------------------------------------
def test_agent_columns_by_integer_arithmetic():
    # column k sits at 2 pi k / 32, in segment floor(10 k / 32) (k = 16 is exactly on edge 5)
    for agent in range(10):
        want = [k for k in range(32) if (10 * k) // 32 == agent]
        np.testing.assert_array_equal(agent_columns(agent), want)
    np.testing.assert_array_equal(agent_columns(5), [16, 17, 18, 19])


@pytest.mark.parametrize(("agent", "shift"), [(0, 14), (1, 11), (2, 8), (3, 5), (4, 2), (5, -2),
                                              (6, -5), (7, -8), (8, -11), (9, -14)])
def test_recentre_shifts_by_hand(agent, shift):
    # centre column (agent + 0.5) * 3.2, moved to 16 (rounded): 14.4 -> 14, 4.8 -> 5, ...
    probes = np.arange(2 * 3 * 32, dtype=float).reshape(2, 3, 32)
    out = recentre(probes, agent)
    for j in range(32):
        np.testing.assert_array_equal(out[..., j], probes[..., (j - shift) % 32])


def test_roll_count_on_hand_made_lines():
    lines = np.array([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0],
                      [1.0, 1.0, -1.0, -1.0, -1.0, 1.0],
                      [1.0, 0.0, -1.0, -1.0, 0.0, 1.0],
                      [2.0, 3.0, 1.0, 0.5, 1.0, 9.0]])
    got = roll_count(lines)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [6, 2, 2, 0])
    np.testing.assert_array_equal(roll_count(0.5e-6 * lines[:2]), [0, 0])  # at rest
    np.testing.assert_array_equal(roll_count(1e-6 * lines[:2]), [6, 2])    # 1e-6 is not rest


def test_roll_count_per_line_of_a_batch():
    # each line is periodic on its own (a flat roll would join line 0's end to line 1's start),
    # and "at rest" is judged per line
    lines = np.array([[1.0, 1.0, -1.0, -1.0], [-1.0, -1.0, 1.0, 1.0], [1e-8, -1e-8, 1e-8, -1e-8]])
    np.testing.assert_array_equal(roll_count(lines), [2, 2, 0])
    # the count has the input's shape without its last axis: 0-d for one line, (2, 2) here
    one = roll_count(lines[0])
    assert one.shape == () and one == 2
    grid = np.array([[[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, -1.0]],
                     [[-1.0, -1.0, -1.0, -1.0], [1e-8, -1e-8, 1e-8, -1e-8]]])
    got = roll_count(grid)
    assert got.shape == (2, 2) and got.tolist() == [[4, 2], [0, 0]]


# -- float32 input is computed in float64 (NumPy 2 keeps float32 against Python floats) --------
def test_float32_input_gives_the_float64_result():
    a32 = np.array([0.3, -0.7, 1.0, 0.1, -0.2, 0.55, -1.0, 0.9, 0.05, -0.45], dtype=np.float32)
    a64 = a32.astype(np.float64)
    t = segment_temperatures(a32)
    assert t.dtype == np.float64
    np.testing.assert_allclose(t, segment_temperatures(a64), rtol=0, atol=1e-15)
    v = 0.75 * a64
    dev = v - v.mean()
    np.testing.assert_allclose(t, 2 + dev / max(1.0, np.abs(dev).max() / 0.75), rtol=0,
                               atol=1e-15)
    # temperatures far apart (their float32 differences round) and points inside blends
    temps32 = np.array([0.1, 2.7, 1.3, 3.9, 0.7, 2.2, 1.9, 0.4, 3.3, 1.1], dtype=np.float32)
    t64 = temps32.astype(np.float64)
    # (outside [0, 2 pi), so that the wrap itself rounds in float32)
    x32 = np.array([W10 + 0.011 + 2 * np.pi, 3 * W10 - 0.017 - 2 * np.pi, -0.007],
                   dtype=np.float32)
    x64 = x32.astype(np.float64)
    want = [t64[0] + (t64[1] - t64[0]) * _ramp((x64[0] - 2 * np.pi - W10 + 0.03) / 0.06),
            t64[2] + (t64[3] - t64[2]) * _ramp((x64[1] + 2 * np.pi - 3 * W10 + 0.03) / 0.06),
            t64[9] + (t64[0] - t64[9]) * _ramp((x64[2] + 0.03) / 0.06)]
    np.testing.assert_allclose(bottom_profile(temps32, x32), want, rtol=0, atol=1e-13)
    c = bottom_coefficients(temps32, 3)
    assert c[0] == pytest.approx(t64.mean(), abs=1e-15)
    np.testing.assert_allclose(c, bottom_coefficients(t64, 3), rtol=0, atol=1e-15)
    rng = np.random.default_rng(2)
    uy, temp = rng.normal(0, 0.2, (8, 32)), 1.5 + rng.normal(0, 0.3, (8, 32))
    got = probe_nusselt(uy.astype(np.float32), temp.astype(np.float32), 0.013)
    want_nu = _probe_nu(uy.astype(np.float32).astype(np.float64),
                        temp.astype(np.float32).astype(np.float64), 0.013)
    assert got == pytest.approx(want_nu, rel=1e-12)
    # float32(1e-6) = 9.99999997e-07 is below 1e-6 in float64: at rest
    assert roll_count(np.array([1e-6, -1e-6], dtype=np.float32)) == 0


def _ramp(t):
    return t * t * (3 - 2 * t)


def test_roll_count_ignores_a_touch_of_zero():
    # a sample exactly 0 between two of one sign is a touch, not two crossings; through 0 is one
    assert roll_count(np.array([1.0, 0.0, 1.0, -1.0])) == 2
    assert roll_count(np.array([1.0, 0.0, -1.0, -1.0])) == 2
    assert roll_count(np.array([[1.0, 0.0, 1.0, 1.0], [1.0, -1.0, 0.0, -1.0]])).tolist() == [0, 2]
