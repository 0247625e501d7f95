"""Seconds per GRPO step (rollout + updates): our trainer vs TRL's ``GRPOTrainer``.

Same warm-started tiny model, task (``sumpair``), batch (prompts x generations), minibatches per
rollout, optimizer (AdamW, constant lr, weight decay 0.01, grad-norm clip 1) and loss (DAPO:
token-mean, eps 0.2 / 0.28, beta 0). Both learning curves (train reward, token entropy) are
printed so the speed is for the same algorithm. Ours additionally computes the reference-policy
KL, covariance and the other per-step diagnostics. The two runs are sequential in one process
(a training loop cannot be interleaved step by step); the first rollout of each is a warm-up and
excluded from the median. The summary ends with the provenance (commit, command, CPU/GPU,
threads, versions, TRL's too).

The default model is Llama (RoPE): TRL 1.16 scores completions with a forward pass that passes no
``position_ids``, and with transformers 5.24 such a pass numbers left-padded rows from the first
pad, while ``generate`` numbers them from the first real token. With GPT-2's absolute position
embeddings TRL therefore trains on log-probs of a different distribution than it sampled from
(logit differences of ~0.4 on a left-padded row of the tiny model); with RoPE a uniform shift
cancels in attention, so both trainers optimise the same objective. ``--arch gpt2`` shows the
effect on the learning curves.

TRL is not a dependency of this project: install it somewhere that does not disturb the project
venv, e.g. ``pip install --no-deps --target /tmp/trl_pkgs trl accelerate datasets dill
multiprocess psutil pyarrow xxhash`` and run with ``PYTHONPATH=/tmp/trl_pkgs``. Without TRL the
script times our side and says that TRL was skipped.

CPU (reduced): ``PYTHONPATH=/tmp/trl_pkgs python studies/bench/grpo_step.py``
GPU (issue 3 size): ``PYTHONPATH=/tmp/trl_pkgs python studies/bench/grpo_step.py --device cuda
--prompts 128 --group 8 --steps 30 --n_layer 4 --n_embd 256``
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from ctrlbench.provenance import format_provenance, provenance
from llm_rl.benchutil import more_versions
from llm_rl.config import SFTConfig, TrainConfig
from llm_rl.losses import LossConfig
from llm_rl.policy import PolicySpec, load_policy
from llm_rl.sft import warm_start
from llm_rl.tasks import Problem, make_task
from llm_rl.tokenizer import CharTokenizer
from llm_rl.trainer import GRPOTrainer

Curve = tuple[list[float], list[dict[str, Any]]]


def run_ours(a: argparse.Namespace, init: str, out: str) -> Curve:
    """Train with our loop; returns seconds per step and the per-step metrics."""
    cfg = TrainConfig(task="sumpair", init=init, steps=a.steps, prompts_per_step=a.prompts,
                      group_size=a.group, lr=a.lr, minibatches=a.minibatches,
                      loss=LossConfig(agg="token-mean", options={"eps_high": 0.28}),
                      eval_every=10**9, eval_size=1, pass_k=1, checkpoint_every=10**9, seed=a.seed,
                      device=a.device, fast_rollout=a.device == "cuda", out_dir=out,
                      tensorboard=False)
    trainer = GRPOTrainer(cfg)
    stamps = [time.perf_counter()]
    hist = trainer.train(on_step=lambda m: stamps.append(time.perf_counter()))
    return [b - t for t, b in itertools.pairwise(stamps)], hist


def hf_char_tokenizer(tok: CharTokenizer) -> Any:
    """An HF fast tokenizer with exactly the char tokenizer's ids (TRL needs one)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": tok.pad_id, "<bos>": tok.bos_id, "<eos>": tok.eos_id}
    vocab.update({c: i for i, c in enumerate(tok.chars, start=3)})
    core = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()  # characters joined without spaces
    core.add_special_tokens(["<pad>", "<bos>", "<eos>"])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>")


def run_trl(a: argparse.Namespace, init: str, out: str) -> Curve:
    """Train with TRL's GRPOTrainer; returns seconds per rollout (= ``minibatches`` optimizer
    steps) and TRL's logged metrics per optimizer step."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig
    from trl import GRPOTrainer as TRLGRPOTrainer

    model, tok = load_policy(init, device=a.device)
    hf_tok = hf_char_tokenizer(tok)
    task = make_task("sumpair")
    import random

    rng = random.Random(a.seed)
    probs = [task.sample(rng) for _ in range(a.prompts * a.steps * 2)]
    import pyarrow as pa

    # An explicit fingerprint skips datasets' dill hashing (broken with pyarrow 26 here).
    table = pa.table({"prompt": ["<bos>" + p.prompt for p in probs],
                      "target": [p.target for p in probs]})
    data = Dataset(table, fingerprint=f"sumpair-{a.seed}-{len(probs)}")

    def reward(prompts: list[str], completions: list[str], target: list[int],
               **_: Any) -> list[float]:
        return [float(task.verify(Problem("", (t,), t), c)) for c, t in zip(completions, target)]

    stamps: list[float] = []
    logs: list[dict[str, Any]] = []

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            stamps.append(time.perf_counter())

        def on_log(self, args: Any, state: Any, control: Any, logs_: Any = None,
                   **kw: Any) -> None:
            if kw.get("logs"):
                logs.append(dict(kw["logs"]))

    per_device = a.prompts * a.group // a.minibatches
    cfg = GRPOConfig(output_dir=out, per_device_train_batch_size=per_device,
                     num_generations=a.group, steps_per_generation=a.minibatches,
                     max_completion_length=task.max_answer_len + 2, learning_rate=a.lr,
                     lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.01,
                     max_grad_norm=1.0, beta=0.0, loss_type="dapo", epsilon=0.2,
                     epsilon_high=0.28, temperature=1.0, max_steps=a.steps * a.minibatches,
                     logging_steps=1, report_to="none", save_strategy="no",
                     use_cpu=a.device == "cpu", bf16=False, seed=a.seed, disable_dropout=True,
                     shuffle_dataset=True)
    trainer = TRLGRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=data,
                             processing_class=hf_tok, callbacks=[Clock()])
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    stamps.append(time.perf_counter())
    trainer.train()
    per_rollout = [stamps[i + a.minibatches] - stamps[i]
                   for i in range(0, len(stamps) - a.minibatches, a.minibatches)]
    return per_rollout, logs


def main(argv: list[str] | None = None) -> int:
    """Time both trainers and print medians, the ratio and both learning curves."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--minibatches", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--arch", default="llama", help="llama (RoPE) or gpt2; see the docstring")
    p.add_argument("--n_layer", type=int, default=2)
    p.add_argument("--n_embd", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out or tempfile.mkdtemp(prefix="grpo_bench_"))
    spec = PolicySpec(arch=a.arch, n_layer=a.n_layer, n_embd=a.n_embd, n_head=4)
    init = str(warm_start("sumpair", spec, SFTConfig(), str(out / "sft"), seed=a.seed,
                          device=a.device))
    print(f"task sumpair, {a.prompts} prompts x {a.group} generations, {a.minibatches} "
          f"minibatches, {a.steps} rollouts, model {a.arch} {a.n_layer}x{a.n_embd}, "
          f"device {a.device}")
    ours_t, ours_h = run_ours(a, init, str(out / "ours"))
    trl_t: list[float] = []
    trl_logs: list[dict[str, Any]] = []
    try:
        import trl  # noqa: F401
    except ImportError:
        print("TRL not importable: skipping the TRL side (see the docstring for how to install "
              "it outside the project venv).")
    else:
        trl_t, trl_logs = run_trl(a, init, str(out / "trl"))
    med = statistics.median(ours_t[1:])
    print(f"\n{'trainer':8s} {'median s/step':>14s} {'steps/s':>8s}")
    print(f"{'ours':8s} {med:14.4f} {1 / med:8.2f}")
    if trl_t:
        tmed = statistics.median(trl_t[1:])
        print(f"{'trl':8s} {tmed:14.4f} {1 / tmed:8.2f}   ours is {tmed / med:.2f}x faster")
    print("\nlearning curves (train reward / token entropy per rollout)")
    trl_steps = [x for x in trl_logs if "reward" in x]  # logged once per rollout
    print(f"{'rollout':>7s} {'ours R':>7s} {'ours H':>7s} {'trl R':>7s} {'trl H':>7s}")
    for i, m in enumerate(ours_h):
        t = trl_steps[i] if i < len(trl_steps) else {}
        tr = f"{t['reward']:7.3f}" if "reward" in t else "      -"
        th = f"{t['entropy']:7.3f}" if "entropy" in t else "      -"
        print(f"{i:7d} {m['reward']:7.3f} {m['entropy']:7.3f} {tr} {th}")
    print("\n" + format_provenance(provenance()) + more_versions(["trl", "accelerate"]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
