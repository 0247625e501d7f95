"""Rayleigh–Bénard plant: actuation, probes, solver exactness, plant and multi-agent views."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from ctrlbench.options import OptionError  # noqa: E402
from ctrlbench.registry import make_plant  # noqa: E402
from plants.rbc import SMOKE  # noqa: E402
from plants.rbc.model import (  # noqa: E402
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
from plants.rbc.solver import SpectralRBC, cheb_interp_matrix, cheb_matrix, cheb_points  # noqa: E402

ACTION = st.lists(st.floats(-1.0, 1.0), min_size=10, max_size=10)


@given(ACTION)
@settings(max_examples=200, deadline=None)
def test_actuation_keeps_mean_two_and_amplitude(action: list[float]) -> None:
    t = segment_temperatures(np.array(action))
    assert abs(t.mean() - 2.0) < 1e-12
    assert np.all(np.abs(t - 2.0) <= 0.75 + 1e-12)
    c = bottom_coefficients(t, 48)
    assert c[0] == pytest.approx(2.0, abs=1e-12)


def test_actuation_hand_values() -> None:
    # a = e_0: v = (0.75, 0, ..), m = 0.075, max |v - m| = 0.675 < 0.75 so K2 = 1
    t = segment_temperatures(np.eye(10)[0])
    np.testing.assert_allclose(t, [2.675] + [1.925] * 9, atol=1e-14)
    # a = (1, -1 x 9): m = -0.6, v_0 - m = 1.35, K2 = 1.8
    t = segment_temperatures(np.array([1.0] + [-1.0] * 9))
    np.testing.assert_allclose(t, [2.75] + [2.0 - 0.15 / 1.8] * 9, atol=1e-14)


def test_bottom_profile_segments_blend_and_coefficients() -> None:
    temps = segment_temperatures(np.random.default_rng(3).uniform(-1, 1, 10))
    width = 2 * np.pi / 10
    mids = (np.arange(10) + 0.5) * width
    np.testing.assert_allclose(bottom_profile(temps, mids), temps, atol=1e-14)
    edges = np.arange(10) * width
    np.testing.assert_allclose(bottom_profile(temps, edges),
                               0.5 * (temps + np.roll(temps, 1)), atol=1e-12)
    # blend ends: 0.03 either side of an edge the neighbours' values are reached exactly
    near = np.array([edges[1] - 0.03])
    np.testing.assert_allclose(bottom_profile(temps, near), temps[0:1], atol=1e-12)
    # the exact coefficients against a fine-grid FFT of the profile
    n = 2**15
    x = 2 * np.pi * np.arange(n) / n
    fine = np.fft.rfft(bottom_profile(temps, x)) / n
    np.testing.assert_allclose(bottom_coefficients(temps, 48), fine[:48], atol=2e-5)


def test_chebyshev_operators_are_exact_on_polynomials() -> None:
    y = cheb_points(12)
    d = cheb_matrix(12)
    np.testing.assert_allclose(d @ y**5, 5 * y**4, atol=1e-11)
    rows = cheb_interp_matrix(12, np.array([0.3, -0.77]))
    np.testing.assert_allclose(rows @ (y**7 - y), np.array([0.3, -0.77])**7 - [0.3, -0.77],
                               atol=1e-12)


def test_probe_nusselt_of_conduction_is_the_index_gradient_formula() -> None:
    kappa = 1 / np.sqrt(0.7e4)
    yr = np.cos(np.pi * (2 * np.arange(0, 64, 8) + 1) / 128)
    np.testing.assert_allclose(probe_y(), yr)
    temp = np.repeat((1.5 - yr / 2)[:, None], 32, axis=1)
    want = -kappa * np.mean(np.gradient(1.5 - yr / 2)) / (kappa * 0.5)
    assert probe_nusselt(np.zeros_like(temp), temp, kappa) == pytest.approx(want, rel=1e-12)
    assert want < 0  # the authors' measure is negative for pure conduction
    uy = np.full_like(temp, 0.1)
    got = probe_nusselt(uy, temp, kappa)
    assert got == pytest.approx((0.1 * temp.mean() - kappa * np.mean(np.gradient(1.5 - yr / 2)))
                                / (kappa * 0.5), rel=1e-12)


def test_rolls_and_recentring() -> None:
    x = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    assert roll_count(np.sin(2 * x + 0.1)) == 4
    assert roll_count(np.sin(x + 0.1)) == 2
    assert roll_count(np.zeros(96)) == 0
    for i in range(10):
        cols = agent_columns(i)
        assert 3 <= len(cols) <= 4
        marker = np.zeros((1, 32))
        marker[0, cols] = 1.0
        moved = np.nonzero(recentre(marker, i)[0])[0]
        assert abs(moved.mean() - 15.5) <= 1.0
    assert probe_x()[3] == pytest.approx(2 * np.pi * 9 / 96)


def _solver(ra: float, dt: float = 0.05) -> SpectralRBC:
    torch.set_num_threads(1)
    return SpectralRBC(RBCParams(ra=ra, dt=dt, nx=16, ny=16), batch=2)


def test_below_onset_the_physical_nusselt_is_one() -> None:
    s = _solver(ra=100.0, dt=0.2)
    s.conduction(noise=1e-3, seed=1)
    s.step(250)
    nu = s.nusselt()
    for key in ("bottom", "top", "volume"):
        np.testing.assert_allclose(nu[key], 1.0, atol=1e-6)


def test_divergence_is_round_off_and_batch_equals_single() -> None:
    s = _solver(ra=1e4)
    s.authors_start(noise=0.05, seed=4)
    both = s.get_state()
    s.step(40)
    assert s.divergence() < 1e-10
    one = SpectralRBC(s.params, batch=1)
    one.set_state(both.select(1))
    one.step(40)
    np.testing.assert_allclose(one.get_state().temp[0], s.get_state().temp[1], atol=1e-12)
    assert np.all(s.time.numpy() == pytest.approx(40 * 0.05))


def test_blow_up_is_flagged_and_frozen_never_nan() -> None:
    s = SpectralRBC(RBCParams(nx=16, ny=16), batch=2, blowup=1e-4)
    s.authors_start(noise=0.05, seed=0)
    s.step(60)
    assert s.blown_up.all()
    f = s.fields()
    assert np.all(np.isfinite(f))
    assert np.all(s.time.numpy() < 60 * 0.05)


def test_plant_steps_on_its_smoke_grid_and_ends_on_blow_up() -> None:
    env = make_plant("ctrlbench/RBC-v0", **SMOKE)
    obs, info = env.reset(seed=0)
    assert obs.shape == (768,) and info["rolls"] == 0
    obs, reward, term, _, info = env.step(np.linspace(-1, 1, 10))
    assert reward == pytest.approx(2.6726 - info["nu_probe"])
    assert len(info["nu_local"]) == 10 and not term
    env.unwrapped.sim._solver.blowup = 1e-9
    for _ in range(3):
        obs, reward, term, _trunc, info = env.step(np.zeros(10))
        if term:
            break
    assert term and info["blown_up"] and np.all(np.isfinite(obs))


@pytest.mark.parametrize(("opts", "match"), [
    ({"nx": 17}, "nx"), ({"action_period": 0.07}, "action_period"),
    ({"start": "warm"}, "start"), ({"ra": float("nan")}, "ra"), ({"backend": "gpu"}, "backend"),
])
def test_bad_options_name_the_field(opts: dict[str, object], match: str) -> None:
    with pytest.raises(OptionError, match=match):
        make_plant("ctrlbench/RBC-v0", **opts)


def test_fem_backend_needs_the_authors_start() -> None:
    with pytest.raises(ValueError, match="start='authors'"):
        make_plant("ctrlbench/RBC-v0", backend="fem", start="developed")


def test_developed_start_is_cached_and_reloaded(tmp_path: object) -> None:
    from plants.rbc.start import developed_state

    p = RBCParams(nx=16, ny=12)
    first, meta = developed_state(p, start_time=1.0, cache_dir=str(tmp_path))
    assert meta["rolls"] >= 0 and "nu_probe" in meta
    files = list((tmp_path / "rbc").glob("rbc_*.npz"))  # type: ignore[operator]
    assert len(files) == 1
    again, meta2 = developed_state(p, start_time=1.0, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(first.temp, again.temp)
    assert meta2 == meta


def test_multi_agent_views() -> None:
    pytest.importorskip("pettingzoo")
    pytest.importorskip("stable_baselines3")
    from pettingzoo.test import parallel_api_test

    from plants.rbc.multi import RBCMultiAgentVecEnv, RBCParallelEnv, agent_rewards

    parallel_api_test(RBCParallelEnv(episode_actions=4, **SMOKE), num_cycles=10)
    venv = RBCMultiAgentVecEnv(n_sims=2, episode_actions=2, **SMOKE)  # type: ignore[arg-type]
    obs = np.asarray(venv.reset())
    assert obs.shape == (20, 768)
    rng = np.random.default_rng(0)
    _, rew, done, infos = venv.step(rng.uniform(-1, 1, (20, 1)))
    m = venv.sim.measure()
    np.testing.assert_allclose(rew, agent_rewards(m, venv.kappa).reshape(-1))
    assert not done.any()
    _, rew, done, infos = venv.step(rng.uniform(-1, 1, (20, 1)))
    assert done.all() and infos[0]["TimeLimit.truncated"]
    assert infos[13]["terminal_observation"].shape == (768,)
    with pytest.raises(ValueError, match="agent actions"):
        venv.step(np.full((20, 1), np.nan))


def test_regrid_interpolates_exactly_and_round_trips() -> None:
    s = _solver(ra=1e4)
    s.authors_start(noise=0.05, seed=2)
    s.step(5)
    st = s.get_state()
    fine = st.regrid(24, 12)                      # 16 -> 24 points, 8 -> 12 modes
    back = fine.regrid(16, 8)
    np.testing.assert_allclose(back.temp, st.temp, atol=1e-12)
    np.testing.assert_allclose(back.psi, st.psi, atol=1e-12)
    big = SpectralRBC(RBCParams(nx=24, ny=24), batch=2)
    big.set_state(fine)
    y = np.array([0.37, -0.81])
    xs = np.array([0.3, 2.2])
    np.testing.assert_allclose(big.fields(x=xs, y=y), s.fields(x=xs, y=y), atol=1e-12)


def test_segment_controllers_by_hand() -> None:
    from ctrlbench.registry import make_controller
    from plants.rbc.model import agent_columns

    env = make_plant("ctrlbench/RBC-v0", **SMOKE)
    pd = make_controller("rbc-pd", env, kp=2.0, kd=0.5)
    obs = np.zeros(768)
    obs[512 + 7 * 32 + agent_columns(0)] = 0.1          # segment 0 sees +0.1 on the bottom row
    first = pd.compute(obs)
    dev = np.full(10, -0.01)
    dev[0] = 0.09
    np.testing.assert_allclose(first, -2.0 * dev, atol=1e-12)   # no derivative on step 1
    second = pd.compute(np.zeros(768))
    np.testing.assert_allclose(second, np.clip(-0.5 * (0 - dev) / env.unwrapped.dt, -1, 1))
    mode = make_controller("rbc-mode", env, m=2, amplitude=0.5, duration=2)
    x = 2 * np.pi * (np.arange(10) + 0.5) / 10
    np.testing.assert_allclose(mode.compute(obs), 0.5 * np.cos(2 * x))
    mode.compute(obs)
    assert not mode.compute(obs).any()                   # heating over after 2 actions


@pytest.mark.slow
def test_plant_runs_on_the_fem_backend() -> None:
    from plants.rbc.fem_backend import available

    ok, why = available()
    if not ok:
        pytest.skip(why)
    env = make_plant("ctrlbench/RBC-v0", backend="fem", start="authors", action_period=0.1)
    try:
        obs, _ = env.reset(seed=0)
        obs, _, term, _, info = env.step(np.linspace(-1, 1, 10))
        assert obs.shape == (768,) and np.all(np.isfinite(obs)) and not term
        assert info["time"] == pytest.approx(0.1)          # its own dt 0.01, ten steps
    finally:
        env.close()


def test_cuda_device_without_a_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="device = 'cuda'"):
        make_plant("ctrlbench/RBC-v0", device="cuda")


@pytest.mark.gpu
def test_gpu_batch_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    p = RBCParams(nx=32, ny=24)
    cpu, gpu = SpectralRBC(p, batch=3), SpectralRBC(p, batch=3, device="cuda")
    cpu.authors_start(noise=0.05, seed=1)
    gpu.set_state(cpu.get_state())
    cpu.step(50)
    gpu.step(50)
    np.testing.assert_allclose(gpu.get_state().temp, cpu.get_state().temp, atol=1e-10)
