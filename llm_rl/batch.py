"""Turning prompts into scored rollouts, merging rollouts, and re-scoring them with a model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from llm_rl.entropy import entropy_and_logprob
from llm_rl.rollout import Rollout, TokenTemperature, sample
from llm_rl.tasks import Problem, Task
from llm_rl.tokenizer import CharTokenizer

__all__ = ["concat_rollouts", "generate", "select_rows", "token_log_softmax", "token_scores"]


def generate(
    model: PreTrainedModel,
    tok: CharTokenizer,
    task: Task,
    problems: Sequence[Problem],
    *,
    group_size: int,
    temperature: float,
    generator: torch.Generator | None,
    fast: bool = False,
    token_temperature: TokenTemperature | None = None,
) -> tuple[Rollout, list[str], list[bool]]:
    """Sample ``group_size`` answers per problem; an answer counts only if it ends with ``<eos>``.

    Returns the rollout (rows grouped by problem), the decoded answers and their correctness.
    ``token_temperature`` (HAPO) sets each token's temperature (see :func:`llm_rl.rollout.sample`).
    """
    device = next(model.parameters()).device
    ids, mask = tok.pad([tok.encode(p.prompt, bos=True) for p in problems])
    x = torch.tensor(ids, device=device).repeat_interleave(group_size, 0)
    m = torch.tensor(mask, device=device).repeat_interleave(group_size, 0)
    ro = sample(model, x, m, max_new_tokens=task.max_answer_len + 2, eos_id=tok.eos_id,
                pad_id=tok.pad_id, temperature=temperature, generator=generator, fast=fast,
                token_temperature=token_temperature)
    answers, correct = [], []
    for i, row in enumerate(ro.tokens.tolist()):
        answer = tok.decode(row)
        answers.append(answer)
        correct.append(tok.eos_id in row and task.verify(problems[i // group_size], answer))
    return ro, answers, correct


def select_rows(ro: Rollout, rows: torch.Tensor) -> Rollout:
    """The rollout restricted to ``rows``."""
    return Rollout(ro.prompt_ids[rows], ro.prompt_mask[rows], ro.tokens[rows], ro.logprobs[rows],
                   ro.entropy[rows], ro.mask[rows], ro.temperature[rows])


def concat_rollouts(a: Rollout, b: Rollout, pad_id: int) -> Rollout:
    """Stack two rollouts: prompts left-padded and responses right-padded to common widths."""
    p = max(a.prompt_ids.shape[1], b.prompt_ids.shape[1])
    n = max(a.tokens.shape[1], b.tokens.shape[1])

    def left(t: torch.Tensor, v: float) -> torch.Tensor:
        return F.pad(t, (p - t.shape[1], 0), value=v)

    def right(t: torch.Tensor, v: float) -> torch.Tensor:
        return F.pad(t, (0, n - t.shape[1]), value=v)

    def temps(r: Rollout) -> torch.Tensor:  # per-token (B, L) once either rollout has them
        t = r.temperature
        if a.temperature.ndim == b.temperature.ndim == 1:
            return t
        return right(t if t.ndim == 2 else t[:, None].expand_as(r.tokens), 1.0)

    return Rollout(
        prompt_ids=torch.cat([left(a.prompt_ids, pad_id), left(b.prompt_ids, pad_id)]),
        prompt_mask=torch.cat([left(a.prompt_mask, 0), left(b.prompt_mask, 0)]),
        tokens=torch.cat([right(a.tokens, pad_id), right(b.tokens, pad_id)]),
        logprobs=torch.cat([right(a.logprobs, 0.0), right(b.logprobs, 0.0)]),
        entropy=torch.cat([right(a.entropy, 0.0), right(b.entropy, 0.0)]),
        mask=torch.cat([right(a.mask, 0.0), right(b.mask, 0.0)]),
        temperature=torch.cat([temps(a), temps(b)]),
    )


def token_scores(model: PreTrainedModel, ro: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropy and log-prob ``(B, L)`` of the rollout's tokens under ``model``, one full forward,
    at each row's sampling temperature (differentiable when grad mode is on)."""
    full = torch.cat([ro.prompt_ids, ro.tokens], dim=1)
    att = torch.cat([ro.prompt_mask.long(), ro.mask.long()], dim=1)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    plen = ro.prompt_ids.shape[1]
    logits = model(full, attention_mask=att, position_ids=pos).logits[:, plen - 1 : -1]
    return entropy_and_logprob(logits, ro.tokens, ro.temperature)


def token_log_softmax(model: PreTrainedModel, ro: Rollout) -> torch.Tensor:
    """``(B, L, V)`` log-probabilities of the whole vocabulary at each response position, at the
    rollout's sampling temperature (per row or per token); differentiable when grad mode is on.

    ``O(B L V)`` memory: the trainer calls it only for a loss that declares ``logp_all`` or
    ``old_logp_all`` (a tiny vocabulary here).
    """
    full = torch.cat([ro.prompt_ids, ro.tokens], dim=1)
    att = torch.cat([ro.prompt_mask.long(), ro.mask.long()], dim=1)
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    plen = ro.prompt_ids.shape[1]
    logits = model(full, attention_mask=att, position_ids=pos).logits[:, plen - 1 : -1]
    t = ro.temperature
    t = t[:, None, None] if t.ndim == 1 else t[:, :, None]
    return torch.log_softmax(logits.float() / t, dim=-1)
