"""Incremental patched forward passes: start where the patch starts, compute only what changes.

A patched run differs from its base run only from the first patched point on. The base run
is recorded once (:func:`record`); every patched run then *joins* the residual stream at a
stage and recomputes only what the patch can change (:func:`resume`):

- **stages**: the residual stream is read at ``2 * n_layers + 1`` points; stage ``2l`` is
  layer l's ``resid_pre`` (before attention), ``2l + 1`` its ``resid_mid`` (after attention,
  before the MLP) and ``2 * n_layers`` the final stream. A patched run starts at its stage
  from the recorded stream plus the patch, so earlier layers are never recomputed;
- **causal reuse**: a patch whose first changed position is ``p0`` cannot change positions
  before ``p0`` in any layer, so only positions ``>= p0`` are recomputed, and attention reads
  the recorded keys and values of the earlier positions;
- **the last position only** after the last attention: the metric reads the logits of the
  last position, so the last layer's MLP, the final norm and the unembedding run there only;
- **staircase batching**: runs that join at different stages share one loop over the layers;
  at each stage the runs joining there are appended to the batch, so every layer runs as one
  large matrix product over all runs that have reached it.

The arithmetic is the model's own (weights are views of its parameters, see
:mod:`causal_mi.models.weights`); the tests hold every result to the hook-based engine and to
transformer_lens' patching functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from causal_mi.models.weights import Weights


@dataclass(frozen=True)
class Layer:
    """One block's weights in matrix-product form (views, no copies)."""

    Wq: torch.Tensor  # [d_model, head * d_head]
    bq: torch.Tensor  # [head * d_head]
    Wk: torch.Tensor
    bk: torch.Tensor
    Wv: torch.Tensor
    bv: torch.Tensor
    Wo: torch.Tensor  # [head * d_head, d_model]
    bo: torch.Tensor
    Win: torch.Tensor | None
    bin: torch.Tensor | None
    Wout: torch.Tensor | None
    bout: torch.Tensor | None
    ln1: tuple[torch.Tensor, torch.Tensor | None] | None
    ln2: tuple[torch.Tensor, torch.Tensor | None] | None


class Model:
    """A :class:`Weights` arranged for batched products, with the FLOP count of each step."""

    def __init__(self, w: Weights):
        self.w = w
        self.n_layers, self.n_heads = w.n_layers, w.n_heads
        self.d_model = w.W_E.shape[1]
        self.d_head = w.W_Q[0].shape[-1]
        self.d_mlp = 0 if w.attn_only else w.W_in[0].shape[-1]
        self.vocab = w.W_U.shape[1]
        self.final = 2 * self.n_layers
        self._flops: dict[tuple[int, int, int], int] = {}
        self.masks: dict[tuple, torch.Tensor] = {}  # causal masks by shape (see _causal)
        H, dh = self.n_heads, self.d_head

        def flat_in(t: torch.Tensor) -> torch.Tensor:  # [H, d, dh] -> [d, H*dh]
            return t.permute(1, 0, 2).reshape(t.shape[1], H * dh)

        self.layers = [
            Layer(
                flat_in(w.W_Q[i]),
                w.b_Q[i].reshape(-1),
                flat_in(w.W_K[i]),
                w.b_K[i].reshape(-1),
                flat_in(w.W_V[i]),
                w.b_V[i].reshape(-1),
                w.W_O[i].reshape(H * dh, -1),
                w.b_O[i],
                None if w.attn_only else w.W_in[i],
                None if w.attn_only else w.b_in[i],
                None if w.attn_only else w.W_out[i],
                None if w.attn_only else w.b_out[i],
                w.ln1[i] if w.ln1 is not None else None,
                w.ln2[i] if w.ln2 is not None else None,
            )
            for i in range(self.n_layers)
        ]

    @property
    def device(self) -> torch.device:
        return self.w.W_E.device

    @property
    def dtype(self) -> torch.dtype:
        return self.w.W_E.dtype

    def norm(self, x: torch.Tensor, params) -> torch.Tensor:
        w = self.w
        if w.norm == "none":
            return x
        weight, bias = params if params is not None else (None, None)
        if w.norm == "LN":
            return F.layer_norm(x, (x.shape[-1],), weight, bias, w.eps)
        x = F.rms_norm(x, (x.shape[-1],), weight, w.eps)
        return x + bias if bias is not None else x

    # FLOPs (multiply-adds x 2) of one row (one prompt) going through stage ``s`` ------------
    def stage_flops(self, s: int, tokens: int, keys: int, last: bool) -> int:
        """``tokens`` positions recomputed, attending over ``keys`` positions; ``last``: the
        queries and the output are needed at the last position only."""
        d, hd = self.d_model, self.n_heads * self.d_head
        if s == self.final:
            return 2 * d * self.vocab
        if s % 2 == 0:
            q_rows = 1 if last else tokens
            return 2 * d * hd * (2 * tokens + q_rows) + 2 * hd * d * q_rows + 4 * hd * keys * q_rows
        return 0 if self.d_mlp == 0 else 4 * d * self.d_mlp * (1 if last else tokens)

    def run_flops(self, stage: int, p0: int, length: int) -> int:
        """FLOPs per prompt of a run joining at ``stage`` with first changed position ``p0``."""
        key = (stage, p0, length)
        if key not in self._flops:
            self._flops[key] = self._run_flops(stage, p0, length)
        return self._flops[key]

    def _run_flops(self, stage: int, p0: int, length: int) -> int:
        total, t = 0, length - p0
        for s in range(stage, self.final + 1):
            last = s >= self.final - 2
            total += self.stage_flops(s, 1 if s > self.final - 2 else t, length, last)
        return total


@dataclass
class Record:
    """What one run of ``tokens`` [B, P] leaves for the patched runs built on it."""

    tokens: torch.Tensor
    streams: list[torch.Tensor]  # per stage [B, P, d]
    logits: torch.Tensor  # [B, vocab] at the last position
    q: list[torch.Tensor] = field(default_factory=list)  # per layer [B, H, P, d_head]
    k: list[torch.Tensor] = field(default_factory=list)
    v: list[torch.Tensor] = field(default_factory=list)
    z: list[torch.Tensor] = field(default_factory=list)
    pattern: list[torch.Tensor] = field(default_factory=list)  # per layer [B, H, P, P]
    post: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> [B, P, d_mlp]

    def stream(self, s: int) -> torch.Tensor:
        return self.streams[s]


def _heads(x: torch.Tensor, H: int) -> torch.Tensor:
    """[R, P, H*dh] -> [R, H, P, dh]."""
    R, P, _ = x.shape
    return x.view(R, P, H, -1).transpose(1, 2)


def _causal(
    m: Model, q_from: int, n_q: int, n_k: int, device, allowed: bool = False
) -> torch.Tensor:
    """True where query ``q_from + i`` must not see key ``j`` (``allowed``: where it may);
    kept on the model, since the same shapes recur in every chunk."""
    key = (q_from, n_q, n_k, str(device), allowed)
    mask = m.masks.get(key)
    if mask is None:
        if len(m.masks) > 4096:
            m.masks.clear()
        qi = torch.arange(q_from, q_from + n_q, device=device)[:, None]
        kj = torch.arange(n_k, device=device)[None, :]
        mask = m.masks[key] = kj <= qi if allowed else kj > qi
    return mask


def attend(
    m: Model, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_from: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [R, H, Pq, dh], pattern [R, H, Pq, Pk]) for queries at positions ``q_from..`` over
    the keys and values given (positions ``0..``)."""
    scores = (q @ k.transpose(-1, -2)) / m.w.attn_scale
    mask = _causal(m, q_from, q.shape[-2], k.shape[-2], q.device)
    pattern = scores.masked_fill(mask, float("-inf")).softmax(-1)
    return pattern @ v, pattern


def attend_fused(m: Model, q, k, v, q_from: int) -> torch.Tensor:
    """z of :func:`attend` through PyTorch's fused attention (no pattern kept)."""
    mask = _causal(m, q_from, q.shape[-2], k.shape[-2], q.device, allowed=True)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0 / m.w.attn_scale)


def project(m: Model, layer: int, z: torch.Tensor) -> torch.Tensor:
    """The attention output [R, Pq, d] of ``z`` [R, H, Pq, dh] (all heads plus b_O)."""
    R, H, Pq, dh = z.shape
    lw = m.layers[layer]
    return torch.addmm(lw.bo, z.transpose(1, 2).reshape(R * Pq, H * dh), lw.Wo).view(R, Pq, -1)


def mlp(m: Model, layer: int, resid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(post-activation [.., d_mlp], output [.., d]) of layer's MLP on ``resid`` [.., d]."""
    lw = m.layers[layer]
    x = m.norm(resid, lw.ln2)
    shape = x.shape[:-1]
    pre = torch.addmm(lw.bin, x.reshape(-1, x.shape[-1]), lw.Win)
    post = m.w.act(pre)
    out = torch.addmm(lw.bout, post, lw.Wout)
    return post.view(*shape, -1), out.view(*shape, -1)


def qkv(m: Model, layer: int, x: torch.Tensor, queries_from: int = 0):
    """q (for positions ``queries_from..``), k, v [R, H, P, dh] of normalized ``x`` [R, P, d]."""
    lw = m.layers[layer]
    R, P, d = x.shape
    flat = x.reshape(R * P, d)
    k = _heads(torch.addmm(lw.bk, flat, lw.Wk).view(R, P, -1), m.n_heads)
    v = _heads(torch.addmm(lw.bv, flat, lw.Wv).view(R, P, -1), m.n_heads)
    xq = x[:, queries_from:].reshape(-1, d)
    q = _heads(torch.addmm(lw.bq, xq, lw.Wq).view(R, P - queries_from, -1), m.n_heads)
    return q, k, v


def record(
    m: Model,
    tokens: torch.Tensor,
    keep: frozenset[str] = frozenset(),
    post_layers=(),
    noise: torch.Tensor | None = None,
):
    """Run ``tokens`` [B, P] and keep the residual stream at every stage, the last-position
    logits, and per layer what ``keep`` names (``q``, ``k``, ``v``, ``z``, ``pattern``) plus
    the MLP post-activations of ``post_layers``. ``noise`` [B, P, d] is added to the
    embeddings (causal-tracing corruption)."""
    w = m.w
    B, P = tokens.shape
    resid = w.W_E[tokens] + w.W_pos[:P]
    if noise is not None:
        resid = resid + noise
    rec = Record(tokens, [resid], torch.empty(0))
    for layer in range(m.n_layers):
        lw = m.layers[layer]
        q, k, v = qkv(m, layer, m.norm(resid, lw.ln1))
        if "pattern" in keep:
            z, pattern = attend(m, q, k, v, 0)
        else:
            z, pattern = attend_fused(m, q, k, v, 0), None
        for name, t in (("q", q), ("k", k), ("v", v), ("z", z), ("pattern", pattern)):
            if name in keep:
                getattr(rec, name).append(t)
        resid = resid + project(m, layer, z)
        rec.streams.append(resid)
        if m.d_mlp:
            post, out = mlp(m, layer, resid)
            if layer in post_layers:
                rec.post[layer] = post
            resid = resid + out
        rec.streams.append(resid)
    rec.logits = unembed(m, resid[:, -1])
    return rec


def record_pair(
    m: Model,
    a: torch.Tensor,
    b: torch.Tensor,
    keep_a,
    keep_b,
    post_layers=(),
    noise: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
) -> tuple[Record, Record]:
    """:func:`record` of two token batches of one shape in one pass (``noise``: for each)."""
    both_noise = None
    if noise[0] is not None or noise[1] is not None:
        zeros = torch.zeros(*a.shape, m.d_model, dtype=m.dtype, device=a.device)
        both_noise = torch.cat([zeros if n is None else n for n in noise])
    keep = frozenset(keep_a) | frozenset(keep_b)
    both = record(m, torch.cat([a, b]), keep, post_layers, both_noise)
    n = a.shape[0]

    def half(sl: slice, keep) -> Record:
        return Record(
            both.tokens[sl],
            [t[sl] for t in both.streams],
            both.logits[sl],
            **{k: [t[sl] for t in getattr(both, k)] for k in keep},
            post={la: t[sl] for la, t in both.post.items()},
        )

    return half(slice(0, n), keep_a), half(slice(n, None), keep_b)


def unembed(m: Model, last: torch.Tensor) -> torch.Tensor:
    """Logits of the final residual stream at one position [R, d] -> [R, vocab]."""
    x = m.norm(last, m.w.ln_final)
    return torch.addmm(m.w.b_U, x, m.w.W_U)


# The stream a run starts from: build(stage, lo, hi) -> [hi - lo, B, P - p0, d] for the runs
# lo..hi of a chunk (sorted by stage) that join at ``stage``.
Build = Callable[[int, int, int], torch.Tensor]


def resume(m: Model, base: Record, stages: list[int], p0: int, build: Build) -> torch.Tensor:
    """Logits [N, B, vocab] at the last position of N patched runs on ``base``.

    Run i joins at ``stages[i]`` (ascending) with a stream that equals the base stream before
    position ``p0``; everything from its stage on is recomputed for positions ``>= p0``."""
    N = len(stages)
    B, P = base.tokens.shape
    last_attn = m.final - 2
    active: torch.Tensor | None = None  # [n, B, t, d]
    i = 0
    for s in range(stages[0], m.final + 1):
        j = i
        while j < N and stages[j] == s:
            j += 1
        if j > i:
            new = build(s, i, j)
            if s > last_attn:
                new = new[:, :, -1:]
            active = new if active is None else torch.cat([active, new])
            i = j
        if s == m.final:
            break
        layer, sub = divmod(s, 2)
        n, _, t, d = active.shape
        x = active.reshape(n * B, t, d)
        if sub == 0:
            lw = m.layers[layer]
            q_from = t - 1 if s == last_attn else 0
            q, k, v = qkv(m, layer, m.norm(x, lw.ln1), q_from)
            if p0 > 0:  # positions before p0: the base run's keys and values
                kp = base.k[layer][:, :, :p0].unsqueeze(0).expand(n, -1, -1, -1, -1)
                vp = base.v[layer][:, :, :p0].unsqueeze(0).expand(n, -1, -1, -1, -1)
                k = torch.cat([kp.reshape(n * B, *kp.shape[2:]), k], dim=2)
                v = torch.cat([vp.reshape(n * B, *vp.shape[2:]), v], dim=2)
            x = x[:, q_from:] + project(m, layer, attend_fused(m, q, k, v, p0 + q_from))
        elif m.d_mlp:
            x = x + mlp(m, layer, x)[1]
        active = x.view(n, B, -1, d)
    return unembed(m, active[:, :, -1].reshape(N * B, -1)).view(N, B, -1)


def incremental_model(loaded) -> Model:
    """The :class:`Model` of a loaded model, built once and kept on it."""
    from causal_mi.models.weights import weights_for

    m = getattr(loaded, "_incremental", None)
    if m is None:
        m = Model(weights_for(loaded))
        loaded._incremental = m
    return m
