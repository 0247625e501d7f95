"""``ctrlbench train`` with SB3: round trip through ``sb3:PATH``, resume, and clear errors."""

from __future__ import annotations

import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from controllers.sb3_policy import CheckpointError, algorithm_of  # noqa: E402
from ctrlbench.cli import main  # noqa: E402
from ctrlbench.registry import make_controller, make_plant  # noqa: E402
from ctrlbench.runfolder import RunFolderError  # noqa: E402
from ctrlbench.simulate import simulate  # noqa: E402
from ctrlbench.training import NonFiniteLossError, load_eval_log, train  # noqa: E402

PLANT = "ctrlbench/MassSpringDamper-v0"
#: A small, fast SAC: 16-unit networks, short warm-up, small batches.
TINY = {"learning_starts": 50, "batch_size": 32, "net_arch": (16, 16), "buffer_size": 2000}
SETTINGS = {"steps": 200, "eval_every": 100, "checkpoint_every": 100, "eval_steps": 60,
            "tensorboard": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("sac")
    result = train("sac", PLANT, out, settings=SETTINGS, algorithm_options=TINY)
    return out, result


def test_saved_model_gives_the_actions_it_gave_in_training(trained):
    out, result = trained
    assert result["steps"] == 200 and algorithm_of(out) == "sac"
    plant = make_plant(PLANT)
    ctrl = make_controller(f"sb3:{out}", plant)
    traj = simulate(plant, ctrl, steps=SETTINGS["eval_steps"], seed=0 + 1_000_003)
    last = result["last_eval"]  # the in-memory model's evaluation at the end of training
    assert last["step"] == 200
    assert traj.meta is not None
    assert float(np.sum(traj.rewards)) == pytest.approx(last["return"], rel=1e-12, abs=1e-12)
    # and through the CLI, as a user runs it: the same actions, step for step
    assert main(["run", PLANT, f"sb3:{out}", "--steps", "60", "--seed", str(1_000_003),
                 "--out", str(out / "cli")]) == 0
    saved = np.load(next((out / "cli").glob("*.npz")))
    assert np.array_equal(saved["actions"], traj.actions)


def test_evaluations_record_control_metrics_next_to_the_return(trained):
    out, _ = trained
    rows = load_eval_log(out)
    assert [r["step"] for r in rows] == [100, 200]
    for key in ("return", "iae", "x_ref.overshoot", "control_effort"):
        assert key in rows[-1], key


def test_resume_continues_the_step_count_and_the_replay_buffer(tmp_path):
    from stable_baselines3 import SAC

    out = tmp_path / "run"
    train("sac", PLANT, out, settings={**SETTINGS, "steps": 100}, algorithm_options=TINY)
    first = SAC.load(out / "checkpoint" / "model.zip")
    assert first.num_timesteps == 100
    result = train("sac", PLANT, out, settings={**SETTINGS, "steps": 150},
                   algorithm_options=TINY, resume=True)
    assert result["steps"] == 150
    model = SAC.load(out / "checkpoint" / "model.zip")
    model.load_replay_buffer(out / "checkpoint" / "replay_buffer.pkl")
    assert model.num_timesteps == 150
    assert model.replay_buffer.size() == 150  # 100 kept + 50 new, not a fresh buffer of 50
    assert [r["step"] for r in load_eval_log(out)] == [100, 150]


def test_resume_refuses_another_configuration_and_a_new_run_refuses_the_folder(trained,
                                                                               tmp_path):
    out, _ = trained
    with pytest.raises(RunFolderError, match=r"configuration differs.*algorithm_options"):
        train("sac", PLANT, out, settings=SETTINGS, algorithm_options={**TINY, "tau": 0.1},
              resume=True)
    with pytest.raises(RunFolderError, match=r"already holds a run"):
        train("sac", PLANT, out, settings=SETTINGS, algorithm_options=TINY)
    with pytest.raises(RunFolderError, match=r"nothing to resume"):
        train("sac", PLANT, tmp_path / "empty", settings=SETTINGS, resume=True)


def test_unknown_algorithm_and_discrete_actions_are_named(tmp_path, capsys):
    with pytest.raises(KeyError, match=r"unknown algorithm 'sca'.*Did you mean 'sac'"):
        train("sca", PLANT, tmp_path / "a")
    with pytest.raises(ValueError, match=r"sac needs a continuous Box action space; "
                                         r"CartPole-v1 has Discrete\(2\)"):
        train("sac", "CartPole-v1", tmp_path / "b", settings=SETTINGS)
    assert not (tmp_path / "b" / "config.json").exists()  # nothing trained: the folder is free
    assert main(["train", "ppo2", PLANT, "--out", str(tmp_path / "c")]) == 2
    assert "valid algorithm names: ppo, sac" in capsys.readouterr().err
    assert main(["train", "sac", PLANT, "--out", str(tmp_path / "d"), "--set", "tau=2"]) == 2
    assert "tau" in capsys.readouterr().err


def test_corrupt_and_mismatched_checkpoints_are_named(trained, tmp_path):
    out, _ = trained
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip file")
    plant = make_plant(PLANT)
    with pytest.raises(CheckpointError, match=r"bad\.zip is not a readable SB3 model"):
        make_controller(f"sb3:{bad}", plant)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("data", json.dumps({"policy_class": {"__module__": "mylib.policies"}}))
    with pytest.raises(CheckpointError, match=r"'mylib\.policies', not a known SB3 algorithm"):
        make_controller(f"sb3:{tmp_path / 'other.zip'}", plant)
    with pytest.raises(CheckpointError, match=r"holds no trained model"):
        make_controller(f"sb3:{tmp_path}", plant)
    other = make_plant("ctrlbench/NMESKnee-v0")
    with pytest.raises(CheckpointError,
                       match=r"trained with action space .* but ctrlbench/NMESKnee-v0 has"):
        make_controller(f"sb3:{out}", other)


class _NaNAfter(gym.Env):
    """A 1-D env whose reward turns to NaN after 80 steps (a broken reward model)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,))
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))

    def __init__(self):
        self.k = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.k += 1
        reward = float("nan") if self.k > 80 else -float(action[0]) ** 2
        return np.zeros(1, dtype=np.float32), reward, False, self.k % 50 == 0, {}


def test_a_non_finite_loss_stops_training_and_keeps_the_checkpoint(tmp_path):
    gym.register("CtrlbenchTestNaN-v0", entry_point=_NaNAfter)
    try:
        with pytest.raises(NonFiniteLossError, match=r"train/\w+ = nan at step \d+; the last "
                                                     r"checkpoint \(step 60\) is kept"):
            train("sac", "CtrlbenchTestNaN-v0", tmp_path,
                  settings={**SETTINGS, "steps": 200, "checkpoint_every": 60,
                            "normalize_obs": "none"},
                  algorithm_options={**TINY, "learning_starts": 40})
    finally:
        gym.registry.pop("CtrlbenchTestNaN-v0")
    assert (tmp_path / "checkpoint" / "model.zip").is_file()
    assert json.loads((tmp_path / "checkpoint" / "state.json").read_text())["step"] == 60


def test_sindy_rl_counts_real_steps_and_runs_as_sb3_controller(tmp_path, capsys):
    pytest.importorskip("pysindy")
    out = tmp_path / "sr"
    opts = {"random_steps": 50, "real_steps_per_round": 30, "surrogate_steps_per_round": 40,
            "agent_learning_starts": 10, "agent_net_arch": (8,), "n_models": 3}
    result = train("sindy-rl", PLANT, out, settings={**SETTINGS, "steps": 110},
                   algorithm_options=opts)
    assert result["steps"] == 110  # 50 random + 2 rounds x 30 on-policy: every one counted
    assert [r["step"] for r in load_eval_log(out)] == [80, 110]
    history = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["real_steps"] for h in history] == [50, 80, 110]
    assert np.load(out / "real_data.npz")["x"].shape == (110, 3)
    plant = make_plant(PLANT)
    traj = simulate(plant, make_controller(f"sb3:{out}", plant), steps=20, seed=0)
    assert np.all(np.isfinite(traj.actions))
    with pytest.raises(CheckpointError, match="not resumable"):
        train("sindy-rl", PLANT, out, settings={**SETTINGS, "steps": 110},
              algorithm_options=opts, resume=True)


def test_a_trained_run_is_a_controller_in_a_study_spec(trained, tmp_path):
    from ctrlbench.study import StudySpec, run_study

    out, _ = trained
    spec = StudySpec(name="sb3", plants=[PLANT], controllers=["pid", f"sb3:{out}"], seeds=[0, 1],
                     steps=30)
    records = run_study(spec, tmp_path / "study")
    assert sorted(r["controller"] for r in records) == ["pid", "pid", f"sb3:{out}", f"sb3:{out}"]
    assert all(r["status"] == "ok" for r in records), records


def test_running_normalization_is_saved_and_applied_by_the_controller(tmp_path):
    out = tmp_path / "vn"
    result = train("sac", PLANT, out, settings={**SETTINGS, "steps": 80,
                                                "normalize_obs": "running",
                                                "normalize_reward": True},
                   algorithm_options=TINY)
    assert (out / "vecnormalize.pkl").is_file() and not (out / "normalize.json").exists()
    plant = make_plant(PLANT)
    traj = simulate(plant, make_controller(f"sb3:{out}", plant), steps=SETTINGS["eval_steps"],
                    seed=1_000_003)
    assert float(np.sum(traj.rewards)) == pytest.approx(result["last_eval"]["return"],
                                                        rel=1e-12, abs=1e-12)


def test_ppo_and_a_batched_plant_round_trip_through_sb3_path(tmp_path):
    """PPO's policy class lives in SB3's common module: the algorithm is read from its data; a
    batched plant (``n_envs`` in one pass) trains and its run folder is a controller."""
    out = tmp_path / "ppo"
    opts = {"n_steps": 16, "batch_size": 32, "n_epochs": 1, "net_arch": (8, 8)}
    train("ppo", "ctrlbench/LaserPulse-v0", out, algorithm_options=opts,
          settings={"steps": 64, "n_envs": 4, "eval_every": 0, "checkpoint_every": 0,
                    "eval_steps": 5, "tensorboard": False})
    assert algorithm_of(out) == "ppo"
    assert json.loads((out / "config.json").read_text())["settings"]["n_envs"] == 4
    plant = make_plant("ctrlbench/LaserPulse-v0")
    traj = simulate(plant, make_controller(f"sb3:{out}", plant), steps=5, seed=0)
    assert traj.actions.shape == (5, 3) and np.all(np.abs(traj.actions) <= 0.1)
