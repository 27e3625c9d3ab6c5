"""Execute edge-level conditions (path patching) on the engine's own forward pass.

The ablated outputs every receiver may read come from the bucket's corrupt prompts
(``corrupt``), their per-position mean (``mean``) or zeros (``zero``), computed once per
bucket. Conditions are stacked along rows like hook conditions. With a task corrupted by
noise, the corrupt run and corrupt-based conditions read the embeddings plus noise as their
embeddings (the noise enters once, where the bridge engine adds it: the ``embed`` site).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from causal_mi.engine.functional import EdgeMasks, forward, n_senders
from causal_mi.engine.noise import rows_noise
from causal_mi.engine.plan import Condition, EdgePlan
from causal_mi.models.weights import Weights, weights_for

if TYPE_CHECKING:
    from causal_mi.engine.runner import Engine, _Baselines, _Bucket

_CHANNEL = {"q": 0, "k": 1, "v": 2}


def weights_of(engine: Engine) -> Weights:
    return weights_for(engine.model)


def plan_masks(plan: EdgePlan, w: Weights) -> EdgeMasks:
    """Masks of one condition (a single row; expand over rows by the caller)."""
    s = n_senders(w)
    fill = plan.complement
    m = EdgeMasks(
        torch.full((1, w.n_layers, w.n_heads, 3, s), fill, dtype=torch.bool),
        None if w.attn_only else torch.full((1, w.n_layers, s), fill, dtype=torch.bool),
        torch.full((1, s), fill, dtype=torch.bool),
    )
    for sender, rcv in plan.keep:
        if rcv[0] in _CHANNEL:
            m.head_in[0, rcv[1], rcv[2], _CHANNEL[rcv[0]], sender] = not fill
        elif rcv[0] == "mlp":
            if m.mlp_in is None:
                raise ValueError("edge into an MLP of an attention-only model")
            m.mlp_in[0, rcv[1], sender] = not fill
        else:
            m.logits[0, sender] = not fill
    return m


def _cat(parts: list[EdgeMasks]) -> EdgeMasks:
    return EdgeMasks(
        torch.cat([p.head_in for p in parts]),
        None if parts[0].mlp_in is None else torch.cat([p.mlp_in for p in parts]),
        torch.cat([p.logits for p in parts]),
    )


def _expand(m: EdgeMasks, rows: int) -> EdgeMasks:
    return EdgeMasks(
        m.head_in.expand(rows, *m.head_in.shape[1:]),
        None if m.mlp_in is None else m.mlp_in.expand(rows, *m.mlp_in.shape[1:]),
        m.logits.expand(rows, *m.logits.shape[1:]),
    )


def run_edge_conditions(
    engine: Engine,
    b: _Bucket,
    conds: Sequence[Condition],
    metric,
    base: _Baselines,
    cache=None,
    ex_keys: Sequence[str] = (),
) -> Iterator[tuple[tuple[int, ...], torch.Tensor]]:
    """Yield ((c_lo, c_hi, e_lo, e_hi), metric values [c_hi - c_lo, e_hi - e_lo]); passes
    whose cells are all in the run cache ``cache`` are read back instead of recomputed."""
    from causal_mi.engine.cache import bucket_keys

    chunks = list(engine._chunks(b, len(conds)))
    cond_keys = bucket_keys(conds, ex_keys) if cache is not None else []

    def saved(c_lo: int, c_hi: int, e_lo: int, e_hi: int) -> torch.Tensor | None:
        if cache is None:
            return None
        hit = cache.lookup(cond_keys[c_lo:c_hi], ex_keys[e_lo:e_hi], [()] * (c_hi - c_lo))
        return None if hit is None else hit[0]

    hits = [saved(*rows) for rows in chunks]
    if all(h is not None for h in hits):
        yield from zip(chunks, hits, strict=True)
        return
    w = weights_of(engine)
    sources = {c.edges.source for c in conds if c.edges is not None}
    ablated: dict[str, torch.Tensor] = {}
    if sources & {"corrupt", "mean"}:
        step = engine.max_rows
        parts = [
            forward(
                w,
                b.corrupt[lo : lo + step],
                noise=None if b.noise is None else b.noise[lo : lo + step],
            ).senders
            for lo in range(0, b.corrupt.shape[0], step)
        ]
        ablated["corrupt"] = torch.cat(parts)
        ablated["mean"] = ablated["corrupt"].mean(0, keepdim=True)
    if "zero" in sources:
        ablated["zero"] = torch.zeros(
            1, n_senders(w), b.length, w.d_model, dtype=w.W_E.dtype, device=w.W_E.device
        )
    masks = [plan_masks(c.edges, w) for c in conds]  # type: ignore[arg-type]
    for (c_lo, c_hi, e_lo, e_hi), hit in zip(chunks, hits, strict=True):
        if hit is not None:
            yield (c_lo, c_hi, e_lo, e_hi), hit
            continue
        n_e = e_hi - e_lo
        chunk = range(c_lo, c_hi)
        tokens = torch.cat([getattr(b, conds[i].base)[e_lo:e_hi] for i in chunk])
        mk = _cat([_expand(masks[i], n_e) for i in chunk])
        abl = torch.cat(
            [
                ablated[src][e_lo:e_hi]
                if src == "corrupt"
                else ablated[src].expand(n_e, -1, -1, -1)
                for src in (conds[i].edges.source for i in chunk)
            ]
        )  # type: ignore[union-attr]
        noise = rows_noise(b, [conds[i] for i in chunk], e_lo, e_hi)
        logits = forward(w, tokens, mk, abl, noise).logits
        k = len(chunk)
        m = metric(
            logits,
            b.answer[e_lo:e_hi].repeat(k),
            b.wrong[e_lo:e_hi].repeat(k),
            base.logp[e_lo:e_hi].repeat(k, 1),
        )
        m = m.reshape(k, n_e)
        if cache is not None:
            cache.store(cond_keys[c_lo:c_hi], ex_keys[e_lo:e_hi], m, [()] * k, {})
        yield (c_lo, c_hi, e_lo, e_hi), m
