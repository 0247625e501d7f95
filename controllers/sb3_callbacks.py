"""What a ``ctrlbench train`` run does between SB3's steps: evaluate, checkpoint, guard.

:class:`TrainCallback` (an SB3 ``BaseCallback``):

- every ``eval_every`` steps (and at the end; at the start of the next rollout, i.e. after the
  gradient steps that follow the step) runs the current policy on a fresh plant with
  :func:`ctrlbench.simulate.simulate` and appends the control metrics (IAE, overshoot, ...,
  return) with the step count to ``eval.jsonl``, and to TensorBoard as ``eval/<metric>``;
- every ``checkpoint_every`` steps writes model, replay buffer and normalization to
  ``checkpoint/`` (built in ``checkpoint.new/``, then swapped in by renames: a kill at any moment
  leaves one whole checkpoint, which :func:`load_checkpoint_dir` finds);
- after each step checks the losses SB3 logged (``train/*loss*``, ``train/ent_coef``): a
  non-finite value stops the run with :class:`~ctrlbench.training.NonFiniteLossError`, keeping
  the last checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from controllers.sb3_policy import NORMALIZE, VECNORMALIZE, ObservationScaler, SB3Policy
from ctrlbench.training import CHECKPOINT, EVAL_LOG, MODEL, NonFiniteLossError, TrainRun

__all__ = ["TrainCallback", "evaluate", "load_checkpoint_dir", "save_checkpoint"]

_NEW, _OLD = f"{CHECKPOINT}.new", f"{CHECKPOINT}.old"


def load_checkpoint_dir(out: Path) -> Path | None:
    """The folder of the run's last complete checkpoint, or ``None``.

    A kill between the two renames of :func:`save_checkpoint` leaves ``checkpoint.old`` (whole)
    and no ``checkpoint``: that one is used. A half-written ``checkpoint.new`` is discarded.
    """
    cur, old, new = out / CHECKPOINT, out / _OLD, out / _NEW
    if new.exists():
        shutil.rmtree(new)
    if not cur.is_dir() and old.is_dir():
        os.replace(old, cur)
    if old.exists():
        shutil.rmtree(old)
    return cur if (cur / MODEL).is_file() else None


def save_checkpoint(model: Any, out: Path, scaling: dict[str, Any] | None) -> Path:
    """Write model, replay buffer and normalization to ``out/checkpoint`` atomically."""
    new, cur, old = out / _NEW, out / CHECKPOINT, out / _OLD
    if new.exists():
        shutil.rmtree(new)
    new.mkdir()
    model.save(new / MODEL)
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        model.save_replay_buffer(new / "replay_buffer.pkl")
    venv = model.get_vec_normalize_env()
    if venv is not None:
        venv.save(str(new / VECNORMALIZE))
    if scaling is not None:
        (new / NORMALIZE).write_text(json.dumps(scaling))
    (new / "state.json").write_text(json.dumps({"step": int(model.num_timesteps)}))
    if cur.exists():
        os.replace(cur, old)
    os.replace(new, cur)
    if old.exists():
        shutil.rmtree(old)
    return cur


_ALSO_CHECKED = ("train/ent_coef", "train/parameters")


def _finite_parameters(model: Any) -> bool:
    import torch

    with torch.no_grad():
        return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


class TrainCallback(BaseCallback):
    """Evaluation, checkpoints and the non-finite-loss guard of one training run.

    Parameters
    ----------
    run:
        The training request (folder, settings, plant).
    scaling:
        The ``"bounds"`` observation map (``None`` otherwise).
    """

    def __init__(self, run: TrainRun, scaling: dict[str, Any] | None) -> None:
        super().__init__(verbose=0)
        self.run = run
        self.scaling = scaling
        self.last_eval: dict[str, Any] | None = None
        self.last_checkpoint: int | None = None
        self._next_eval: float = 0
        self._next_ckpt: float = 0

    def _on_training_start(self) -> None:
        s, n = self.run.settings, int(self.num_timesteps)
        self._next_eval = n + s.eval_every if s.eval_every else math.inf
        self._next_ckpt = n + s.checkpoint_every if s.checkpoint_every else math.inf

    def _on_step(self) -> bool:
        self._check_losses()
        return True

    def _on_rollout_start(self) -> None:
        # after the previous rollout's gradient steps: the saved and evaluated policy is the one
        # the next step acts with (in _on_step it would miss the update that follows the step);
        # the losses of those gradient steps are checked before the policy acts or is saved
        self._check_losses()
        n = int(self.num_timesteps)
        if n >= self._next_ckpt:
            save_checkpoint(self.model, self.run.out, self.scaling)
            self.last_checkpoint = n
            self._next_ckpt = n + self.run.settings.checkpoint_every
        if n >= self._next_eval:
            self.evaluate(self.model)
            self._next_eval = n + self.run.settings.eval_every

    def finish(self, model: Any) -> None:
        """End of training: a last checkpoint and evaluation of the final policy."""
        self.model = model
        n = int(model.num_timesteps)
        if self.last_checkpoint != n:
            save_checkpoint(model, self.run.out, self.scaling)
            self.last_checkpoint = n
        if self.last_eval is None or self.last_eval["step"] != n:
            self.evaluate(model)

    def _check_losses(self) -> None:
        values = dict(getattr(self.model.logger, "name_to_value", {}))
        if not _finite_parameters(self.model):
            values.setdefault("train/parameters", math.nan)
        for key, value in values.items():
            if key.startswith("train/") and ("loss" in key or key in _ALSO_CHECKED):
                if isinstance(value, (int, float)) and not math.isfinite(value):
                    ckpt = (f"the last checkpoint (step {self.last_checkpoint}) is kept in "
                            f"{self.run.out / CHECKPOINT}" if self.last_checkpoint is not None
                            else "no checkpoint was saved yet")
                    raise NonFiniteLossError(
                        f"{self.run.algorithm} on {self.run.plant}: {key} = {value} at step "
                        f"{self.num_timesteps}; {ckpt}. Lower the learning rate or check the "
                        f"plant's rewards")

    def scaler(self, model: Any) -> ObservationScaler:
        """The observation map the policy sees now."""
        venv = model.get_vec_normalize_env()
        if venv is not None:
            return ObservationScaler.from_vecnormalize(venv)
        if self.scaling is not None:
            return ObservationScaler(self.scaling["offset"], self.scaling["scale"])
        return ObservationScaler()

    def evaluate(self, model: Any) -> dict[str, Any]:
        """One evaluation episode on a fresh plant; appends a line to ``eval.jsonl``."""
        row = evaluate(self.run, model, self.scaler(model), int(model.num_timesteps))
        self.last_eval = row
        return row


def evaluate(run: TrainRun, model: Any, scaler: ObservationScaler, step: int
             ) -> dict[str, Any]:
    """Run ``model`` (behind ``scaler``) for one episode on a fresh plant with ``simulate``;
    append ``{"step": step, <control metrics>, "return": ...}`` to ``eval.jsonl`` and record
    the metrics in the model's logger (TensorBoard ``eval/*``)."""
    from controllers.sb3_train import make_env
    from ctrlbench.metrics import summary
    from ctrlbench.simulate import simulate

    s = run.settings
    env = make_env(run.plant, dict(run.plant_options))
    try:
        traj = simulate(env, SB3Policy(model, scaler), steps=s.eval_steps,
                        seed=s.seed + 1_000_003)
    finally:
        env.close()
    row: dict[str, Any] = {"step": step}
    for key, value in summary(traj).items():
        if isinstance(value, (bool, int)):
            row[key] = value
        elif isinstance(value, float):
            row[key] = value if math.isfinite(value) else None
    with open(run.out / EVAL_LOG, "a") as f:
        f.write(json.dumps(row) + "\n")
    logger = getattr(model, "_logger", None)  # set once the model has learned
    for key, value in row.items():
        if logger is not None and key != "step" and isinstance(value, float):
            logger.record(f"eval/{key}", value)
    return row
