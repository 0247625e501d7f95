"""Policy losses: one registry, one signature ``loss_fn(inputs, config) -> (loss, metrics)``.

All inputs are flat over the N valid response tokens of a minibatch (LLM_RL.md notation):
``l`` current log-prob, ``l_old`` rollout log-prob, ``r = exp(l - l_old)``, ``A`` the sequence
advantage repeated over its tokens. Every loss adds the optional k3 KL to a reference
(``kl_beta``) and subtracts the entropy bonus (``entropy_coef``, an actuator).

Registered: ``grpo`` (clipped surrogate; clip-higher via ``eps_high``, dual clip via ``dual_clip``;
DAPO = ``grpo`` with eps 0.2/0.28, token-mean, dynamic sampling in the trainer), ``clip-cov`` and
``kl-cov`` (Cui et al. 2025); :mod:`llm_rl.losses_explore` adds ``lp-reg``, ``steer``,
``siren``, ``epo`` and ``hapo`` to the same registry (imported at the end of this module). Each
is registered in :data:`LOSSES` next to its own options
dataclass (:class:`GRPOOptions`, :class:`ClipCovOptions`, :class:`KLCovOptions`);
:class:`LossConfig` holds the settings every loss reads plus the chosen loss's ``options``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from ctrlbench.options import OptionError, Options, option
from ctrlbench.registry import Registry
from llm_rl.validation import check_field, resolve_options

__all__ = [
    "AGGREGATIONS",
    "LOSSES",
    "NEEDS",
    "ClipCovOptions",
    "GRPOOptions",
    "KLCovOptions",
    "LossConfig",
    "LossInputs",
    "aggregate",
    "clip_cov_loss",
    "get_loss",
    "group_advantages",
    "grpo_loss",
    "k3_kl",
    "kl_cov_loss",
    "loss_needs",
    "token_covariance",
]

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
#: Inputs beyond the common ones that a loss may declare in its options class's ``needs``
#: (a ``ClassVar``); the trainer computes the costly ones (full distributions, per-token
#: sampling temperature) only for a loss that declares them.
NEEDS = ("logp_all", "old_logp_all", "old_entropy", "tokens", "token_temperature")


@dataclass(frozen=True)
class GRPOOptions(Options):
    """Options of the ``grpo`` loss: the PPO ratio clip (clip-higher, dual clip)."""

    label: ClassVar[str] = "loss"
    #: Extra inputs the loss reads (names from :data:`NEEDS`).
    needs: ClassVar[frozenset[str]] = frozenset()
    eps_low: float = option(0.2, "Lower ratio clip (r >= 1 - eps_low).", ge=0, lt=1)
    eps_high: float = option(0.2, "Upper ratio clip (r <= 1 + eps_high); DAPO clip-higher uses "
                             "0.28.", ge=0, le=1e6)
    dual_clip: float | None = option(None, "Dual-clip bound c for A < 0 (3.0 in the "
                                     "literature); None disables it.", gt=1, le=1e6)


@dataclass(frozen=True)
class ClipCovOptions(GRPOOptions):
    """Options of the ``clip-cov`` loss: the GRPO clip plus the covariance band and ratio."""

    clip_cov_lb: float = option(1.0, "Clip-Cov: lower bound of the covariance band.")
    clip_cov_ub: float = option(5.0, "Clip-Cov: upper bound of the covariance band "
                                "(> clip_cov_lb).")
    clip_cov_ratio: float = option(2e-4, "Clip-Cov: fraction rho of tokens detached (LLM scale; "
                                   "tiny models need ~1e-2).", ge=0, le=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_field(self, "clip_cov_ub", self.clip_cov_ub > self.clip_cov_lb,
                    f"finite > clip_cov_lb ({self.clip_cov_lb})")


@dataclass(frozen=True)
class KLCovOptions(Options):
    """Options of the ``kl-cov`` loss (no ratio clipping)."""

    label: ClassVar[str] = "loss"
    needs: ClassVar[frozenset[str]] = frozenset()
    kl_cov_ratio: float = option(2e-3, "KL-Cov: fraction kappa of tokens, top by covariance, "
                                 "that get the |l - l_old| penalty.", ge=0, le=1)
    kl_cov_beta: float = option(1.0, "KL-Cov: weight of the |l - l_old| penalty.", ge=0)


@dataclass(frozen=True)
class LossConfig(Options):
    """Settings of the policy loss (defaults: GRPO with symmetric clipping, no KL).

    The fields here are read by every loss; ``options`` holds the chosen loss's own options
    (:data:`LOSSES` ``.options(name)``). A mapping, or ``None`` for the defaults, is built into
    that class on construction, so ``dataclasses.asdict`` output round-trips.
    """

    label: ClassVar[str] = "loss"
    name: str = option("grpo", "Registered loss: grpo, clip-cov, kl-cov, lp-reg, steer, "
                      "siren, epo, hapo.")
    kl_beta: float = option(0.0, "Weight of the k3 KL to the reference (initial) policy.", ge=0)
    agg: str = option("token-mean", "Aggregation: token-mean (DAPO), seq-mean-token-mean "
                      "(GRPO), seq-mean-token-sum (Dr.GRPO).", choices=AGGREGATIONS)
    scale_adv_by_std: bool = option(True, "Divide group advantages by the group std "
                                    "(False = Dr.GRPO).")
    max_seq_len: int = option(16, "Constant normaliser of seq-mean-token-sum (Dr.GRPO's "
                              "generation budget).", ge=1)
    options: Any = option(None,  # noqa: RUF009 (None; replaced by the built instance)
                          "Options of the chosen loss (its options class, a mapping or None "
                          "for its defaults).")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "options", resolve_options(LOSSES, self.name, self.options))


@dataclass
class LossInputs:
    """Flat per-token tensors of one minibatch (length N) plus actuator values."""

    logp: torch.Tensor
    """Current log-prob (requires grad)."""
    old_logp: torch.Tensor
    """Log-prob under the rollout policy (detached)."""
    adv: torch.Tensor
    """Advantage of each token's sequence."""
    seq_id: torch.Tensor
    """Index of each token's sequence within the minibatch (for sequence aggregations)."""
    entropy: torch.Tensor | None = None
    """Per-token entropy (requires grad when the bonus is on)."""
    ref_logp: torch.Tensor | None = None
    """Reference-policy log-prob for the k3 KL."""
    entropy_coef: float = 0.0
    """Entropy-bonus coefficient (actuator)."""
    clip_cov_ratio: float | None = None
    """Clip-Cov ratio override (actuator); None uses the config's."""
    generator: torch.Generator | None = None
    """RNG for Clip-Cov's random selection."""
    old_entropy: torch.Tensor | None = None
    """Per-token entropy under the rollout policy (detached)."""
    tokens: torch.Tensor | None = None
    """The sampled token ids."""
    logp_all: torch.Tensor | None = None
    """``(N, V)`` current log-probabilities of the whole vocabulary (requires grad); filled only
    for a loss that declares ``logp_all`` in its ``needs``."""
    old_logp_all: torch.Tensor | None = None
    """``(N, V)`` rollout-policy log-probabilities (detached); only when declared."""
    state: dict[str, float] | None = None
    """Mutable state of a loss across calls (SIREN's anchor, EPO's history); the trainer keeps
    it in its checkpoint."""
    progress: float = 0.0
    """Fraction of training done, ``step / steps`` (EPO's phase schedule)."""


LossFn = Callable[[LossInputs, LossConfig], tuple[torch.Tensor, dict[str, float]]]
LOSSES: Registry[LossFn] = Registry("loss")
"""Policy losses ``fn(inputs, config) -> (loss, metrics)``, each with its options class."""

_O = TypeVar("_O", bound=Options)


def _opts(cfg: LossConfig, cls: type[_O]) -> _O:
    """``cfg.options`` checked to be a ``cls`` (a loss called with another loss's config)."""
    if not isinstance(cfg.options, cls):
        raise OptionError(f"loss needs {cls.__name__} options, got "
                          f"{type(cfg.options).__name__} (LossConfig.name = {cfg.name!r})")
    return cfg.options


def loss_needs(cfg: LossConfig) -> frozenset[str]:
    """The extra inputs (:data:`NEEDS`) the configured loss declares."""
    return frozenset(getattr(type(cfg.options), "needs", frozenset()))


def get_loss(name: str) -> LossFn:
    """The registered loss function ``name`` (``KeyError`` lists the valid names)."""
    return LOSSES.get(name)


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, scale_by_std: bool = True, eps: float = 1e-6
) -> torch.Tensor:
    """GRPO advantages ``(r - mean_g) / (std_g + eps)`` with the unbiased std (Dr.GRPO: no std).

    ``rewards`` is ``(num_groups * group_size,)`` with each group contiguous. A group of size 1
    gets mean 0 and std 1, i.e. its advantage is its reward.
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    r = rewards.float().view(-1, group_size)
    if group_size == 1:
        mean, std = torch.zeros_like(r), torch.ones_like(r)
    else:
        mean, std = r.mean(1, keepdim=True), r.std(1, unbiased=True, keepdim=True)
    adv = (r - mean) / (std + eps) if scale_by_std else r - mean
    return adv.view(-1)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimate of KL(pi || ref): ``exp(d) - d - 1``, ``d = l_ref - l``, clamped to [-10, 10]."""
    d = ref_logp - logp
    return (torch.exp(d) - d - 1).clamp(-10.0, 10.0)


def token_covariance(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """``Cov_i = (l_i - mean l)(A_i - mean A)`` over the given tokens, detached."""
    lp, a = logp.detach(), adv.detach()
    return (lp - lp.mean()) * (a - a.mean())


def aggregate(
    x: torch.Tensor, seq_id: torch.Tensor, mode: str, max_seq_len: int = 16
) -> torch.Tensor:
    """Reduce per-token values: token-mean, seq-mean-token-mean or seq-mean-token-sum."""
    if mode == "token-mean":
        return x.mean()
    if mode not in AGGREGATIONS:
        raise KeyError(f"unknown aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")
    nseq = int(seq_id.max().item()) + 1
    sums = torch.zeros(nseq, dtype=x.dtype, device=x.device).index_add(0, seq_id, x)
    if mode == "seq-mean-token-sum":
        return sums.sum() / (nseq * max_seq_len)
    counts = torch.zeros(nseq, dtype=x.dtype, device=x.device).index_add(
        0, seq_id, torch.ones_like(x)
    )
    return (sums / counts.clamp(min=1))[counts > 0].mean()


def _surrogate(
    inp: LossInputs, cfg: LossConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
    """Per-token clipped surrogate; also returns the unclipped term and the 'clip active' mask."""
    o = _opts(cfg, GRPOOptions)
    ratio = torch.exp(inp.logp - inp.old_logp)
    a = inp.adv
    l1 = -a * ratio
    l2 = -a * ratio.clamp(1.0 - o.eps_low, 1.0 + o.eps_high)
    clipped = torch.maximum(l1, l2)
    if o.dual_clip is not None:
        clipped = torch.where(a < 0, torch.minimum(clipped, -a * o.dual_clip), clipped)
    active = l2 > l1
    n = max(a.numel(), 1)
    metrics = {
        "clip_frac_low": float(((ratio < 1 - o.eps_low) & (a < 0)).sum()) / n,
        "clip_frac_high": float(((ratio > 1 + o.eps_high) & (a > 0)).sum()) / n,
        "ratio_max": float(ratio.detach().max()) if a.numel() else 1.0,
    }
    return clipped, l1, active, metrics


def _finish(
    per_token: torch.Tensor, inp: LossInputs, cfg: LossConfig, metrics: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Aggregate, add k3 KL and entropy bonus, fill the common metrics."""
    def agg(v: torch.Tensor) -> torch.Tensor:
        return aggregate(v, inp.seq_id, cfg.agg, cfg.max_seq_len)

    pg = agg(per_token)
    loss = pg
    metrics["pg_loss"] = float(pg.detach())
    if inp.ref_logp is not None:
        kl = agg(k3_kl(inp.logp, inp.ref_logp))
        metrics["kl_ref"] = float(kl.detach())
        if cfg.kl_beta:
            loss = loss + cfg.kl_beta * kl
    if inp.entropy is not None:
        ent = agg(inp.entropy)
        metrics["entropy_loss_term"] = float(ent.detach())
        if inp.entropy_coef:
            loss = loss - inp.entropy_coef * ent
    metrics["loss"] = float(loss.detach())
    metrics.setdefault("touched_frac", 0.0)
    return loss, metrics


@LOSSES.register("grpo", options=GRPOOptions)
def grpo_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO/GRPO clipped surrogate ``max(-A r, -A clip(r, 1-eps_low, 1+eps_high))`` (+ dual clip)."""
    per_token, _, _, metrics = _surrogate(inp, cfg)
    return _finish(per_token, inp, cfg, metrics)


@LOSSES.register("clip-cov", options=ClipCovOptions)
def clip_cov_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Clip-Cov: detach ``max(floor(rho N), 1)`` random tokens with ``lb < Cov_i < ub``.

    Candidates exclude tokens whose PPO clip is already active; the selected tokens' loss terms
    are multiplied by 0 (no gradient). ``touched_frac`` is the selected fraction.
    """
    o = _opts(cfg, ClipCovOptions)
    per_token, _, active, metrics = _surrogate(inp, cfg)
    n = inp.adv.numel()
    rho = o.clip_cov_ratio if inp.clip_cov_ratio is None else inp.clip_cov_ratio
    cov = token_covariance(inp.logp, inp.adv)
    band = (cov > o.clip_cov_lb) & (cov < o.clip_cov_ub) & ~active
    cand = torch.nonzero(band).view(-1)
    k = min(max(math.floor(rho * n), 1), cand.numel())
    keep = torch.ones_like(per_token)
    if k > 0:
        perm = torch.randperm(cand.numel(), generator=inp.generator, device="cpu")
        keep[cand[perm[:k].to(cand.device)]] = 0.0
    metrics["touched_frac"] = k / max(n, 1)
    metrics["clip_cov_candidates"] = float(cand.numel())
    return _finish(per_token * keep, inp, cfg, metrics)


@LOSSES.register("kl-cov", options=KLCovOptions)
def kl_cov_loss(inp: LossInputs, cfg: LossConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """KL-Cov: top ``max(1, floor(kappa N))`` tokens by Cov_i get ``-A r + beta |l - l_old|``;
    all others ``-A r``; no ratio clipping."""
    o = _opts(cfg, KLCovOptions)
    ratio = torch.exp(inp.logp - inp.old_logp)
    per_token = -inp.adv * ratio
    n = inp.adv.numel()
    k = min(max(1, math.floor(o.kl_cov_ratio * n)), n)
    cov = token_covariance(inp.logp, inp.adv)
    top = torch.topk(cov, k).indices
    penalty = torch.zeros_like(per_token)
    penalty[top] = o.kl_cov_beta * (inp.logp[top] - inp.old_logp[top]).abs()
    metrics = {
        "clip_frac_low": 0.0,
        "clip_frac_high": 0.0,
        "ratio_max": float(ratio.detach().max()) if n else 1.0,
        "touched_frac": k / max(n, 1),
    }
    return _finish(per_token + penalty, inp, cfg, metrics)


# The exploration losses register themselves into LOSSES (next to their options classes).
import llm_rl.losses_explore  # noqa: E402, F401
