"""The trainer's frozen configuration (one default per field, a one-line doc per field)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from ctrlbench.options import OptionError, Options, option
from llm_rl.entropy_control import ControlConfig
from llm_rl.filters import SensorConfig
from llm_rl.losses import LossConfig
from llm_rl.policy import PolicySpec
from llm_rl.tasks import Task, make_task
from llm_rl.tokenizer import DEFAULT_CHARS, CharTokenizer
from llm_rl.validation import (
    MAX_LR,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    check_field,
    device_problem,
)

__all__ = [
    "MAX_SEQUENCES",
    "SFTConfig",
    "TrainConfig",
    "check_policy_fits",
    "config_from_dict",
    "config_hash",
]

#: Most sequences sampled in one batch (a step's rollout, the held-out evaluation, an SFT
#: batch): far beyond what a tiny model needs, and it turns a typo into a clear error instead
#: of an attempt to allocate all memory.
MAX_SEQUENCES = 1_000_000
#: Seeds are unsigned 32-bit ints (every RNG of the run accepts them).
_SEED_LIMIT = 2**32


def check_policy_fits(task: Task, max_positions: int, vocab_size: int, setpoint: float,
                      where: str = "policy") -> None:
    """Raise :class:`~ctrlbench.options.OptionError` when a policy cannot serve ``task``.

    The policy needs ``task.max_positions`` positions (``<bos>``, the longest prompt, the
    sampling budget), and an entropy set-point is reachable only in ``(0, ln V]`` (``ln V``: the
    entropy of the uniform distribution over the ``V``-token vocabulary).
    """
    need = task.max_positions
    if max_positions < need:
        raise OptionError(
            f"{where}.max_positions = {max_positions} is too small for task {task.name!r}: "
            f"<bos>, the longest prompt ({task.max_prompt_len}) and the sampling budget "
            f"({task.max_answer_len + 2}) need {need} positions; valid: >= {need}"
        )
    top = math.log(vocab_size)
    if not 0 < setpoint <= top:
        raise OptionError(
            f"control.setpoint = {setpoint!r} is unreachable; valid: > 0 and <= ln(vocab size "
            f"{vocab_size}) = {top:.6f} nats, the entropy of the uniform next-token distribution"
        )


@dataclass(frozen=True)
class SFTConfig(Options):
    """Supervised warm start on a noisy teacher (so groups of 8 carry signal)."""

    label: ClassVar[str] = "sft"
    steps: int = option(
        300, "Optimizer steps (300: the warm start the PID defaults were tuned on).", ge=0)
    batch: int = option(64, "Sequences per step.", ge=1, le=MAX_SEQUENCES)
    lr: float = option(3e-3, "AdamW learning rate.", gt=0, le=MAX_LR)
    teacher_noise: float = option(0.3, "Probability the teacher gives a near miss instead of a "
                                  "correct answer.", ge=0, le=1)


@dataclass(frozen=True)
class TrainConfig(Options):
    """One GRPO run: task, policy, warm start, rollout, loss, entropy controller and its sensor
    filter, logging."""

    task: str = option("sumpair", "Registered task: sumpair, sumpair-heldout, "
                      "countdown-lite, add-n.")
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
    lr: float = option(1e-3, "AdamW learning rate.", gt=0, le=MAX_LR)
    temperature: float = option(1.0, "Sampling temperature (unless the controller drives it).",
                                ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE)
    minibatches: int = option(2, "Optimizer steps per epoch over a rollout (>= 2 lets ratios "
                              "move off 1).", ge=1)
    epochs: int = option(1, "Passes over each rollout.", ge=1)
    max_grad_norm: float = option(1.0, "Gradient-norm clip.", gt=0)
    dynamic_sampling: bool = option(False, "DAPO: drop groups whose rewards are all equal from "
                                    "the update.")
    loss: LossConfig = option(LossConfig(), "Policy loss.")  # noqa: RUF009
    control: ControlConfig = option(ControlConfig(),  # noqa: RUF009
                                    "Entropy controller (constant 0 bonus = open loop).")
    sensor: SensorConfig = option(SensorConfig(),  # noqa: RUF009
                                  "Filter of the entropy reading the controller gets (none = raw).")
    eval_every: int = option(10, "Held-out evaluation period in steps (also at step 0 and the "
                             "last step).", ge=1)
    eval_size: int = option(32, "Held-out problems.", ge=1)
    pass_k: int = option(8, "Samples per held-out problem (pass@1 and pass@k).", ge=1)
    checkpoint_every: int = option(25, "Checkpoint period in steps (and at the end).", ge=1)
    seed: int = option(0, "Seeds prompts, sampling, minibatch order, Clip-Cov selection and the "
                       "tiny model (0 .. 2**32 - 1).", ge=0)
    device: str = option("cpu", "Torch device: cpu, cuda, cuda:<index> or mps.")
    fast_rollout: bool = option(False, "Static-cache rollout (+ CUDA-graph compile on CUDA).")
    out_dir: str = option("runs/llm/run", "Run directory: metrics.jsonl, checkpoint.pt, "
                          "tensorboard/, policy/.")
    tensorboard: bool = option(True, "Also write TensorBoard scalars when "
                               "torch.utils.tensorboard imports.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "seed", self.seed < _SEED_LIMIT, f"an int in 0 .. {_SEED_LIMIT - 1}")
        problem = device_problem(self.device)
        check_field(self, "device", problem is None, problem or "")
        for name in ("out_dir", "sft_dir", "init"):
            path = getattr(self, name)
            check_field(self, name, "\0" not in path and (name == "init" or bool(path.strip())),
                        "a path" + ("" if name == "init" else " (not empty)"))
        rows = self.prompts_per_step * self.group_size
        check_field(self, "group_size", rows <= MAX_SEQUENCES,
                    f"prompts_per_step x group_size <= {MAX_SEQUENCES:,} sequences per rollout")
        check_field(self, "minibatches", self.minibatches <= rows,
                    f"<= prompts_per_step x group_size ({rows}): every minibatch needs a sequence")
        check_field(self, "pass_k", self.eval_size * self.pass_k <= MAX_SEQUENCES,
                    f"eval_size x pass_k <= {MAX_SEQUENCES:,} sequences per evaluation")
        task = make_task(self.task)  # KeyError listing the valid names
        if task.max_heldout is not None:
            check_field(self, "eval_size", self.eval_size <= task.max_heldout,
                        f"<= {task.max_heldout}: task {task.name!r} has "
                        f"{task.prompt_count} distinct prompts and trains on the others")
        if not self.init:  # a built policy: its size and vocabulary are known now
            check_policy_fits(task, self.policy.max_positions,
                              CharTokenizer(DEFAULT_CHARS).vocab_size, self.control.setpoint)


_NESTED: dict[str, type[Options]] = {
    "policy": PolicySpec, "sft": SFTConfig, "loss": LossConfig, "control": ControlConfig,
    "sensor": SensorConfig,
}
#: Fields added after runs were recorded: left out of :func:`config_hash` while at their default,
#: so the hash of every run configured before them (and its cached study result) is unchanged.
_LATER_FIELDS: dict[str, Any] = {"sensor": SensorConfig()}


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


def _hash_view(part: Any) -> Any:
    """``part`` as JSON-able data; a :class:`TrainConfig` without its later fields at their
    defaults (:data:`_LATER_FIELDS`)."""
    if not dataclasses.is_dataclass(part) or isinstance(part, type):
        return part
    data = dataclasses.asdict(part)
    if isinstance(part, TrainConfig):
        for name, default in _LATER_FIELDS.items():
            if getattr(part, name) == default:
                del data[name]
    return data


def config_hash(*parts: Any) -> str:
    """Short stable hash of dataclasses / JSON-able values (a :class:`TrainConfig` field added
    later counts only when it differs from its default)."""
    blob = json.dumps([_hash_view(p) for p in parts], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
