"""Mean ablation's sampling uncertainty, carried into the bootstrap to first order.

A ``mean`` source is the mean ``mu`` of the bucket's corrupt activations: an estimate from
the very examples the bootstrap resamples. Holding it fixed understates every interval that
uses it; recomputing it on each of B replicates would re-run every mean-ablated condition
B times. Instead each example's value gets its influence through ``mu`` added:

    v~_i = f_i(mu) + g . (a_i - mu),    g = (1 / n_b) sum_{j in bucket} d f_j / d mu

where ``a_i`` is example i's corrupt activation at the cells the mean replaces (for a mean
at a token role, at i's own position of that role). Over a bucket the corrections sum to
zero, so point estimates are unchanged; resampling ``v~`` reproduces, to first order in
``mu* - mu``, the bootstrap that recomputes the mean on every resample (the delta method,
or influence function, of a statistic that depends on a sample mean). The tests hold it to a
brute-force bootstrap that re-runs the model under each replicate's mean.

The gradient comes from one extra forward and backward pass per mean-ablated condition and
bucket: the corrupt activations ``A`` the mean is taken from become a leaf, the mean is
recomputed from it, and ``dF/dA[i]`` (``F`` the bucket's summed metric) is ``g / n_b`` at the
cells example i contributes to, so ``correction_i = <dF/dA[i], a_i> - mean_j <dF/dA[j], a_j>``
covers plain and role means alike. Patches reading the corrupt run itself (resample
ablation) read a detached copy and contribute nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

INFLUENCE_SUFFIX = "|mean-influence"  # cache address of a condition's influence cells


def uses_mean(cond: Any) -> bool:
    """Whether a condition replaces anything with a ``mean`` source."""
    if cond.edges is not None:
        return cond.edges.source == "mean"
    return any(p.source == "mean" for p in cond.patches)


@contextmanager
def _no_parameter_grads(module: torch.nn.Module) -> Iterator[None]:
    """Parameters do not require gradients inside (only the mean's leaf does), restored
    after: the backward pass then saves nothing for weight gradients."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)


def bucket_influence(
    engine: Any,
    b: Any,
    conds: Sequence[Any],
    cache: dict,
    recorded: dict,
    metric: Any,
    clean_logp: Any,
) -> np.ndarray:
    """Influence corrections ``[len(conds), n_b]`` (float64) of hook conditions on bucket
    ``b``; zero rows for conditions without a mean source."""
    n_b = len(b.index)
    out = np.zeros((len(conds), n_b))
    for ci, cond in enumerate(conds):
        hooks = sorted({engine._hook(p.read_hook) for p in cond.patches if p.source == "mean"})
        if not hooks:
            continue
        leaves = {h: cache["corrupt"][h].detach().clone().requires_grad_(True) for h in hooks}
        grads = {h: torch.zeros_like(leaves[h]) for h in hooks}
        step = engine.max_rows
        with torch.enable_grad(), _no_parameter_grads(engine.bridge):
            for lo in range(0, n_b, step):
                hi = min(n_b, lo + step)
                # the mean and the role means are recomputed from the leaves in every pass
                means = {h: a.mean(0, keepdim=True) for h, a in leaves.items()}
                view = {**cache, "mean": {**cache["mean"], **means}, "mean_base": leaves}
                m, _ = engine._patched(b, [cond], lo, hi, view, recorded, metric, clean_logp)
                got = torch.autograd.grad(m.sum(), [leaves[h] for h in hooks], allow_unused=True)
                for h, g in zip(hooks, got, strict=True):
                    if g is not None:
                        grads[h] += g
        dot = torch.zeros(n_b, dtype=torch.float64)
        for h in hooks:
            a = cache["corrupt"][h].detach().double()
            dot += (grads[h].double() * a).reshape(n_b, -1).sum(1)
        out[ci] = (dot - dot.mean()).numpy()
    return out


def saved_influence(
    engine: Any,
    b: Any,
    conds: Sequence[Any],
    cond_keys: Sequence[str],
    base: Any,
    recorded: dict,
    metric: Any,
    ckpt: Any,
    ex_keys: Sequence[str],
) -> np.ndarray:
    """:func:`bucket_influence` of ``conds`` on bucket ``b``, read from the run cache where
    it holds them (their addresses are the conditions' plus :data:`INFLUENCE_SUFFIX`) and
    saved there otherwise; conditions without a mean source cost nothing."""
    out = np.zeros((len(conds), len(b.index)))
    todo = []
    for ci, cond in enumerate(conds):
        if not uses_mean(cond):
            continue
        hit = ckpt.lookup([cond_keys[ci] + INFLUENCE_SUFFIX], ex_keys, [()]) if ckpt else None
        if hit is None:
            todo.append(ci)
        else:
            out[ci] = hit[0][0].double().numpy()
    if todo:
        got = bucket_influence(
            engine, b, [conds[i] for i in todo], base.cache, recorded, metric, base.logp
        )
        out[todo] = got
        if ckpt:
            keys = [cond_keys[i] + INFLUENCE_SUFFIX for i in todo]
            ckpt.store(keys, ex_keys, torch.from_numpy(got), [()] * len(todo), {})
    return out
