"""Lp-Reg, STEER, SIREN, EPO and HAPO against hand-derived values (LLM_RL.md definitions).

Each case is small enough to derive on paper: which tokens are touched, their weights, and the
gradient's sign and size on a 2-token example (token-mean aggregation: each token's gradient is
its own derivative divided by N = 2).
"""

import math

import pytest
import torch

from ctrlbench.options import OptionError
from llm_rl.losses import LOSSES, LossConfig, LossInputs, get_loss, loss_needs
from llm_rl.losses_explore import (
    EPOOptions,
    HAPOOptions,
    LpRegOptions,
    SIRENOptions,
    STEEROptions,
    hapo_normalized_entropy,
    minp_proxy_logprob,
    nucleus_entropy,
    steer_weights,
)


def _inputs(logp, old, adv, **kw):
    logp = torch.tensor(logp, requires_grad=True)
    n = logp.numel()
    return LossInputs(logp=logp, old_logp=torch.tensor(old), adv=torch.tensor(adv),
                      seq_id=kw.pop("seq_id", torch.zeros(n, dtype=torch.long)), **kw)


def test_new_losses_are_registered_with_their_options_and_needs():
    expect = {"lp-reg": LpRegOptions, "steer": STEEROptions, "siren": SIRENOptions,
              "epo": EPOOptions, "hapo": HAPOOptions}
    assert {n: LOSSES.options(n) for n in expect} == expect
    assert loss_needs(LossConfig(name="lp-reg")) == {"old_logp_all", "tokens"}
    assert loss_needs(LossConfig(name="siren")) == {"logp_all"}
    assert loss_needs(LossConfig(name="hapo")) == {"old_entropy", "token_temperature"}
    assert loss_needs(LossConfig(name="steer")) == {"old_entropy"}
    assert loss_needs(LossConfig(name="epo")) == loss_needs(LossConfig()) == frozenset()


# ------------------------------------------------------------------------------------ Lp-Reg
def test_minp_proxy_filters_and_renormalizes():
    old = torch.log(torch.tensor([[0.6, 0.35, 0.05], [0.6, 0.35, 0.05]]))
    # kappa 0.1: keep p >= 0.06 -> {0.6, 0.35}, mass 0.95; token 2 (p 0.05) is filtered out
    lp = minp_proxy_logprob(old, torch.tensor([1, 2]), kappa=0.1)
    assert lp[0].item() == pytest.approx(math.log(0.35 / 0.95), abs=1e-6)
    assert lp[1].item() == -math.inf
    # kappa 0.05: everything kept, the proxy is the old policy itself
    lp = minp_proxy_logprob(old, torch.tensor([2, 0]), kappa=0.05)
    assert lp.tolist() == pytest.approx([math.log(0.05), math.log(0.6)], abs=1e-6)


def test_lp_reg_pulls_the_low_probability_negative_token_hand_values():
    # token 0: A = +1, r = 1. token 1: A = -1, old p 0.1, current p 0.05 (r = 0.5, clipped at
    # 0.8 -> no surrogate gradient), proxy p 0.1 (kappa 0.02 keeps all of [0.6, 0.3, 0.1]).
    old_all = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]))
    inp = _inputs([math.log(0.5), math.log(0.05)], [math.log(0.5), math.log(0.1)], [1.0, -1.0],
                  old_logp_all=old_all, tokens=torch.tensor([0, 2]))
    loss, m = get_loss("lp-reg")(inp, LossConfig(name="lp-reg"))
    k3 = 2 - math.log(2) - 1  # d = ln .1 - ln .05 = ln 2: exp(d) - d - 1
    # surrogate: -1 (token 0) and max(.5, .8) = .8 (token 1); plus k3 on token 1
    assert loss.item() == pytest.approx((-1 + 0.8 + k3) / 2, abs=1e-6)
    assert m["touched_frac"] == 0.5
    loss.backward()
    # d/dl0 = -A r / 2 = -.5; d/dl1 = beta (1 - proxy / pi) / 2 = (1 - 2) / 2 = -.5 (raise it)
    assert inp.logp.grad.tolist() == pytest.approx([-0.5, -0.5], abs=1e-6)


def test_lp_reg_skips_filtered_likelier_and_positive_tokens():
    old_all = torch.log(torch.tensor([[0.6, 0.3, 0.1]] * 3))
    tokens = torch.tensor([2, 2, 2])
    # token 0: A < 0 but the policy already gives it more than the proxy (0.2 > 0.1)
    # token 1: A > 0 (never a candidate); token 2: A < 0, filtered out by kappa 0.5
    cfg = LossConfig(name="lp-reg", options={"lp_reg_kappa": 0.5, "lp_reg_rho": 1.0})
    inp = _inputs([math.log(0.2), math.log(0.01), math.log(0.01)], [math.log(0.1)] * 3,
                  [-1.0, 1.0, -1.0], old_logp_all=old_all, tokens=tokens)
    assert get_loss("lp-reg")(inp, cfg)[1]["touched_frac"] == 0.0
    # rho 0.5 of 3 negatives -> floor(1.5) = 1 candidate: the lowest current probability
    inp = _inputs([math.log(0.05), math.log(0.02), math.log(0.01)], [math.log(0.1)] * 3,
                  [-1.0, -1.0, -1.0], old_logp_all=old_all, tokens=tokens)
    cfg = LossConfig(name="lp-reg", options={"lp_reg_rho": 0.5})
    loss, m = get_loss("lp-reg")(inp, cfg)
    loss.backward()
    assert m["touched_frac"] == pytest.approx(1 / 3)
    # all three ratios are clipped (r <= .5 < .8): only the selected token 2 has a gradient,
    # beta (1 - .1 / .01) / 3 = -3
    assert inp.logp.grad.tolist() == pytest.approx([0.0, 0.0, -3.0], abs=1e-5)


# ------------------------------------------------------------------------------------ STEER
def test_steer_weights_and_gradient_hand_values():
    # Omega = A (1 - p)(ln p + H): .5 (ln .5 + 1) and -.75 (ln .25 + 1)
    o1 = 0.5 * (math.log(0.5) + 1)
    o2 = -0.75 * (math.log(0.25) + 1)
    k = -math.log(0.8) / max(abs(o1), abs(o2))
    w1, w2 = math.exp(-k * abs(o1)), 0.8  # the largest |Omega| gets w_min exactly
    old = [math.log(0.5), math.log(0.25)]
    inp = _inputs(old, old, [1.0, -1.0], old_entropy=torch.tensor([1.0, 1.0]))
    w, omega = steer_weights(inp.adv, inp.old_logp, inp.old_entropy, 0.8)
    assert omega.tolist() == pytest.approx([o1, o2], abs=1e-6)
    assert w.tolist() == pytest.approx([w1, w2], abs=1e-6)
    loss, m = get_loss("steer")(inp, LossConfig(name="steer"))
    assert m["touched_frac"] == 1.0
    assert loss.item() == pytest.approx((-w1 + w2) / 2, abs=1e-6)
    loss.backward()  # r = 1: d/dl_i = -w_i A_i / 2
    assert inp.logp.grad.tolist() == pytest.approx([-w1 / 2, w2 / 2], abs=1e-6)


def test_steer_leaves_zero_change_tokens_and_floors_small_omegas():
    # A = 0 -> Omega = 0 -> weight 1 (not touched); ln p + H = 0 -> Omega = 0 too
    w, _ = steer_weights(torch.tensor([0.0, 1.0]), torch.log(torch.tensor([0.5, 0.5])),
                         torch.tensor([1.0, math.log(2)]), 0.8)
    assert w.tolist() == [1.0, 1.0]
    # |Omega| = 0.001 < floor 0.02: k = ln 1.25 / 0.02, weight exp(-k 0.001) (not w_min)
    p = 0.5
    h = 0.001 / (1 - p) - math.log(p)  # Omega = (1 - p)(ln p + H) = 0.001
    w, omega = steer_weights(torch.tensor([1.0]), torch.tensor([math.log(p)]),
                             torch.tensor([h]), 0.8)
    assert omega.item() == pytest.approx(0.001, abs=1e-6)
    assert w.item() == pytest.approx(math.exp(-math.log(1.25) / 0.02 * 0.001), abs=1e-6)


# ------------------------------------------------------------------------------------ SIREN
def test_nucleus_entropy_hand_values():
    p = torch.tensor([[0.5, 0.4, 0.1], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4]])
    h = nucleus_entropy(p.log(), 0.8)
    # row 0: nucleus {.5, .4} (mass before token 2 is .9 >= .8) -> q = (5/9, 4/9)
    # row 1: top token alone reaches .8 -> entropy 0; row 2: {.4, .3, .3} (.7 < .8 before the
    # last) -> the full distribution
    q = 5 / 9
    h0 = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    h2 = -(0.4 * math.log(0.4) + 0.6 * math.log(0.3))
    assert h.tolist() == pytest.approx([h0, 0.0, h2], abs=1e-6)


def test_siren_selects_peak_entropy_positions_and_pulls_to_anchor():
    # one response of 2 tokens: floor(.2 x 2) -> 1 position, the higher-entropy token 1
    z = torch.log(torch.tensor([[0.98, 0.01, 0.01], [0.5, 0.4, 0.1]])).requires_grad_(True)
    logp_all = torch.log_softmax(z, -1)
    state = {"siren_anchor": 0.5}
    old = [0.0, 0.0]
    inp = _inputs(old, old, [0.0, 0.0], logp_all=logp_all, state=state)
    cfg = LossConfig(name="siren", options={"siren_lambda": 1.0})
    loss, m = get_loss("siren")(inp, cfg)
    q = 5 / 9
    h = -(q * math.log(q) + (1 - q) * math.log(1 - q))
    assert m["touched_frac"] == 0.5 and m["siren_h_sel"] == pytest.approx(h, abs=1e-6)
    assert loss.item() == pytest.approx((h - 0.5) ** 2, abs=1e-6)  # A = 0: no surrogate
    loss.backward()
    # dH/dz0 = q (1 - q) ln((1 - q) / q) for a two-token nucleus, dH/dz1 = -dH/dz0, dH/dz2 = 0
    dh = q * (1 - q) * math.log((1 - q) / q)
    g = 2 * (h - 0.5) * dh  # H > anchor: the gradient lowers the entropy of that position
    assert z.grad[1].tolist() == pytest.approx([g, -g, 0.0], abs=1e-6)
    assert z.grad[0].abs().max().item() == 0.0  # the unselected position is untouched


def test_siren_anchors_on_its_first_batch():
    logp_all = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0]], requires_grad=True), -1)
    state: dict[str, float] = {}
    inp = _inputs([0.0], [0.0], [0.0], logp_all=logp_all, state=state)
    loss, m = get_loss("siren")(inp, LossConfig(name="siren"))
    assert state["siren_anchor"] == pytest.approx(m["siren_h_sel"]) and loss.item() == 0.0
    with pytest.raises(ValueError, match=r"needs LossInputs\.logp_all"):
        get_loss("siren")(_inputs([0.0], [0.0], [0.0], state={}), LossConfig(name="siren"))


# ------------------------------------------------------------------------------------ EPO
def test_epo_band_penalty_hand_values_and_phase_reset():
    ent = torch.tensor([0.2, 2.0], requires_grad=True)
    state = {"epo_phase": 0, "epo_sum": 2.0, "epo_count": 4.0}  # Hbar = 0.5 -> band .25 .. .75
    inp = _inputs([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], entropy=ent, state=state)
    loss, m = get_loss("epo")(inp, LossConfig(name="epo"))
    # H = 1.1 > .75: 0.1 x (1.1 - .75)^2
    assert loss.item() == pytest.approx(0.1 * 0.35**2, abs=1e-6)
    assert m["touched_frac"] == 1.0 and m["epo_hbar"] == 0.5
    loss.backward()  # d/dH_i = 0.1 x 2 x .35 / 2: positive, descent lowers the entropy
    assert ent.grad.tolist() == pytest.approx([0.035, 0.035], abs=1e-6)
    assert state == pytest.approx({"epo_phase": 0, "epo_sum": 3.1, "epo_count": 5.0})
    # below the band: the gradient raises the entropy
    low = torch.tensor([0.1, 0.1], requires_grad=True)
    inp = _inputs([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], entropy=low,
                  state={"epo_phase": 0, "epo_sum": 1.0, "epo_count": 1.0})
    loss, _ = get_loss("epo")(inp, LossConfig(name="epo"))
    loss.backward()  # H = .1 < .5: 0.1 x (.5 - .1)^2, d/dH_i = -0.1 x 2 x .4 / 2
    assert loss.item() == pytest.approx(0.1 * 0.16) and low.grad.tolist() == pytest.approx(
        [-0.04, -0.04])
    # progress .5 of 3 phases = phase 1: history restarts (Hbar = H, inside), weight .1 x .5
    inp = _inputs([0.0, 0.0], [0.0, 0.0], [0.0, 0.0], entropy=ent.detach(), state=state,
                  progress=0.5)
    loss, m = get_loss("epo")(inp, LossConfig(name="epo"))
    assert loss.item() == 0.0 and m["touched_frac"] == 0.0 and m["epo_weight"] == 0.05
    assert state == pytest.approx({"epo_phase": 1, "epo_sum": 1.1, "epo_count": 1.0})


# ------------------------------------------------------------------------------------ HAPO
def test_hapo_normalized_entropy_hand_values():
    # 0.8 quantile of [.5, 1] (linear) = .9; h = ln(H / .9)
    h2 = hapo_normalized_entropy(torch.tensor([0.5, 1.0]))
    assert h2.tolist() == pytest.approx([math.log(0.5 / 0.9), math.log(1 / 0.9)], abs=1e-6)
    # [.5, 1, 1000]: quantile 1 + .6 x 999 = 600.4; ln(.5 / 600.4) < -1 is clipped to -1
    h3 = hapo_normalized_entropy(torch.tensor([0.5, 1.0, 1000.0]))
    assert h3.tolist() == pytest.approx([-1.0, -1.0, math.log(1000 / 600.4)], abs=1e-5)


def test_hapo_asymmetric_clip_and_advantage_hand_values():
    h1, h2 = math.log(0.5 / 0.9), math.log(1 / 0.9)
    # token 0: A = -1, r = .75, h < 0: eps_low widens to .2 (1 - h1) = .3176 -> not clipped
    #   (GRPO would clip at .8); token 1: A = +1, r = 1.21, h > 0: eps_high .2 (1 + h2) = .2211
    #   -> not clipped (GRPO would clip at 1.2)
    logp = [math.log(0.75), math.log(1.21)]
    inp = _inputs(logp, [0.0, 0.0], [-1.0, 1.0], old_entropy=torch.tensor([0.5, 1.0]))
    loss, m = get_loss("hapo")(inp, LossConfig(name="hapo"))
    a0, a1 = -(1 + h1), 1 + h2  # A (1 + h)
    assert loss.item() == pytest.approx((-a0 * 0.75 - a1 * 1.21) / 2, abs=1e-6)
    assert m["touched_frac"] == 1.0 and m["clip_frac_low"] == m["clip_frac_high"] == 0.0
    loss.backward()  # d/dl_i = -A'_i r_i / 2
    assert inp.logp.grad.tolist() == pytest.approx([-a0 * 0.75 / 2, -a1 * 1.21 / 2], abs=1e-6)
    grpo = _inputs(logp, [0.0, 0.0], [-1.0, 1.0])
    get_loss("grpo")(grpo, LossConfig())[0].backward()
    assert grpo.logp.grad.tolist() == [0.0, 0.0]  # both clipped under plain GRPO


def test_hapo_token_temperature_follows_entropy():
    logits = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    t = HAPOOptions().token_temperature(logits, torch.tensor([1.0, 2.0]))
    ent = []
    for row, base in zip(logits, (1.0, 2.0)):
        p = torch.softmax(row / base, -1)
        ent.append(float(-(p * p.log()).sum()))
    q = ent[1] + 0.8 * (ent[0] - ent[1])
    expect = [b * (1 + 0.05 * max(-1, min(1, math.log(e / q)))) for b, e in zip((1, 2), ent)]
    assert t.tolist() == pytest.approx(expect, abs=1e-6)
    assert t[0] > 1.0 and t[1] < 2.0  # hotter where the entropy is high, cooler where low


# ------------------------------------------------------------------------------------ options
@pytest.mark.parametrize(
    ("name", "opts", "match"),
    [("lp-reg", {"lp_reg_kappa": 0.0}, r"loss.lp_reg_kappa = 0.0 is out of range; valid: "
      r"finite > 0 and <= 1"),
     ("lp-reg", {"lp_reg_rho": 1.5}, r"loss.lp_reg_rho = 1.5 is out of range"),
     ("lp-reg", {"lp_reg_beta": -1.0}, r"loss.lp_reg_beta = -1.0 is out of range; valid: "
      r"finite >= 0"),
     ("steer", {"steer_w_min": 0.0}, r"loss.steer_w_min = 0.0 is out of range; valid: "
      r"finite > 0 and <= 1"),
     ("steer", {"steer_omega_floor": "x"}, r"loss.steer_omega_floor = 'x' has the wrong type"),
     ("siren", {"siren_top_p": 1.2}, r"loss.siren_top_p = 1.2 is out of range"),
     ("siren", {"siren_top_frac": 0.0}, r"loss.siren_top_frac = 0.0 is out of range"),
     ("siren", {"siren_lambda": -0.1}, r"loss.siren_lambda = -0.1 is out of range"),
     ("epo", {"epo_low": 1.0}, r"loss.epo_low = 1.0 is out of range; valid: finite >= 0 and < 1"),
     ("epo", {"epo_high": 1.0}, r"loss.epo_high = 1.0 is out of range; valid: finite > 1"),
     ("epo", {"epo_phases": 0}, r"loss.epo_phases = 0 is out of range"),
     ("epo", {"epo_phases": 2.5}, r"loss.epo_phases = 2.5 has the wrong type; valid: int"),
     ("epo", {"epo_decay": 1.5}, r"loss.epo_decay = 1.5 is out of range"),
     ("hapo", {"hapo_quantile": 1.0}, r"loss.hapo_quantile = 1.0 is out of range"),
     ("hapo", {"hapo_temp_scale": -0.1}, r"loss.hapo_temp_scale = -0.1 is out of range"),
     ("hapo", {"hapo_adv_scale": 2.0}, r"loss.hapo_adv_scale = 2.0 is out of range"),
     ("hapo", {"eps_low": 0.6}, r"loss.eps_low = 0.6 is out of range; valid: < 0.5"),
     ("steer", {"kl_cov_ratio": 0.1}, r"loss 'steer' got unknown option\(s\) \['kl_cov_ratio'\]")],
)
def test_new_options_name_field_value_and_range(name, opts, match):
    with pytest.raises(OptionError, match=match):
        LossConfig(name=name, options=opts)
