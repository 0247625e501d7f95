"""LLM-RL entropy control: tiny HF policies on verifiable tasks, GRPO, and entropy controllers.

Modules (each imports torch itself; importing this package stays light):
``tokenizer`` char tokenizer, ``policy`` tiny GPT-2/Llama build/save/load, ``tasks`` verifiable
tasks, ``sft`` noisy-teacher warm start, ``rollout`` KV-cached sampling, ``entropy`` the chunked
sensor, ``losses`` the loss registry (``losses_explore``: Lp-Reg, STEER, SIREN, EPO, HAPO),
``decoding`` Mirostat v1/v2 (a ``transformers`` logits processor), ``entropy_control``
controllers of the actuators, ``trainer`` the GRPO loop, ``rundir`` the run folder's lifecycle
(one run per folder, one writer, damaged files quarantined), ``stopping`` SIGINT/SIGTERM at step
boundaries, ``cli`` the ``ctrlbench llm`` entry point (``llm_rl.cli:main``, also
``python -m llm_rl.cli``).
"""
