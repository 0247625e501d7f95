"""Policies: Hugging Face ``transformers`` causal LMs, tiny ones built here or loaded from disk.

Nothing here downloads anything: tiny models are built from a ``GPT2Config`` or ``LlamaConfig``
with the char tokenizer's vocabulary, and a checkpoint directory (``save_pretrained`` output plus
``char_tokenizer.json``) loads through ``AutoModelForCausalLM.from_pretrained`` with
``local_files_only=True``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

from ctrlbench.options import Options, option
from llm_rl.tokenizer import CharTokenizer
from llm_rl.validation import check_field

__all__ = [
    "ARCHES",
    "MAX_PARAMS",
    "PolicyLoadError",
    "PolicySpec",
    "build_policy",
    "load_policy",
    "save_policy",
]

ARCHES = ("gpt2", "llama")
#: Most parameters of a policy built here (about ``12 n_layer n_embd^2``). The package trains
#: tiny models; the cap turns a typo such as ``--policy.n_embd 1000000`` into a clear error
#: instead of an attempt to allocate terabytes.
MAX_PARAMS = 2_000_000_000


class PolicyLoadError(ValueError):
    """A saved policy folder exists but cannot be loaded (damaged or foreign files)."""


@dataclass(frozen=True)
class PolicySpec(Options):
    """Shape of a tiny causal LM."""

    label: ClassVar[str] = "policy"
    arch: str = option("gpt2", "Architecture: gpt2 or llama.", choices=ARCHES)
    n_layer: int = option(2, "Transformer blocks.", ge=1)
    n_embd: int = option(64, "Model width.", ge=1)
    n_head: int = option(4, "Attention heads (divides n_embd).", ge=1)
    max_positions: int = option(64, "Longest prompt + response.", ge=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "n_head", self.n_embd % self.n_head == 0,
                    f"an int that divides n_embd ({self.n_embd})")
        if self.arch == "llama":  # rotary embeddings rotate pairs of dimensions
            check_field(self, "n_head", (self.n_embd // self.n_head) % 2 == 0,
                        f"an int that divides n_embd ({self.n_embd}) into an even head size "
                        f"(arch llama: rotary embeddings)")
        check_field(self, "n_embd", self.approx_params <= MAX_PARAMS,
                    f"a policy of at most {MAX_PARAMS:.0e} parameters (n_layer {self.n_layer} x "
                    f"n_embd {self.n_embd} gives about {self.approx_params:.1e})")

    @property
    def approx_params(self) -> int:
        """Parameter count, approximately (blocks and position embeddings; tiny vocabulary)."""
        return 12 * self.n_layer * self.n_embd**2 + (self.max_positions + 64) * self.n_embd


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' per-shard progress bars for tiny checkpoints, then restore them."""
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _set_loss_type(model: PreTrainedModel) -> None:
    """Name the causal-LM loss explicitly.

    ``transformers`` derives ``model.loss_type`` from the class name; ``GPT2LMHeadModel`` matches
    no entry of its loss table, so ``loss_type`` stays ``None`` and the first ``model(...,
    labels=...)`` logs "`loss_type=None` was set in the config but it is unrecognized". Every
    policy here is a causal LM, so its loss is ``ForCausalLM`` (the one transformers falls back
    to anyway: values are unchanged).
    """
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"


def build_policy(spec: PolicySpec, tokenizer: CharTokenizer, *, seed: int = 0) -> PreTrainedModel:
    """Build a freshly initialised tiny causal LM for ``tokenizer`` (deterministic in ``seed``)."""
    common: dict[str, Any] = dict(
        vocab_size=tokenizer.vocab_size,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
    )
    config: GPT2Config | LlamaConfig
    if spec.arch == "gpt2":
        config = GPT2Config(
            n_positions=spec.max_positions,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **common,
        )
    elif spec.arch == "llama":
        config = LlamaConfig(
            hidden_size=spec.n_embd,
            intermediate_size=4 * spec.n_embd,
            num_hidden_layers=spec.n_layer,
            num_attention_heads=spec.n_head,
            num_key_value_heads=spec.n_head,
            max_position_embeddings=spec.max_positions,
            tie_word_embeddings=True,
            **common,
        )
    else:
        raise ValueError(f"unknown arch {spec.arch!r}; valid: {', '.join(ARCHES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    _set_loss_type(model)
    model.eval()
    return model


def save_policy(
    model: PreTrainedModel, tokenizer: CharTokenizer, directory: str | os.PathLike[str]
) -> Path:
    """Save weights, config and tokenizer into ``directory`` (``from_pretrained`` layout)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.save_pretrained(path)
    tokenizer.save(path)
    return path


def load_policy(
    directory: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[PreTrainedModel, CharTokenizer]:
    """Load a local checkpoint and its char tokenizer; checks that their vocabularies agree.

    ``FileNotFoundError`` when ``directory`` holds no saved policy, :class:`PolicyLoadError`
    when its files are damaged or do not agree.
    """
    path = Path(directory)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} has no config.json: not a saved policy")
    try:
        tokenizer = CharTokenizer.load(path)
        with _quiet():
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # damaged weights/config/tokenizer raise many types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise PolicyLoadError(f"cannot load the policy in {path}: {reason}") from None
    _set_loss_type(model)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise PolicyLoadError(
            f"model vocab_size {model.config.vocab_size} != tokenizer vocab_size "
            f"{tokenizer.vocab_size} in {path}"
        )
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return model, tokenizer
