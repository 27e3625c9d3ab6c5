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

from causal_mi.engine import blocks
from causal_mi.models.weights import Layer, Weights


@dataclass(frozen=True)
class _Flat:
    """One layer's attention matrices in matrix-product form: ``Wq`` [d_model, head *
    d_head], ``Wk``/``Wv`` [d_model, kv_head * d_head], ``Wo`` [head * d_head, d_model]
    (views of the parameters where their layout allows; TL-native ones are small copies)."""

    Wq: torch.Tensor
    bq: torch.Tensor | None
    Wk: torch.Tensor
    bk: torch.Tensor | None
    Wv: torch.Tensor
    bv: torch.Tensor | None
    Wo: torch.Tensor
    bo: torch.Tensor | None

    @staticmethod
    def of(lw: Layer) -> _Flat:
        def flat_in(t: torch.Tensor) -> torch.Tensor:  # [n, d, dh] -> [d, n * dh]
            return t.permute(1, 0, 2).reshape(t.shape[1], -1)

        def flat_b(b: torch.Tensor | None) -> torch.Tensor | None:
            return None if b is None else b.reshape(-1)

        return _Flat(
            flat_in(lw.W_Q),
            flat_b(lw.b_Q),
            flat_in(lw.W_K),
            flat_b(lw.b_K),
            flat_in(lw.W_V),
            flat_b(lw.b_V),
            lw.W_O.reshape(-1, lw.W_O.shape[-1]),
            lw.b_O,
        )


class Model:
    """A :class:`Weights` with the sizes and the FLOP count of each step of a run."""

    def __init__(self, w: Weights):
        self.w = w
        self.layers: list[Layer] = w.layers
        self.n_layers, self.n_heads, self.n_kv_heads = w.n_layers, w.n_heads, w.n_kv_heads
        self.d_model = w.d_model
        self.d_head = w.layers[0].W_Q.shape[-1]
        self.d_mlp = 0 if w.attn_only else w.layers[0].W_out.shape[0]
        self.vocab = w.W_U.shape[1]
        self.final = 2 * self.n_layers
        self.parallel = w.parallel
        self._flops: dict[tuple[int, int, int], int] = {}
        self.flat = [_Flat.of(lw) for lw in w.layers]

    @property
    def device(self) -> torch.device:
        return self.w.W_E.device

    @property
    def dtype(self) -> torch.dtype:
        return self.w.W_E.dtype

    # FLOPs (multiply-adds x 2) of one row (one prompt) going through stage ``s`` ------------
    def stage_flops(self, s: int, tokens: int, keys: int, last: bool) -> int:
        """``tokens`` positions recomputed, attending over ``keys`` positions; ``last``: the
        queries and the output are needed at the last position only."""
        d, hq = self.d_model, self.n_heads * self.d_head
        hkv = self.n_kv_heads * self.d_head
        if s == self.final:
            return 2 * d * self.vocab
        q_rows = 1 if last else tokens
        if s % 2 == 0:
            return (
                2 * d * (2 * hkv * tokens + hq * q_rows)
                + 2 * hq * d * q_rows
                + 4 * hq * keys * q_rows
            )
        if self.d_mlp == 0:
            return 0
        gated = self.layers[0].W_gate is not None
        return (6 if gated else 4) * d * self.d_mlp * q_rows

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
    k: list[torch.Tensor] = field(default_factory=list)  # per layer [B, H_kv, P, d_head]
    v: list[torch.Tensor] = field(default_factory=list)
    z: list[torch.Tensor] = field(default_factory=list)
    pattern: list[torch.Tensor] = field(default_factory=list)  # per layer [B, H, P, P]
    post: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> [B, P, d_mlp]
    # the attention's / MLP's summed output before a post norm, for layers that have one
    attn_raw: dict[int, torch.Tensor] = field(default_factory=dict)
    mlp_raw: dict[int, torch.Tensor] = field(default_factory=dict)

    def stream(self, s: int) -> torch.Tensor:
        return self.streams[s]


def attend(
    m: Model,
    layer: int,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_from: int,
    heads=slice(None),
) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [R, H, Pq, dh], pattern [R, H, Pq, Pk]) for queries at positions ``q_from..`` over
    the keys and values given (positions ``0..``; grouped key/value heads are expanded);
    ``heads``: the query heads ``q`` holds (all by default)."""
    z, pattern = blocks.attend(m.layers[layer], q, k, v, q_from, heads=heads)
    return z, pattern


def attend_fused(m: Model, layer: int, q, k, v, q_from: int) -> torch.Tensor:
    """z of :func:`attend`, through PyTorch's fused attention where the layer allows."""
    return blocks.attend(m.layers[layer], q, k, v, q_from, keep_pattern=False)[0]


def attn_raw(m: Model, layer: int, z: torch.Tensor) -> torch.Tensor:
    """The attention's summed output [R, Pq, d] of ``z`` [R, H, Pq, dh] (all heads plus
    b_O), before any post-attention norm."""
    R, H, Pq, dh = z.shape
    f = m.flat[layer]
    return blocks.linear(z.transpose(1, 2).reshape(R, Pq, H * dh), f.Wo, f.bo)


def attn_term(m: Model, layer: int, raw: torch.Tensor) -> torch.Tensor:
    """What the attention adds to the residual stream, given its summed output ``raw``."""
    return blocks.norm(m.layers[layer].post_attn, raw)


def mlp_term(m: Model, layer: int, raw: torch.Tensor) -> torch.Tensor:
    """What the MLP adds to the residual stream, given its output ``raw``."""
    return blocks.norm(m.layers[layer].post_mlp, raw)


def project(m: Model, layer: int, z: torch.Tensor) -> torch.Tensor:
    """The attention's residual-stream term [R, Pq, d] of ``z`` [R, H, Pq, dh]."""
    return attn_term(m, layer, attn_raw(m, layer, z))


def mlp(
    m: Model, layer: int, resid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(post-activation [.., d_mlp], output before any post norm, residual-stream term) of
    layer's MLP reading ``resid`` [.., d]."""
    lw = m.layers[layer]
    post = blocks.mlp_post(m.w, lw, blocks.norm(lw.ln2, resid))
    raw = blocks.mlp_out(lw, post)
    return post, raw, mlp_term(m, layer, raw)


def qkv(m: Model, layer: int, x: torch.Tensor, first: int = 0, queries_from: int = 0):
    """q [R, H, P - queries_from, dh] (for positions ``queries_from..``), k, v [R, H_kv, P, dh]
    of normalized ``x`` [R, P, d] whose first row is position ``first``: after the q/k norms
    and the rotary embedding, as attention reads them."""
    lw, f = m.layers[layer], m.flat[layer]

    def heads(t: torch.Tensor, n: int) -> torch.Tensor:  # [R, P, n * dh] -> [R, n, P, dh]
        return t.view(t.shape[0], t.shape[1], n, -1).transpose(1, 2)

    k = heads(blocks.linear(x, f.Wk, f.bk), m.n_kv_heads)
    v = heads(blocks.linear(x, f.Wv, f.bv), m.n_kv_heads)
    q = heads(blocks.linear(x[:, queries_from:], f.Wq, f.bq), m.n_heads)
    q, k = blocks.qk_norm(lw, "q", q), blocks.qk_norm(lw, "k", k)
    q = blocks.rotate(lw, q, first + queries_from)
    k = blocks.rotate(lw, k, first)
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
    resid = blocks.embed(m.w, tokens, noise)
    rec = Record(tokens, [resid], torch.empty(0))
    for layer in range(m.n_layers):
        lw = m.layers[layer]
        q, k, v = qkv(m, layer, blocks.norm(lw.ln1, resid))
        if "pattern" in keep:
            z, pattern = attend(m, layer, q, k, v, 0)
        else:
            z, pattern = attend_fused(m, layer, q, k, v, 0), None
        for name, t in (("q", q), ("k", k), ("v", v), ("z", z), ("pattern", pattern)):
            if name in keep:
                getattr(rec, name).append(t)
        raw = attn_raw(m, layer, z)
        if lw.post_attn is not None:
            rec.attn_raw[layer] = raw
        pre = resid
        resid = resid + attn_term(m, layer, raw)
        rec.streams.append(resid)
        if m.d_mlp:
            post, raw, out = mlp(m, layer, pre if m.parallel else resid)
            if layer in post_layers:
                rec.post[layer] = post
            if lw.post_mlp is not None:
                rec.mlp_raw[layer] = raw
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
            attn_raw={la: t[sl] for la, t in both.attn_raw.items()},
            mlp_raw={la: t[sl] for la, t in both.mlp_raw.items()},
        )

    return half(slice(0, n), keep_a), half(slice(n, None), keep_b)


def unembed(m: Model, last: torch.Tensor) -> torch.Tensor:
    """Logits of the final residual stream at one position [R, d] -> [R, vocab]."""
    return blocks.unembed(m.w, last)


# The stream a run starts from: build(stage, lo, hi) -> [hi - lo, B, P - p0, d] for the runs
# lo..hi of a chunk (sorted by stage) that join at ``stage``.
Build = Callable[[int, int, int], torch.Tensor]


def resume(m: Model, base: Record, stages: list[int], p0: int, build: Build) -> torch.Tensor:
    """Logits [N, B, vocab] at the last position of N patched runs on ``base`` (the
    unembedding of :func:`resume_final`)."""
    final = resume_final(m, base, stages, p0, build)
    N, B, d = final.shape
    return unembed(m, final.reshape(N * B, d)).view(N, B, -1)


def resume_final(m: Model, base: Record, stages: list[int], p0: int, build: Build) -> torch.Tensor:
    """The final residual stream [N, B, d] at the last position of N patched runs on
    ``base``, before the final norm: what the unembedding reads. The caller unembeds it in
    products sized to its budget, so the full-vocabulary logits of every run of a chunk are
    never held at once.

    Run i joins at ``stages[i]`` (ascending) with a stream that equals the base stream before
    position ``p0``; everything from its stage on is recomputed for positions ``>= p0``. In a
    parallel block the MLP reads the block's input, so each run also carries the stream
    before the attention (for runs joining after it: the base run's)."""
    N = len(stages)
    B, P = base.tokens.shape
    last_attn = m.final - 2
    active: torch.Tensor | None = None  # [n, B, t, d]
    pre: torch.Tensor | None = None  # parallel blocks: [n, B, t, d] before the attention
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
            if m.parallel and s % 2 == 1 and s < m.final:
                start = base.streams[s - 1][:, p0:]
                start = start[:, -1:] if s > last_attn else start
                old = start.unsqueeze(0).expand(j - i, -1, -1, -1)
                pre = old if pre is None else torch.cat([pre, old])
            i = j
        if s == m.final:
            break
        layer, sub = divmod(s, 2)
        n, _, t, d = active.shape
        x = active.reshape(n * B, t, d)
        if sub == 0:
            lw = m.layers[layer]
            q_from = t - 1 if s == last_attn else 0
            q, k, v = qkv(m, layer, blocks.norm(lw.ln1, x), p0, q_from)
            if p0 > 0:  # positions before p0: the base run's keys and values
                kp = base.k[layer][:, :, :p0].unsqueeze(0).expand(n, -1, -1, -1, -1)
                vp = base.v[layer][:, :, :p0].unsqueeze(0).expand(n, -1, -1, -1, -1)
                k = torch.cat([kp.reshape(n * B, *kp.shape[2:]), k], dim=2)
                v = torch.cat([vp.reshape(n * B, *vp.shape[2:]), v], dim=2)
            if m.parallel:
                pre = x[:, q_from:].view(n, B, -1, d)
            x = x[:, q_from:] + project(m, layer, attend_fused(m, layer, q, k, v, p0 + q_from))
        elif m.d_mlp:
            read = pre.reshape(n * B, -1, d) if m.parallel else x
            x = x + mlp(m, layer, read)[2]
            pre = None
        active = x.view(n, B, -1, d)
    return active[:, :, -1]


# Width of the aligned blocks of vocabulary columns :func:`unembed_at` computes. A block of
# the product is the full product's columns to the bit where the BLAS computes each output
# with the same kernel whatever the width (MKL: from 16 columns on, at every row count
# 1-71 measured); narrower products take other kernels and differ by ~1e-6.
UNEMBED_BLOCK = 256


def unembed_at(m: Model, last: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Logits [R, k] of the final residual stream ``last`` [R, d] at row r's own token ids
    ``cols[r]`` [R, k]: :func:`unembed` computed only for the aligned blocks of
    :data:`UNEMBED_BLOCK` vocabulary columns that hold one of the ids, so the
    full-vocabulary logits are never formed (a metric reading two tokens per row needs two
    blocks a prompt, not 32,000 columns)."""
    w = m.w
    ids = cols.tolist()
    starts = sorted({t // UNEMBED_BLOCK * UNEMBED_BLOCK for row in ids for t in row})
    x = blocks.norm(w.ln_final, last)
    parts, offset, width = [], {}, 0
    for a in starts:
        e = min(a + UNEMBED_BLOCK, m.vocab)
        parts.append(blocks.linear(x, w.W_U[:, a:e], None if w.b_U is None else w.b_U[a:e]))
        offset[a], width = width, width + e - a
    logits = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
    if w.final_softcap is not None:
        logits = torch.tanh(logits / w.final_softcap) * w.final_softcap
    B = UNEMBED_BLOCK
    where = [[offset[t // B * B] + t % B for t in row] for row in ids]
    rows = torch.arange(len(ids), device=last.device)[:, None]
    return logits[rows, torch.tensor(where, device=last.device)]


def incremental_model(loaded) -> Model:
    """The :class:`Model` of a loaded model, built once and kept in its ``derived`` cache."""
    from causal_mi.models.weights import weights_for

    cache = getattr(loaded, "derived", None)
    m = None if cache is None else cache.incremental
    if m is None:
        m = Model(weights_for(loaded))
        if cache is not None:
            cache.incremental = m
    return m
