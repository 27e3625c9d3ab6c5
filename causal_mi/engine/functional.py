"""The engine's own forward pass, with per-receiver inputs for path patching (SPEC 4).

Senders are the components that write to the residual stream, indexed in computation order:
``embed`` (0), then per layer its heads and then its MLP, so head ``(l, h)`` is
``1 + l * (n_heads + m) + h`` and MLP ``l`` is ``1 + l * (n_heads + 1) + n_heads``, with
``m`` = 1 when the model has MLPs and 0 when it is attention-only. Receivers are every
head's q, k and v input (under grouped-query attention each query head has its own k and v
input, read through its group's projection: SPEC 4), every MLP's input and the logits. For
each row and receiver an *ablation mask* over senders says whose terms the receiver reads
from the ablated run instead of the current one::

    input(receiver) = resid(receiver) - sum over masked senders s of (out_s - ablated_s)

so an all-False mask is the ordinary forward pass, an all-True mask gives every receiver the
ablated inputs, and the residual stream itself always carries the current run's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from causal_mi.engine import blocks
from causal_mi.models.weights import Weights


@dataclass
class EdgeMasks:
    """Boolean ablation masks; ``S`` senders, ``R`` rows."""

    head_in: torch.Tensor  # [R, layer, head, 3 (q, k, v), S]
    mlp_in: torch.Tensor | None  # [R, layer, S]
    logits: torch.Tensor  # [R, S]

    @staticmethod
    def none(w: Weights, rows: int) -> EdgeMasks:
        s = n_senders(w)
        return EdgeMasks(
            torch.zeros(rows, w.n_layers, w.n_heads, 3, s, dtype=torch.bool),
            None if w.attn_only else torch.zeros(rows, w.n_layers, s, dtype=torch.bool),
            torch.zeros(rows, s, dtype=torch.bool),
        )


@dataclass
class Outputs:
    """Every sender's output on a run: ``[R, S, pos, d_model]`` in sender order."""

    senders: torch.Tensor
    logits: torch.Tensor  # [R, vocab] at the last position


def n_senders(w: Weights) -> int:
    return 1 + w.n_layers * (w.n_heads + (0 if w.attn_only else 1))


def _grouped(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, group: int) -> torch.Tensor:
    """Per-query-head inputs ``x`` [R, H, pos, d] through key/value weights ``W`` [H_kv, d,
    dh]: query head h's own input through its group's projection -> [R, H, pos, dh]."""
    R, H, P, d = x.shape
    out = torch.einsum("rkgpd,kde->rkgpe", x.view(R, H // group, group, P, d), W)
    if b is not None:
        out = out + b[None, :, None, None]
    return out.reshape(R, H, P, -1)


def _all_heads(lw, which: str, x: torch.Tensor, W, b, index: torch.Tensor) -> torch.Tensor:
    """Query or key of each query head from its own input ``x`` [R, H, pos, d] where the
    q/k norm spans all heads of a position (OLMo 2): every head's projection of that input,
    normalized together, then the head's own slice (``index``: the head read per row)."""
    full = torch.einsum("rhpd,nde->rhnpe", x, W)
    if b is not None:
        full = full + b[:, None]
    full = blocks.qk_norm(lw, which, full)  # [R, H, n, pos, dh]
    return full[:, torch.arange(x.shape[1]), index]


@dataclass
class _Normed:
    """Senders whose summed output passes through a norm before the residual stream: the
    heads of a layer with a post-attention norm (a head's site, ``LxHy``, is its ``z``, so a
    head's term exists only inside the sum)."""

    senders: list[int]
    raw: torch.Tensor  # [R, pos, d] their summed current outputs, plus ``bias``
    post: object  # the norm
    bias: torch.Tensor | None

    def term(self, raw: torch.Tensor) -> torch.Tensor:
        return self.post(raw if self.bias is None else raw + self.bias)


def forward(
    w: Weights,
    tokens: torch.Tensor,
    masks: EdgeMasks | None = None,
    ablated: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> Outputs:
    """Run ``tokens`` [R, pos]; ``ablated`` [R or 1, S, pos, d_model] holds the senders'
    ablated outputs that masked receivers read; ``noise`` [R, pos, d_model] is added to the
    embeddings.

    A head's output is its ``z W_O``; where the block normalizes the sum of a layer's heads
    (Gemma 2/3, OLMo 2), a receiver reads the norm of that sum with its masked heads' terms
    swapped, which is what node patching those heads' ``z`` gives. An MLP's output is its
    term in the residual stream (after a post-MLP norm), as its site ``Lx.mlp`` is."""
    R, L = tokens.shape
    H = w.n_heads
    group = w.group
    emb = blocks.embed(w, tokens, noise)
    dtype = emb.dtype
    outs: list[torch.Tensor] = [emb]  # sender outputs so far, each [R, pos, d]
    linear: list[bool] = [True]
    normed: list[_Normed] = []
    resid = emb
    kv_index = torch.arange(H, device=tokens.device) // group

    def corrected(
        mask: torch.Tensor | None, base: torch.Tensor, shape: tuple[int, ...]
    ) -> torch.Tensor:
        """``base`` [R, pos, d] seen by receivers of ``shape`` (axes between row and pos),
        minus the masked senders' (current - ablated) terms."""
        view = base.view(R, *([1] * len(shape)), L, -1)
        s = len(outs)
        if mask is None or ablated is None or not bool(mask[..., :s].any()):
            return view.expand(R, *shape, L, -1)
        m = mask[..., :s].to(dtype)
        delta = (torch.stack(outs, dim=1) - ablated[:, :s]).expand(R, -1, -1, -1)
        lin = torch.tensor(linear, dtype=dtype, device=m.device)
        corr = torch.einsum("r...s,rspd->r...pd", m * lin, delta)
        for g in normed:
            mg = m[..., g.senders]
            if not bool(mg.any()):
                continue
            raw = g.raw.view(R, *([1] * len(shape)), L, -1)
            mixed = raw - torch.einsum("r...s,rspd->r...pd", mg, delta[:, g.senders])
            corr = corr + (g.term(raw) - g.term(mixed))
        return view - corr

    for layer, lw in enumerate(w.layers):
        x = corrected(masks.head_in[:, layer] if masks else None, resid, (H, 3))
        x = blocks.norm(lw.ln1, x)  # [R, H, 3, pos, d]
        if w.parallel and not w.attn_only:  # the MLP reads the block's input
            x_mlp = corrected(masks.mlp_in[:, layer] if masks else None, resid, ())
        if lw.qk_norm_all_heads:
            q = _all_heads(lw, "q", x[:, :, 0], lw.W_Q, lw.b_Q, torch.arange(H))
            k = _all_heads(lw, "k", x[:, :, 1], lw.W_K, lw.b_K, kv_index)
        else:
            q = blocks.qk_norm(lw, "q", blocks.project(x[:, :, 0], lw.W_Q, lw.b_Q))
            k = blocks.qk_norm(lw, "k", _grouped(x[:, :, 1], lw.W_K, lw.b_K, group))
        v = _grouped(x[:, :, 2], lw.W_V, lw.b_V, group)
        q, k = blocks.rotate(lw, q, 0), blocks.rotate(lw, k, 0)
        z, _ = blocks.attend(lw, q, k, v, 0)  # [R, H, pos, d_head]
        heads = torch.einsum("rhpe,hed->rhpd", z, lw.W_O)  # [R, H, pos, d]
        first = len(outs)
        outs.extend(heads.unbind(1))
        raw = heads.sum(1)
        if lw.post_attn is not None:
            g = _Normed(list(range(first, first + H)), raw, lw.post_attn, lw.b_O)
            normed.append(g)
            linear.extend([False] * H)
            attn = g.term(raw)
        else:
            linear.extend([True] * H)
            attn = raw if lw.b_O is None else raw + lw.b_O
        if w.attn_only:
            resid = resid + attn
            continue
        if not w.parallel:
            resid = resid + attn
            x_mlp = corrected(masks.mlp_in[:, layer] if masks else None, resid, ())
        out = blocks.mlp_out(lw, blocks.mlp_post(w, lw, blocks.norm(lw.ln2, x_mlp)))
        out = blocks.norm(lw.post_mlp, out)  # the MLP's term (``Lx.mlp``: after a post norm)
        outs.append(out)
        linear.append(True)
        resid = resid + out + (attn if w.parallel else 0)
    x = corrected(masks.logits if masks else None, resid, ())
    logits = blocks.unembed(w, x[:, -1])
    return Outputs(torch.stack(outs, dim=1), logits)
