"""Losses against hand-derived values (LLM_RL.md definitions)."""

import dataclasses
import math

import pytest
import torch

from ctrlbench.options import OptionError
from llm_rl.losses import (
    LOSSES,
    ClipCovOptions,
    GRPOOptions,
    KLCovOptions,
    LossConfig,
    LossInputs,
    aggregate,
    get_loss,
    group_advantages,
    k3_kl,
    token_covariance,
)


def _inputs(logp, old, adv, **kw):
    logp = torch.tensor(logp, requires_grad=True)
    n = logp.numel()
    return LossInputs(logp=logp, old_logp=torch.tensor(old), adv=torch.tensor(adv),
                      seq_id=kw.pop("seq_id", torch.zeros(n, dtype=torch.long)), **kw)


def test_group_advantages_hand_values():
    adv = group_advantages(torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 0]), 4)
    # group 1: mean .25, unbiased std sqrt((.5625 + 3 * .0625) / 3) = .5
    torch.testing.assert_close(adv[:4], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-5, rtol=0)
    # group 2: mean .5, std sqrt(4 * .25 / 3)
    s = math.sqrt(1 / 3)
    torch.testing.assert_close(adv[4:], torch.tensor([0.5, 0.5, -0.5, -0.5]) / s, atol=1e-5, rtol=0)
    dr = group_advantages(torch.tensor([1.0, 0, 0, 0]), 4, scale_by_std=False)
    torch.testing.assert_close(dr, torch.tensor([0.75, -0.25, -0.25, -0.25]))
    torch.testing.assert_close(group_advantages(torch.tensor([1.0, 0.0]), 1),
                               torch.tensor([1.0, 0.0]), atol=1e-5, rtol=0)
    assert torch.all(group_advantages(torch.ones(4), 4) == 0)
    with pytest.raises(ValueError):
        group_advantages(torch.ones(5), 4)


def test_k3_kl_hand_values():
    # d = log .25 - log .5 = -ln 2: exp(d) - d - 1 = .5 + ln 2 - 1
    kl = k3_kl(torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]))
    assert kl.item() == pytest.approx(0.5 + math.log(2) - 1, abs=1e-6)
    assert k3_kl(torch.tensor([0.0]), torch.tensor([0.0])).item() == 0.0
    assert k3_kl(torch.tensor([-20.0]), torch.tensor([0.0])).item() == 10.0  # clamped


def test_clipped_surrogate_hand_values_and_gradients():
    r = torch.tensor([1.5, 0.5, 1.5, 1.1])
    inp = _inputs(r.log().tolist(), [0.0] * 4, [1.0, -1.0, -1.0, 2.0])
    loss, m = get_loss("grpo")(inp, LossConfig())
    # per token: max(-1.5, -1.2) = -1.2; max(.5, .8) = .8; max(1.5, 1.2) = 1.5; -2.2
    assert loss.item() == pytest.approx((-1.2 + 0.8 + 1.5 - 2.2) / 4, abs=1e-6)
    loss.backward()
    g = inp.logp.grad
    assert g[0] == 0 and g[1] == 0  # clipped: no gradient
    assert g[2].item() == pytest.approx(1.5 / 4, abs=1e-6)  # d(-A r)/dl = -A r
    assert g[3].item() == pytest.approx(-2 * 1.1 / 4, abs=1e-6)
    assert m["clip_frac_high"] == 0.25 and m["clip_frac_low"] == 0.25


def test_clipping_by_sign_of_the_advantage():
    """Each side of the clip is active for one sign of A only (eps 0.2).

    r = .5 < .8: A = +2 -> max(-1, -1.6) = -1, unclipped (gradient -A r = -1);
                 A = -2 -> max(1, 1.6) = 1.6, clipped (no gradient, counted in clip_frac_low).
    r = 1.5 > 1.2: A = +2 -> max(-3, -2.4) = -2.4, clipped (clip_frac_high);
                   A = -2 -> max(3, 2.4) = 3, unclipped (gradient -A r = 3).
    """
    r = torch.tensor([0.5, 0.5, 1.5, 1.5])
    inp = _inputs(r.log().tolist(), [0.0] * 4, [2.0, -2.0, 2.0, -2.0])
    loss, m = get_loss("grpo")(inp, LossConfig())
    assert loss.item() == pytest.approx((-1.0 + 1.6 - 2.4 + 3.0) / 4, abs=1e-6)
    loss.backward()
    torch.testing.assert_close(inp.logp.grad, torch.tensor([-1.0, 0.0, 0.0, 3.0]) / 4)
    assert m["clip_frac_low"] == 0.25 and m["clip_frac_high"] == 0.25
    # the dual clip bounds only negative advantages: r = 4, A = +1 stays at -1.2
    inp = _inputs([math.log(4.0)], [0.0], [1.0])
    dual = LossConfig(options={"dual_clip": 3.0})
    assert get_loss("grpo")(inp, dual)[0].item() == pytest.approx(-1.2, abs=1e-6)


def test_clip_higher_and_dual_clip():
    inp = _inputs([math.log(1.25)], [0.0], [1.0])
    loss, _ = get_loss("grpo")(inp, LossConfig(options={"eps_high": 0.28}))
    assert loss.item() == pytest.approx(-1.25, abs=1e-6)  # inside 1 + .28
    inp = _inputs([math.log(4.0)], [0.0], [-1.0])
    assert get_loss("grpo")(inp, LossConfig())[0].item() == pytest.approx(4.0, abs=1e-5)
    dual = LossConfig(options={"dual_clip": 3.0})
    assert get_loss("grpo")(inp, dual)[0].item() == pytest.approx(3.0)


def test_kl_and_entropy_terms_enter_the_loss():
    ent = torch.tensor([1.0, 3.0], requires_grad=True)
    inp = _inputs([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], entropy=ent,
                  ref_logp=torch.tensor([math.log(0.5), 0.0]), entropy_coef=0.1)
    loss, m = get_loss("grpo")(inp, LossConfig(kl_beta=2.0))
    kl = (0.5 + math.log(2) - 1) / 2
    assert loss.item() == pytest.approx(2.0 * kl - 0.1 * 2.0, abs=1e-6)
    assert m["kl_ref"] == pytest.approx(kl, abs=1e-6)


def test_aggregations():
    x = torch.tensor([1.0, 3.0, 8.0])
    sid = torch.tensor([0, 0, 1])
    assert aggregate(x, sid, "token-mean").item() == 4.0
    assert aggregate(x, sid, "seq-mean-token-mean").item() == 5.0  # (2 + 8) / 2
    assert aggregate(x, sid, "seq-mean-token-sum", max_seq_len=4).item() == 12 / 8
    with pytest.raises(KeyError, match="token-mean"):
        aggregate(x, sid, "sum")


def _cov_case():
    # mean(l) = 0 and mean(A) = .125, so Cov_i = l_i (A_i - .125):
    # [1.75, 2.8125, 1.375, 3.125, -.5625, -1.75, -.5625, .5625]
    logp = [2.0, 1.5, 1.0, -1.0, -1.5, -2.0, 0.5, -0.5]
    adv = [1.0, 2.0, 1.5, -3.0, 0.5, 1.0, -1.0, -1.0]
    return logp, adv


def test_clip_cov_selects_only_band_tokens_exact_count_detached():
    logp, adv = _cov_case()
    lp, a = torch.tensor(logp), torch.tensor(adv)
    cov = token_covariance(lp, a)
    band = ((cov > 1) & (cov < 5)).nonzero().view(-1).tolist()
    assert band == [0, 1, 2, 3]
    # count = min(max(floor(rho N), 1), #candidates); rho N = 1.6, 2.64, 3.92 tell floor (1, 2,
    # 3) from round (2, 3, 4) and ceil (2, 3, 4)
    for rho, expect in [(0.0, 1), (0.2, 1), (0.25, 2), (0.33, 2), (0.49, 3), (0.9, 4)]:
        inp = _inputs(logp, logp, adv, generator=torch.Generator().manual_seed(0),
                      clip_cov_ratio=rho)
        loss, m = get_loss("clip-cov")(inp, LossConfig(name="clip-cov"))
        loss.backward()
        zero = (inp.logp.grad == 0).nonzero().view(-1).tolist()
        assert len(zero) == expect and set(zero) <= set(band)
        assert m["touched_frac"] == expect / 8
        # loss = token-mean of -A over the kept tokens (ratio 1)
        kept = [i for i in range(8) if i not in zero]
        assert loss.item() == pytest.approx(-sum(adv[i] for i in kept) / 8, abs=1e-6)


def test_clip_cov_skips_tokens_already_clipped():
    logp, adv = _cov_case()
    old = list(logp)
    old[3] = logp[3] - 1.0  # ratio e > 1.2 with A < 0: PPO-clip inactive -> still a candidate
    old[0] = logp[0] - 1.0  # ratio e with A > 0: clipped by PPO -> excluded
    inp = _inputs(logp, old, adv, clip_cov_ratio=0.9, generator=torch.Generator().manual_seed(1))
    loss, m = get_loss("clip-cov")(inp, LossConfig(name="clip-cov"))
    assert m["clip_cov_candidates"] == 3.0
    loss.backward()
    assert set((inp.logp.grad == 0).nonzero().view(-1).tolist()) == {0, 1, 2, 3}


def test_clip_cov_skips_tokens_clipped_on_the_low_side():
    logp, adv = _cov_case()
    old = list(logp)
    old[3] = logp[3] + 1.0  # ratio 1/e < .8 with A < 0: PPO-clip active -> excluded
    old[1] = logp[1] + 1.0  # ratio 1/e < .8 with A > 0: PPO-clip inactive -> still a candidate
    inp = _inputs(logp, old, adv, clip_cov_ratio=0.9, generator=torch.Generator().manual_seed(1))
    loss, m = get_loss("clip-cov")(inp, LossConfig(name="clip-cov"))
    assert m["clip_cov_candidates"] == 3.0
    loss.backward()
    assert set((inp.logp.grad == 0).nonzero().view(-1).tolist()) == {0, 1, 2, 3}


def test_kl_cov_count_rounds_down():
    """kappa N = .37 * 8 = 2.96: floor 2 (round and ceil give 3); 0.1 * 8 = .8 -> max(1, 0) = 1."""
    logp, adv = _cov_case()
    old = [x - 0.5 for x in logp]
    r = math.exp(0.5)
    for kappa, k in [(0.37, 2), (0.1, 1)]:
        cfg = LossConfig(name="kl-cov", options=KLCovOptions(kl_cov_ratio=kappa, kl_cov_beta=2.0))
        loss, m = get_loss("kl-cov")(_inputs(logp, old, adv), cfg)
        assert m["touched_frac"] == k / 8
        assert loss.item() == pytest.approx((sum(-x * r for x in adv) + k * 2.0 * 0.5) / 8,
                                            abs=1e-5)


def test_kl_cov_top_k_penalty_no_ratio_clip():
    logp, adv = _cov_case()
    old = [x - 0.5 for x in logp]  # ratio e^.5 everywhere, |l - l_old| = .5
    inp = _inputs(logp, old, adv)
    # k = floor(.25 * 8) = 2
    cfg = LossConfig(name="kl-cov", options=KLCovOptions(kl_cov_ratio=0.25, kl_cov_beta=2.0))
    loss, m = get_loss("kl-cov")(inp, cfg)
    r = math.exp(0.5)
    # top-2 covariance tokens: 3 (3.125) and 1 (2.8125); each adds beta * .5
    expected = (sum(-x * r for x in adv) + 2 * 2.0 * 0.5) / 8
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    assert m["touched_frac"] == 0.25 and m["clip_frac_high"] == 0.0
    loss.backward()
    g = inp.logp.grad * 8
    # d/dl of -A r + beta |l - l_old| = -A r + beta sign(l - l_old)
    assert g[3].item() == pytest.approx(3.0 * r + 2.0, abs=1e-5)
    assert g[1].item() == pytest.approx(-2.0 * r + 2.0, abs=1e-5)
    assert g[2].item() == pytest.approx(-1.5 * r, abs=1e-5)  # unclipped although r > 1.2


def test_token_covariance_hand_values():
    logp, adv = _cov_case()
    cov = token_covariance(torch.tensor(logp), torch.tensor(adv))
    ma = 0.125
    torch.testing.assert_close(cov, torch.tensor([x * (a - ma) for x, a in zip(logp, adv)]))
    assert not cov.requires_grad


def test_unknown_loss_lists_valid_names():
    with pytest.raises(KeyError, match="clip-cov, epo, grpo, hapo, kl-cov, lp-reg, siren, steer"):
        get_loss("ppo2")
    with pytest.raises(ValueError, match="already registered"):
        LOSSES.register("grpo", get_loss("grpo"))


def test_each_loss_has_its_own_options_class():
    from llm_rl.losses_explore import (
        EPOOptions,
        HAPOOptions,
        LpRegOptions,
        SIRENOptions,
        STEEROptions,
    )

    assert {n: LOSSES.options(n) for n in LOSSES.names()} == {
        "grpo": GRPOOptions, "clip-cov": ClipCovOptions, "kl-cov": KLCovOptions,
        "lp-reg": LpRegOptions, "steer": STEEROptions, "siren": SIRENOptions,
        "epo": EPOOptions, "hapo": HAPOOptions}
    # the options of the chosen loss are built (with its defaults) from a mapping or None
    cfg = LossConfig(name="clip-cov", options={"clip_cov_ratio": 0.02})
    assert cfg.options == ClipCovOptions(clip_cov_ratio=0.02) and cfg.options.eps_low == 0.2
    assert LossConfig(name="kl-cov").options == KLCovOptions()
    # asdict round-trips (mapping -> instance), so saved configs reload equal
    assert LossConfig(**dataclasses.asdict(cfg)) == cfg


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"name": "kl-cov", "options": {"eps_high": 0.28}},
      r"loss 'kl-cov' got unknown option\(s\) \['eps_high'\]; valid options: "
      r"\['kl_cov_ratio', 'kl_cov_beta'\]"),
     ({"options": {"kl_cov_ratio": 0.05}},
      r"loss 'grpo' got unknown option\(s\) \['kl_cov_ratio'\]"),
     # a ClipCovOptions is a GRPOOptions, but grpo would ignore its clip_cov_* fields
     ({"options": ClipCovOptions()}, "loss 'grpo' takes GRPOOptions, got ClipCovOptions"),
     ({"options": {"eps_low": 5.0}},
      r"loss.eps_low = 5.0 is out of range; valid: finite >= 0 and < 1"),
     ({"options": {"dual_clip": 0.5}}, r"loss.dual_clip = 0.5 is out of range; valid: finite > 1"),
     ({"name": "clip-cov", "options": {"clip_cov_ub": 0.5}},
      r"loss.clip_cov_ub = 0.5 is out of range; valid: finite > clip_cov_lb \(1.0\)"),
     ({"name": "kl-cov", "options": {"kl_cov_ratio": 2.0}},
      r"loss.kl_cov_ratio = 2.0 is out of range; valid: finite >= 0 and <= 1"),
     ({"agg": "sum"}, r"loss.agg = 'sum' is out of range; valid: one of 'token-mean'"),
     ({"max_seq_len": 0}, r"loss.max_seq_len = 0 is out of range; valid: finite >= 1"),
     ({"options": {"eps_high": "wide"}},
      r"loss.eps_high = 'wide' has the wrong type; valid: float")],
)
def test_loss_options_errors_name_field_value_and_valid(kw, match):
    with pytest.raises(OptionError, match=match):
        LossConfig(**kw)


def test_loss_called_with_another_loss_config_fails():
    inp = _inputs([0.0], [0.0], [1.0])
    with pytest.raises(OptionError, match="needs KLCovOptions options, got GRPOOptions"):
        get_loss("kl-cov")(inp, LossConfig())


def test_step_metrics_hand_values():
    """llm_rl.metrics on the covariance case and small hand-made inputs.

    Cov = [1.75, 2.8125, 1.375, 3.125, -.5625, -1.75, -.5625, .5625]: mean 6.75 / 8 = .84375;
    the top tail x N tokens with tail N = 2.4 and 2.64 is floor -> 2 (round/ceil: 3), so the
    tail mean is (3.125 + 2.8125) / 2; tail N = .8 -> at least 1 token, 3.125.
    """
    from llm_rl.metrics import covariance_stats, distinct_correct, fit_rh_law, pass_at_k

    logp, adv = _cov_case()
    lp, a = torch.tensor(logp), torch.tensor(adv)
    for tail, expect in [(0.3, 2.96875), (0.33, 2.96875), (0.1, 3.125)]:
        s = covariance_stats(lp, a, tail=tail)
        assert s["cov_mean"] == pytest.approx(0.84375, abs=1e-6)
        assert s["cov_tail"] == pytest.approx(expect, abs=1e-6)
    # pass@k = 1 - C(n - c, k) / C(n, k): n 8, c 3, k 2 -> 1 - (5/8)(4/7); n - c = k is not 1
    assert pass_at_k(8, 3, 2) == pytest.approx(1 - 20 / 56)
    assert pass_at_k(8, 6, 2) == pytest.approx(1 - 2 / 56)
    assert pass_at_k(8, 7, 2) == 1.0 and pass_at_k(8, 0, 1) == 0.0
    # distinct correct answers per group of 4: {1, 2} and {4}
    assert distinct_correct(list("11234445"), [True, True, True, False, False, True, True, False],
                            4) == 1.5
    h = [0.2, 0.5, 0.9, 1.3]
    fit = fit_rh_law(h, [-0.4 * math.exp(x) + 1.3 for x in h])
    assert (fit["rh_a"], fit["rh_b"], fit["rh_r2"]) == pytest.approx((0.4, 1.3, 1.0))
    assert fit_rh_law(h[:2], [0.0, 1.0]) == {"rh_a": None, "rh_b": None, "rh_r2": None}
