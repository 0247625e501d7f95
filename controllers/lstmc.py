"""LSTMc: an LSTM that maps a window of past states and set-point errors to the next jacket
temperature (Sitapure & Kwon 2023; MODELS.md section 3), registered as ``"lstmc"``.

At each control step the controller appends the measured signals of ``ctrlbench/Crystallization-v0``
(``mu0..mu4, c, T, mean_size``) and the set-point error ``mean_size_ref - mean_size`` to its
history, feeds the last ``W`` rows (the first row repeated before the batch has ``W``) through
the network and commands the predicted jacket temperature, clipped to the jacket bounds and,
from the second step on, to the plant's ``action_rate_limit`` around its previous command. It is
model-free: it learns from simulated batches under random jacket profiles whose set-point is the
size each batch reached (:mod:`controllers.lstmc_data`), i.e. "which jacket temperature did a
batch that ended at this size apply in this state".

Train a model (data cached in ``DIR/data``, checkpointed each epoch in ``DIR/checkpoint.pt``;
rerun the same command to resume; the model is ``DIR/model.pt``)::

    python -m controllers.lstmc train --out results/lstmc --workers 2          # 7000 batches
    python -m controllers.lstmc train --out /tmp/tiny --runs 16 --steps 24 --epochs 2 --hidden 8

and run it::

    ctrlbench run Crystallization-v0 lstmc --set path=results/lstmc/model.pt

``studies/crystallization_lstmc.py`` trains one and compares it with the PI and the NMPC.

:class:`LSTMRegressor` is the sklearn-style estimator (``fit(X, y)`` returns self, ``predict(X)``,
fitted attributes end in ``_``); ``save``/``load`` keep the weights with the input and output
normalisation, the window and the feature names in one atomic ``torch.save`` file (read back with
``weights_only=True``). Training is deterministic per seed (one torch thread, a seeded
initialisation and a shuffle seeded by ``(seed, epoch)``), so a resumed fit ends with the same
weights as an uninterrupted one. torch is imported only when a model is fitted or loaded, and
runs one thread then (``torch.set_num_threads(1)``: with two, a batch-of-one step next to the
plant's solver took 29 ms instead of 0.2 ms here).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from controllers.lstmc_data import train_lstmc
from ctrlbench.controller import FeedbackController
from ctrlbench.io import atomic_write
from ctrlbench.options import Options, option
from ctrlbench.runfolder import CorruptFileError, quarantine

__all__ = [
    "LSTMRegressor",
    "LSTMc",
    "LSTMcModelError",
    "LSTMcOptions",
    "TrainSettings",
    "feature_layout",
    "main",
    "make_lstmc",
    "train_lstmc",
]

MODEL_FORMAT = "ctrlbench-lstmc-model/1"
CHECKPOINT_FORMAT = "ctrlbench-lstmc-checkpoint/1"
TRAIN_HINT = ("train one with `python -m controllers.lstmc train --out DIR` (DIR/model.pt; see "
              "controllers/README.md) or run studies/crystallization_lstmc.py")


class LSTMcModelError(ValueError):
    """No model, or a model that does not fit the plant or the options (the message says how)."""


@dataclass(frozen=True)
class LSTMcOptions(Options):
    """Options of controller ``"lstmc"``."""

    label = "controller 'lstmc'"
    path: str | None = option(None, "trained model file (model.pt written by `python -m "
                              "controllers.lstmc train`); required")
    window: int | None = option(
        None, "expected window W; None = the model's (a different value refuses the model)",
        ge=1, le=1000)


@dataclass(frozen=True)
class TrainSettings(Options):
    """Network and training settings of the LSTMc."""

    label = "LSTMc training"
    window: int = option(12, "past steps W the network sees (12 = 2 h)", ge=1, le=144)
    hidden: int = option(64, "LSTM hidden units", ge=1, le=1024)
    layers: int = option(1, "stacked LSTM layers", ge=1, le=4)
    epochs: int = option(40, "passes over the training windows", ge=1, le=10_000)
    batch_size: int = option(256, "windows per gradient step", ge=1, le=65_536)
    lr: float = option(2e-3, "Adam learning rate (cosine decay to 0 over the epochs)",
                       gt=0.0, le=1.0)
    seed: int = option(0, "initialisation, shuffle and validation-split seed", ge=0,
                       le=2**31 - 1)
    samples_per_run: int = option(48, "periods drawn per batch as windows (0 = all 144)",
                                  ge=0, le=144)
    val_fraction: float = option(0.1, "fraction of batches held out for the validation loss",
                                 ge=0.0, lt=1.0)
    input_noise: float = option(
        0.15, "augmentation: each batch gets sensor noise of relative std U(0, input_noise) "
        "[-] (the study's largest noise level)", ge=0.0, le=0.5)


# -- features ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureLayout:
    """Where the LSTMc features sit in a plant's observation.

    Attributes
    ----------
    names:
        Feature names: the measured signals, then ``"<reference>-<tracked>"``.
    measured:
        Observation positions of the measured signals.
    tracked, reference:
        Observation positions of the tracked signal and its set-point.
    """

    names: tuple[str, ...]
    measured: tuple[int, ...]
    tracked: int
    reference: int


def feature_layout(plant: Any) -> FeatureLayout:
    """The feature layout of ``plant`` (one tracked reference; every other signal measured)."""
    from ctrlbench.plant import signals_of
    from ctrlbench.signals import index_of, reference_index

    obs, _ = signals_of(plant)
    refs = [s for s in obs if s.tracks is not None]
    if len(refs) != 1:
        raise LSTMcModelError(f"the LSTMc needs exactly one tracked reference, the plant has "
                              f"{[s.name for s in refs]}")
    tracked = str(refs[0].tracks)
    measured = tuple(i for i, s in enumerate(obs) if s.tracks is None)
    names = (*(obs[i].name for i in measured), f"{refs[0].name}-{tracked}")
    return FeatureLayout(names, measured, index_of(obs, tracked), reference_index(obs, tracked))


# -- the estimator -----------------------------------------------------------------------------
def _network(n_features: int, hidden: int, layers: int) -> Any:
    import torch

    return torch.nn.ModuleDict({"lstm": torch.nn.LSTM(n_features, hidden, layers,
                                                      batch_first=True),
                                "head": torch.nn.Linear(hidden, 1)})


def _forward(net: Any, x: Any) -> Any:
    out, _ = net["lstm"](x)
    return net["head"](out[:, -1]).squeeze(-1)


def _digest(*arrays: NDArray[Any]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype, a.shape)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


class LSTMRegressor:
    """LSTM regression from windows ``X (n, window, n_features)`` to ``y (n,)``.

    Parameters
    ----------
    window, hidden, layers, epochs, batch_size, lr, seed:
        As in :class:`TrainSettings`.
    checkpoint:
        File to checkpoint to after every epoch; ``fit`` resumes from it when it was made by
        the same settings on the same data, and sets a different or damaged one aside (to
        ``quarantine/`` next to it) and starts afresh.
    progress:
        Print one line per epoch (stderr).

    Attributes
    ----------
    net_:
        The fitted ``torch`` module (``lstm``, ``head``).
    x_mean_, x_std_, y_mean_, y_std_:
        Normalisation of inputs (per feature) and target.
    history_:
        ``[{"epoch", "loss", "val_loss", "seconds"}, ...]`` (losses on normalised targets;
        ``val_loss`` is ``None`` without an ``eval_set``).
    meta_:
        Metadata stored with the model (feature names, plant, settings).
    """

    def __init__(self, window: int = 12, hidden: int = 64, layers: int = 1, epochs: int = 40,
                 batch_size: int = 256, lr: float = 2e-3, seed: int = 0,
                 checkpoint: str | Path | None = None, progress: bool = False) -> None:
        self.window, self.hidden, self.layers, self.epochs = window, hidden, layers, epochs
        self.batch_size, self.lr, self.seed = batch_size, lr, seed
        self.checkpoint, self.progress = checkpoint, progress

    def _settings(self) -> dict[str, Any]:
        return {"window": self.window, "hidden": self.hidden, "layers": self.layers,
                "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "seed": self.seed}

    def _check_x(self, x: NDArray[Any], n_features: int | None = None) -> NDArray[np.float32]:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[1] != self.window:
            raise ValueError(f"X must have shape (n, window={self.window}, n_features), got "
                             f"{arr.shape}")
        if n_features is not None and arr.shape[2] != n_features:
            raise ValueError(f"X has {arr.shape[2]} features, the model {n_features}")
        if not np.isfinite(arr).all():
            raise ValueError("X holds non-finite values")
        return arr

    def fit(self, X: NDArray[Any], y: NDArray[Any],
            eval_set: tuple[NDArray[Any], NDArray[Any]] | None = None) -> LSTMRegressor:
        """Fit on windows ``X`` and targets ``y``; ``eval_set`` adds a validation loss."""
        import torch

        torch.set_num_threads(1)
        x = self._check_x(X)
        yy = np.asarray(y, dtype=np.float32).reshape(-1)
        if yy.shape[0] != x.shape[0] or not np.isfinite(yy).all():
            raise ValueError(f"y must be {x.shape[0]} finite values, got shape {yy.shape}")
        self.x_mean_ = x.mean(axis=(0, 1))
        self.x_std_ = np.maximum(x.std(axis=(0, 1)), 1e-6).astype(np.float32)
        self.y_mean_, self.y_std_ = float(yy.mean()), max(float(yy.std()), 1e-6)
        xt = torch.from_numpy((x - self.x_mean_) / self.x_std_)
        yt = torch.from_numpy((yy - self.y_mean_) / self.y_std_)
        val = None
        if eval_set is not None:
            xv = self._check_x(eval_set[0], x.shape[2])
            val = (torch.from_numpy((xv - self.x_mean_) / self.x_std_),
                   torch.from_numpy((np.asarray(eval_set[1], np.float32) - self.y_mean_)
                                    / self.y_std_))
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.net_ = _network(x.shape[2], self.hidden, self.layers)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        fingerprint = _digest(x, yy) + json.dumps(self._settings(), sort_keys=True)
        self.history_: list[dict[str, float | None]] = []
        start = self._resume(opt, fingerprint)
        for epoch in range(start, self.epochs):
            t0 = time.perf_counter()
            loss = self._epoch(xt, yt, opt, epoch)
            val_loss = self._loss(*val) if val else None
            row = {"epoch": epoch + 1, "loss": loss, "val_loss": val_loss,
                   "seconds": time.perf_counter() - t0}
            self.history_.append(row)
            if self.progress:
                print(f"LSTMc epoch {epoch + 1}/{self.epochs}: loss {loss:.4g}, val "
                      f"{val_loss if val_loss is None else f'{val_loss:.4g}'} "
                      f"({row['seconds']:.1f} s)", file=sys.stderr)
            self._save_checkpoint(opt, fingerprint, epoch + 1)
        self.net_.eval()
        return self

    def _epoch(self, xt: Any, yt: Any, opt: Any, epoch: int) -> float:
        import torch

        for group in opt.param_groups:  # cosine decay, a function of the epoch alone
            group["lr"] = self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        self.net_.train()
        order = torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(len(yt)))
        total = 0.0
        for i in range(0, len(order), self.batch_size):
            idx = order[i: i + self.batch_size]
            loss = torch.mean((_forward(self.net_, xt[idx]) - yt[idx]) ** 2)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"LSTMc training loss is {loss.item()} at epoch "
                                         f"{epoch + 1}; lower lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / max(len(order), 1)

    def _loss(self, xv: Any, yv: Any) -> float:
        import torch

        self.net_.eval()
        with torch.no_grad():
            pred = torch.cat([_forward(self.net_, xv[i: i + 4096])
                              for i in range(0, len(yv), 4096)])
        return float(torch.mean((pred - yv) ** 2))

    def _save_checkpoint(self, opt: Any, fingerprint: str, epoch: int) -> None:
        if self.checkpoint is None:
            return
        import torch

        state = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": epoch,
                 "net": self.net_.state_dict(), "opt": opt.state_dict(),
                 "history": json.dumps(self.history_)}
        atomic_write(self.checkpoint, lambda fh: torch.save(state, fh))

    def _resume(self, opt: Any, fingerprint: str) -> int:
        """The epoch to start from: a matching checkpoint's, else 0 (a bad one set aside)."""
        import torch

        if self.checkpoint is None or not Path(self.checkpoint).exists():
            return 0
        path = Path(self.checkpoint)
        try:
            state = torch.load(path, weights_only=True)
            if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not an LSTMc checkpoint")
        except Exception as exc:  # unreadable: set aside, never used
            where = quarantine(path, path.parent, f"unreadable checkpoint: {exc}")
            print(f"LSTMc: {path} is unreadable ({exc}); moved to {where}, training afresh",
                  file=sys.stderr)
            return 0
        if state.get("fingerprint") != fingerprint:
            where = quarantine(path, path.parent, "made by other settings or data")
            print(f"LSTMc: {path} was made by other settings or data; moved to {where}, "
                  f"training afresh", file=sys.stderr)
            return 0
        self.net_.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        self.history_ = json.loads(state["history"])
        if self.progress:
            print(f"LSTMc: resuming {path} after epoch {state['epoch']}", file=sys.stderr)
        return int(state["epoch"])

    def fingerprint(self) -> str:
        """SHA-256 of what determines the predictions (window, weights, normalisation)."""
        arrays = [np.asarray([self.window], dtype=np.int64), self.x_mean_, self.x_std_,
                  np.asarray([self.y_mean_, self.y_std_])]
        arrays += [v.detach().numpy() for v in self.net_.state_dict().values()]
        return _digest(*arrays)

    def predict(self, X: NDArray[Any]) -> NDArray[np.float64]:
        """Predicted targets for windows ``X (n, window, n_features)``."""
        import torch

        x = self._check_x(X, len(self.x_mean_))
        xt = torch.from_numpy((x - self.x_mean_) / self.x_std_)
        with torch.no_grad():
            out = torch.cat([_forward(self.net_, xt[i: i + 4096])
                             for i in range(0, len(x), 4096)]) if len(x) else torch.zeros(0)
        return out.numpy().astype(np.float64) * self.y_std_ + self.y_mean_

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the fitted model, its normalisation, window and ``meta`` atomically."""
        import torch

        self.meta_ = dict(meta or {})
        state = {"format": MODEL_FORMAT, "window": self.window, "hidden": self.hidden,
                 "layers": self.layers, "n_features": len(self.x_mean_),
                 "net": self.net_.state_dict(), "x_mean": torch.from_numpy(self.x_mean_),
                 "x_std": torch.from_numpy(self.x_std_), "y_mean": self.y_mean_,
                 "y_std": self.y_std_, "settings": json.dumps(self._settings()),
                 "history": json.dumps(self.history_), "meta": json.dumps(self.meta_)}
        return atomic_write(path, lambda fh: torch.save(state, fh))

    @classmethod
    def load(cls, path: str | Path) -> LSTMRegressor:
        """Read a model written by :meth:`save`.

        Raises
        ------
        LSTMcModelError
            No file at ``path`` (the message says how to train one).
        ctrlbench.runfolder.CorruptFileError
            The file is unreadable, not an LSTMc model, or inconsistent.
        """
        import torch

        torch.set_num_threads(1)  # a batch-of-one LSTM: more threads only contend (30x slower)
        path = Path(path)
        if not path.is_file():
            raise LSTMcModelError(f"no LSTMc model at {str(path)!r}; {TRAIN_HINT}")
        try:
            state = torch.load(path, weights_only=True)
        except Exception as exc:
            raise CorruptFileError(path, f"not a readable torch file ({exc})") from None
        if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
            raise CorruptFileError(path, f"not an LSTMc model (format "
                                   f"{state.get('format') if isinstance(state, dict) else None!r})")
        try:
            est = cls(**json.loads(state["settings"]))
            n = int(state["n_features"])
            w_ih = state["net"]["lstm.weight_ih_l0"]
            if tuple(w_ih.shape) != (4 * est.hidden, n) or state["x_mean"].shape != (n,):
                raise ValueError(f"weights {tuple(w_ih.shape)} do not match {n} features and "
                                 f"{est.hidden} hidden units")
            est.net_ = _network(n, est.hidden, est.layers)
            est.net_.load_state_dict(state["net"])
            est.net_.eval()
            est.x_mean_ = state["x_mean"].numpy().astype(np.float32)
            est.x_std_ = state["x_std"].numpy().astype(np.float32)
            est.y_mean_, est.y_std_ = float(state["y_mean"]), float(state["y_std"])
            est.history_ = json.loads(state["history"])
            est.meta_ = json.loads(state["meta"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CorruptFileError(path, f"inconsistent LSTMc model: {exc}") from None
        return est


# -- the controller ----------------------------------------------------------------------------
class LSTMc(FeedbackController):
    """The LSTM controller (see the module docstring).

    Parameters
    ----------
    dt:
        Control period [s].
    model:
        A fitted :class:`LSTMRegressor`.
    layout:
        Where its features are in the observation.
    u_low, u_high:
        Action bounds.
    max_step:
        Largest change of the command per step after the first (``inf``: none).
    """

    def __init__(self, dt: float, model: LSTMRegressor, layout: FeatureLayout, u_low: float,
                 u_high: float, max_step: float = math.inf) -> None:
        super().__init__(dt)
        self.model, self.layout = model, layout
        self.u_low, self.u_high, self.max_step = u_low, u_high, max_step
        self._rows: list[NDArray[np.float64]] = []
        self._u: float | None = None

    def reset(self) -> None:
        """Forget the history (a new batch)."""
        self._rows, self._u = [], None

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """One step: the predicted jacket temperature, within bounds and rate limit."""
        lay = self.layout
        row = np.append(observation[list(lay.measured)],
                        observation[lay.reference] - observation[lay.tracked])
        w = self.model.window
        self._rows = ([*self._rows, row])[-w:]
        rows = [self._rows[0]] * (w - len(self._rows)) + self._rows
        u = float(self.model.predict(np.stack(rows)[None])[0])
        if not math.isfinite(u):
            raise LSTMcModelError(f"the LSTMc predicted {u} (non-finite) from {row}")
        if self._u is not None:
            u = min(max(u, self._u - self.max_step), self._u + self.max_step)
        self._u = min(max(u, self.u_low), self.u_high)
        return np.array([self._u])


def make_lstmc(plant: Any, opts: LSTMcOptions) -> LSTMc:
    """Build ``"lstmc"`` from the model at ``opts.path`` (refused when it does not fit)."""
    from ctrlbench.plant import plant_dt, signals_of

    if opts.path is None:
        raise LSTMcModelError(f"controller 'lstmc' needs a trained model: pass --set "
                              f"path=DIR/model.pt; {TRAIN_HINT}")
    model = LSTMRegressor.load(opts.path)
    layout = feature_layout(plant)
    stored = tuple(model.meta_.get("features", ()))
    if stored != layout.names:
        raise LSTMcModelError(
            f"{opts.path!r} was trained on {len(stored)} features {list(stored)}, but this "
            f"plant gives {len(layout.names)}: {list(layout.names)}; train a model on this "
            f"plant ({TRAIN_HINT})")
    limit = getattr(getattr(plant, "spec", None), "max_episode_steps", None)
    if opts.window is not None and opts.window != model.window:
        raise LSTMcModelError(f"{opts.path!r} has window W={model.window}, the options ask for "
                              f"W={opts.window}; use a model trained with --window "
                              f"{opts.window} or drop the window option")
    if limit is not None and model.window > limit:
        raise LSTMcModelError(f"{opts.path!r} has window W={model.window}, longer than the "
                              f"plant's {limit}-step episode")
    _, act = signals_of(plant)
    try:
        rate = plant.get_wrapper_attr("action_rate_limit")
    except AttributeError:
        rate = None
    max_step = math.inf if rate is None else float(np.min(rate))
    return LSTMc(plant_dt(plant), model, layout, float(act[0].low), float(act[0].high),
                 max_step=max_step)


# -- training CLI ------------------------------------------------------------------------------
def _add_flags(parser: Any, cls: type[Options]) -> None:
    from ctrlbench.options import describe, parse_value

    for name, _, default, doc in describe(cls):
        parser.add_argument(f"--{name}", type=parse_value, default=None,
                            help=f"{doc} (default {default})")


def main(argv: list[str] | None = None) -> int:
    """``python -m controllers.lstmc train --out DIR [--workers N] [data and network flags]``."""
    import argparse

    from controllers.lstmc_data import DataSettings
    from ctrlbench.interrupt import exit_status, handle_signals

    parser = argparse.ArgumentParser(prog="python -m controllers.lstmc",
                                     description="Train the LSTMc on simulated batches.")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="simulate data (cached) and fit; rerun to resume")
    tr.add_argument("--out", required=True, help="training folder (model.pt goes here)")
    tr.add_argument("--data", default=None, help="data cache folder (default OUT/data)")
    tr.add_argument("--workers", type=int, default=1, help="simulation processes (default 1)")
    tr.add_argument("--quiet", action="store_true", help="no progress output")
    _add_flags(tr, DataSettings)
    _add_flags(tr, TrainSettings)
    args = vars(parser.parse_args(argv))
    pick = {c: {k: args[k] for k in c.__dataclass_fields__ if args.get(k) is not None}
            for c in (DataSettings, TrainSettings)}
    try:
        data = DataSettings.build(pick[DataSettings])
        train = TrainSettings.build(pick[TrainSettings])
        with handle_signals():
            t0 = time.perf_counter()
            path = train_lstmc(args["out"], data, train, workers=args["workers"],
                               data_dir=args["data"], progress=not args["quiet"])
    except KeyboardInterrupt as exc:
        print("LSTMc training interrupted; rerun the same command to resume", file=sys.stderr)
        return exit_status(exc)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
