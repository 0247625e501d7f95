"""Mirostat as a feedback sampler: observed surprise and repetition vs the target tau (issue 14).

Claim (Basu et al. 2021): Mirostat's integrator on ``mu`` drives the observed average surprise
to the target ``tau``, and the repetition of the generated text falls as ``tau`` rises. Here,
for v1 and v2 and each ``tau``, 400 tokens are generated from two sources and the mean surprise
over the last half is compared with ``tau``:

- ``zipf``: a fixed synthetic Zipf next-token distribution, ``p_i ~ i^-s`` over ``V`` tokens
  (``V = 50,000``, ``s = 1.1``), sampled independently at each step;
- ``tiny-lm``: a randomly initialized GPT-2 (2 layers x 64, vocabulary 1,000, weights drawn with
  std 0.3 so its next-token distributions are peaked enough to reach small ``tau``; no
  pretrained weights are downloaded), decoded by ``transformers``' ``generate`` with
  :class:`llm_rl.decoding.MirostatLogitsProcessor` in its ``logits_processor`` list.

Also reported: plain sampling (no Mirostat) for reference, and the repetition rate, the share
of 4-grams that already occurred earlier in the text. Output (``--out_dir``): ``results.md``,
``results.json`` (rows and provenance, atomic) and ``surprise_vs_tau.png``.

Run: ``python studies/mirostat.py`` (CPU, about a minute); ``--smoke`` (seconds, run by the tests).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from ctrlbench.io import atomic_write_bytes, optional_pyplot, save_figure
from ctrlbench.options import Options, option
from ctrlbench.provenance import format_provenance, provenance
from llm_rl.decoding import MirostatLogitsProcessor, MirostatOptions, repetition_rate
from llm_rl.study_runs import parse_study_args

SMOKE: dict[str, Any] = {"taus": "3.0", "tokens": 100, "vocab": 5000,
                         "out_dir": "results/mirostat_smoke"}


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` overrides the ones marked)."""

    taus: str = option("2.0,3.0,4.0,5.0,6.0", f"Comma-separated targets in bits (smoke: "
                       f"{SMOKE['taus']}).")
    modes: str = option("v1,v2", "Comma-separated Mirostat variants.")
    tokens: int = option(400, f"Tokens per run (smoke: {SMOKE['tokens']}).", ge=4, le=100_000)
    vocab: int = option(50_000, f"Zipf vocabulary size V (smoke: {SMOKE['vocab']}).", ge=2,
                        le=10_000_000)
    zipf_s: float = option(1.1, "Zipf exponent s of the synthetic source.", gt=0, le=10)
    eta: float = option(1.0, "Mirostat learning rate.", gt=0, le=10)
    lm_vocab: int = option(1000, "Tiny LM vocabulary.", ge=2, le=100_000)
    lm_init_std: float = option(0.3, "Std of the tiny LM's random weights.", gt=0, le=10)
    seed: int = option(0, "Seed of the model and the draws.", ge=0)
    out_dir: str = option("results/mirostat", f"Report directory (smoke: {SMOKE['out_dir']}).")
    smoke: bool = option(False, "Seconds-long version: the smoke sizes above.")


def parse_args(argv: list[str] | None = None) -> Args:
    """Flags generated from :class:`Args` (a bare ``--smoke`` means true)."""
    return parse_study_args(Args, (__doc__ or "").splitlines()[0], argv, SMOKE)


def zipf_logits(vocab: int, s: float) -> torch.Tensor:
    """Logits of ``p_i ~ i^-s``, ``i = 1 .. V``."""
    return (-s * torch.log(torch.arange(1, vocab + 1, dtype=torch.float64))).float()


def run_zipf(logits: torch.Tensor, opts: MirostatOptions | None, tokens: int,
             seed: int) -> tuple[list[int], list[float]]:
    """Sample ``tokens`` i.i.d. draws from the fixed distribution, truncated by Mirostat."""
    gen = torch.Generator().manual_seed(seed)
    proc = MirostatLogitsProcessor(opts) if opts is not None else None
    logp = torch.log_softmax(logits, -1)
    ids = torch.zeros(1, 1, dtype=torch.long)
    for _ in range(tokens):
        scores = logits[None].clone()
        if proc is not None:
            scores = proc(ids, scores)
        tok = torch.multinomial(torch.softmax(scores, -1), 1, generator=gen)
        ids = torch.cat([ids, tok], 1)
    out = ids[0, 1:].tolist()
    return out, [float(-logp[t] / math.log(2)) for t in out]


def tiny_lm(args: Args) -> Any:
    """The randomly initialized tiny GPT-2 (seeded)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(args.seed)
    cfg = GPT2Config(vocab_size=args.lm_vocab, n_positions=args.tokens + 1, n_embd=64, n_layer=2,
                     n_head=4, initializer_range=args.lm_init_std, bos_token_id=0,
                     eos_token_id=None, pad_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


@torch.no_grad()
def run_lm(model: Any, opts: MirostatOptions | None, tokens: int,
           seed: int) -> tuple[list[int], list[float]]:
    """``generate`` ``tokens`` tokens from ``<bos>`` with the Mirostat processor; the surprise of
    each token is the model's (recomputed in one forward pass)."""
    from transformers import LogitsProcessorList

    torch.manual_seed(seed)
    start = torch.zeros(1, 1, dtype=torch.long)
    procs = LogitsProcessorList([MirostatLogitsProcessor(opts)] if opts is not None else [])
    out = model.generate(start, attention_mask=torch.ones_like(start), do_sample=True,
                         max_new_tokens=tokens, min_new_tokens=tokens,
                         logits_processor=procs, top_k=0, top_p=1.0, temperature=1.0)
    logp = torch.log_softmax(model(out).logits[0, :-1].float(), -1)
    gen = out[0, 1:]
    surprise = -logp.gather(-1, gen[:, None]).squeeze(-1) / math.log(2)
    return gen.tolist(), surprise.tolist()


def row(source: str, mode: str, tau: float | None, toks: list[int],
        surprise: list[float], wall: float) -> dict[str, Any]:
    """One table row: mean surprise over the last half, relative error, repetition."""
    half = surprise[len(surprise) // 2 :]
    mean = sum(half) / len(half)
    return {"source": source, "mode": mode, "tau": tau, "surprise_last_half": mean,
            "rel_err": None if tau is None else abs(mean - tau) / tau,
            "repetition_4gram": repetition_rate(toks, 4), "distinct_tokens": len(set(toks)),
            "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    """Every (source, mode, tau) run plus plain sampling; writes the report."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    taus = [float(t) for t in args.taus.split(",")]
    logits = zipf_logits(args.vocab, args.zipf_s)
    model = tiny_lm(args)
    runners = {"zipf": lambda o: run_zipf(logits, o, args.tokens, args.seed),
               "tiny-lm": lambda o: run_lm(model, o, args.tokens, args.seed)}
    rows = []
    for source, run in runners.items():
        t0 = time.perf_counter()
        toks, s = run(None)
        rows.append(row(source, "plain", None, toks, s, time.perf_counter() - t0))
        for mode in args.modes.split(","):
            for tau in taus:
                t0 = time.perf_counter()
                toks, s = run(MirostatOptions(mode=mode, tau=tau, eta=args.eta))
                rows.append(row(source, mode, tau, toks, s, time.perf_counter() - t0))
                r = rows[-1]
                print(f"{source:8s} {mode} tau {tau:4.1f}: surprise {r['surprise_last_half']:.3f}"
                      f" (err {100 * r['rel_err']:.2f} %), repetition "
                      f"{r['repetition_4gram']:.3f}", flush=True)
    prov = provenance()
    text = report(args, rows) + "\n" + format_provenance(prov)
    out = Path(args.out_dir)
    atomic_write_bytes(out / "results.md", text.encode())
    atomic_write_bytes(out / "results.json", json.dumps(
        {"args": args.to_dict(), "rows": rows, "provenance": prov}, indent=1).encode())
    _plot(args, rows)
    print(text)
    return 0


def report(args: Args, rows: list[dict[str, Any]]) -> str:
    """Markdown table of every run."""
    lines = [f"{args.tokens} tokens per run (mean surprise over the last {args.tokens // 2}); "
             f"zipf V = {args.vocab:,}, s = {args.zipf_s}; tiny LM: random GPT-2 2x64, vocab "
             f"{args.lm_vocab}, init std {args.lm_init_std}; eta {args.eta}; seed {args.seed}",
             "", "| source | mode | tau (bits) | mean surprise, 2nd half | rel. error | "
             "4-gram repetition | distinct tokens |", "|" + "---|" * 7]
    for r in rows:
        tau = "-" if r["tau"] is None else f"{r['tau']:.1f}"
        err = "-" if r["rel_err"] is None else f"{100 * r['rel_err']:.2f} %"
        lines.append(f"| {r['source']} | {r['mode']} | {tau} | {r['surprise_last_half']:.3f} | "
                     f"{err} | {r['repetition_4gram']:.3f} | {r['distinct_tokens']} |")
    return "\n".join(lines) + "\n"


def _plot(args: Args, rows: list[dict[str, Any]]) -> None:
    plt = optional_pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for source in ("zipf", "tiny-lm"):
        for mode in args.modes.split(","):
            rs = [r for r in rows if r["source"] == source and r["mode"] == mode]
            taus = [r["tau"] for r in rs]
            label = f"{source} {mode}"
            axes[0].plot(taus, [r["surprise_last_half"] for r in rs], "o-", label=label)
            axes[1].plot(taus, [r["repetition_4gram"] for r in rs], "o-", label=label)
    all_taus = [float(t) for t in args.taus.split(",")]
    lim = [min(all_taus), max(all_taus)]
    axes[0].plot(lim, lim, "k:", lw=0.8)
    axes[0].set(xlabel="tau (bits)", ylabel="observed surprise (bits)")
    axes[1].set(xlabel="tau (bits)", ylabel="4-gram repetition rate")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, Path(args.out_dir) / "surprise_vs_tau.png", dpi=90)


if __name__ == "__main__":
    sys.exit(main())
