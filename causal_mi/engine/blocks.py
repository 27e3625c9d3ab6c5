"""The pieces of a decoder block, each implemented once, shared by both of the engine's own
forward passes (:mod:`causal_mi.engine.functional` for path patching, and
:mod:`causal_mi.engine.incremental` for sweeps).

Every function takes a :class:`causal_mi.models.weights.Layer` (or the whole
:class:`~causal_mi.models.weights.Weights`) and tensors whose last axis is the feature axis;
leading axes are free, so the same code serves per-receiver inputs ``[R, head, 3, pos, d]``
and ordinary batches ``[R, pos, d]``.
"""

from __future__ import annotations

import torch

from causal_mi.models.weights import Layer, Weights


def embed(w: Weights, tokens: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The residual stream's first term [R, pos, d]: token embeddings (scaled where the model
    scales them), plus learned positions, plus ``noise`` (the ``embed`` site's corruption)."""
    x = w.W_E[tokens]
    if w.embed_scale is not None:
        x = x * torch.tensor(w.embed_scale, dtype=x.dtype)
    if w.W_pos is not None:
        x = x + w.W_pos[: tokens.shape[1]]
    x = norm(w.embed_norm, x)
    return x if noise is None else x + noise


def norm(fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(x)``, or ``x`` for an absent norm."""
    return x if fn is None else fn(x)


def project(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """Per-head projection: ``x`` [..., n, pos, d] with ``W`` [n, d, e] -> [..., n, pos, e]."""
    out = torch.einsum("...npd,nde->...npe", x, W)
    return out if b is None else out + b[:, None]


def rotate(lw: Layer, x: torch.Tensor, first: int) -> torch.Tensor:
    """Rotary embedding of ``x`` [..., pos, d_head] at positions ``first..`` (identity for a
    layer without rotary). Partial rotary rotates the first ``rotary_dim`` features only."""
    if lw.rotary is None:
        return x
    P = x.shape[-2]
    cos, sin = lw.rotary.cos_sin(first + P, x.device, x.dtype)
    cos, sin = cos[first:], sin[first:]
    rd = cos.shape[-1]
    xr, xp = x[..., :rd], x[..., rd:]
    if lw.rotary.interleaved:
        x1, x2 = xr[..., ::2], xr[..., 1::2]
        turned = torch.stack((-x2, x1), dim=-1).flatten(-2)
    else:
        x1, x2 = xr[..., : rd // 2], xr[..., rd // 2 :]
        turned = torch.cat((-x2, x1), dim=-1)
    out = xr * cos + turned * sin
    return out if xp.shape[-1] == 0 else torch.cat([out, xp], dim=-1)


def qk_norm(lw: Layer, which: str, x: torch.Tensor) -> torch.Tensor:
    """Query or key norm of per-head vectors ``x`` [..., n, pos, d_head]: per head (Qwen 3,
    Gemma 3) or over all heads of a position together (OLMo 2)."""
    fn = lw.q_norm if which == "q" else lw.k_norm
    if fn is None:
        return x
    if not lw.qk_norm_all_heads:
        return fn(x)
    flat = x.movedim(-3, -2)  # [..., pos, n, dh]
    shape = flat.shape
    return fn(flat.reshape(*shape[:-2], -1)).view(shape).movedim(-2, -3)


def visible(lw: Layer, q_from: int, n_q: int, n_k: int, device) -> torch.Tensor:
    """[n_q, n_k] True where query ``q_from + i`` may attend to key ``j`` (causal, and within
    the layer's sliding window)."""
    qi = torch.arange(q_from, q_from + n_q, device=device)[:, None]
    kj = torch.arange(n_k, device=device)[None, :]
    ok = kj <= qi
    if lw.window is not None:
        ok = ok & (kj > qi - lw.window)
    return ok


def alibi(lw: Layer, heads, n_k: int, like: torch.Tensor) -> torch.Tensor | None:
    """The layer's ALiBi bias [heads, 1, k pos] for the query heads ``heads`` (an index or
    slice over the head axis), or None."""
    if lw.alibi is None:
        return None
    return lw.alibi.bias(n_k, like.device, like.dtype)[heads][:, None, :]


def scores(
    lw: Layer, q: torch.Tensor, k: torch.Tensor, allowed: torch.Tensor, heads=slice(None)
) -> torch.Tensor:
    """Masked attention scores ``q @ k^T`` (scaled, ALiBi-biased, soft-capped)
    [..., head, q pos, k pos]; ``heads``: which query heads the head axis holds."""
    s = (q @ k.transpose(-1, -2)) * lw.scale
    bias = alibi(lw, heads, k.shape[-2], s)
    if bias is not None:
        s = s + bias
    if lw.softcap is not None:
        s = torch.tanh(s / lw.softcap) * lw.softcap
    return s.masked_fill(~allowed, float("-inf"))


def fusable(lw: Layer) -> bool:
    """True when :func:`attend` may use PyTorch's fused attention (no soft-capping)."""
    return lw.softcap is None


def attend(
    lw: Layer,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_from: int,
    keep_pattern: bool = True,
    heads=slice(None),
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z [..., H, Pq, dh], pattern [..., H, Pq, Pk] or None) for queries at positions
    ``q_from..``; ``k``/``v`` may carry fewer (grouped) heads, expanded per query head;
    ``heads``: which of the layer's query heads the head axis holds (for ALiBi)."""
    H, Hk = q.shape[-3], k.shape[-3]
    if Hk != H:
        k = k.repeat_interleave(H // Hk, dim=-3)
        v = v.repeat_interleave(H // Hk, dim=-3)
    allowed = visible(lw, q_from, q.shape[-2], k.shape[-2], q.device)
    if not keep_pattern and fusable(lw):
        mask = allowed
        bias = alibi(lw, heads, k.shape[-2], q)
        if bias is not None:
            mask = bias.masked_fill(~allowed, float("-inf"))
        z = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=lw.scale
        )
        return z, None
    pattern = scores(lw, q, k, allowed, heads).softmax(-1)
    return pattern @ v, pattern


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``x @ W + b`` over the last axis as one 2-D product (the same kernel for every batch
    shape, so a value recomputed in a larger batch is bitwise the same in any precision)."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ W if b is None else torch.addmm(b, flat, W)
    return out.view(*x.shape[:-1], -1)


def mlp_post(w: Weights, lw: Layer, x: torch.Tensor) -> torch.Tensor:
    """The MLP's hidden activation [..., d_mlp] (gated: ``act(x W_gate) * (x W_in)``) of its
    normalized input ``x``."""
    pre = linear(x, lw.W_in, lw.b_in)
    if lw.W_gate is None:
        return w.act(pre)
    return w.act(linear(x, lw.W_gate, lw.b_gate)) * pre


def mlp_out(lw: Layer, post: torch.Tensor) -> torch.Tensor:
    """The MLP's output (before any post-MLP norm) of its hidden activation."""
    return linear(post, lw.W_out, lw.b_out)


def unembed(w: Weights, x: torch.Tensor) -> torch.Tensor:
    """Logits of final residual streams ``x`` [..., d] (final norm, unembedding, soft-cap)."""
    logits = linear(norm(w.ln_final, x), w.W_U, w.b_U)
    if w.final_softcap is not None:
        logits = torch.tanh(logits / w.final_softcap) * w.final_softcap
    return logits
