"""The trainer's frozen configuration (one default per field, a one-line doc per field)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from ctrlbench.options import Options, option
from llm_rl.entropy_control import ControlConfig
from llm_rl.losses import LossConfig
from llm_rl.policy import PolicySpec

__all__ = ["SFTConfig", "TrainConfig", "config_from_dict", "config_hash"]


@dataclass(frozen=True)
class SFTConfig(Options):
    """Supervised warm start on a noisy teacher (so groups of 8 carry signal)."""

    label: ClassVar[str] = "sft"
    steps: int = option(
        300, "Optimizer steps (300: the warm start the PID defaults were tuned on).", ge=0)
    batch: int = option(64, "Sequences per step.", ge=1)
    lr: float = option(3e-3, "AdamW learning rate.", gt=0)
    teacher_noise: float = option(0.3, "Probability the teacher gives a near miss instead of a "
                                  "correct answer.", ge=0, le=1)


@dataclass(frozen=True)
class TrainConfig(Options):
    """One GRPO run: task, policy, warm start, rollout, loss, entropy controller, logging."""

    task: str = option("sumpair", "Registered task: sumpair, countdown-lite, add-n.")
    # Nested defaults are frozen, validated instances (immutable, so sharing them is safe).
    policy: PolicySpec = option(PolicySpec(), "Tiny model built when init is empty.")  # noqa: RUF009
    init: str = option("", "Local checkpoint directory to start from; empty = build policy and "
                       "SFT it.")
    sft: SFTConfig = option(SFTConfig(),  # noqa: RUF009
                            "Warm start used when init is empty (cached under sft_dir).")
    sft_dir: str = option("runs/llm/sft", "Where warm-start checkpoints are cached (keyed by "
                          "task, policy, sft, seed).")
    steps: int = option(150, "GRPO steps (one rollout each).", ge=1)
    prompts_per_step: int = option(16, "Prompts per rollout.", ge=1)
    group_size: int = option(8, "Samples per prompt (G).", ge=1)
    lr: float = option(1e-3, "AdamW learning rate.", gt=0)
    temperature: float = option(1.0, "Sampling temperature (unless the controller drives it).",
                                gt=0)
    minibatches: int = option(2, "Optimizer steps per epoch over a rollout (>= 2 lets ratios "
                              "move off 1).", ge=1)
    epochs: int = option(1, "Passes over each rollout.", ge=1)
    max_grad_norm: float = option(1.0, "Gradient-norm clip.", gt=0)
    dynamic_sampling: bool = option(False, "DAPO: drop groups whose rewards are all equal from "
                                    "the update.")
    loss: LossConfig = option(LossConfig(), "Policy loss.")  # noqa: RUF009
    control: ControlConfig = option(ControlConfig(),  # noqa: RUF009
                                    "Entropy controller (constant 0 bonus = open loop).")
    eval_every: int = option(10, "Held-out evaluation period in steps (also at step 0 and the "
                             "last step).", ge=1)
    eval_size: int = option(32, "Held-out problems.", ge=1)
    pass_k: int = option(8, "Samples per held-out problem (pass@1 and pass@k).", ge=1)
    checkpoint_every: int = option(25, "Checkpoint period in steps (and at the end).", ge=1)
    seed: int = option(0, "Seeds prompts, sampling, minibatch order, Clip-Cov selection and the "
                       "tiny model.")
    device: str = option("cpu", "Torch device.")
    fast_rollout: bool = option(False, "Static-cache rollout (+ CUDA-graph compile on CUDA).")
    out_dir: str = option("runs/llm/run", "Run directory: metrics.jsonl, checkpoint.pt, "
                          "tensorboard/, policy/.")
    tensorboard: bool = option(True, "Also write TensorBoard scalars when "
                               "torch.utils.tensorboard imports.")


_NESTED: dict[str, type[Options]] = {
    "policy": PolicySpec, "sft": SFTConfig, "loss": LossConfig, "control": ControlConfig,
}


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Inverse of ``dataclasses.asdict`` for :class:`TrainConfig`.

    Unknown keys raise :class:`~ctrlbench.options.OptionError` listing the valid ones; the
    ``options`` mapping of ``loss``/``control`` is built by the loss / controller registry.
    """
    kwargs = dict(data)
    for key, cls in _NESTED.items():
        if key in kwargs and isinstance(kwargs[key], dict):
            kwargs[key] = cls.build(kwargs[key], what=f"TrainConfig.{key}")
    return TrainConfig.build(kwargs)


def config_hash(*parts: Any) -> str:
    """Short stable hash of dataclasses / JSON-able values."""
    blob = json.dumps(
        [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts],  # type: ignore[arg-type]
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
