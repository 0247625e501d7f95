"""llm_rl.entropy pinned at hand-derived values (kills mutmut's survivors; studies/mutation.py).

Logits are ``T ln w`` for small integer weights ``w``, so ``softmax(logits / T) = w / sum w`` and
the entropy ``-sum p ln p`` and log-probs are known in closed form; 3-D logits (two leading dims)
so a reduction over the wrong axis changes the shape or the values.
"""

import math
import warnings

import pytest
import torch

from llm_rl.entropy import entropy_and_logprob, naive_entropy_and_logprob

W = [[[1, 2, 5], [3, 1, 1]], [[1, 1, 2], [1, 3, 4]]]  # (2, 2, 3) weights
Y = [[2, 0], [1, 1]]  # sampled tokens



def _close(got, want, atol=1e-6):
    """Same shape and values within ``atol`` (torch.testing's first call costs ~1 s)."""
    assert got.shape == want.shape
    assert got.double().sub(want.double()).abs().max().item() <= atol, (got, want)

def _h(w):
    p = [x / sum(w) for x in w]
    return -sum(q * math.log(q) for q in p)


def _lp(w, y):
    return math.log(w[y] / sum(w))


def _want():
    ent = torch.tensor([[_h(w) for w in row] for row in W], dtype=torch.float64)
    lp = torch.tensor([[_lp(w, y) for w, y in zip(rw, ry)] for rw, ry in zip(W, Y)],
                      dtype=torch.float64)
    return ent, lp


def _logits(temps):
    t = torch.tensor(temps, dtype=torch.float64).view(-1, 1, 1)
    return t * torch.tensor(W, dtype=torch.float64).log()


def test_default_temperature_is_one_3d():
    ent, lp = _want()
    y = torch.tensor(Y)
    for fn in (entropy_and_logprob, naive_entropy_and_logprob):
        e, lg = fn(_logits([1.0, 1.0]), y)
        assert e.shape == (2, 2) and lg.shape == (2, 2)
        _close(e, ent)
        _close(lg, lp)


def test_per_row_float64_temperature_gives_float32():
    ent, lp = _want()
    temps = [0.7, 1.3]
    e, lg = entropy_and_logprob(_logits(temps), torch.tensor(Y),
                               torch.tensor(temps, dtype=torch.float64))
    assert e.dtype == torch.float32 and lg.dtype == torch.float32
    _close(e, ent)
    _close(lg, lp)
    with pytest.raises(ValueError, match=r"^temperature must be positive$"):
        entropy_and_logprob(_logits(temps), torch.tensor(Y), torch.tensor([0.7, -1.0]))


@pytest.mark.slow  # the first checkpointed forward in a process imports ~2 s of torch internals
def test_gradient_through_autograd_grad_without_warnings():
    # d logp[y] / d z_j = (1[j = y] - p_j) / T at T = 1.3, row w = [1, 2, 5], y = 2
    z = (1.3 * torch.tensor([[1.0, 2.0, 5.0]]).log()).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, lp = entropy_and_logprob(z, torch.tensor([2]), 1.3)
        (g,) = torch.autograd.grad(lp.sum(), z)
    want = torch.tensor([[-1 / 8, -2 / 8, 1 - 5 / 8]]) / 1.3
    _close(g, want)


def test_empty_batch_keeps_shape_and_float32():
    logits = torch.zeros(2, 0, 5, dtype=torch.float64)
    e, lg = entropy_and_logprob(logits, torch.zeros(2, 0, dtype=torch.long))
    assert e.shape == (2, 0) and lg.shape == (2, 0)
    assert e.dtype == torch.float32 and lg.dtype == torch.float32
