"""LSTMc: estimator (shapes, determinism, resume, save/load), the controller and its refusals,
the data cache (corrupt and mismatched files set aside and rebuilt), the training CLI and
``ctrlbench run ... lstmc --set path=``. Everything runs on tiny data (a few short batches on a
coarse grid) and a tiny network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from controllers.lstmc import (
    LSTMc,
    LSTMcModelError,
    LSTMRegressor,
    feature_layout,
    main,
)
from controllers.lstmc_data import BatchData, DataSettings, ensure_data, make_windows
from ctrlbench.registry import make_controller, make_plant
from ctrlbench.runfolder import CorruptFileError
from ctrlbench.simulate import simulate

PLANT = "ctrlbench/Crystallization-v0"
TINY_DATA = {"runs": 4, "chunk": 2, "steps": 6, "n_cells": 50}


def _xy(n: int = 48, window: int = 3, features: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, window, features))
    return x, x[:, -1, 0] * 2.0 + x[:, 0, 1] + 10.0


def _tiny(**kw):
    return LSTMRegressor(**{"window": 3, "hidden": 4, "epochs": 2, "batch_size": 16, **kw})


@pytest.fixture
def model_path(lstmc_model_path: Path) -> Path:
    """The session's tiny model trained through the CLI (``tests/conftest.py``)."""
    return lstmc_model_path


# -- estimator ---------------------------------------------------------------------------------
def test_fit_predict_shapes_and_determinism_per_seed():
    x, y = _xy()
    a = _tiny(seed=1).fit(x, y)
    pred = a.predict(x)
    assert pred.shape == (48,) and pred.dtype == np.float64 and np.isfinite(pred).all()
    assert len(a.history_) == 2 and a.x_mean_.shape == (4,)
    assert np.array_equal(_tiny(seed=1).fit(x, y).predict(x), pred)
    assert not np.allclose(_tiny(seed=2).fit(x, y).predict(x), pred)
    with pytest.raises(ValueError, match="window=3"):
        a.predict(x[:, :2])
    with pytest.raises(ValueError, match="features"):
        a.predict(x[:, :, :3])


def test_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    x, y = _xy()
    straight = _tiny(epochs=3).fit(x, y).predict(x)

    class Stop(LSTMRegressor):
        def _epoch(self, xt, yt, opt, epoch):
            if epoch == 2:
                raise KeyboardInterrupt
            return super()._epoch(xt, yt, opt, epoch)

    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        Stop(window=3, hidden=4, epochs=3, batch_size=16, checkpoint=ckpt).fit(x, y)
    resumed = _tiny(epochs=3, checkpoint=ckpt).fit(x, y)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    assert np.array_equal(resumed.predict(x), straight)


def test_checkpoint_of_other_settings_is_set_aside(tmp_path, capsys):
    x, y = _xy()
    ckpt = tmp_path / "checkpoint.pt"
    _tiny(checkpoint=ckpt).fit(x, y)
    _tiny(checkpoint=ckpt, lr=1e-2).fit(x, y)
    assert "other settings or data" in capsys.readouterr().err
    assert (tmp_path / "quarantine" / "checkpoint.pt").exists()
    ckpt.write_bytes(b"garbage")
    _tiny(checkpoint=ckpt).fit(x, y)
    assert "unreadable" in capsys.readouterr().err


def test_save_load_round_trip(tmp_path):
    x, y = _xy()
    est = _tiny().fit(x, y)
    path = est.save(tmp_path / "m.pt", meta={"features": ["a", "b", "c", "d"]})
    back = LSTMRegressor.load(path)
    assert np.array_equal(back.predict(x), est.predict(x))
    assert back.window == 3 and back.meta_["features"] == ["a", "b", "c", "d"]
    assert back.history_ == est.history_ and back.history_[0]["val_loss"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind


def test_corrupt_or_foreign_model_files_are_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torch")
    with pytest.raises(CorruptFileError, match=r"bad\.pt"):
        LSTMRegressor.load(bad)
    import torch

    torch.save({"format": "something else"}, bad)
    with pytest.raises(CorruptFileError, match="not an LSTMc model"):
        LSTMRegressor.load(bad)


# -- data --------------------------------------------------------------------------------------
def test_windows_repeat_the_first_step_and_carry_the_error():
    meas = np.arange(2 * 5 * 2, dtype=float).reshape(2, 5, 2)
    size = np.array([[1.0, 2, 3, 4, 5], [2, 3, 4, 5, 6]])
    batches = BatchData(meas, np.arange(8.0).reshape(2, 4), size, np.array([7, 8]), ("a", "b"),
                        1)
    x, y = make_windows(batches, window=3)
    assert x.shape == (8, 3, 3) and y.shape == (8,)
    assert np.array_equal(x[0, :, :2], np.repeat(meas[0, :1], 3, axis=0))  # step 0 padded
    assert np.array_equal(x[3, :, :2], meas[0, 1:4])
    assert np.allclose(x[3, :, 2], size[0, -1] - meas[0, 1:4, 1])  # set-point - tracked
    assert np.array_equal(y, np.arange(8.0))
    xs, _ = make_windows(batches, window=3, samples_per_run=2, seed=0)
    assert xs.shape == (4, 3, 3)
    xn, _ = make_windows(batches, window=3, noise=0.1, seed=0)
    assert not np.array_equal(xn, x) and np.allclose(xn, x, rtol=1.0, atol=20.0)


def test_corrupt_and_mismatched_cache_files_are_quarantined_and_rebuilt(tmp_path):
    settings = DataSettings(**TINY_DATA)
    warnings: list[str] = []
    first = ensure_data(settings, tmp_path, warn=warnings.append)
    assert len(first) == 4 and first.measured.shape == (4, 7, 9) and not warnings
    assert np.allclose(first.setpoint, first.size_true[:, -1])

    chunk = tmp_path / "chunk-00001.npz"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    again = ensure_data(settings, tmp_path, warn=warnings.append)
    assert len(warnings) == 2 and all("chunk-00001" in w for w in warnings)
    assert "checksum mismatch" in warnings[0]
    assert (tmp_path / "quarantine" / "chunk-00001.npz.why.txt").exists()
    assert np.array_equal(again.measured, first.measured)

    sidecar = tmp_path / "chunk-00000.json"
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "key": "0" * 16}))
    warnings.clear()
    assert np.array_equal(ensure_data(settings, tmp_path, warn=warnings.append).jacket,
                          first.jacket)
    assert "key=" in warnings[0] and "chunk-00000" in warnings[0]

    warnings.clear()
    other = DataSettings(**{**TINY_DATA, "n_cells": 60})
    ensure_data(other, tmp_path, warn=warnings.append)
    assert any("n_cells" in w and "cache.json" in w for w in warnings)
    assert json.loads((tmp_path / "cache.json").read_text())["settings"]["n_cells"] == 60


def test_more_runs_reuse_the_chunks_already_there(tmp_path):
    small = ensure_data(DataSettings(**{**TINY_DATA, "runs": 2}), tmp_path)
    warnings: list[str] = []
    big = ensure_data(DataSettings(**TINY_DATA), tmp_path, warn=warnings.append)
    assert not warnings and np.array_equal(big.measured[:2], small.measured)


# -- controller --------------------------------------------------------------------------------
def test_closed_loop_within_bounds_and_rate_limit(model_path):
    plant = make_plant(PLANT)
    ctrl = make_controller("lstmc", plant, path=str(model_path))
    assert isinstance(ctrl, LSTMc) and ctrl.model.window == 3
    traj = simulate(plant, ctrl, steps=8, seed=0)
    u = traj.actions[:, 0]
    assert np.isfinite(u).all() and (u >= 5.0).all() and (u <= 40.0).all()
    assert np.all(np.abs(np.diff(u)) <= plant.get_wrapper_attr("action_rate_limit") + 1e-9)
    again = simulate(plant, ctrl, steps=8, seed=0)  # reset between episodes: same result
    assert np.array_equal(again.actions, traj.actions)


def test_missing_model_says_how_to_train_one(tmp_path):
    plant = make_plant(PLANT)
    for opts in ({}, {"path": str(tmp_path / "nope.pt")}):
        with pytest.raises(LSTMcModelError, match=r"python -m controllers\.lstmc train"):
            make_controller("lstmc", plant, **opts)


def test_mismatched_window_or_features_are_refused(model_path, tmp_path):
    plant = make_plant(PLANT)
    with pytest.raises(LSTMcModelError, match=r"window W=3.*W=5"):
        make_controller("lstmc", plant, path=str(model_path), window=5)
    assert make_controller("lstmc", plant, path=str(model_path), window=3).model.window == 3
    est = LSTMRegressor.load(model_path)
    names = feature_layout(plant).names
    fewer = est.save(tmp_path / "fewer.pt", meta={**est.meta_, "features": list(names[1:])})
    with pytest.raises(LSTMcModelError, match=r"trained on 9 features.*gives 10"):
        make_controller("lstmc", plant, path=str(fewer))


def test_ctrlbench_run_with_a_trained_model(model_path, tmp_path, capsys):
    from ctrlbench.cli import main as cli

    code = cli(["run", "ctrlbench/Crystallization-v0", "lstmc", "--set", f"path={model_path}",
                "--steps", "4", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr()
    assert list(tmp_path.glob("*lstmc*.npz"))


def test_train_cli_rejects_bad_flags(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--epochs", "0"]) == 2
    assert "epochs" in capsys.readouterr().err
