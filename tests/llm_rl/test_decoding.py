"""Mirostat v1/v2 (llm_rl.decoding): hand values, the feedback loop, generate, rollout, CLI."""

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LogitsProcessorList

from ctrlbench.options import OptionError
from llm_rl.decoding import (
    MirostatLogitsProcessor,
    MirostatOptions,
    mirostat_v1_k,
    repetition_rate,
    sample_text,
    zipf_exponent,
)


def _zipf(vocab, s=1.1):
    return (-s * torch.log(torch.arange(1, vocab + 1, dtype=torch.float64))).float()


def _run_zipf(mode, vocab, tokens=400, tau=3.0, seed=0):
    logits = _zipf(vocab)
    proc = MirostatLogitsProcessor(MirostatOptions(mode=mode, tau=tau))
    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(1, 1, dtype=torch.long)
    for _ in range(tokens):
        tok = torch.multinomial(torch.softmax(proc(ids, logits[None].clone()), -1), 1,
                                generator=gen)
        ids = torch.cat([ids, tok], 1)
    proc.observe(ids)
    return proc.surprise_trace()[0]


def _tiny_lm(vocab=1000, positions=512, std=0.3):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=64, n_layer=2, n_head=4,
                     initializer_range=std, bos_token_id=0, eos_token_id=None, pad_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def test_zipf_exponent_and_v1_k_hand_values():
    p = torch.softmax(_zipf(50_000), -1)[None]
    # an exact Zipf law: b_i = s t_i for every i, so the least-squares slope is s
    assert zipf_exponent(p).item() == pytest.approx(1.1, abs=1e-6)
    k = mirostat_v1_k(torch.tensor([1.1]), torch.tensor([6.0]), 50_000).item()
    assert k == math.floor((0.1 * 2**6 / (1 - 50_000**-0.1)) ** (1 / 1.1))  # = 12
    # eps -> 0 uses the limit 1 / ln V; k is at least 1 and at most V
    k1 = mirostat_v1_k(torch.tensor([1.0]), torch.tensor([3.0]), 1000).item()
    assert k1 == math.floor(8 / math.log(1000))
    assert mirostat_v1_k(torch.tensor([3.0]), torch.tensor([-5.0]), 10).item() == 1
    assert mirostat_v1_k(torch.tensor([0.0]), torch.tensor([30.0]), 10).item() == 10


def test_v2_truncates_at_mu_and_the_integrator_updates_it():
    # surprises 1, 2, 3, 3 bits; tau 1.25 -> mu0 = 2.5 keeps the first two tokens
    scores = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    proc = MirostatLogitsProcessor(MirostatOptions(mode="v2", tau=1.25))
    out = proc(torch.zeros(1, 1, dtype=torch.long), scores.clone())
    assert torch.isfinite(out[0]).tolist() == [True, True, False, False]
    assert proc.ks[0].item() == 2
    # the next call sees token 2 (3 bits): mu <- 2.5 - 1 x (3 - 1.25) = .75 < 1 -> top token only
    out = proc(torch.tensor([[0, 2]]), scores.clone())
    assert proc.surprise_trace()[0].tolist() == pytest.approx([3.0])
    assert proc.mu.item() == pytest.approx(0.75)
    assert torch.isfinite(out[0]).tolist() == [True, False, False, False]
    proc.observe(torch.tensor([[0, 2]]))  # same length: already observed, no double count
    assert len(proc.surprises) == 1


def test_v1_keeps_the_top_k_of_its_zipf_estimate():
    scores = _zipf(1000)[None]
    proc = MirostatLogitsProcessor(MirostatOptions(mode="v1", tau=3.0))  # mu0 = 6
    out = proc(torch.zeros(1, 1, dtype=torch.long), scores.clone())
    k = math.floor((0.1 * 2**6 / (1 - 1000**-0.1)) ** (1 / 1.1))
    assert torch.isfinite(out[0]).sum().item() == k and torch.isfinite(out[0, :k]).all()


@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_surprise_converges_to_tau_on_a_zipf_source(mode):
    trace = _run_zipf(mode, vocab=5000)
    assert len(trace) == 400
    assert trace[200:].mean().item() == pytest.approx(3.0, rel=0.025)  # studies: <= 1.19 %


@pytest.mark.slow  # ~1.5 s each on an idle core: the acceptance case at V = 50,000
@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_acceptance_zipf_v50000(mode):
    trace = _run_zipf(mode, vocab=50_000)
    assert trace[200:].mean().item() == pytest.approx(3.0, rel=0.025)  # studies: <= 1.19 %


@pytest.mark.slow  # ~1 s each on an idle core: the acceptance case on a tiny LM
@pytest.mark.parametrize("mode", ["v1", "v2"])
def test_acceptance_tiny_lm_generate_400_tokens(mode):
    model = _tiny_lm()
    proc = MirostatLogitsProcessor(MirostatOptions(mode=mode, tau=3.0))
    start = torch.zeros(1, 1, dtype=torch.long)
    torch.manual_seed(1)
    out = model.generate(start, attention_mask=torch.ones_like(start), do_sample=True,
                         max_new_tokens=400, min_new_tokens=400, top_k=0, top_p=1.0,
                         logits_processor=LogitsProcessorList([proc]))
    proc.observe(out)
    trace = proc.surprise_trace()[0]
    assert len(trace) == 400
    assert trace[200:].mean().item() == pytest.approx(3.0, rel=0.025)  # studies: <= 1.19 %


def test_generate_samples_only_inside_the_v2_cut():
    model = _tiny_lm(positions=64)
    proc = MirostatLogitsProcessor(MirostatOptions(mode="v2", tau=3.0))
    start = torch.zeros(1, 1, dtype=torch.long)
    torch.manual_seed(0)
    out = model.generate(start, attention_mask=torch.ones_like(start), do_sample=True,
                         max_new_tokens=40, min_new_tokens=40, top_k=0, top_p=1.0,
                         logits_processor=LogitsProcessorList([proc]))
    proc.observe(out)
    s = proc.surprise_trace()[0]
    assert len(s) == 40
    # each token's surprise was <= the mu it was drawn under (or it was the top token)
    mus = [6.0]
    for x in s.tolist()[:-1]:
        mus.append(mus[-1] - (x - 3.0))
    with torch.no_grad():
        logp = torch.log_softmax(model(out).logits[0, :-1].float(), -1) / -math.log(2)
    top = logp.min(-1).values
    for x, mu, t in zip(s.tolist(), mus, top.tolist()):
        assert x <= mu + 1e-4 or x == pytest.approx(t, abs=1e-4)


def test_rollout_with_a_tiny_tau_is_greedy_and_reports_model_surprise():
    from llm_rl.policy import PolicySpec, build_policy
    from llm_rl.tokenizer import CharTokenizer

    tok = CharTokenizer()
    model = build_policy(PolicySpec(n_layer=1, n_embd=16, n_head=2), tok, seed=0).eval()
    res = sample_text(model, tok, "s12:", max_new_tokens=8,
                      options=MirostatOptions(mode="v2", tau=0.01),
                      generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([tok.encode("s12:", bos=True)])
    greedy = []
    with torch.no_grad():
        for _ in range(len(res.tokens)):
            nxt = model(ids).logits[0, -1].argmax().item()
            greedy.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    assert res.tokens == greedy
    assert all(s >= 0 for s in res.surprise) and len(res.running_mean()) == len(res.tokens)


def test_repetition_rate_hand_values():
    # 3-grams 123 231 312 123 231: the last two occurred before -> 2 / 5
    assert repetition_rate([1, 2, 3, 1, 2, 3, 1], 3) == pytest.approx(0.4)
    assert repetition_rate([1, 2], 3) == 0.0
    assert repetition_rate([5, 5, 5], 1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="n = 0 is out of range"):
        repetition_rate([1], 0)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"mode": "v3"}, r"mirostat.mode = 'v3' is out of range; valid: one of 'v1', 'v2'"),
     ({"tau": 0.0}, r"mirostat.tau = 0.0 is out of range; valid: finite > 0 and <= 64"),
     ({"eta": -1.0}, r"mirostat.eta = -1.0 is out of range"),
     ({"m": 1}, r"mirostat.m = 1 is out of range; valid: finite >= 2"),
     ({"tau": "x"}, r"mirostat.tau = 'x' has the wrong type")],
)
def test_mirostat_options_name_field_value_and_range(kw, match):
    with pytest.raises(OptionError, match=match):
        MirostatOptions(**kw)


def test_cli_sample_prints_text_and_running_surprise(tmp_path, capsys):
    from llm_rl.cli import main
    from llm_rl.policy import PolicySpec, build_policy, save_policy
    from llm_rl.tokenizer import CharTokenizer

    tok = CharTokenizer()
    save_policy(build_policy(PolicySpec(n_layer=1, n_embd=16, n_head=2), tok, seed=0), tok,
                tmp_path / "p")
    base = ["sample", "--init", str(tmp_path / "p"), "--prompt", "s12:"]
    assert main([*base, "--mirostat", "v2", "--tau", "3.0", "--max_new_tokens", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("text: s12:|") and "running mean" in out
    assert "bits over" in out and "(mirostat v2, tau 3.0)" in out
    for flags, msg in [(["--mirostat", "v9"], "--mirostat = 'v9'; valid: off, v1, v2"),
                       (["--mirostat", "v1", "--tau", "-1"],
                        "mirostat.tau = -1.0 is out of range"),
                       (["--max_new_tokens", "500"], "--max_new_tokens = 500 is too many"),
                       (["--prompt", "hello"], "--prompt has characters")]:
        assert main([*base, *flags]) == 2, flags
        assert msg in capsys.readouterr().err, flags
