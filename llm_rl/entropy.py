"""The entropy sensor: per-position entropy and log-prob of the sampled token from logits.

Both come from the *temperature-scaled* logits (the distribution that was sampled from). Rows are
processed in chunks, so the extra memory is ``O(chunk * V)`` floats rather than the ``O(N * V)``
of a naive ``log_softmax`` over the whole batch; with gradients enabled each chunk is wrapped in
activation checkpointing so the saved state stays ``O(chunk * V)`` as well.

For a row with scaled logits ``z`` (float32): ``log p = log_softmax(z)``, ``H = -sum(p log p)``
and the log-prob is ``log p[y]`` (the ``lse - E[z]`` form loses ~1e-4 to cancellation at V = 152k).

A fused Triton kernel (:func:`entropy_logprob_triton`) is used when ``triton`` and a CUDA device are
both importable; ``triton`` is imported lazily inside it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["entropy_and_logprob", "entropy_logprob_triton", "naive_entropy_and_logprob",
           "triton_available"]


def _chunk(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logp_all = torch.log_softmax(z.float() / t.unsqueeze(-1), dim=-1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return ent, logp_all.gather(-1, y.unsqueeze(-1)).squeeze(-1)


def _as_rows(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    z = logits.reshape(-1, logits.shape[-1])
    y = targets.reshape(-1).long()
    t = torch.as_tensor(temperature, dtype=torch.float32, device=logits.device)
    if t.ndim > 0:  # per-row temperatures broadcast over the position dims
        t = t.reshape(t.shape + (1,) * (targets.ndim - t.ndim))
    t = t.expand(targets.shape).reshape(-1)
    if not bool((t > 0).all()):
        raise ValueError("temperature must be positive")
    return z, y, t


def entropy_and_logprob(
    logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float | torch.Tensor = 1.0,
    *,
    chunk_size: int = 4096,
    use_triton: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entropy and log-prob of ``targets`` under ``softmax(logits / temperature)``.

    Parameters
    ----------
    logits:
        ``(..., V)`` in any float dtype; computed in float32.
    targets:
        ``(...)`` token ids.
    temperature:
        A scalar, or a tensor broadcastable to the leading dims of ``targets`` (e.g. one per row).
    chunk_size:
        Rows per chunk; bounds the extra memory at ``chunk_size * V`` floats.
    use_triton:
        Use the fused kernel when available and no gradient is needed.

    Returns
    -------
    (entropy, logprob):
        Two float32 tensors shaped like ``targets``, differentiable w.r.t. ``logits``.
    """
    z, y, t = _as_rows(logits, targets, temperature)
    needs_grad = torch.is_grad_enabled() and z.requires_grad
    if use_triton and not needs_grad and z.is_cuda and triton_available():
        ent, logp = entropy_logprob_triton(z, y, t)
        return ent.view(targets.shape), logp.view(targets.shape)
    ents, logps = [], []
    for s in range(0, z.shape[0], chunk_size):
        args = (z[s : s + chunk_size], y[s : s + chunk_size], t[s : s + chunk_size])
        if needs_grad:
            out: Any = checkpoint(_chunk, *args, use_reentrant=False)
        else:
            out = _chunk(*args)
        ents.append(out[0])
        logps.append(out[1])
    if not ents:
        empty = z.new_zeros(0, dtype=torch.float32)
        return empty.view(targets.shape), empty.view(targets.shape)
    return torch.cat(ents).view(targets.shape), torch.cat(logps).view(targets.shape)


def naive_entropy_and_logprob(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The unchunked reference: one ``log_softmax`` over everything (``O(N V)`` extra memory)."""
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return ent, logp_all.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)


def triton_available() -> bool:
    """True when ``triton`` is importable and a CUDA device is present."""
    return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()


_KERNEL: Any = None


def _build_kernel() -> Any:
    import triton  # lazy: not installed on CPU machines
    import triton.language as tl

    @triton.jit
    def kernel(z_ptr, y_ptr, t_ptr, ent_ptr, logp_ptr, V, stride, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        row = tl.program_id(0)
        inv_t = 1.0 / tl.load(t_ptr + row)
        base = z_ptr + row.to(tl.int64) * stride
        # Online softmax with the running max m: s = sum exp(z - m), w = sum exp(z - m) (z - m),
        # so H = log s - w / s, both O(log V) (no cancellation of large terms).
        m = tl.load(base).to(tl.float32) * inv_t
        s = 0.0
        w = 0.0
        for off in range(0, V, BLOCK):
            cols = off + tl.arange(0, BLOCK)
            z = tl.load(base + cols, mask=cols < V, other=-float("inf")).to(tl.float32) * inv_t
            m_new = tl.maximum(m, tl.max(z, 0))
            scale = tl.exp(m - m_new)
            e = tl.exp(z - m_new)
            zc = tl.where(cols < V, z - m_new, 0.0)
            w = (w + s * (m - m_new)) * scale + tl.sum(e * zc, 0)
            s = s * scale + tl.sum(e, 0)
            m = m_new
        lse = m + tl.log(s)
        tl.store(ent_ptr + row, tl.log(s) - w / s)
        y = tl.load(y_ptr + row)
        zy = tl.load(base + y).to(tl.float32) * inv_t
        tl.store(logp_ptr + row, zy - lse)

    return kernel


def entropy_logprob_triton(
    z: torch.Tensor, y: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused one-pass (online-softmax) entropy and log-prob over rows of ``z`` (CUDA + triton)."""
    global _KERNEL
    if not triton_available():
        raise RuntimeError("the Triton entropy kernel needs triton and a CUDA device")
    if _KERNEL is None:
        _KERNEL = _build_kernel()
    z = z.contiguous()
    n, v = z.shape
    ent = torch.empty(n, device=z.device, dtype=torch.float32)
    logp = torch.empty_like(ent)
    _KERNEL[(n,)](z, y.contiguous(), t.contiguous().float(), ent, logp, v, z.stride(0), BLOCK=4096)
    return ent, logp
