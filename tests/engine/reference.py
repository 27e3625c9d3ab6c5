"""A hand-written forward pass of the TL-native GPT-style model, with patch points.

It reads the weights from the bridge's state dict and shares no code with the engine, so
agreement between the two is evidence that the engine patches what it claims to patch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Patch = Callable[[str, int, torch.Tensor], torch.Tensor]


def _ln(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


def forward(bridge, tokens: torch.Tensor, patch: Patch | None = None) -> torch.Tensor:
    """Logits [batch, pos, vocab]. ``patch(point, layer, value)`` may replace: ``resid_pre``,
    ``q``, ``k``, ``v``, ``z`` ([b, pos, head, d_head]), ``pattern`` ([b, head, query, key],
    after the softmax; the values are then weighted by the replaced pattern), ``resid_mid``,
    ``mlp_in``, ``post`` ([b, pos, d_mlp]), ``mlp_out``, ``resid_post``."""
    sd = {k: v.double() for k, v in bridge.state_dict().items()}
    cfg = bridge.cfg
    eps, H, dh = cfg.eps, cfg.n_heads, cfg.d_head
    patch = patch or (lambda point, layer, value: value)
    b, L = tokens.shape
    x = sd["embed.weight"][tokens] + sd["pos_embed.weight"][:L]
    mask = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        x = patch("resid_pre", layer, x)
        h = _ln(x, sd[p + "ln1.weight"], sd[p + "ln1.bias"], eps)
        qkv = {}
        for c in "qkv":
            t = h @ sd[p + f"attn.{c}.weight"].T + sd[p + f"attn.{c}.bias"]
            qkv[c] = patch(c, layer, t.view(b, L, H, dh))
        scores = torch.einsum("bqhd,bkhd->bhqk", qkv["q"], qkv["k"]) / math.sqrt(dh)
        pattern = patch("pattern", layer, scores.masked_fill(mask, float("-inf")).softmax(-1))
        z = patch("z", layer, torch.einsum("bhqk,bkhd->bqhd", pattern, qkv["v"]))
        x = x + z.reshape(b, L, H * dh) @ sd[p + "attn.o.weight"].T + sd[p + "attn.o.bias"]
        if not cfg.attn_only:
            x = patch("resid_mid", layer, x)
            h2 = patch("mlp_in", layer, _ln(x, sd[p + "ln2.weight"], sd[p + "ln2.bias"], eps))
            pre = h2 @ sd[p + "mlp.in.weight"].T + sd[p + "mlp.in.bias"]
            post = patch("post", layer, F.gelu(pre, approximate="tanh"))
            out = post @ sd[p + "mlp.out.weight"].T + sd[p + "mlp.out.bias"]
            x = x + patch("mlp_out", layer, out)
        x = patch("resid_post", layer, x)
    x = _ln(x, sd["ln_final.weight"], sd["ln_final.bias"], eps)
    logits = x @ sd["unembed.weight"].T
    if "unembed.bias" in sd:
        logits = logits + sd["unembed.bias"]
    return logits


def record(bridge, tokens: torch.Tensor) -> dict[tuple[str, int], torch.Tensor]:
    """Every patch point's value on an unpatched run."""
    out: dict[tuple[str, int], torch.Tensor] = {}

    def grab(point: str, layer: int, value: torch.Tensor) -> torch.Tensor:
        out[(point, layer)] = value.clone()
        return value

    forward(bridge, tokens, grab)
    return out
