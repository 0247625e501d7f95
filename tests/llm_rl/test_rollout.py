import subprocess
import sys

import pytest
import torch

from llm_rl.batch import concat_rollouts, select_rows, token_scores
from llm_rl.policy import PolicySpec, build_policy
from llm_rl.rollout import sample
from llm_rl.tokenizer import CharTokenizer


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def setup(request):
    tok = CharTokenizer()
    model = build_policy(PolicySpec(arch=request.param, n_layer=1, n_embd=32, n_head=2), tok)
    ids, mask = tok.pad([tok.encode(p, bos=True) for p in ["s12:", "s7:", "c1,2,3>5:"]])
    return model, tok, torch.tensor(ids), torch.tensor(mask)


def _sample(setup, **kw):
    model, tok, ids, mask = setup
    args = dict(max_new_tokens=8, eos_id=tok.eos_id, pad_id=tok.pad_id,
                generator=torch.Generator().manual_seed(0))
    args.update(kw)
    return sample(model, ids, mask, **args)


def test_static_cache_path_matches_dynamic(setup):
    a, b = _sample(setup), _sample(setup, fast=True)
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.entropy, b.entropy, atol=1e-5, rtol=0)


def test_cached_logprobs_and_entropy_match_full_forward(setup):
    model = setup[0]
    ro = _sample(setup, temperature=torch.tensor([0.7, 1.0, 1.6]))
    with torch.no_grad():
        ent, logp = token_scores(model, ro)
    m = ro.mask.bool()
    torch.testing.assert_close(logp[m], ro.logprobs[m], atol=1e-5, rtol=0)
    torch.testing.assert_close(ent[m], ro.entropy[m], atol=1e-5, rtol=0)


def test_masks_stop_after_eos_and_sampling_is_seeded(setup):
    tok = setup[1]
    ro = _sample(setup, max_new_tokens=12, temperature=3.0)
    for row, m in zip(ro.tokens.tolist(), ro.mask.tolist()):
        if tok.eos_id in row:
            e = row.index(tok.eos_id)
            assert all(m[: e + 1]) and not any(m[e + 1 :])
            assert all(t == tok.pad_id for t in row[e + 1 :])
    again = _sample(setup, max_new_tokens=12, temperature=3.0)
    assert torch.equal(ro.tokens, again.tokens)


def test_temperature_raises_entropy(setup):
    cold, hot = _sample(setup, temperature=0.5), _sample(setup, temperature=2.0)
    assert hot.entropy[:, 0].mean() > cold.entropy[:, 0].mean()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"),
                                 torch.tensor([1.0, 0.0, 1.0])])
def test_invalid_temperature_is_a_clear_error(setup, bad):
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        _sample(setup, temperature=bad)


def test_concat_and_select(setup):
    a = _sample(setup, max_new_tokens=3)
    b = select_rows(_sample(setup, max_new_tokens=6), torch.tensor([1]))
    c = concat_rollouts(a, b, setup[1].pad_id)
    assert c.tokens.shape == (4, max(a.tokens.shape[1], b.tokens.shape[1]))
    assert c.num_tokens == a.num_tokens + b.num_tokens


def test_package_import_is_light():
    code = "import sys, llm_rl; import ctrlbench; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fast_path_trims_like_early_exit(setup):
    # A huge eos logit makes every row stop at once; both paths return one column.
    model, tok = setup[0], setup[1]
    bias = torch.zeros(tok.vocab_size)
    bias[tok.eos_id] = 1e4
    head = model.get_output_embeddings()
    old = None if head.bias is None else head.bias.data.clone()
    head.bias = torch.nn.Parameter(bias if old is None else old + bias)
    try:
        a, b = _sample(setup, max_new_tokens=6), _sample(setup, max_new_tokens=6, fast=True)
    finally:
        head.bias = None if old is None else torch.nn.Parameter(old)
    assert a.tokens.shape == b.tokens.shape == (3, 1)
    assert torch.equal(a.tokens, b.tokens) and bool((a.tokens == tok.eos_id).all())


@pytest.mark.gpu
def test_cuda_fast_path_consistent_with_full_forward():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    tok = CharTokenizer()
    model = build_policy(PolicySpec(n_layer=2, n_embd=64, n_head=4), tok).cuda()
    ids, mask = tok.pad([tok.encode(f"s{4 + i % 9}:", bos=True) for i in range(64)])
    x, m = torch.tensor(ids, device="cuda"), torch.tensor(mask, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    ro = sample(model, x, m, max_new_tokens=8, eos_id=tok.eos_id, pad_id=tok.pad_id,
                generator=gen, fast=True)  # static cache + CUDA-graph compiled decode
    with torch.no_grad():
        ent, logp = token_scores(model, ro)
    v = ro.mask.bool()
    torch.testing.assert_close(logp[v], ro.logprobs[v], atol=1e-4, rtol=0)
    torch.testing.assert_close(ent[v], ro.entropy[v], atol=1e-4, rtol=0)
