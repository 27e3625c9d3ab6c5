"""Weights of the GPT-style Hugging Face families: GPT-J, GPT-Neo, OPT, GPT-BigCode, Bloom.

Same contract as :mod:`causal_mi.models.weights` (views of the HF modules' parameters; norms
and activations are the HF modules themselves); each reader states the family's layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from causal_mi.models.arch import refuse
from causal_mi.models.weights import (
    Alibi,
    Layer,
    Rotary,
    Weights,
    _bias,
    _heads_in,
    _orig,
    _out_heads,
    _rotary_of,
    _unembed,
)


def _layers(container: Any) -> list[Any]:
    return [_orig(b) for b in container]


def gptj(hf: Any) -> Weights:
    """GPT-J: parallel attention + MLP under one LayerNorm, interleaved (every-two) partial
    rotary, no attention biases, biased MLP and unembedding."""
    cfg = hf.config
    base = hf.transformer
    H = cfg.n_head
    dh = cfg.n_embd // H
    rot = _orig(base.rotary_emb)

    def table(length: int, device, dtype):
        sincos = rot.embed_positions[:length].to(device=device, dtype=dtype)
        sin, cos = torch.split(sincos, sincos.shape[-1] // 2, dim=-1)
        return cos.repeat_interleave(2, -1), sin.repeat_interleave(2, -1)

    rotary = Rotary(table, interleaved=True)
    layers = []
    for blk in _layers(base.h):
        a, m = _orig(blk.attn), _orig(blk.mlp)
        ln = _orig(blk.ln_1)
        layers.append(
            Layer(
                W_Q=_heads_in(a.q_proj.weight, H, dh),
                b_Q=None,
                W_K=_heads_in(a.k_proj.weight, H, dh),
                b_K=None,
                W_V=_heads_in(a.v_proj.weight, H, dh),
                b_V=None,
                W_O=_out_heads(a.out_proj.weight, H, dh),
                b_O=_bias(a.out_proj),
                ln1=ln,
                ln2=ln,
                W_in=m.fc_in.weight.detach().T,
                b_in=_bias(m.fc_in),
                W_out=m.fc_out.weight.detach().T,
                b_out=_bias(m.fc_out),
                scale=float(a.scaling),
                rotary=rotary,
            )
        )
    W_U, b_U = _unembed(hf)
    return _whole(hf, base.wte, None, layers, base.ln_f, W_U, b_U, _orig(blk.mlp).act, H, H, True)


def gpt_neo(hf: Any) -> Weights:
    """GPT-Neo: learned positions, unscaled attention scores, local (windowed) layers."""
    cfg = hf.config
    base = hf.transformer
    H = cfg.num_heads
    dh = cfg.hidden_size // H
    layers = []
    for blk in _layers(base.h):
        a = _orig(_orig(blk.attn).attention)
        m = _orig(blk.mlp)
        local = a.attention_type == "local"
        layers.append(
            Layer(
                W_Q=_heads_in(a.q_proj.weight, H, dh),
                b_Q=None,
                W_K=_heads_in(a.k_proj.weight, H, dh),
                b_K=None,
                W_V=_heads_in(a.v_proj.weight, H, dh),
                b_V=None,
                W_O=_out_heads(a.out_proj.weight, H, dh),
                b_O=_bias(a.out_proj),
                ln1=_orig(blk.ln_1),
                ln2=_orig(blk.ln_2),
                W_in=m.c_fc.weight.detach().T,
                b_in=_bias(m.c_fc),
                W_out=m.c_proj.weight.detach().T,
                b_out=_bias(m.c_proj),
                scale=1.0,
                window=int(cfg.window_size) if local else None,
            )
        )
    W_U, b_U = _unembed(hf)
    act = _orig(_orig(base.h[0]).mlp).act
    return _whole(hf, base.wte, base.wpe.weight, layers, base.ln_f, W_U, b_U, act, H, H, False)


def opt(hf: Any) -> Weights:
    """OPT: learned positions stored with an offset of 2, pre-LayerNorm blocks, ReLU."""
    cfg = hf.config
    if not cfg.do_layer_norm_before:
        raise refuse("OPT's post-LayerNorm blocks (do_layer_norm_before: false)")
    if cfg.word_embed_proj_dim != cfg.hidden_size:
        raise refuse("OPT's projected word embeddings (word_embed_proj_dim != hidden_size)")
    dec = hf.model.decoder
    H = cfg.num_attention_heads
    dh = cfg.hidden_size // H
    layers = []
    for blk in _layers(dec.layers):
        a = _orig(blk.self_attn)
        layers.append(
            Layer(
                W_Q=_heads_in(a.q_proj.weight, H, dh),
                b_Q=None if a.q_proj.bias is None else a.q_proj.bias.detach().view(H, dh),
                W_K=_heads_in(a.k_proj.weight, H, dh),
                b_K=None if a.k_proj.bias is None else a.k_proj.bias.detach().view(H, dh),
                W_V=_heads_in(a.v_proj.weight, H, dh),
                b_V=None if a.v_proj.bias is None else a.v_proj.bias.detach().view(H, dh),
                W_O=_out_heads(a.out_proj.weight, H, dh),
                b_O=_bias(a.out_proj),
                ln1=_orig(blk.self_attn_layer_norm),
                ln2=_orig(blk.final_layer_norm),
                W_in=blk.fc1.weight.detach().T,
                b_in=_bias(blk.fc1),
                W_out=blk.fc2.weight.detach().T,
                b_out=_bias(blk.fc2),
                scale=float(a.scaling),
            )
        )
    W_U, b_U = _unembed(hf)
    pos = _orig(dec.embed_positions)
    act = _orig(_orig(dec.layers[0]).activation_fn)
    W_pos = pos.weight[pos.offset :]
    final = _orig(dec.final_layer_norm) if dec.final_layer_norm is not None else None
    return _whole(hf, dec.embed_tokens, W_pos, layers, final, W_U, b_U, act, H, H, False)


def gpt_bigcode(hf: Any) -> Weights:
    """GPT-BigCode (StarCoder): fused c_attn, multi-query (one key/value head) or per-head
    interleaved q|k|v, learned positions."""
    cfg = hf.config
    base = hf.transformer
    H = cfg.n_head
    dh = cfg.n_embd // H
    mq = bool(cfg.multi_query)
    layers = []
    for blk in _layers(base.h):
        a, m = _orig(blk.attn), _orig(blk.mlp)
        w, b = a.c_attn.weight.detach(), a.c_attn.bias
        b = None if b is None else b.detach()
        if mq:
            wq, wk, wv = w.split([H * dh, dh, dh])
            bq, bk, bv = (None, None, None) if b is None else b.split([H * dh, dh, dh])
            q = (_heads_in(wq, H, dh), None if bq is None else bq.view(H, dh))
            k = (_heads_in(wk, 1, dh), None if bk is None else bk.view(1, dh))
            v = (_heads_in(wv, 1, dh), None if bv is None else bv.view(1, dh))
        else:
            w4 = w.view(H, 3, dh, -1)
            b3 = None if b is None else b.view(H, 3, dh)
            q, k, v = (
                (w4[:, i].transpose(1, 2), None if b3 is None else b3[:, i]) for i in range(3)
            )
        layers.append(
            Layer(
                W_Q=q[0],
                b_Q=q[1],
                W_K=k[0],
                b_K=k[1],
                W_V=v[0],
                b_V=v[1],
                W_O=_out_heads(a.c_proj.weight, H, dh),
                b_O=_bias(a.c_proj),
                ln1=_orig(blk.ln_1),
                ln2=_orig(blk.ln_2),
                W_in=m.c_fc.weight.detach().T,
                b_in=_bias(m.c_fc),
                W_out=m.c_proj.weight.detach().T,
                b_out=_bias(m.c_proj),
                scale=float(a.scaling),
            )
        )
    W_U, b_U = _unembed(hf)
    act = _orig(_orig(base.h[0]).mlp).act
    n_kv = 1 if mq else H
    return _whole(hf, base.wte, base.wpe.weight, layers, base.ln_f, W_U, b_U, act, H, n_kv, False)


def bloom(hf: Any) -> Weights:
    """Bloom: ALiBi (no position embeddings), a LayerNorm on the embeddings, fused per-head
    q|k|v, biased projections, tanh-GELU MLP."""
    from transformers.models.bloom.modeling_bloom import build_alibi_tensor

    cfg = hf.config
    if cfg.apply_residual_connection_post_layernorm:
        raise refuse("Bloom's residual connection after the LayerNorm")
    base = hf.transformer
    H = cfg.n_head
    dh = cfg.hidden_size // H

    def table(length: int, device, dtype) -> torch.Tensor:
        ones = torch.ones(1, length, device=device, dtype=torch.long)
        return build_alibi_tensor(ones, H, dtype).view(H, length)

    alibi = Alibi(table)
    layers = []
    for blk in _layers(base.h):
        a, m = _orig(blk.self_attention), _orig(blk.mlp)
        w = a.query_key_value.weight.detach().view(H, 3, dh, -1)
        b = a.query_key_value.bias.detach().view(H, 3, dh)
        layers.append(
            Layer(
                W_Q=w[:, 0].transpose(1, 2),
                b_Q=b[:, 0],
                W_K=w[:, 1].transpose(1, 2),
                b_K=b[:, 1],
                W_V=w[:, 2].transpose(1, 2),
                b_V=b[:, 2],
                W_O=_out_heads(a.dense.weight, H, dh),
                b_O=_bias(a.dense),
                ln1=_orig(blk.input_layernorm),
                ln2=_orig(blk.post_attention_layernorm),
                W_in=m.dense_h_to_4h.weight.detach().T,
                b_in=_bias(m.dense_h_to_4h),
                W_out=m.dense_4h_to_h.weight.detach().T,
                b_out=_bias(m.dense_4h_to_h),
                scale=float(a.inv_norm_factor),
                alibi=alibi,
            )
        )
    W_U, b_U = _unembed(hf)
    act = _orig(_orig(base.h[0]).mlp).gelu_impl
    w = _whole(hf, base.word_embeddings, None, layers, base.ln_f, W_U, b_U, act, H, H, False)
    return dataclasses.replace(w, embed_norm=_orig(base.word_embeddings_layernorm))


def falcon(hf: Any) -> Weights:
    """Falcon: fused q|k|v in one of three layouts (per-head q,k,v; multi-query: all queries
    then one key and one value; the new decoder architecture: per key/value group, its
    queries then its key and value), NeoX rotary, parallel blocks with one or two norms."""
    cfg = hf.config
    if cfg.alibi:
        raise refuse("Falcon's ALiBi variant")
    new = bool(cfg.new_decoder_architecture)
    if new and not cfg.parallel_attn:
        raise refuse("Falcon's new decoder architecture without parallel attention")
    base = hf.transformer
    H = cfg.num_attention_heads
    dh = cfg.hidden_size // H
    rot = _rotary_of(_orig(base.rotary_emb))
    layers = []
    for blk in _layers(base.h):
        a, m = _orig(blk.self_attention), _orig(blk.mlp)
        w = a.query_key_value.weight.detach()
        b = None if a.query_key_value.bias is None else a.query_key_value.bias.detach()
        if new:
            n_kv = cfg.num_kv_heads
            g = H // n_kv
            w4 = w.view(n_kv, g + 2, dh, -1)
            b3 = None if b is None else b.view(n_kv, g + 2, dh)
            q = (w4[:, :g].reshape(H, dh, -1), None if b3 is None else b3[:, :g].reshape(H, dh))
            k = (w4[:, g], None if b3 is None else b3[:, g])
            v = (w4[:, g + 1], None if b3 is None else b3[:, g + 1])
        elif cfg.multi_query:
            n_kv = 1
            w3 = w.view(H + 2, dh, -1)
            b2 = None if b is None else b.view(H + 2, dh)
            q = (w3[:H], None if b2 is None else b2[:H])
            k = (w3[H : H + 1], None if b2 is None else b2[H : H + 1])
            v = (w3[H + 1 :], None if b2 is None else b2[H + 1 :])
        else:
            n_kv = H
            w4 = w.view(H, 3, dh, -1)
            b3 = None if b is None else b.view(H, 3, dh)
            q, k, v = ((w4[:, i], None if b3 is None else b3[:, i]) for i in range(3))
        if new and cfg.num_ln_in_parallel_attn == 2:
            ln1, ln2 = _orig(blk.ln_attn), _orig(blk.ln_mlp)
        elif cfg.parallel_attn:
            ln1 = ln2 = _orig(blk.input_layernorm)
        else:
            ln1, ln2 = _orig(blk.input_layernorm), _orig(blk.post_attention_layernorm)
        layers.append(
            Layer(
                W_Q=q[0].transpose(1, 2),
                b_Q=q[1],
                W_K=k[0].transpose(1, 2),
                b_K=k[1],
                W_V=v[0].transpose(1, 2),
                b_V=v[1],
                W_O=_out_heads(a.dense.weight, H, dh),
                b_O=_bias(a.dense),
                ln1=ln1,
                ln2=ln2,
                W_in=m.dense_h_to_4h.weight.detach().T,
                b_in=_bias(m.dense_h_to_4h),
                W_out=m.dense_4h_to_h.weight.detach().T,
                b_out=_bias(m.dense_4h_to_h),
                scale=float(a.inv_norm_factor),
                rotary=rot,
            )
        )
    W_U, b_U = _unembed(hf)
    act = _orig(_orig(base.h[0]).mlp).act
    parallel = bool(cfg.parallel_attn or new)
    return _whole(
        hf, base.word_embeddings, None, layers, base.ln_f, W_U, b_U, act, H, n_kv, parallel
    )


def _whole(hf, wte, W_pos, layers, ln_f, W_U, b_U, act, H, n_kv, parallel) -> Weights:
    return Weights(
        family=hf.config.model_type,
        W_E=_orig(wte).weight.detach(),
        W_pos=None if W_pos is None else W_pos.detach(),
        embed_scale=None,
        layers=layers,
        ln_final=None if ln_f is None else _orig(ln_f),
        W_U=W_U,
        b_U=b_U,
        final_softcap=None,
        act=_orig(act),
        n_heads=H,
        n_kv_heads=n_kv,
        parallel=parallel,
        attn_only=False,
    )
