"""Rollout throughput: our KV-cached sampler vs Hugging Face ``generate`` (same model and batch).

Both sample ``new_tokens`` tokens per row at temperature 1 with EOS disabled (ours: ``eos_id=-1``;
HF: ``min_new_tokens = max_new_tokens``), so tokens/s compare equal work; ours additionally
returns per-token log-probs and entropies. ``ours-fast`` is the static-cache path (CUDA: plus
``torch.compile(mode="reduce-overhead")``, i.e. CUDA graphs). Medians of alternating runs; the
summary ends with the provenance (commit, command, CPU/GPU, threads, versions).

CPU (reduced): ``python studies/bench/llm_rollout.py``
GPU (issue 3 sizes): ``python studies/bench/llm_rollout.py --device cuda --dtype bfloat16
--n_layer 4 --n_embd 256 --batch 1024 --new_tokens 16 --repeats 10``
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from ctrlbench.provenance import format_provenance, provenance
from llm_rl.benchutil import time_alternating
from llm_rl.policy import PolicySpec, build_policy
from llm_rl.rollout import sample
from llm_rl.tokenizer import CharTokenizer


def main(argv: list[str] | None = None) -> int:
    """Print tokens/s of each sampler and the ratios to HF ``generate``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="gpt2")
    p.add_argument("--n_layer", type=int, default=2)
    p.add_argument("--n_embd", type=int, default=64)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--new_tokens", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    tok = CharTokenizer()
    spec = PolicySpec(arch=a.arch, n_layer=a.n_layer, n_embd=a.n_embd, n_head=4,
                      max_positions=64)
    model = build_policy(spec, tok).to(a.device, dtype=getattr(torch, a.dtype))
    nparams = sum(q.numel() for q in model.parameters())
    prompts = [tok.encode(f"s{4 + i % 13}:", bos=True) for i in range(a.batch)]
    ids, mask = (torch.tensor(t, device=a.device) for t in tok.pad(prompts))
    gen = torch.Generator(device=a.device).manual_seed(0)

    def ours(fast: bool) -> None:
        sample(model, ids, mask, max_new_tokens=a.new_tokens, eos_id=-1, pad_id=tok.pad_id,
               generator=gen, fast=fast)

    @torch.no_grad()
    def hf() -> None:
        model.generate(ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                       max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens,
                       pad_token_id=tok.pad_id)

    times = time_alternating({"hf-generate": hf, "ours": lambda: ours(False),
                              "ours-fast": lambda: ours(True)},
                             repeats=a.repeats, warmup=2, device=a.device)
    ntok = a.batch * a.new_tokens
    print(f"model {a.arch} {a.n_layer}x{a.n_embd} ({nparams / 1e6:.2f} M params, {a.dtype}), "
          f"batch {a.batch}, {a.new_tokens} new tokens, device {a.device}")
    print(f"{'sampler':12s} {'median s':>10s} {'tokens/s':>12s} {'vs hf':>7s}")
    for name, t in times.items():
        print(f"{name:12s} {t:10.4f} {ntok / t:12.0f} {times['hf-generate'] / t:6.2f}x")
    print("\n" + format_provenance(provenance()), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
