"""The trainer's frozen configuration (one default per field, a one-line doc per field)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from llm_rl.entropy_control import ControlConfig
from llm_rl.losses import LossConfig
from llm_rl.policy import PolicySpec
from llm_rl.validation import check_field, finite

__all__ = ["SFTConfig", "TrainConfig", "config_from_dict", "config_hash"]


@dataclass(frozen=True)
class SFTConfig:
    """Supervised warm start on a noisy teacher (so groups of 8 carry signal)."""

    steps: int = 200
    """Optimizer steps."""
    batch: int = 64
    """Sequences per step."""
    lr: float = 3e-3
    """AdamW learning rate."""
    teacher_noise: float = 0.3
    """Probability the teacher gives a near miss instead of a correct answer."""

    def __post_init__(self) -> None:
        check_field(self, "steps", isinstance(self.steps, int) and self.steps >= 0, "int >= 0")
        check_field(self, "batch", isinstance(self.batch, int) and self.batch >= 1, "int >= 1")
        check_field(self, "lr", finite(self.lr) and self.lr > 0, "finite > 0")
        check_field(self, "teacher_noise", finite(self.teacher_noise)
                    and 0 <= self.teacher_noise <= 1, "[0, 1]")


@dataclass(frozen=True)
class TrainConfig:
    """One GRPO run: task, policy, warm start, rollout, loss, entropy controller, logging."""

    task: str = "sumpair"
    """Registered task: sumpair, countdown-lite, add-n."""
    policy: PolicySpec = field(default_factory=PolicySpec)
    """Tiny model built when ``init`` is empty."""
    init: str = ""
    """Local checkpoint directory to start from; empty = build ``policy`` and SFT it."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Warm start used when ``init`` is empty (cached under ``sft_dir``)."""
    sft_dir: str = "runs/llm/sft"
    """Where warm-start checkpoints are cached (keyed by task, policy, sft, seed)."""
    steps: int = 150
    """GRPO steps (one rollout each)."""
    prompts_per_step: int = 16
    """Prompts per rollout."""
    group_size: int = 8
    """Samples per prompt (G)."""
    lr: float = 1e-3
    """AdamW learning rate."""
    temperature: float = 1.0
    """Sampling temperature (unless the controller drives it)."""
    minibatches: int = 2
    """Optimizer steps per epoch over a rollout (>= 2 lets ratios move off 1)."""
    epochs: int = 1
    """Passes over each rollout."""
    max_grad_norm: float = 1.0
    """Gradient-norm clip."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal from the update."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Policy loss."""
    control: ControlConfig = field(default_factory=ControlConfig)
    """Entropy controller (constant 0 bonus = open loop)."""
    eval_every: int = 10
    """Held-out evaluation period in steps (also at step 0 and the last step)."""
    eval_size: int = 32
    """Held-out problems."""
    pass_k: int = 8
    """Samples per held-out problem (pass@1 and pass@k)."""
    checkpoint_every: int = 25
    """Checkpoint period in steps (and at the end)."""
    seed: int = 0
    """Seeds prompts, sampling, minibatch order, Clip-Cov selection and the tiny model."""
    device: str = "cpu"
    """Torch device."""
    fast_rollout: bool = False
    """Static-cache rollout (+ CUDA-graph compile on CUDA)."""
    out_dir: str = "runs/llm/run"
    """Run directory: metrics.jsonl, checkpoint.pt, tensorboard/, policy/."""
    tensorboard: bool = True
    """Also write TensorBoard scalars when torch.utils.tensorboard imports."""

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "group_size", "minibatches", "epochs",
                     "eval_every", "eval_size", "pass_k", "checkpoint_every"):
            value = getattr(self, name)
            check_field(self, name, isinstance(value, int) and not isinstance(value, bool)
                        and value >= 1, "int >= 1")
        for name in ("lr", "temperature", "max_grad_norm"):
            value = getattr(self, name)
            check_field(self, name, finite(value) and value > 0, "finite > 0")


_NESTED = {"policy": PolicySpec, "sft": SFTConfig, "loss": LossConfig, "control": ControlConfig}


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Inverse of ``dataclasses.asdict`` for :class:`TrainConfig`; unknown keys raise."""
    kwargs = dict(data)
    for key, cls in _NESTED.items():
        if key in kwargs and isinstance(kwargs[key], dict):
            kwargs[key] = cls(**kwargs[key])
    return TrainConfig(**kwargs)


def config_hash(*parts: Any) -> str:
    """Short stable hash of dataclasses / JSON-able values."""
    blob = json.dumps(
        [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts],  # type: ignore[arg-type]
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
