"""Decoding-time entropy control: Mirostat v1 and v2 (Basu et al. 2021, arXiv 2007.14966).

Mirostat closes a loop around a frozen model: the plant output is the surprise
``s = -log2 p(x)`` of each sampled token, the set-point is ``tau`` bits, the actuator is the
truncation of the next-token distribution and the controller is an integrator on
``mu`` (initially ``2 tau``): ``mu <- mu - eta (s - tau)``.

- **v1** (the paper's Algorithm 1): estimate the Zipf exponent from the top ``m = 100`` sorted
  probabilities, ``s_hat = sum t_i b_i / sum t_i^2`` with ``t_i = ln((i + 1) / i)`` and
  ``b_i = ln(p_i / p_{i+1})``; then ``eps = s_hat - 1`` and sample from the top
  ``k = (eps 2^mu / (1 - V^-eps))^(1 / s_hat)`` tokens.
- **v2**: drop every token whose surprise exceeds ``mu`` (the top token always stays) and
  sample from the rest.

The surprise fed back is the *model's* (the untruncated distribution's, as in the paper's
reference code; llama.cpp uses the renormalized truncated one). :class:`MirostatLogitsProcessor`
is a ``transformers`` ``LogitsProcessor``, so ``model.generate(..., do_sample=True,
logits_processor=LogitsProcessorList([proc]))`` uses it for any HF causal LM, and
:func:`llm_rl.rollout.sample` takes it as ``logits_processor``. It reads the token sampled at the
previous step from ``input_ids`` on the next call; :meth:`MirostatLogitsProcessor.observe` records
the last token of a finished generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from transformers import LogitsProcessor

from ctrlbench.options import Options, option

__all__ = [
    "MIROSTAT_MODES",
    "MirostatLogitsProcessor",
    "MirostatOptions",
    "SampleResult",
    "mirostat_v1_k",
    "repetition_rate",
    "sample_text",
    "zipf_exponent",
]

MIROSTAT_MODES = ("v1", "v2")
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class MirostatOptions(Options):
    """Mirostat settings (defaults: the paper's code, tau 3 bits, eta 1)."""

    label: ClassVar[str] = "mirostat"
    mode: str = option("v2", "Mirostat variant: v1 (Zipf estimate -> top-k) or v2 (truncate at "
                       "surprise mu).", choices=MIROSTAT_MODES)
    tau: float = option(3.0, "Target surprise in bits per token.", gt=0, le=64)
    eta: float = option(1.0, "Learning rate of mu (bits per bit of error).", gt=0, le=10)
    m: int = option(100, "v1: top probabilities used to estimate the Zipf exponent.", ge=2,
                    le=100_000)


def zipf_exponent(sorted_probs: torch.Tensor, m: int = 100) -> torch.Tensor:
    """Least-squares Zipf exponent of each row of descending probabilities ``(B, V)``.

    ``s_hat = sum_i t_i b_i / sum_i t_i^2`` over ``i = 1 .. min(m, V) - 1`` with
    ``t_i = ln((i + 1) / i)``, ``b_i = ln(p_i / p_{i+1})`` (1-based ranks).
    """
    n = min(m, sorted_probs.shape[-1])
    p = sorted_probs[..., :n].double().clamp(min=1e-300)
    i = torch.arange(1, n, dtype=torch.float64, device=p.device)
    t = torch.log((i + 1) / i)
    b = torch.log(p[..., :-1] / p[..., 1:])
    return (b * t).sum(-1) / (t * t).sum()


def mirostat_v1_k(s_hat: torch.Tensor, mu: torch.Tensor, vocab: int) -> torch.Tensor:
    """v1's ``k = (eps 2^mu / (1 - V^-eps))^(1 / s_hat)``, ``eps = s_hat - 1``, as an int in
    ``[1, V]`` (``eps -> 0`` uses the limit ``eps / (1 - V^-eps) -> 1 / ln V``)."""
    s = s_hat.double().clamp(min=1e-6)
    eps = s - 1
    near = eps.abs() < 1e-9
    safe = torch.where(near, torch.ones_like(eps), eps)
    ratio = torch.where(near, torch.full_like(eps, 1 / math.log(vocab)),
                        safe / (1 - vocab ** (-safe)))
    k = (ratio * torch.pow(2.0, mu.double())) ** (1 / s)
    k = torch.nan_to_num(k, nan=float(vocab), posinf=float(vocab))
    return k.floor().clamp(1, vocab).long()


class MirostatLogitsProcessor(LogitsProcessor):
    """Mirostat v1/v2 as a ``transformers`` logits processor with per-row state.

    Parameters
    ----------
    options:
        :class:`MirostatOptions` (mode, tau, eta, m).

    Attributes
    ----------
    mu:
        ``(B,)`` current truncation level in bits (``2 tau`` before the first token).
    surprises:
        One ``(B,)`` tensor per observed token: the model's surprise in bits.
    ks:
        One ``(B,)`` tensor per step: the number of tokens kept.
    """

    def __init__(self, options: MirostatOptions | None = None) -> None:
        self.options = options or MirostatOptions()
        self.mu: torch.Tensor | None = None
        self.surprises: list[torch.Tensor] = []
        self.ks: list[torch.Tensor] = []
        self._prev_logp: torch.Tensor | None = None
        self._prev_len = -1

    def observe(self, input_ids: torch.Tensor) -> None:
        """Feed back the surprise of the last token of ``input_ids`` (sampled from the
        distribution of the previous call) and update ``mu``; no-op when already observed."""
        if self._prev_logp is None or self.mu is None or input_ids.shape[-1] == self._prev_len:
            return
        tok = input_ids[:, -1].to(self._prev_logp.device)
        s = -self._prev_logp.gather(-1, tok[:, None]).squeeze(-1) / _LN2
        self.surprises.append(s)
        self.mu = self.mu - self.options.eta * (s - self.options.tau)
        self._prev_len = input_ids.shape[-1]

    def __call__(self, input_ids: torch.Tensor,  # type: ignore[override]
                 scores: torch.Tensor) -> torch.Tensor:
        """Truncate ``scores`` ``(B, V)`` (other entries set to ``-inf``)."""
        o = self.options
        if self.mu is None:
            self.mu = torch.full((scores.shape[0],), 2 * o.tau, dtype=torch.float64,
                                 device=scores.device)
        self.observe(input_ids)
        logp = torch.log_softmax(scores.float(), dim=-1)
        self._prev_logp = logp
        self._prev_len = input_ids.shape[-1]
        sorted_logp, order = torch.sort(logp, dim=-1, descending=True)
        vocab = scores.shape[-1]
        if o.mode == "v1":
            k = mirostat_v1_k(zipf_exponent(sorted_logp.exp(), o.m), self.mu, vocab)
            keep_sorted = torch.arange(vocab, device=scores.device)[None, :] < k[:, None]
        else:
            keep_sorted = (-sorted_logp / _LN2) <= self.mu[:, None].to(sorted_logp.dtype)
            keep_sorted[:, 0] = True
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        self.ks.append(keep.sum(-1))
        return scores.masked_fill(~keep, -math.inf)

    def surprise_trace(self) -> torch.Tensor:
        """``(B, T)`` surprises observed so far (bits)."""
        if not self.surprises:
            return torch.zeros(0, 0)
        return torch.stack(self.surprises, 1)


def repetition_rate(tokens: list[int], n: int = 4) -> float:
    """Fraction of the ``n``-grams of ``tokens`` that already occurred earlier in it."""
    if n < 1:
        raise ValueError(f"n = {n} is out of range; valid: >= 1")
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


@dataclass
class SampleResult:
    """One decoded continuation: its text, token ids and per-token model surprise (bits)."""

    text: str
    tokens: list[int]
    surprise: list[float]

    def running_mean(self) -> list[float]:
        """Running mean of :attr:`surprise`."""
        out, total = [], 0.0
        for i, s in enumerate(self.surprise, 1):
            total += s
            out.append(total / i)
        return out


@torch.no_grad()
def sample_text(model: Any, tok: Any, prompt: str, *, max_new_tokens: int,
                options: MirostatOptions | None, temperature: float = 1.0,
                generator: torch.Generator | None = None) -> SampleResult:
    """Sample a continuation of ``prompt`` with :func:`llm_rl.rollout.sample` (our KV-cached
    rollout), under Mirostat when ``options`` is given (else plain sampling at ``temperature``).

    ``tok`` is a :class:`~llm_rl.tokenizer.CharTokenizer`. The surprise of every generated token
    (up to and including ``<eos>``) is the model's at ``temperature``, in bits.
    """
    from llm_rl.rollout import sample  # local: rollout imports the sensor

    device = next(model.parameters()).device
    ids = torch.tensor([tok.encode(prompt, bos=True)], device=device)
    proc = MirostatLogitsProcessor(options) if options is not None else None
    ro = sample(model, ids, torch.ones_like(ids), max_new_tokens=max_new_tokens,
                eos_id=tok.eos_id, pad_id=tok.pad_id, temperature=temperature,
                generator=generator, logits_processor=proc)
    n = int(ro.mask.sum())
    tokens = ro.tokens[0, :n].tolist()
    surprise = (-ro.logprobs[0, :n] / _LN2).tolist()
    return SampleResult(tok.decode(tokens), tokens, surprise)
