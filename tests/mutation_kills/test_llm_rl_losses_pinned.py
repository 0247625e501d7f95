"""llm_rl.losses pinned at hand-derived values (kills mutmut's survivors; studies/mutation.py).

float64 inputs throughout (an aggregation buffer of the wrong dtype then fails), parameters away
from the degenerate ones (eps_low != eps_high, advantages in (0, 1), a gap in the sequence ids).
"""

import math
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from ctrlbench.options import OptionError, Options, option
from llm_rl.losses import (
    LOSSES,
    ClipCovOptions,
    GRPOOptions,
    LossConfig,
    LossInputs,
    aggregate,
    get_loss,
    group_advantages,
    loss_needs,
    token_covariance,
)

D = torch.float64



def _close(got, want, atol=1e-6):
    """Same shape and values within ``atol`` (torch.testing's first call costs ~1 s)."""
    assert got.shape == want.shape
    assert got.double().sub(want.double()).abs().max().item() <= atol, (got, want)

def _t(x):
    return torch.tensor(x, dtype=D)


def _inp(ratios, adv, seq_id=None, **kw):
    logp = _t([math.log(r) for r in ratios]).requires_grad_(True)
    n = len(ratios)
    sid = torch.tensor(seq_id if seq_id is not None else [0] * n, dtype=torch.long)
    return LossInputs(logp=logp, old_logp=torch.zeros(n, dtype=D), adv=_t(adv), seq_id=sid, **kw)


def test_finish_metrics_with_kl_and_entropy_seq_mean():
    # ratio 1 everywhere: per-token loss -A = [-.5, 1.5 | -2, -1]; seq means .5, -1.5 -> pg -.5
    logp = _t([-1.0, -2.0, -0.5, -1.5])
    d = _t([0.0, math.log(2), 0.0, 0.0])  # k3 = exp(d) - d - 1: 0, 1 - ln 2, 0, 0
    inp = LossInputs(logp=logp, old_logp=logp.clone(), adv=_t([0.5, -1.5, 2.0, 1.0]),
                     seq_id=torch.tensor([0, 0, 1, 1]), ref_logp=logp + d,
                     entropy=_t([1.0, 3.0, 0.5, 1.5]), entropy_coef=0.1)
    cfg = LossConfig(agg="seq-mean-token-mean", kl_beta=0.3)
    loss, m = get_loss("grpo")(inp, cfg)
    kl = (1 - math.log(2)) / 4  # seq means (1 - ln 2)/2 and 0
    ent = 1.5  # seq means 2.0 and 1.0
    want = -0.5 + 0.3 * kl - 0.1 * ent
    assert set(m) == {"clip_frac_low", "clip_frac_high", "ratio_max", "pg_loss", "kl_ref",
                      "entropy_loss_term", "loss", "touched_frac"}
    assert m["pg_loss"] == pytest.approx(-0.5, abs=1e-12)
    assert m["kl_ref"] == pytest.approx(kl, abs=1e-12)
    assert m["entropy_loss_term"] == pytest.approx(ent, abs=1e-12)
    assert m["loss"] == pytest.approx(want, abs=1e-12)
    assert loss.item() == pytest.approx(want, abs=1e-12)
    assert m["touched_frac"] == 0.0 and isinstance(m["touched_frac"], float)


def test_finish_seq_mean_token_sum_uses_max_seq_len():
    inp = _inp([1.0] * 4, [0.5, -1.5, 2.0, 1.0], seq_id=[0, 0, 1, 1])
    _, m = get_loss("grpo")(inp, LossConfig(agg="seq-mean-token-sum", max_seq_len=5))
    assert m["pg_loss"] == pytest.approx((1.0 - 3.0) / (2 * 5), abs=1e-12)


def test_surrogate_clip_fractions_and_dual_clip():
    # eps_low .2, eps_high .28, dual clip 3; tokens (A, r) and their clipped loss:
    #  (.5, 1.1) -.55 | (-1, 1.1) 1.1 | (0, .5) 0 | (.5, .5) -.25 | (0, 1.5) 0
    #  (2, 1.5) -2.56 (high clip) | (-1, 4) min(4, 3) = 3 (dual) | (-1, .5) .8 (low clip)
    ratios = [1.1, 1.1, 0.5, 0.5, 1.5, 1.5, 4.0, 0.5]
    adv = [0.5, -1.0, 0.0, 0.5, 0.0, 2.0, -1.0, -1.0]
    cfg = LossConfig(options=GRPOOptions(eps_low=0.2, eps_high=0.28, dual_clip=3.0))
    loss, m = get_loss("grpo")(_inp(ratios, adv), cfg)
    assert m["clip_frac_low"] == pytest.approx(1 / 8, abs=1e-12)
    assert m["clip_frac_high"] == pytest.approx(1 / 8, abs=1e-12)
    assert m["ratio_max"] == pytest.approx(4.0, abs=1e-12)
    want = (-0.55 + 1.1 + 0 - 0.25 + 0 - 2.56 + 3.0 + 0.8) / 8
    assert m["pg_loss"] == pytest.approx(want, abs=1e-12)
    assert loss.item() == pytest.approx(want, abs=1e-12)


def test_surrogate_clip_fraction_boundaries_are_strict():
    # eps 0: a ratio of exactly 1 sits on both clip bounds and counts as clipped on neither side
    cfg = LossConfig(options=GRPOOptions(eps_low=0.0, eps_high=0.0))
    _, m = get_loss("grpo")(_inp([1.0, 1.0], [1.5, -0.5]), cfg)
    assert m["clip_frac_low"] == 0.0 and m["clip_frac_high"] == 0.0


def test_surrogate_single_token_fraction():
    _, m = get_loss("grpo")(_inp([1.5], [2.0]), LossConfig())
    assert m["clip_frac_high"] == 1.0 and m["clip_frac_low"] == 0.0


def test_surrogate_empty_batch_ratio_max():
    e = torch.zeros(0, dtype=D)
    inp = LossInputs(logp=e, old_logp=e, adv=e, seq_id=torch.zeros(0, dtype=torch.long))
    _, m = get_loss("grpo")(inp, LossConfig())
    assert m["ratio_max"] == 1.0 and m["clip_frac_low"] == 0.0


def test_aggregate_default_len_gap_and_message():
    x = _t([1.0, 3.0, 6.0])
    sid = torch.tensor([0, 0, 2])  # sequence 1 has no tokens
    assert aggregate(x, sid, "seq-mean-token-sum").item() == pytest.approx(10 / (3 * 16))
    assert aggregate(x, sid, "seq-mean-token-mean").item() == pytest.approx((2.0 + 6.0) / 2)
    with pytest.raises(KeyError, match="valid: token-mean, seq-mean-token-mean, "
                                       "seq-mean-token-sum"):
        aggregate(x, sid, "sum")


def test_group_advantages_eps_and_message():
    # mean 7/3, deviations -4/3, -1/3, 5/3, unbiased std sqrt(7/3); eps .5 added to the std
    adv = group_advantages(_t([1.0, 2.0, 4.0]), 3, eps=0.5)
    s = math.sqrt(7 / 3) + 0.5
    _close(adv, _t([-4 / 3 / s, -1 / 3 / s, 5 / 3 / s]))
    with pytest.raises(ValueError, match="5 rewards do not split into groups of 2"):
        group_advantages(torch.ones(5), 2)


def test_token_covariance_nonzero_mean():
    # l - mean l = [1, 0, -1]; A - mean A = [-1, -.5, 1.5]
    cov = token_covariance(_t([-1.0, -2.0, -3.0]), _t([0.5, 1.0, 3.0]))
    _close(cov, _t([-1.0, 0.0, -1.5]), atol=1e-15)


def test_clip_cov_band_must_be_strict():
    with pytest.raises(OptionError, match="clip_cov_ub"):
        ClipCovOptions(clip_cov_lb=2.5, clip_cov_ub=2.5)
    assert ClipCovOptions(clip_cov_lb=2.5, clip_cov_ub=2.6).clip_cov_ub == 2.6


@dataclass(frozen=True)
class _DeclaringOptions(Options):
    """A plugin loss's options that declare two extra inputs."""

    label: ClassVar[str] = "loss"
    needs: ClassVar[frozenset[str]] = frozenset({"old_entropy", "tokens"})
    weight: float = option(1.0, "Unused.", ge=0)


@dataclass(frozen=True)
class _PlainOptions(Options):
    """A plugin loss's options without a ``needs`` attribute (it declares nothing)."""

    label: ClassVar[str] = "loss"
    weight: float = option(1.0, "Unused.", ge=0)


def test_loss_needs_is_the_options_class_declaration_and_empty_without_one():
    def unused(inputs, cfg):
        raise AssertionError("never called")

    LOSSES.register("pinned-declaring", unused, options=_DeclaringOptions)
    LOSSES.register("pinned-plain", unused, options=_PlainOptions)
    try:
        got = loss_needs(LossConfig(name="pinned-declaring"))
        assert type(got) is frozenset and got == {"old_entropy", "tokens"}
        got = loss_needs(LossConfig(name="pinned-plain"))
        assert type(got) is frozenset and got == frozenset()
    finally:
        LOSSES.unregister("pinned-declaring")
        LOSSES.unregister("pinned-plain")
