"""Entropy sensor: chunked (ours) vs naive ``log_softmax`` (vs Triton where available).

Time (median of alternating runs) and extra memory for entropy + log-prob of N positions over a
V-token vocabulary. On CUDA the peak is measured (``torch.cuda.max_memory_allocated`` above the
logits); on CPU it is the analytic size of the float32 temporaries (N x V for naive, chunk x V
for chunked), labelled as such. Also reports each result's max abs error vs float64, and ends
with the provenance (commit, command, CPU/GPU, threads, versions, Triton's too).

CPU (reduced): ``python studies/bench/entropy_sensor.py``
GPU (issue 3 size): ``python studies/bench/entropy_sensor.py --device cuda --dtype bfloat16
--positions 16384 --vocab 151936 --chunk 2048 --repeats 20``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch

from ctrlbench.provenance import format_provenance, provenance
from llm_rl.benchutil import more_versions, time_alternating
from llm_rl.entropy import entropy_and_logprob, naive_entropy_and_logprob, triton_available


def _peak_extra(fn: Callable[[], object], device: str) -> float | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**30


def _float64_entropy(logits: torch.Tensor, rows: int = 256) -> torch.Tensor:
    """Reference entropy in float64, a few rows at a time."""
    out = []
    for s in range(0, logits.shape[0], rows):
        lp = torch.log_softmax(logits[s : s + rows].double(), dim=-1)
        out.append(-(lp.exp() * lp).sum(-1))
    return torch.cat(out)


def main(argv: list[str] | None = None) -> int:
    """Print time, extra memory and agreement of each implementation."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--positions", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=151_936)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator(device=a.device).manual_seed(0)
    logits = torch.randn(a.positions, a.vocab, device=a.device, generator=g).mul_(3)
    logits = logits.to(getattr(torch, a.dtype))
    y = torch.randint(0, a.vocab, (a.positions,), device=a.device, generator=g)
    fns: dict[str, Callable[[], object]] = {
        "naive": lambda: naive_entropy_and_logprob(logits, y),
        "chunked": lambda: entropy_and_logprob(logits, y, chunk_size=a.chunk, use_triton=False),
    }
    if a.device == "cuda" and triton_available():
        fns["triton"] = lambda: entropy_and_logprob(logits, y, use_triton=True)
    with torch.no_grad():
        times = time_alternating(fns, repeats=a.repeats, warmup=1, device=a.device)
        ref = _float64_entropy(logits)
        nbytes = logits.numel() * logits.element_size()
        print(f"N={a.positions} V={a.vocab} {a.dtype} on {a.device}; "
              f"logits {nbytes / 2**30:.2f} GiB; chunk {a.chunk}")
        print(f"{'impl':8s} {'median ms':>10s} {'vs naive':>9s} {'extra GiB':>10s} "
              f"{'max|dH| vs f64':>15s}")
        for name, fn in fns.items():
            peak = _peak_extra(fn, a.device)
            rows = a.positions if name == "naive" else (a.chunk if name == "chunked" else 0)
            analytic = 3 * rows * a.vocab * 4 / 2**30
            label = f"{peak:10.3f}" if peak is not None else f"{analytic:9.3f}*"
            ent = fn()[0]  # type: ignore[index]
            err = float((ent.double() - ref).abs().max())
            print(f"{name:8s} {times[name] * 1e3:10.2f} {times['naive'] / times[name]:8.2f}x "
                  f"{label} {err:15.1e}")
    if a.device != "cuda":
        print("* analytic: three float32 N x V (naive) or chunk x V (chunked) temporaries")
    print("\n" + format_provenance(provenance()) + more_versions(["triton"]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
