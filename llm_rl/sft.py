"""Supervised warm start on a noisy teacher, cached so every controller starts from one policy.

The teacher answers correctly with probability ``1 - teacher_noise`` and otherwise gives a
well-formed near miss, so the fine-tuned model lands at a moderate pass rate (~0.2-0.6 for the
defaults) and groups of 8 samples carry a learning signal. The loss covers answer tokens and
``<eos>`` only.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import PreTrainedModel

from ctrlbench.runfolder import ensure_writable, quarantine
from llm_rl.config import SFTConfig, config_hash
from llm_rl.policy import PolicySpec, build_policy, load_policy, save_policy
from llm_rl.rundir import note
from llm_rl.tasks import Task, check_tokenizer, make_task
from llm_rl.tokenizer import DEFAULT_CHARS, TOKENIZER_FILE, CharTokenizer
from llm_rl.validation import NonFiniteLossError, check_device

__all__ = ["heldout_pass_rate", "sft_train", "warm_start"]


def _batch(
    task: Task, tok: CharTokenizer, rng: random.Random, n: int, noise: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    seqs, starts = [], []
    for _ in range(n):
        p = task.sample(rng)
        prompt = tok.encode(p.prompt, bos=True)
        seqs.append(prompt + tok.encode(task.teacher(p, rng, noise), eos=True))
        starts.append(len(prompt))
    ids, mask = tok.pad(seqs, side="right")
    x, m = torch.tensor(ids), torch.tensor(mask)
    labels = x.clone()
    labels[m == 0] = -100
    for i, s in enumerate(starts):
        labels[i, :s] = -100
    return x, m, labels


@contextmanager
def _progress(total: int, label: str, show: bool) -> Iterator[Callable[[float], None]]:
    """``advance(loss)`` for a transient rich bar on stderr (a no-op when ``show`` is false)."""
    if not show:
        yield lambda loss: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(f"[bold]{label}[/]"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total, info="")
        yield lambda loss: bar.update(task, advance=1, info=f"loss={loss:.3f}")


def sft_train(
    model: PreTrainedModel, task: Task, tok: CharTokenizer, cfg: SFTConfig, *, seed: int = 0,
    progress: bool = False,
) -> list[float]:
    """Fine-tune ``model`` in place on teacher answers; returns the loss per step.

    ``progress`` shows a transient progress bar on stderr (off by default: library calls stay
    quiet; ``ctrlbench llm`` turns it on).
    """
    check_tokenizer(task, tok)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    device = next(model.parameters()).device
    model.train()
    losses = []
    with _progress(cfg.steps, f"SFT warm start ({task.name})", progress) as advance:
        for _ in range(cfg.steps):
            x, m, y = (t.to(device) for t in _batch(task, tok, rng, cfg.batch, cfg.teacher_noise))
            loss = model(x, attention_mask=m, labels=y).loss
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                raise NonFiniteLossError(
                    f"SFT loss went non-finite ({losses[-1]}) at step {len(losses) - 1} "
                    f"(sft.lr = {cfg.lr} may be too large): nothing was cached")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            advance(losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def heldout_pass_rate(
    model: PreTrainedModel, task: Task, tok: CharTokenizer, *, n: int = 64, samples: int = 4,
    seed: int = 0,
) -> float:
    """Pass rate at temperature 1 on the task's held-out set (``samples`` per problem)."""
    from llm_rl.rollout import sample  # local: rollout imports the sensor

    problems = task.heldout(n, seed)
    ids, mask = tok.pad([tok.encode(p.prompt, bos=True) for p in problems])
    device = next(model.parameters()).device
    x = torch.tensor(ids, device=device).repeat_interleave(samples, 0)
    m = torch.tensor(mask, device=device).repeat_interleave(samples, 0)
    gen = torch.Generator(device=device).manual_seed(seed)
    r = sample(model, x, m, max_new_tokens=task.max_answer_len + 2, eos_id=tok.eos_id,
               pad_id=tok.pad_id, generator=gen)
    ok = 0
    for i, row in enumerate(r.tokens.tolist()):
        ended = tok.eos_id in row
        ok += int(ended and task.verify(problems[i // samples], tok.decode(row)))
    return ok / len(r.tokens)


def warm_start(
    task_name: str, spec: PolicySpec, cfg: SFTConfig, cache_dir: str, *, seed: int = 0,
    device: str = "cpu", progress: bool = False,
) -> Path:
    """Return the cached SFT checkpoint for these settings, training and saving it if absent.

    ``progress`` shows a transient progress bar on stderr while it trains. A cache entry that
    is damaged (no readable ``sft.json``, model config or tokenizer) is moved to
    ``<cache_dir>/quarantine/`` and rebuilt.
    """
    check_device(device)
    path = Path(cache_dir) / f"{task_name}-{config_hash(spec, cfg, seed, task_name)}"
    info = path / "sft.json"
    if info.is_file():
        problem = _cache_problem(path)
        if problem is None:
            return path
        dest = quarantine(path, cache_dir, problem)
        note(f"the cached warm start {path} was damaged ({problem}): moved it to {dest}; "
             f"rebuilding it")
    task = make_task(task_name)
    tok = CharTokenizer(DEFAULT_CHARS)
    check_tokenizer(task, tok)
    ensure_writable(cache_dir, "SFT cache folder")  # before training, not after
    model = build_policy(spec, tok, seed=seed).to(device)  # type: ignore[arg-type]
    losses = sft_train(model, task, tok, cfg, seed=seed, progress=progress)
    try:
        most = task.max_heldout
        rate = heldout_pass_rate(model, task, tok, n=64 if most is None else min(64, most),
                                 seed=seed)
    except NonFiniteLossError as exc:
        raise NonFiniteLossError(f"{exc} after the SFT warm start (sft.lr = {cfg.lr} may be too "
                                 f"large): nothing was cached") from None
    # Build in a private folder next to the cache entry, then rename it into place: concurrent
    # processes never share a temporary folder, and whoever renames first wins.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        save_policy(model, tok, tmp)
        (tmp / "sft.json").write_text(
            json.dumps({"task": task_name, "final_loss": losses[-1] if losses else None,
                        "heldout_pass_rate": rate, "steps": cfg.steps})
        )
        if not info.is_file():
            try:
                os.rename(tmp, path)
            except OSError:  # another process renamed its copy in first
                if not info.is_file():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename
    return path


def _cache_problem(path: Path) -> str | None:
    """What is wrong with a cache entry whose ``sft.json`` exists (``None``: it looks whole)."""
    try:
        info = json.loads((path / "sft.json").read_text())
    except (OSError, ValueError):
        return "sft.json is not readable JSON"
    if not isinstance(info, dict):
        return "sft.json is not a JSON object"
    for name in ("config.json", TOKENIZER_FILE):
        if not (path / name).is_file():
            return f"{name} is missing"
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        return "the model weights are missing"
    return None


def load_warm_start(path: str | Path, device: str = "cpu") -> tuple[PreTrainedModel, CharTokenizer]:
    """Load a warm-start checkpoint (alias of :func:`llm_rl.policy.load_policy`)."""
    return load_policy(path, device=device)
