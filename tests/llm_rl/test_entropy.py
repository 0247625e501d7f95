import pytest
import torch

from llm_rl.entropy import entropy_and_logprob, naive_entropy_and_logprob, triton_available


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_matches_categorical(temperature, chunk):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 9, 37, generator=g) * 4
    y = torch.randint(0, 37, (4, 9), generator=g)
    ent, logp = entropy_and_logprob(logits, y, temperature, chunk_size=chunk)
    ref = torch.distributions.Categorical(logits=logits / temperature)
    assert ent.shape == y.shape
    torch.testing.assert_close(ent, ref.entropy(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logp, ref.log_prob(y), atol=1e-5, rtol=0)


def test_per_row_temperature_and_bf16():
    logits = torch.randn(3, 5, 11)
    y = torch.randint(0, 11, (3, 5))
    t = torch.tensor([0.5, 1.0, 2.0])
    ent, logp = entropy_and_logprob(logits.bfloat16(), y, t, chunk_size=4)
    for i in range(3):
        ref = torch.distributions.Categorical(logits=logits.bfloat16()[i].float() / t[i])
        torch.testing.assert_close(ent[i], ref.entropy(), atol=1e-5, rtol=0)
        torch.testing.assert_close(logp[i], ref.log_prob(y[i]), atol=1e-5, rtol=0)


def test_gradients_match_naive():
    logits = torch.randn(6, 13, requires_grad=True)
    y = torch.randint(0, 13, (6,))
    ent, logp = entropy_and_logprob(logits, y, 0.7, chunk_size=4)
    (ent.sum() + 2 * logp.sum()).backward()
    g1 = logits.grad.clone()
    logits.grad = None
    ent2, logp2 = naive_entropy_and_logprob(logits, y, 0.7)
    (ent2.sum() + 2 * logp2.sum()).backward()
    torch.testing.assert_close(g1, logits.grad, atol=1e-5, rtol=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ"):
        entropy_and_logprob(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="positive"):
        entropy_and_logprob(torch.zeros(2, 5), torch.zeros(2, dtype=torch.long), 0.0)


def test_triton_guard_on_cpu():
    assert not (triton_available() and not torch.cuda.is_available())


@pytest.mark.gpu
def test_triton_kernel_matches_chunked():
    if not triton_available():
        pytest.skip("needs triton and CUDA")
    logits = torch.randn(2048, 151_936, device="cuda", dtype=torch.bfloat16) * 3
    y = torch.randint(0, 151_936, (2048,), device="cuda")
    e1, l1 = entropy_and_logprob(logits, y, 0.9, use_triton=True)
    e2, l2 = entropy_and_logprob(logits, y, 0.9, use_triton=False)
    torch.testing.assert_close(e1, e2, atol=1e-4, rtol=0)
    torch.testing.assert_close(l1, l2, atol=1e-4, rtol=0)
