"""The engine's own forward pass, with per-receiver inputs for path patching (SPEC 4).

Senders are the components that write to the residual stream, indexed in computation order:
``embed`` (0), then per layer its heads and then its MLP, so head ``(l, h)`` is
``1 + l * (n_heads + m) + h`` and MLP ``l`` is ``1 + l * (n_heads + 1) + n_heads``, with
``m`` = 1 when the model has MLPs and 0 when it is attention-only. Receivers are every
head's q, k and v input, every MLP's input and the logits. For each row and receiver an
*ablation mask* over senders says whose terms the receiver reads from the ablated run
instead of the current one::

    input(receiver) = resid(receiver) - sum over masked senders s of (out_s - ablated_s)

so an all-False mask is the ordinary forward pass, an all-True mask gives every receiver the
ablated inputs, and the residual stream itself always carries the current run's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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


def forward(
    w: Weights,
    tokens: torch.Tensor,
    masks: EdgeMasks | None = None,
    ablated: torch.Tensor | None = None,
) -> Outputs:
    """Run ``tokens`` [R, pos]; ``ablated`` [R or 1, S, pos, d_model] holds the senders'
    ablated outputs that masked receivers read."""
    R, L = tokens.shape
    H = w.n_heads
    dtype = w.W_E.dtype
    embed = w.W_E[tokens] + w.W_pos[:L]
    outs: list[torch.Tensor] = [embed]  # sender outputs so far, each [R, pos, d]
    resid = embed.clone()
    causal = torch.ones(L, L, dtype=torch.bool, device=tokens.device).triu(1)

    def corrected(
        mask: torch.Tensor | None, base: torch.Tensor, shape: tuple[int, ...]
    ) -> torch.Tensor:
        """``base`` [R, pos, d] seen by receivers of ``shape`` (axes between row and pos),
        minus the masked senders' (current - ablated) terms."""
        view = base.view(R, *([1] * len(shape)), L, -1)
        s = len(outs)
        if mask is None or ablated is None or not bool(mask[..., :s].any()):
            return view.expand(R, *shape, L, -1)
        delta = torch.stack(outs, dim=1) - ablated[:, :s]  # [R or 1, s, pos, d]
        corr = torch.einsum(
            "r...s,rspd->r...pd", mask[..., :s].to(dtype), delta.expand(R, -1, -1, -1)
        )
        return view - corr

    for layer in range(w.n_layers):
        ln1 = w.ln1[layer] if w.ln1 is not None else None
        x = corrected(masks.head_in[:, layer] if masks else None, resid, (H, 3))
        x = w.norm_apply(x, ln1)  # [R, H, 3, pos, d]
        q = torch.einsum("rhpd,hde->rhpe", x[:, :, 0], w.W_Q[layer]) + w.b_Q[layer][:, None]
        k = torch.einsum("rhpd,hde->rhpe", x[:, :, 1], w.W_K[layer]) + w.b_K[layer][:, None]
        v = torch.einsum("rhpd,hde->rhpe", x[:, :, 2], w.W_V[layer]) + w.b_V[layer][:, None]
        scores = (q @ k.transpose(-1, -2)) / w.attn_scale
        pattern = scores.masked_fill(causal, float("-inf")).softmax(-1)
        z = pattern @ v  # [R, H, pos, d_head]
        heads = torch.einsum("rhpe,hed->rhpd", z, w.W_O[layer])  # [R, H, pos, d]
        outs.extend(heads.unbind(1))
        resid = resid + heads.sum(1) + w.b_O[layer]
        if not w.attn_only:
            ln2 = w.ln2[layer] if w.ln2 is not None else None
            x = corrected(masks.mlp_in[:, layer] if masks else None, resid, ())
            pre = w.norm_apply(x, ln2) @ w.W_in[layer] + w.b_in[layer]
            mlp = w.act(pre) @ w.W_out[layer] + w.b_out[layer]
            outs.append(mlp)
            resid = resid + mlp
    x = corrected(masks.logits if masks else None, resid, ())
    x = w.norm_apply(x[:, -1], w.ln_final)
    logits = x @ w.W_U + w.b_U
    return Outputs(torch.stack(outs, dim=1), logits)
