"""Exploration-preserving policy losses: Lp-Reg, STEER, SIREN, EPO and HAPO.

They register into :data:`llm_rl.losses.LOSSES` (same signature ``fn(inputs, config) ->
(loss, metrics)``), each next to its own options dataclass, and each reports ``touched_frac``,
the fraction of the minibatch's tokens it changed. Definitions and defaults: LLM_RL.md; where it
is silent the choice made here is stated in the docstring. What a loss needs beyond the common
inputs it declares in its options class's ``needs`` (see :data:`llm_rl.losses.NEEDS`):

- ``lp-reg`` (Lp-Reg): a min-p proxy of the old policy; the lowest-probability negative-advantage
  tokens whose proxy probability exceeds the policy's get a k3 pull toward the proxy.
- ``steer`` (STEER): every token's loss is reweighted by ``exp(-k |Omega_i|)`` (clipped to
  ``[w_min, 1]``), ``Omega_i`` the first-order predicted entropy change of that token's update.
- ``siren`` (SIREN): ``lambda (H_sel - H_anchor)^2`` on the top-p nucleus entropy of each
  response's highest-entropy positions, anchored to its value on the first batch.
- ``epo`` (EPO): a squared hinge on the batch entropy outside ``[lo, hi] x`` the phase's
  historical mean entropy, weighted by a coefficient that decays phase by phase.
- ``hapo`` (HAPO): per-token normalized entropy ``h`` sets the sampling temperature, asymmetric
  clip bounds and an advantage scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ctrlbench.options import option
from llm_rl.losses import (
    LOSSES,
    GRPOOptions,
    LossConfig,
    LossInputs,
    _finish,
    _opts,
    _surrogate,
    aggregate,
    k3_kl,
)
from llm_rl.validation import check_field

__all__ = [
    "EPOOptions",
    "HAPOOptions",
    "LpRegOptions",
    "SIRENOptions",
    "STEEROptions",
    "epo_loss",
    "hapo_loss",
    "hapo_normalized_entropy",
    "lp_reg_loss",
    "minp_proxy_logprob",
    "nucleus_entropy",
    "siren_loss",
    "steer_loss",
    "steer_weights",
]

#: Probabilities are clamped to ``[_P_EPS, 1 - _P_EPS]`` before logs and ``1 - p`` (STEER).
_P_EPS = 1e-8


def _need(x: torch.Tensor | None, field: str, loss: str) -> torch.Tensor:
    if x is None:
        raise ValueError(f"loss {loss!r} needs LossInputs.{field} (the trainer fills it when the "
                         f"loss's options declare it in `needs`)")
    return x


def _state(inp: LossInputs, loss: str) -> dict[str, float]:
    if inp.state is None:
        raise ValueError(f"loss {loss!r} keeps state across steps: pass LossInputs.state (a dict "
                         f"the caller keeps and checkpoints)")
    return inp.state


# ---------------------------------------------------------------------------------- Lp-Reg
@dataclass(frozen=True)
class LpRegOptions(GRPOOptions):
    """Options of the ``lp-reg`` loss: the GRPO clip plus the min-p proxy pull."""

    needs: ClassVar[frozenset[str]] = frozenset({"old_logp_all", "tokens"})
    lp_reg_kappa: float = option(0.02, "Lp-Reg: min-p threshold; the proxy keeps tokens with "
                                 "p_old >= kappa x max p_old.", gt=0, le=1)
    lp_reg_rho: float = option(0.01, "Lp-Reg: fraction of the negative-advantage tokens, "
                               "lowest probability first, that are candidates.", gt=0, le=1)
    lp_reg_beta: float = option(1.0, "Lp-Reg: weight of the k3 pull toward the proxy.", ge=0,
                                le=1e6)


def minp_proxy_logprob(old_logp_all: torch.Tensor, tokens: torch.Tensor,
                       kappa: float) -> torch.Tensor:
    """Log-prob of ``tokens`` under the min-p proxy of the old policy (``-inf`` if filtered out).

    The proxy keeps the tokens with ``p_old >= kappa max p_old`` and renormalizes them.
    """
    p = old_logp_all.detach().exp()
    keep = p >= kappa * p.max(-1, keepdim=True).values
    mass = (p * keep).sum(-1)
    py = p.gather(-1, tokens[:, None]).squeeze(-1)
    ky = keep.gather(-1, tokens[:, None]).squeeze(-1)
    out = torch.log(py / mass)
    return torch.where(ky, out, torch.full_like(out, -math.inf))


@LOSSES.register("lp-reg", options=LpRegOptions)
def lp_reg_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Lp-Reg: GRPO surrogate + ``beta k3(l_i, log proxy(y_i))`` on selected tokens.

    Selected: among the negative-advantage tokens, the ``max(1, floor(rho N_neg))`` with the
    lowest probability under the current policy (detached; ties by position), kept only where
    the proxy's probability of the token exceeds the policy's. The k3 term's gradient in ``l_i``
    is ``beta (1 - proxy / pi) < 0``: descent raises the token's probability toward the proxy.
    Needs the old policy's full distribution (``old_logp_all``) and the sampled ``tokens``.
    """
    o = _opts(cfg, LpRegOptions)
    old_all = _need(inp.old_logp_all, "old_logp_all", "lp-reg")
    tokens = _need(inp.tokens, "tokens", "lp-reg")
    per_token, _, _, metrics = _surrogate(inp, cfg)
    n = inp.adv.numel()
    neg = torch.nonzero(inp.adv < 0).view(-1)
    sel = torch.zeros(n, dtype=torch.bool, device=inp.adv.device)
    if neg.numel():
        k = max(1, math.floor(o.lp_reg_rho * neg.numel()))
        lp = inp.logp.detach()[neg]
        order = torch.sort(lp, stable=True).indices[:k]
        sel[neg[order]] = True
    proxy = minp_proxy_logprob(old_all, tokens, o.lp_reg_kappa)
    sel &= proxy > inp.logp.detach()
    pull = torch.zeros_like(per_token)
    if bool(sel.any()):
        pull[sel] = o.lp_reg_beta * k3_kl(inp.logp[sel], proxy[sel])
    metrics["touched_frac"] = float(sel.sum()) / max(n, 1)
    return _finish(per_token + pull, inp, cfg, metrics)


# ---------------------------------------------------------------------------------- STEER
@dataclass(frozen=True)
class STEEROptions(GRPOOptions):
    """Options of the ``steer`` loss: the GRPO clip plus the entropy-change reweighting."""

    needs: ClassVar[frozenset[str]] = frozenset({"old_entropy"})
    steer_w_min: float = option(0.8, "STEER: smallest token weight (the weight of the token "
                                "with the largest predicted entropy change).", gt=0, le=1)
    steer_omega_floor: float = option(0.02, "STEER: floor of max|Omega| in k = -ln(w_min) / "
                                      "max(max|Omega|, floor).", gt=0, le=1e6)


def steer_weights(adv: torch.Tensor, old_logp: torch.Tensor, old_entropy: torch.Tensor,
                  w_min: float, omega_floor: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """STEER's ``(w, Omega)``: ``Omega_i = (A_i / p) p (1 - p) (log p + H_i)`` at the old policy
    (``p`` clamped to ``[1e-8, 1 - 1e-8]``), ``w_i = clip(exp(-k |Omega_i|), w_min, 1)`` with
    ``k = -ln(w_min) / max(max |Omega|, omega_floor)``; both detached."""
    p = old_logp.detach().exp().clamp(_P_EPS, 1 - _P_EPS)
    omega = (adv.detach() / p) * p * (1 - p) * (torch.log(p) + old_entropy.detach())
    peak = float(omega.abs().max()) if omega.numel() else 0.0
    k = -math.log(w_min) / max(peak, omega_floor)
    w = torch.exp(-k * omega.abs()).clamp(w_min, 1.0)
    return w, omega


@LOSSES.register("steer", options=STEEROptions)
def steer_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """STEER: the clipped surrogate of token ``i`` multiplied by :func:`steer_weights`'s ``w_i``.

    ``p`` and ``H`` are the old (rollout) policy's, the point the first-order prediction is made
    at. ``touched_frac``: tokens with ``w_i < 1``.
    """
    o = _opts(cfg, STEEROptions)
    old_ent = _need(inp.old_entropy, "old_entropy", "steer")
    per_token, _, _, metrics = _surrogate(inp, cfg)
    w, omega = steer_weights(inp.adv, inp.old_logp, old_ent, o.steer_w_min, o.steer_omega_floor)
    n = max(inp.adv.numel(), 1)
    metrics["touched_frac"] = float((w < 1).sum()) / n
    metrics["steer_w_mean"] = float(w.mean()) if inp.adv.numel() else 1.0
    metrics["steer_omega_abs_max"] = float(omega.abs().max()) if inp.adv.numel() else 0.0
    return _finish(per_token * w, inp, cfg, metrics)


# ---------------------------------------------------------------------------------- SIREN
@dataclass(frozen=True)
class SIRENOptions(GRPOOptions):
    """Options of the ``siren`` loss: the GRPO clip plus the anchored nucleus-entropy term."""

    needs: ClassVar[frozenset[str]] = frozenset({"logp_all"})
    siren_top_p: float = option(0.8, "SIREN: nucleus mass; entropy is taken over the smallest "
                                "top-probability set reaching it.", gt=0, le=1)
    siren_top_frac: float = option(0.2, "SIREN: fraction of each response's positions, highest "
                                   "entropy first, that enter the term.", gt=0, le=1)
    siren_lambda: float = option(0.005, "SIREN: weight of (H_sel - H_anchor)^2.", ge=0, le=1e6)


def nucleus_entropy(logp_all: torch.Tensor, top_p: float) -> torch.Tensor:
    """Entropy of each row's top-``p`` nucleus, renormalized (differentiable in ``logp_all``).

    The nucleus is the smallest set of most probable tokens whose mass reaches ``top_p`` (chosen
    on detached probabilities, always at least the top token).
    """
    p = logp_all.exp()
    sorted_p, idx = torch.sort(p.detach(), dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # mass of the tokens ranked above
    in_sorted = before < top_p
    mask = torch.zeros_like(in_sorted).scatter(-1, idx, in_sorted)
    masked = torch.where(mask, logp_all, torch.full_like(logp_all, -math.inf))
    q_log = torch.log_softmax(masked, dim=-1)
    q = q_log.exp()
    return -(q * torch.where(mask, q_log, torch.zeros_like(q_log))).sum(-1)


def _top_per_sequence(score: torch.Tensor, seq_id: torch.Tensor, frac: float) -> torch.Tensor:
    """Mask of the ``max(1, floor(frac n_s))`` highest-``score`` tokens of each sequence."""
    sel = torch.zeros_like(score, dtype=torch.bool)
    for s in torch.unique(seq_id).tolist():
        idx = torch.nonzero(seq_id == s).view(-1)
        k = max(1, math.floor(frac * idx.numel()))
        top = torch.sort(score[idx], descending=True, stable=True).indices[:k]
        sel[idx[top]] = True
    return sel


@LOSSES.register("siren", options=SIRENOptions)
def siren_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """SIREN: GRPO surrogate + ``lambda (H_sel - H_anchor)^2``.

    ``H_sel`` is the mean top-p nucleus entropy over the selected positions: in each response the
    ``max(1, floor(top_frac n))`` positions with the highest full-vocabulary entropy (detached).
    ``H_anchor`` is ``H_sel`` of the first batch the loss sees (kept in ``inputs.state`` under
    ``siren_anchor``), so the term is zero there and pulls back toward it afterwards. Needs the
    current full distribution (``logp_all``, with gradient).
    """
    o = _opts(cfg, SIRENOptions)
    logp_all = _need(inp.logp_all, "logp_all", "siren")
    state = _state(inp, "siren")
    per_token, _, _, metrics = _surrogate(inp, cfg)
    full_h = -(logp_all.detach().exp() * logp_all.detach()).sum(-1)
    sel = _top_per_sequence(full_h, inp.seq_id, o.siren_top_frac)
    n = inp.adv.numel()
    loss, metrics = _finish(per_token, inp, cfg, metrics)
    if n == 0:
        return loss, metrics
    h_sel = nucleus_entropy(logp_all[sel], o.siren_top_p).mean()
    anchor = state.setdefault("siren_anchor", float(h_sel.detach()))
    term = o.siren_lambda * (h_sel - anchor) ** 2
    metrics.update(siren_h_sel=float(h_sel.detach()), siren_anchor=anchor,
                   touched_frac=float(sel.sum()) / n)
    loss = loss + term
    metrics["loss"] = float(loss.detach())
    return loss, metrics


# ---------------------------------------------------------------------------------- EPO
@dataclass(frozen=True)
class EPOOptions(GRPOOptions):
    """Options of the ``epo`` loss: the GRPO clip plus the phased entropy band."""

    epo_low: float = option(0.5, "EPO: lower band edge as a multiple of the historical mean "
                            "entropy (< 1).", ge=0, lt=1)
    epo_high: float = option(1.5, "EPO: upper band edge as a multiple of the historical mean "
                             "entropy (> 1).", gt=1, le=1e6)
    epo_coef: float = option(0.1, "EPO: weight of the squared-hinge band penalty in the first "
                             "phase.", ge=0, le=1e6)
    epo_phases: int = option(3, "EPO: equal phases of training; the historical mean restarts "
                             "each phase.", ge=1, le=1000)
    epo_decay: float = option(0.5, "EPO: the weight is multiplied by this each phase.", ge=0,
                              le=1)


@LOSSES.register("epo", options=EPOOptions)
def epo_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """EPO: GRPO surrogate + ``c decay^phase (relu(H - hi)^2 + relu(lo - H)^2)``.

    ``H`` is the minibatch's entropy (``inputs.entropy`` aggregated like the loss, with
    gradient); ``phase = min(floor(progress x phases), phases - 1)``; ``lo, hi = (epo_low,
    epo_high) x Hbar`` with ``Hbar`` the mean of the minibatch entropies this loss has seen in the
    current phase (before this one; the minibatch's own detached value on a phase's first). A
    squared hinge is used because it is smooth and, unlike the published code's term, carries a
    gradient. State (phase, sum, count) lives in ``inputs.state``. The band acts on the batch
    entropy as a whole, so ``touched_frac`` is 1 when ``H`` is outside the band, else 0.
    """
    o = _opts(cfg, EPOOptions)
    ent = _need(inp.entropy, "entropy", "epo")
    state = _state(inp, "epo")
    per_token, _, _, metrics = _surrogate(inp, cfg)
    loss, metrics = _finish(per_token, inp, cfg, metrics)
    if inp.adv.numel() == 0:
        return loss, metrics
    phase = min(math.floor(inp.progress * o.epo_phases), o.epo_phases - 1)
    if state.get("epo_phase") != phase:
        state.update(epo_phase=phase, epo_sum=0.0, epo_count=0.0)
    h = aggregate(ent, inp.seq_id, cfg.agg, cfg.max_seq_len)
    hbar = state["epo_sum"] / state["epo_count"] if state["epo_count"] else float(h.detach())
    state["epo_sum"] += float(h.detach())
    state["epo_count"] += 1
    lo, hi = o.epo_low * hbar, o.epo_high * hbar
    penalty = torch.relu(h - hi) ** 2 + torch.relu(lo - h) ** 2
    weight = o.epo_coef * o.epo_decay**phase
    loss = loss + weight * penalty
    outside = not lo <= float(h.detach()) <= hi
    metrics.update(epo_hbar=hbar, epo_weight=weight, epo_penalty=float(penalty.detach()),
                   touched_frac=float(outside), loss=float(loss.detach()))
    return loss, metrics


# ---------------------------------------------------------------------------------- HAPO
def hapo_normalized_entropy(entropy: torch.Tensor, quantile: float = 0.8) -> torch.Tensor:
    """HAPO's ``h = clip(ln(H_i / q), -1, 1)``, ``q`` the ``quantile`` of ``H`` over the tokens
    (linear interpolation; entropies floored at 1e-8); detached."""
    h = entropy.detach().clamp(min=_P_EPS)
    if h.numel() == 0:
        return h
    q = torch.quantile(h.float(), quantile)
    return torch.log(h / q).clamp(-1.0, 1.0)


@dataclass(frozen=True)
class HAPOOptions(GRPOOptions):
    """Options of the ``hapo`` loss: entropy-adaptive temperature, clipping and advantages."""

    needs: ClassVar[frozenset[str]] = frozenset({"old_entropy", "token_temperature"})
    hapo_quantile: float = option(0.8, "HAPO: entropy quantile q that h = ln(H / q) is "
                                  "normalized around.", gt=0, lt=1)
    hapo_temp_scale: float = option(0.05, "HAPO: sampling temperature T (1 + scale h).", ge=0,
                                    lt=1)
    hapo_adv_scale: float = option(1.0, "HAPO: advantage A (1 + scale h) (1 = the paper's "
                                   "A (1 + h)).", ge=0, le=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "eps_low", self.eps_low * 2 < 1,
                    "< 0.5 (HAPO widens it to eps_low (1 - h) <= 2 eps_low, and 1 - 2 eps_low "
                    "must stay > 0)")

    def token_temperature(self, logits: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Per-row temperature ``T (1 + temp_scale h)`` for one decoding step.

        ``h`` normalizes each row's entropy at the base temperature ``T`` (``(B,)``) around the
        ``hapo_quantile`` of the batch's entropies at this step.
        """
        logp = torch.log_softmax(logits.float() / base[:, None], dim=-1)
        ent = -(logp.exp() * logp).sum(-1)
        return base * (1 + self.hapo_temp_scale * hapo_normalized_entropy(ent,
                                                                          self.hapo_quantile))


@LOSSES.register("hapo", options=HAPOOptions)
def hapo_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """HAPO: ``max(-A' r, -A' clip(r, 1 - eps_low_i, 1 + eps_high_i))`` with ``A' = A (1 + h)``.

    ``h`` is :func:`hapo_normalized_entropy` of the old (sampling) entropies of the minibatch's
    tokens; ``eps_high_i = eps_high (1 + h)`` where ``h > 0`` (else ``eps_high``) and
    ``eps_low_i = eps_low (1 - h)`` where ``h <= 0`` (else ``eps_low``): high-entropy tokens may
    grow more, low-entropy ones shrink more. Sampling uses :meth:`HAPOOptions.token_temperature`.
    Dual clip, when set, bounds ``-A' c``. ``touched_frac``: tokens with ``h != 0``.
    """
    o = _opts(cfg, HAPOOptions)
    old_ent = _need(inp.old_entropy, "old_entropy", "hapo")
    h = hapo_normalized_entropy(old_ent, o.hapo_quantile)
    ratio = torch.exp(inp.logp - inp.old_logp)
    a = inp.adv * (1 + o.hapo_adv_scale * h)
    eps_hi = torch.where(h > 0, o.eps_high * (1 + h), torch.full_like(h, o.eps_high))
    eps_lo = torch.where(h <= 0, o.eps_low * (1 - h), torch.full_like(h, o.eps_low))
    l1 = -a * ratio
    l2 = -a * torch.minimum(torch.maximum(ratio, 1 - eps_lo), 1 + eps_hi)
    per_token = torch.maximum(l1, l2)
    if o.dual_clip is not None:
        per_token = torch.where(a < 0, torch.minimum(per_token, -a * o.dual_clip), per_token)
    n = max(a.numel(), 1)
    metrics = {
        "clip_frac_low": float(((ratio < 1 - eps_lo) & (a < 0)).sum()) / n,
        "clip_frac_high": float(((ratio > 1 + eps_hi) & (a > 0)).sum()) / n,
        "ratio_max": float(ratio.detach().max()) if a.numel() else 1.0,
        "touched_frac": float((h != 0).sum()) / n,
        "hapo_h_mean": float(h.mean()) if a.numel() else 0.0,
    }
    return _finish(per_token, inp, cfg, metrics)
