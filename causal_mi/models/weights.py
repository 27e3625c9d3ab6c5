"""The model's weights, per layer, in one layout for the engine's own forward pass.

Path patching needs each receiver's input recomputed with some senders' terms swapped, which
hooks on the bridge cannot express (one residual stream, one norm per block). The forward
passes in :mod:`causal_mi.engine.functional` and :mod:`causal_mi.engine.incremental` run on
these tensors instead; the tests hold them to the Hugging Face model's own forward pass.

Where the weights come from (see docs/decisions.md, "Architectures"):

- Hugging Face families (Llama, Mistral, Qwen 2/3, Gemma 1/2/3, OLMo 2, Phi-3, GPT-NeoX
  here; GPT-J, GPT-Neo, OPT, GPT-BigCode, Bloom, Falcon in
  :mod:`causal_mi.models.gpt_families`): read from the wrapped HF modules
  (``bridge.original_model``), the modules the bridge itself runs. Matrices are views
  (``weight.view(...).transpose(...)``) of those parameters, so no second copy exists;
  norms, activations and rotary tables are the HF modules themselves, called as the HF
  forward calls them, so their exact arithmetic (Gemma's ``1 + w`` in float32, Llama 3's
  rope scaling) is the model's own.
- TL-native bridges and GPT-2: the bridge's TL-layout properties (``W_Q`` ...), as before.

Every family is described by the same fields; a feature that none of the fields covers is
refused by :func:`causal_mi.models.arch.check_hf_config` before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from causal_mi.models.arch import (
    GPT_LIKE,
    LLAMA_LIKE,
    UnsupportedArchitecture,
    check_hf_config,
    hf_model,
    refuse,
)

__all__ = [
    "Alibi",
    "Layer",
    "Rotary",
    "UnsupportedArchitecture",
    "Weights",
    "extract",
    "weights_for",
]

Fn = Callable[[torch.Tensor], torch.Tensor]
_ACTS = ("gelu", "gelu_new", "relu", "silu")


@dataclass
class Rotary:
    """Rotary position embeddings: ``cos``/``sin`` [pos, rotary_dim] per prompt length, from
    the model's own rotary module (so every scaling variant is the model's own), applied
    to the first ``rotary_dim`` features of each head, NeoX-style (halves) or interleaved
    (GPT-J pairs)."""

    table: Callable[[int, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]]
    interleaved: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    def cos_sin(self, length: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (length, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = self.table(length, device, dtype)
        return self._cache[key]


@dataclass
class Alibi:
    """ALiBi (Bloom): a per-head bias linear in the key position, added to the scores; the
    table [head, pos] is the model's own (``build_alibi_tensor``), per prompt length."""

    table: Callable[[int, torch.device, torch.dtype], torch.Tensor]
    _cache: dict = field(default_factory=dict, repr=False)

    def bias(self, length: int, device, dtype) -> torch.Tensor:
        key = (length, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = self.table(length, device, dtype)
        return self._cache[key]


@dataclass(frozen=True)
class Layer:
    """One block. Matrices in TL layout: ``W_Q`` [head, d_model, d_head], ``W_K``/``W_V``
    [kv_head, d_model, d_head], ``W_O`` [head, d_head, d_model], MLP ``W_in``/``W_gate``
    [d_model, d_mlp] and ``W_out`` [d_mlp, d_model]; a None bias or norm is absent."""

    W_Q: torch.Tensor
    b_Q: torch.Tensor | None
    W_K: torch.Tensor
    b_K: torch.Tensor | None
    W_V: torch.Tensor
    b_V: torch.Tensor | None
    W_O: torch.Tensor
    b_O: torch.Tensor | None
    ln1: Fn | None  # the attention's input norm
    ln2: Fn | None  # the MLP's input norm (parallel blocks with one shared norm: ln1)
    post_attn: Fn | None = None  # norm of the attention's output (Gemma 2/3, OLMo 2)
    post_mlp: Fn | None = None
    q_norm: Fn | None = None  # query/key norms (Qwen 3, Gemma 3: per head; OLMo 2: all heads)
    k_norm: Fn | None = None
    qk_norm_all_heads: bool = False
    W_in: torch.Tensor | None = None
    b_in: torch.Tensor | None = None
    W_gate: torch.Tensor | None = None  # gated MLPs: act(x W_gate) * (x W_in)
    b_gate: torch.Tensor | None = None
    W_out: torch.Tensor | None = None
    b_out: torch.Tensor | None = None
    scale: float = 1.0  # scores are (q . k) * scale
    softcap: float | None = None  # scores := softcap * tanh(scores / softcap)
    window: int | None = None  # sliding window: key j visible to query i iff i - window < j
    rotary: Rotary | None = None
    alibi: Alibi | None = None


@dataclass(frozen=True)
class Weights:
    """The whole model; every tensor is a view of the loaded model's parameters."""

    family: str
    W_E: torch.Tensor  # [vocab, d_model]
    W_pos: torch.Tensor | None  # [n_ctx, d_model] learned absolute positions
    embed_scale: float | None  # Gemma: embeddings times sqrt(d_model), in the model's dtype
    layers: list[Layer]
    ln_final: Fn | None
    W_U: torch.Tensor  # [d_model, vocab]
    b_U: torch.Tensor | None
    final_softcap: float | None
    act: Fn
    n_heads: int
    n_kv_heads: int
    parallel: bool  # attention and MLP both read the block's input (NeoX, GPT-J, Phi)
    attn_only: bool
    embed_norm: Fn | None = None  # a norm right after the embeddings (Bloom)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def d_model(self) -> int:
        return int(self.W_E.shape[1])

    @property
    def group(self) -> int:
        """Query heads per key/value head (1: ordinary multi-head attention)."""
        return self.n_heads // self.n_kv_heads

    def kv_head(self, head: int) -> int:
        """The key/value head query head ``head`` reads."""
        return head // self.group


def weights_for(model: Any) -> Weights:
    """:func:`extract` for a loaded model, read once and kept in its ``derived`` cache."""
    cache = getattr(model, "derived", None)
    w = None if cache is None else cache.weights
    if w is None:
        w = extract(model.bridge)
        if cache is not None:
            cache.weights = w
    return w


def extract(bridge: Any) -> Weights:
    """Read the weights of ``bridge``; raises :class:`UnsupportedArchitecture` (one sentence
    naming the missing feature) when the engine's forward would not reproduce the model."""
    hf = hf_model(bridge)
    if hf is None or hf.config.model_type == "gpt2":
        return _from_tl(bridge)
    check_hf_config(hf.config)
    mt = hf.config.model_type
    if mt in LLAMA_LIKE or mt == "phi3":
        return _llama_like(hf)
    if mt == "gpt_neox":
        return _neox(hf)
    from causal_mi.models import gpt_families

    if mt in GPT_LIKE:
        return getattr(gpt_families, mt)(hf)
    raise refuse(f"the '{mt}' architecture")


# Hugging Face families ----------------------------------------------------------------------
def _heads_in(weight: torch.Tensor, n: int, d_head: int) -> torch.Tensor:
    """[n * d_head, d] (nn.Linear) -> [n, d, d_head], a view."""
    return weight.detach().view(n, d_head, -1).transpose(1, 2)


def _heads_bias(bias: torch.Tensor | None, n: int, d_head: int) -> torch.Tensor | None:
    return None if bias is None else bias.detach().view(n, d_head)


def _out_heads(weight: torch.Tensor, n: int, d_head: int) -> torch.Tensor:
    """[d, n * d_head] (nn.Linear) -> [n, d_head, d], a view."""
    return weight.detach().view(-1, n, d_head).permute(1, 2, 0)


def _orig(module: Any) -> Any:
    """The HF module itself where the bridge wrapped it (the bridge replaces submodules of
    the HF model by components that hold the original as ``original_component``); calling
    the original runs the model's arithmetic without firing the bridge's hooks."""
    if module is None:
        return None
    inner = getattr(module, "original_component", None)
    return module if inner is None else inner


def _bias(lin: Any) -> torch.Tensor | None:
    b = getattr(lin, "bias", None)
    return None if b is None else b.detach()


def _rotary_of(module: Any, layer_type: str | None = None, interleaved: bool = False) -> Rotary:
    def table(length: int, device, dtype):
        x = torch.zeros(1, length, 1, device=device, dtype=dtype)
        pos = torch.arange(length, device=device)[None]
        cos, sin = module(x, pos) if layer_type is None else module(x, pos, layer_type)
        return cos[0].to(dtype), sin[0].to(dtype)

    return Rotary(table, interleaved)


def _unembed(hf: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    head = _orig(hf.get_output_embeddings())
    return head.weight.detach().T, _bias(head)


_NORMS = (
    "input_layernorm",
    "post_attention_layernorm",
    "pre_feedforward_layernorm",
    "post_feedforward_layernorm",
)


def _llama_like(hf: Any) -> Weights:
    """Llama, Mistral, Qwen 2/3, Gemma 1/2/3 (text), OLMo 2 and Phi-3: one module layout."""
    cfg = hf.config
    mt = cfg.model_type
    base = hf.model
    H = cfg.num_attention_heads
    Hkv = getattr(cfg, "num_key_value_heads", None) or H
    dh = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    rotaries: dict[str | None, Rotary] = {}
    rot_module = _orig(base.rotary_emb)
    layer_types = getattr(cfg, "layer_types", None)
    per_type = mt == "gemma3_text"
    for t in set(layer_types or [None]) if per_type else [None]:
        rotaries[t] = _rotary_of(rot_module, t)
    layers = []
    for i, wrapped in enumerate(base.layers):
        blk = _orig(wrapped)
        a = _orig(blk.self_attn)
        if mt == "phi3":
            qkv = a.qkv_proj.weight.detach()
            q_w, k_w, v_w = qkv.split([H * dh, Hkv * dh, Hkv * dh])
            bq = bk = bv = None
        else:
            q_w, k_w, v_w = (getattr(a, n).weight.detach() for n in ("q_proj", "k_proj", "v_proj"))
            bq, bk, bv = (_bias(getattr(a, n)) for n in ("q_proj", "k_proj", "v_proj"))
        m = _orig(blk.mlp)
        if mt == "phi3":
            gate_w, up_w = m.gate_up_proj.weight.detach().chunk(2, dim=0)
            gate_b = up_b = None
            act = _orig(m.activation_fn)
        else:
            gate_w, up_w = m.gate_proj.weight.detach(), m.up_proj.weight.detach()
            gate_b, up_b = _bias(m.gate_proj), _bias(m.up_proj)
            act = _orig(m.act_fn)
        down = m.down_proj
        window = getattr(a, "sliding_window", None)
        if not hasattr(a, "sliding_window") and mt in ("mistral", "phi3"):
            window = getattr(cfg, "sliding_window", None)
        norms = {n: _orig(getattr(blk, n, None)) for n in _NORMS}
        if mt == "gemma2" or mt == "gemma3_text":
            ln1, ln2 = norms["input_layernorm"], norms["pre_feedforward_layernorm"]
            post_attn = norms["post_attention_layernorm"]
            post_mlp = norms["post_feedforward_layernorm"]
        elif mt == "olmo2":
            ln1 = ln2 = None
            post_attn = norms["post_attention_layernorm"]
            post_mlp = norms["post_feedforward_layernorm"]
        else:
            ln1, ln2 = norms["input_layernorm"], norms["post_attention_layernorm"]
            post_attn = post_mlp = None
        lt = layer_types[i] if (per_type and layer_types) else None
        layers.append(
            Layer(
                W_Q=_heads_in(q_w, H, dh),
                b_Q=_heads_bias(bq, H, dh),
                W_K=_heads_in(k_w, Hkv, dh),
                b_K=_heads_bias(bk, Hkv, dh),
                W_V=_heads_in(v_w, Hkv, dh),
                b_V=_heads_bias(bv, Hkv, dh),
                W_O=_out_heads(a.o_proj.weight, H, dh),
                b_O=_bias(a.o_proj),
                ln1=ln1,
                ln2=ln2,
                post_attn=post_attn,
                post_mlp=post_mlp,
                q_norm=_orig(getattr(a, "q_norm", None)),
                k_norm=_orig(getattr(a, "k_norm", None)),
                qk_norm_all_heads=mt == "olmo2",
                W_in=up_w.T,
                b_in=up_b,
                W_gate=gate_w.T,
                b_gate=gate_b,
                W_out=down.weight.detach().T,
                b_out=_bias(down),
                scale=float(a.scaling),
                softcap=getattr(a, "attn_logit_softcapping", None),
                window=int(window) if window else None,
                rotary=rotaries[lt],
            )
        )
    W_U, b_U = _unembed(hf)
    scale = math.sqrt(cfg.hidden_size) if mt in ("gemma", "gemma2", "gemma3_text") else None
    return Weights(
        family=mt,
        W_E=base.embed_tokens.weight.detach(),
        W_pos=None,
        embed_scale=scale,
        layers=layers,
        ln_final=_orig(base.norm),
        W_U=W_U,
        b_U=b_U,
        final_softcap=getattr(cfg, "final_logit_softcapping", None),
        act=act,
        n_heads=H,
        n_kv_heads=Hkv,
        parallel=False,
        attn_only=False,
    )


def _neox(hf: Any) -> Weights:
    """GPT-NeoX / Pythia: fused per-head q|k|v, partial NeoX rotary, parallel residual."""
    cfg = hf.config
    base = hf.gpt_neox
    H = cfg.num_attention_heads
    dh = cfg.hidden_size // H
    rot = _rotary_of(_orig(base.rotary_emb))
    parallel = bool(cfg.use_parallel_residual)
    layers = []
    for wrapped in base.layers:
        blk = _orig(wrapped)
        a = _orig(blk.attention)
        w = a.query_key_value.weight.detach().view(H, 3, dh, -1)  # [H, (q,k,v), dh, d]
        b = a.query_key_value.bias
        b = None if b is None else b.detach().view(H, 3, dh)
        m = _orig(blk.mlp)
        layers.append(
            Layer(
                W_Q=w[:, 0].transpose(1, 2),
                b_Q=None if b is None else b[:, 0],
                W_K=w[:, 1].transpose(1, 2),
                b_K=None if b is None else b[:, 1],
                W_V=w[:, 2].transpose(1, 2),
                b_V=None if b is None else b[:, 2],
                W_O=_out_heads(a.dense.weight, H, dh),
                b_O=_bias(a.dense),
                ln1=_orig(blk.input_layernorm),
                ln2=_orig(blk.post_attention_layernorm),
                W_in=m.dense_h_to_4h.weight.detach().T,
                b_in=_bias(m.dense_h_to_4h),
                W_out=m.dense_4h_to_h.weight.detach().T,
                b_out=_bias(m.dense_4h_to_h),
                scale=float(a.scaling),
                rotary=rot,
            )
        )
    W_U, b_U = _unembed(hf)
    return Weights(
        family="gpt_neox",
        W_E=base.embed_in.weight.detach(),
        W_pos=None,
        embed_scale=None,
        layers=layers,
        ln_final=_orig(base.final_layer_norm),
        W_U=W_U,
        b_U=b_U,
        final_softcap=None,
        act=_orig(_orig(_orig(base.layers[0]).mlp).act),
        n_heads=H,
        n_kv_heads=H,
        parallel=parallel,
        attn_only=False,
    )


# TL-native bridges and GPT-2 ----------------------------------------------------------------
def _tl_norm(kind: str, eps: float, params: tuple[torch.Tensor, torch.Tensor | None] | None) -> Fn:
    w, b = params if params is not None else (None, None)

    f = torch.nn.functional

    def fn(x: torch.Tensor) -> torch.Tensor:
        if kind == "LN":
            return f.layer_norm(x, (x.shape[-1],), w, b, eps)
        x = f.rms_norm(x, (x.shape[-1],), w, eps)
        return x + b if b is not None else x

    return fn


def _tl_act(name: str) -> Fn:
    f = torch.nn.functional
    if name == "gelu_new":
        return lambda x: f.gelu(x, approximate="tanh")
    return {"gelu": f.gelu, "relu": f.relu, "silu": f.silu}[name]


def _cap(value: float | None) -> float | None:
    """A TL soft-cap setting as the engine's (TL marks "off" with a value <= 0)."""
    return float(value) if value is not None and value > 0 else None


def _from_tl(bridge: Any) -> Weights:
    """GPT-style serial blocks with LayerNorm, RMSNorm or no norm, learned absolute
    positions, attention-only or a (non-gated) MLP with gelu / gelu_new / relu / silu."""
    cfg = bridge.cfg
    problems = []
    if (getattr(cfg, "positional_embedding_type", "standard") or "standard") != "standard":
        problems.append(f"positional embeddings '{cfg.positional_embedding_type}'")
    if getattr(cfg, "gated_mlp", False):
        problems.append("a gated MLP")
    if getattr(cfg, "parallel_attn_mlp", False):
        problems.append("parallel attention and MLP")
    if getattr(cfg, "n_key_value_heads", None) not in (None, cfg.n_heads):
        problems.append("grouped-query attention")
    if getattr(cfg, "scale_attn_by_inverse_layer_idx", False):
        problems.append("attention scaled by inverse layer index")
    if (getattr(cfg, "attention_dir", "causal") or "causal") != "causal":
        problems.append("bidirectional attention")
    act = (cfg.act_fn or "gelu").lower()
    if not cfg.attn_only and act not in _ACTS:
        problems.append(f"activation '{act}'")
    norm_type = (cfg.normalization_type or "none").upper()
    norm = {"LN": "LN", "LNPRE": "LN", "RMS": "RMS", "RMSPRE": "RMS", "NONE": "none"}.get(norm_type)
    if norm is None:
        problems.append(f"normalization '{cfg.normalization_type}'")
    if getattr(cfg, "final_rms", False) and norm != "RMS":
        problems.append("a final RMSNorm with another block norm")
    if problems:
        raise refuse(", ".join(problems) + " on this TL-native model")
    sd = {k: v.detach() for k, v in bridge.state_dict().items()}
    eps = float(cfg.eps)

    def norm_fn(prefix: str) -> Fn | None:
        if norm == "none":
            return None
        w = sd.get(prefix + ".weight")
        return _tl_norm(norm, eps, None if w is None else (w, sd.get(prefix + ".bias")))

    scale = cfg.attn_scale if cfg.use_attn_scale and cfg.attn_scale > 0 else math.sqrt(cfg.d_head)
    layers = []
    for i, blk in enumerate(bridge.blocks):
        at = blk.attn
        mlp = None if cfg.attn_only else blk.mlp
        layers.append(
            Layer(
                W_Q=at.W_Q.detach(),
                b_Q=at.b_Q.detach(),
                W_K=at.W_K.detach(),
                b_K=at.b_K.detach(),
                W_V=at.W_V.detach(),
                b_V=at.b_V.detach(),
                W_O=at.W_O.detach(),
                b_O=at.b_O.detach(),
                ln1=norm_fn(f"blocks.{i}.ln1"),
                ln2=None if cfg.attn_only else norm_fn(f"blocks.{i}.ln2"),
                W_in=None if mlp is None else mlp.W_in.detach(),
                b_in=None if mlp is None else mlp.b_in.detach(),
                W_out=None if mlp is None else mlp.W_out.detach(),
                b_out=None if mlp is None else mlp.b_out.detach(),
                scale=1.0 / float(scale),
                softcap=_cap(getattr(cfg, "attn_scores_soft_cap", None)),
            )
        )
    return Weights(
        family="native" if hf_model(bridge) is None else "gpt2",
        W_E=bridge.W_E.detach(),
        W_pos=bridge.W_pos.detach(),
        embed_scale=None,
        layers=layers,
        ln_final=norm_fn("ln_final"),
        W_U=bridge.W_U.detach(),
        b_U=bridge.b_U.detach(),
        final_softcap=_cap(getattr(cfg, "output_logits_soft_cap", None)),
        act=_tl_act(act) if not cfg.attn_only else _tl_act("relu"),
        n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_heads,
        parallel=False,
        attn_only=bool(cfg.attn_only),
    )
