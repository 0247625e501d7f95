"""The ``ctrlbench.plugins`` hook of ``llm_rl``: registers ``ctrlbench/LLMEntropy-v0``.

A module of its own that imports nothing at import time: ``import ctrlbench`` runs the hooks, so a
hook that lived in :mod:`llm_rl.plant` (which imports ctrlbench and llm_rl modules that import
ctrlbench) would find a half-initialised module whenever a program imports one of those first.
Entries are ``"module:attr"`` strings; nothing is imported until a plant is built.
"""

from __future__ import annotations

__all__ = ["MODEL_NAME", "SMOKE", "register"]

#: Name of the plant's model (:meth:`llm_rl.plant.LLMEntropy.model`), the key of its PID design.
MODEL_NAME = "llm_entropy"
#: Options of a plant cheap enough for the registry-wide tests (~16 ms of CPU per update, ~35 ms
#: per reset, one thread): a 1 x 16 model after 5 SFT steps, 1 prompt x 2 samples, one minibatch,
#: the warm start cached in the system temp folder, 4 updates per episode (the registry-wide tests
#: take a truncated episode as a legal early end).
SMOKE = {"n_layer": 1, "n_embd": 16, "n_head": 2, "sft_steps": 5, "prompts_per_step": 1,
         "group_size": 2, "minibatches": 1, "updates": 4, "eval_size": 2, "pass_k": 2,
         "eval_every": 1000, "sft_dir": ""}


def register() -> None:
    """Register ``ctrlbench/LLMEntropy-v0`` and its PID design (one line each; strings only)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import PID_DESIGNS, register_plant

    register_plant(
        "LLMEntropy-v0", "llm_rl.plant:LLMEntropy",
        "policy entropy of GRPO on a tiny LM: one step = one update; action = entropy bonus, "
        "temperature or Clip-Cov ratio", options="llm_rl.plant:LLMEntropyOptions",
        provides=Provides(model=True, model_name=MODEL_NAME, references=True, n_inputs=1),
        smoke_options=SMOKE)
    PID_DESIGNS.register(
        MODEL_NAME, "llm_rl.plant:design_entropy_pi", options="llm_rl.plant:EntropyPIOptions",
        description="PI on the (filtered) entropy error, per-actuator default gains, bumpless "
                    "from the actuator's neutral value")
