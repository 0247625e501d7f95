"""The closed loop, trajectories and their persistence."""

import numpy as np
import pytest

import ctrlbench
from ctrlbench import metrics
from ctrlbench.trajectory import Trajectory


def test_pd_tracks_the_step_reference(traj):
    assert len(traj) == 500
    assert traj.observations.shape == (501, 3) and traj.actions.shape == (500, 1)
    assert abs(traj.error()[-1]) < 0.02 * abs(traj.signal("x_ref")[0])
    assert traj.meta["seed"] == 3 and traj.dt == pytest.approx(0.01)
    assert "error" in traj.info


def test_controller_is_reset_at_episode_start(plant, pd):
    ctrlbench.simulate(plant, pd, steps=3, seed=0)
    ctrlbench.simulate(plant, pd, steps=3, seed=0)
    assert pd.resets >= 2


def test_same_seed_same_trajectory_other_seed_differs(plant, pd):
    a = ctrlbench.simulate(plant, pd, steps=50, seed=1)
    b = ctrlbench.simulate(plant, pd, steps=50, seed=1)
    c = ctrlbench.simulate(plant, pd, steps=50, seed=2)
    np.testing.assert_array_equal(a.observations, b.observations)
    assert not np.array_equal(a.observations, c.observations)


def test_callback_can_stop_the_episode(plant, pd):
    seen = []
    traj = ctrlbench.simulate(plant, pd, steps=100, seed=0,
                              callbacks=[lambda k, *_: seen.append(k) or k == 9])
    assert len(traj) == 10 and seen == list(range(10))


def test_every_callback_sees_the_stopping_step(plant, pd):
    seen = []
    ctrlbench.simulate(plant, pd, steps=100, seed=0,
                       callbacks=[lambda k, *_: k == 4, lambda k, *_: seen.append(k)])
    assert seen == [0, 1, 2, 3, 4]


def test_episode_runs_to_time_limit_without_steps(plant, pd):
    traj = ctrlbench.simulate(plant, pd, seed=0)
    assert len(traj) == 1000 and traj.truncated is True  # the registered TimeLimit


def test_save_load_roundtrip_without_pickle(traj, tmp_path):
    path = traj.save(tmp_path / "run")
    assert path.suffix == ".npz" and (tmp_path / "run.json").exists()
    back = Trajectory.load(tmp_path / "run")
    np.testing.assert_array_equal(back.observations, traj.observations)
    np.testing.assert_array_equal(back.info["error"], traj.info["error"])
    assert back.observation_signals == traj.observation_signals
    assert metrics.summary(back) == metrics.summary(traj)


def test_to_pandas_and_plot(traj):
    df = traj.to_pandas()
    assert list(df.columns[:5]) == ["time", "x", "v", "x_ref", "F"]
    assert len(df) == 501 and np.isnan(df["F"].iloc[-1])
    fig = traj.plot()
    assert len(fig.axes) == 2


def test_unknown_signal_lists_valid_names(traj):
    with pytest.raises(KeyError, match=r"valid signals: \['x', 'v', 'x_ref', 'F'\]"):
        traj.signal("y")


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "sidecar-list"])
def test_corrupt_trajectory_files_raise_naming_the_file(tmp_path, damage):
    from ctrlbench.registry import make_controller, make_plant
    from ctrlbench.runfolder import CorruptFileError
    from ctrlbench.simulate import simulate

    env = make_plant("ctrlbench/MassSpringDamper-v0")
    path = simulate(env, make_controller("pid", env), steps=5, seed=0).save(tmp_path / "t")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"\x00PK" * 100)
    else:
        path.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(CorruptFileError, match=r"t\.(npz|json)' is corrupt"):
        Trajectory.load(path)
