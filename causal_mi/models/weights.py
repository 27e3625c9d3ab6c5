"""The model's weights in TransformerLens layout, for the engine's own forward pass.

Path patching needs each receiver's input recomputed with some senders' terms swapped, which
hooks on the bridge cannot express (one residual stream, one LayerNorm per block). The
functional forward in :mod:`causal_mi.engine.functional` runs on these tensors instead; it
is checked against the bridge's logits in the tests.

Supported: GPT-style serial blocks with LayerNorm, RMSNorm or no norm, learned absolute
positions, attention-only or a (non-gated) MLP with gelu / gelu_new / relu / silu.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

_ACTS = ("gelu", "gelu_new", "relu", "silu")


class UnsupportedArchitecture(ValueError):
    """The functional forward pass does not cover this model."""


@dataclass(frozen=True)
class Weights:
    """Tensors in TL layout, one per layer; ``W_Q[l]`` is [head, d_model, d_head], ``W_O[l]``
    is [head, d_head, d_model]; norm weights are None for models without normalization.

    Every tensor is a view of the model's own parameters (the bridge's per-block properties),
    so reading the weights costs no memory."""

    W_E: torch.Tensor  # [vocab, d_model]
    W_pos: torch.Tensor  # [n_ctx, d_model]
    W_Q: list[torch.Tensor]  # per layer [head, d_model, d_head]
    b_Q: list[torch.Tensor]  # per layer [head, d_head]
    W_K: list[torch.Tensor]
    b_K: list[torch.Tensor]
    W_V: list[torch.Tensor]
    b_V: list[torch.Tensor]
    W_O: list[torch.Tensor]  # per layer [head, d_head, d_model]
    b_O: list[torch.Tensor]  # per layer [d_model]
    W_in: list[torch.Tensor] | None  # per layer [d_model, d_mlp]
    b_in: list[torch.Tensor] | None
    W_out: list[torch.Tensor] | None  # per layer [d_mlp, d_model]
    b_out: list[torch.Tensor] | None
    W_U: torch.Tensor  # [d_model, vocab]
    b_U: torch.Tensor  # [vocab]
    ln1: list[tuple[torch.Tensor, torch.Tensor | None]] | None
    ln2: list[tuple[torch.Tensor, torch.Tensor | None]] | None
    ln_final: tuple[torch.Tensor, torch.Tensor | None] | None
    norm: str  # "LN" | "RMS" | "none"
    eps: float
    act_fn: str
    attn_scale: float
    n_layers: int
    n_heads: int
    attn_only: bool

    def norm_apply(
        self, x: torch.Tensor, params: tuple[torch.Tensor, torch.Tensor | None] | None
    ) -> torch.Tensor:
        """LayerNorm / RMSNorm over the last axis with ``params`` (weight, bias)."""
        if self.norm == "none":
            return x
        if self.norm == "LN":
            x = x - x.mean(-1, keepdim=True)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        if params is None:
            return x
        w, b = params
        return x * w + b if b is not None else x * w

    def act(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.nn.functional
        if self.act_fn == "gelu_new":
            return f.gelu(x, approximate="tanh")
        if self.act_fn == "gelu":
            return f.gelu(x)
        if self.act_fn == "relu":
            return f.relu(x)
        return f.silu(x)


def weights_for(model: Any) -> Weights:
    """:func:`extract` for a loaded model, read once and kept on the model."""
    w = getattr(model, "_weights", None)
    if w is None:
        w = extract(model.bridge)
        model._weights = w
    return w


def extract(bridge: Any) -> Weights:
    """Read the weights of ``bridge``; raises :class:`UnsupportedArchitecture` when the
    functional forward would not reproduce the model."""
    cfg = bridge.cfg
    problems = []
    if (getattr(cfg, "positional_embedding_type", "standard") or "standard") != "standard":
        problems.append(f"positional embeddings '{cfg.positional_embedding_type}'")
    if getattr(cfg, "gated_mlp", False):
        problems.append("gated MLP")
    if getattr(cfg, "parallel_attn_mlp", False):
        problems.append("parallel attention and MLP")
    if getattr(cfg, "n_key_value_heads", None) not in (None, cfg.n_heads):
        problems.append("grouped-query attention")
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        problems.append("attention scaled by inverse layer index")
    act = (cfg.act_fn or "gelu").lower()
    if not cfg.attn_only and act not in _ACTS:
        problems.append(f"activation '{act}'")
    norm_type = (cfg.normalization_type or "none").upper()
    norm = {"LN": "LN", "LNPRE": "LN", "RMS": "RMS", "RMSPRE": "RMS", "NONE": "none"}.get(norm_type)
    if norm is None:
        problems.append(f"normalization '{cfg.normalization_type}'")
    if getattr(cfg, "final_rms", False) and norm != "RMS":
        problems.append("final RMSNorm with another block norm")
    if problems:
        raise UnsupportedArchitecture(
            "path patching runs the engine's own forward pass, which does not support: "
            + ", ".join(problems)
        )
    sd = {k: v.detach() for k, v in bridge.state_dict().items()}

    def norm_params(prefix: str) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        w = sd.get(prefix + ".weight")
        return None if w is None else (w, sd.get(prefix + ".bias"))

    L = cfg.n_layers
    ln1 = [norm_params(f"blocks.{i}.ln1") for i in range(L)] if norm != "none" else None
    ln2 = (
        [norm_params(f"blocks.{i}.ln2") for i in range(L)]
        if norm != "none" and not cfg.attn_only
        else None
    )
    scale = cfg.attn_scale if cfg.use_attn_scale and cfg.attn_scale > 0 else math.sqrt(cfg.d_head)
    mlp = not cfg.attn_only
    blocks = list(bridge.blocks)

    def per_layer(part: str, name: str) -> list[torch.Tensor]:
        return [getattr(getattr(b, part), name).detach() for b in blocks]

    return Weights(
        W_E=bridge.W_E.detach(),
        W_pos=bridge.W_pos.detach(),
        W_Q=per_layer("attn", "W_Q"),
        b_Q=per_layer("attn", "b_Q"),
        W_K=per_layer("attn", "W_K"),
        b_K=per_layer("attn", "b_K"),
        W_V=per_layer("attn", "W_V"),
        b_V=per_layer("attn", "b_V"),
        W_O=per_layer("attn", "W_O"),
        b_O=per_layer("attn", "b_O"),
        W_in=per_layer("mlp", "W_in") if mlp else None,
        b_in=per_layer("mlp", "b_in") if mlp else None,
        W_out=per_layer("mlp", "W_out") if mlp else None,
        b_out=per_layer("mlp", "b_out") if mlp else None,
        W_U=bridge.W_U.detach(),
        b_U=bridge.b_U.detach(),
        ln1=ln1,
        ln2=ln2,
        ln_final=norm_params("ln_final") if norm != "none" else None,
        norm=norm or "none",
        eps=float(cfg.eps),
        act_fn=act,
        attn_scale=float(scale),
        n_layers=L,
        n_heads=cfg.n_heads,
        attn_only=bool(cfg.attn_only),
    )
