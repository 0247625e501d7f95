"""Pure functions for the per-step signals: covariance, diversity, pass@k, the R-H law fit."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from llm_rl.losses import token_covariance

__all__ = ["covariance_stats", "distinct_correct", "fit_rh_law", "pass_at_k"]


def covariance_stats(logp: torch.Tensor, adv: torch.Tensor, tail: float = 0.02) -> dict[str, float]:
    """Mean token covariance Cov(l, A) and the mean of its top ``tail`` fraction (at least 1)."""
    if logp.numel() == 0:
        return {"cov_mean": 0.0, "cov_tail": 0.0}
    cov = token_covariance(logp, adv)
    k = max(1, math.floor(tail * cov.numel()))
    return {"cov_mean": float(cov.mean()), "cov_tail": float(torch.topk(cov, k).values.mean())}


def distinct_correct(answers: Sequence[str], correct: Sequence[bool], group_size: int) -> float:
    """Mean number of distinct correct answers per group."""
    counts = []
    for g in range(0, len(answers), group_size):
        group = zip(answers[g : g + group_size], correct[g : g + group_size])
        counts.append(len({a for a, c in group if c}))
    return float(np.mean(counts)) if counts else 0.0


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def fit_rh_law(entropy: Sequence[float], reward: Sequence[float]) -> dict[str, float | None]:
    """Least-squares fit of ``R = -a exp(H) + b``; returns a, b, r2 (None with < 3 points)."""
    if len(entropy) < 3:
        return {"rh_a": None, "rh_b": None, "rh_r2": None}
    x = np.exp(np.asarray(entropy, dtype=float))
    y = np.asarray(reward, dtype=float)
    design = np.stack([-x, np.ones_like(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ np.array([a, b])
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else None
    return {"rh_a": float(a), "rh_b": float(b), "rh_r2": r2}
