"""Batched sampling with a KV cache: tokens, log-probs, entropies and masks in one pass.

:func:`sample` decodes token by token from left-padded prompts, reusing the model's key/value
cache. Log-probs and entropies come from the sensor (:mod:`llm_rl.entropy`) applied to the
temperature-scaled logits that were actually sampled from. The fast path (``fast=True``)
preallocates a ``StaticCache`` (fixed shapes, no per-step reallocation) and, on CUDA only, compiles
the decode step with ``torch.compile(mode="reduce-overhead")`` (CUDA graphs); on CPU the static
cache runs eagerly, so both paths are exercised here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel, StaticCache

from llm_rl.entropy import entropy_and_logprob
from llm_rl.validation import NonFiniteLossError

__all__ = ["LogitsProcessorFn", "Rollout", "TokenTemperature", "sample"]

#: ``fn(logits (B, V), base temperature (B,)) -> (B,)`` temperature of each row's next token
#: (HAPO's entropy-adaptive temperature).
TokenTemperature = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``fn(input_ids (B, P + i), scores (B, V)) -> scores``: a ``transformers`` ``LogitsProcessor``
#: (e.g. :class:`llm_rl.decoding.MirostatLogitsProcessor`) applied to the temperature-scaled
#: logits before each draw.
LogitsProcessorFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Rollout:
    """A batch of sampled responses (all tensors on the model's device).

    Attributes
    ----------
    prompt_ids, prompt_mask:
        ``(B, P)`` left-padded prompts and their attention mask.
    tokens:
        ``(B, L)`` sampled response ids (``pad`` after ``<eos>``).
    logprobs, entropy:
        ``(B, L)`` float32 log-prob of each sampled token and entropy of the distribution it was
        drawn from, both at the sampling temperature.
    mask:
        ``(B, L)`` 1.0 on response tokens up to and including ``<eos>``.
    temperature:
        ``(B,)`` sampling temperature of each row, or ``(B, L)`` one per token when a
        ``token_temperature`` function chose them.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    tokens: torch.Tensor
    logprobs: torch.Tensor
    entropy: torch.Tensor
    mask: torch.Tensor
    temperature: torch.Tensor

    @property
    def num_tokens(self) -> int:
        """Number of valid response tokens."""
        return int(self.mask.sum().item())


_COMPILED: dict[int, Callable[..., Any]] = {}


def _decoder(model: PreTrainedModel, compiled: bool) -> Callable[..., Any]:
    if not compiled:
        return model
    key = id(model)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(model, mode="reduce-overhead")
    return _COMPILED[key]


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    temperature: float | torch.Tensor = 1.0,
    generator: torch.Generator | None = None,
    fast: bool = False,
    token_temperature: TokenTemperature | None = None,
    logits_processor: LogitsProcessorFn | None = None,
) -> Rollout:
    """Sample up to ``max_new_tokens`` per row; rows stop at ``<eos>``.

    Parameters
    ----------
    model:
        A causal LM (``PreTrainedModel``) in eval mode.
    prompt_ids, prompt_mask:
        ``(B, P)`` left-padded prompts and mask.
    temperature:
        Scalar or ``(B,)`` per-row temperatures, finite and > 0 (else ``ValueError``).
    generator:
        Torch RNG for the draws (on the model's device) for reproducible sampling.
    fast:
        Static KV cache; plus ``torch.compile`` CUDA-graph decoding when on CUDA.
    token_temperature:
        Per-token temperature from the logits and the row temperature (HAPO); the rollout then
        records a ``(B, L)`` temperature.
    logits_processor:
        Applied to the temperature-scaled logits before each draw (Mirostat truncation). The
        recorded log-probs and entropies stay the model's at the sampling temperature.
    """
    device = prompt_ids.device
    bsz, plen = prompt_ids.shape
    temp = torch.as_tensor(temperature, dtype=torch.float32, device=device).expand(bsz).clone()
    bad = ~torch.isfinite(temp) | (temp <= 0)
    if bool(bad.any()):  # T <= 0 would turn the softmax into inf/nan deep inside multinomial
        raise ValueError(f"sampling temperature must be finite and > 0, got "
                         f"{temp[bad][0].item()!r} (row {int(bad.nonzero()[0])})")
    mask = prompt_mask.to(device).long()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    cache: Any
    if fast:
        # Fixed shapes for graph capture: the static cache and a full-length attention mask
        # whose future columns are switched on one per step.
        total = plen + max_new_tokens
        cache = StaticCache(config=model.config, max_cache_len=total)
        mask = torch.cat([mask, mask.new_zeros(bsz, max_new_tokens)], dim=-1)
    else:
        cache = DynamicCache()
    step = _decoder(model, fast and device.type == "cuda")
    kwargs: dict[str, Any] = {"use_cache": True, "cache": cache}
    if fast:
        kwargs["cache_position"] = torch.arange(plen, device=device)
    out = model(prompt_ids, attention_mask=mask, position_ids=pos, **kwargs)
    logits = out.logits[:, -1]
    last_pos = pos[:, -1]
    toks: list[torch.Tensor] = []
    logps, ents, valid, temps = [], [], [], []
    alive = torch.ones(bsz, dtype=torch.bool, device=device)
    base = temp
    for i in range(max_new_tokens):
        if token_temperature is not None:
            temp = token_temperature(logits, base)
            temps.append(temp)
        scores = logits.float() / temp[:, None]
        if logits_processor is not None:
            seen = torch.cat([prompt_ids, torch.stack(toks, 1)], 1) if toks else prompt_ids
            scores = logits_processor(seen, scores)
        probs = torch.softmax(scores, dim=-1)
        try:
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        except RuntimeError as exc:  # NaN/inf logits (weights blown up by a huge step size)
            raise NonFiniteLossError(f"the policy's next-token distribution is not finite "
                                     f"({str(exc).splitlines()[0][:80]})") from None
        ent, logp = entropy_and_logprob(logits, tok, temp, use_triton=False)
        tok = torch.where(alive, tok, torch.full_like(tok, pad_id))
        toks.append(tok)
        logps.append(torch.where(alive, logp, torch.zeros_like(logp)))
        ents.append(torch.where(alive, ent, torch.zeros_like(ent)))
        valid.append(alive.clone())
        alive = alive & (tok != eos_id)
        # The fast path never syncs on `alive` (fixed work per step, no host round trip).
        if i == max_new_tokens - 1 or (not fast and not bool(alive.any())):
            break
        last_pos = last_pos + 1
        if fast:
            mask[:, plen + i] = 1
            kwargs["cache_position"] = torch.tensor([plen + i], device=device)
        else:
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        out = step(tok[:, None], attention_mask=mask, position_ids=last_pos[:, None], **kwargs)
        logits = out.logits[:, -1]
    valid_t = torch.stack(valid, 1)
    width = len(valid)
    if fast:  # drop trailing columns where every row had already stopped (one sync, at the end)
        width = int(valid_t.any(0).nonzero().max()) + 1
    return Rollout(
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        tokens=torch.stack(toks, 1)[:, :width],
        logprobs=torch.stack(logps, 1)[:, :width],
        entropy=torch.stack(ents, 1)[:, :width],
        mask=valid_t[:, :width].float(),
        temperature=torch.stack(temps, 1)[:, :width] if temps else temp,
    )
