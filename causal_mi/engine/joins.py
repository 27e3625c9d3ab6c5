"""Sweep families as runs of the incremental engine (:mod:`causal_mi.engine.incremental`).

A sweep family's conditions (:func:`sweep_conditions`, what the hook engine runs) and its
incremental runs (:func:`runs_for`) are built here side by side, in one order, so that the
two executors' cells share addresses.

Each index of a sweep family becomes one patched run described by where it joins the
residual stream (a stage), the first position it changes, and how its starting stream is
built from the base run and the source run. Runs are grouped by first changed position into
buckets (merged where a shorter loop costs less than the extra positions, by a simple cost
model), and each bucket is cut into chunks that fit the memory budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from causal_mi.engine import incremental as inc
from causal_mi.engine.metrics import metric_values
from causal_mi.engine.plan import Condition, Patch, site_patches
from causal_mi.models.adapter import layer_hook
from causal_mi.spec.sites import Kind, Site

FAMILIES_FAST = (
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "head_out",
    "head_q",
    "head_k",
    "head_v",
    "head_pattern",
    "head_out_by_pos",
    "neurons",
)

# cost model for merging buckets: fixed seconds per stage step, arithmetic throughput
# (FLOP/s), and the rate weights are read at (bytes/s): every step of a loop reads its
# stage's weights once, however few rows it has, which dominates on large models with few
# rows per product
_COST = {"cpu": (1.5e-4, 6e10, 1e10), "cuda": (4e-4, 2e13, 3e12)}


@dataclass(frozen=True)
class Run:
    """One patched run: grid coordinates, joining stage, first changed position, and the
    family's arguments (layer, position or None, head or neuron or None)."""

    coords: tuple[int, ...]
    stage: int
    p0: int
    layer: int
    pos: int | None
    unit: int | None


@dataclass
class Result:
    values: np.ndarray  # [n_runs, B] metric per run and prompt (runs in input order)
    clean: np.ndarray  # [B]
    corrupt: np.ndarray
    flops: int
    seconds: float
    chunks: int


def sweep_conditions(
    family: str, model: Any, length: int, direction: str, layer: int = 0
) -> tuple[list[Condition], list[tuple[int, ...]], tuple[int, ...]]:
    """The conditions of a sweep of ``family`` over prompts of ``length`` tokens, each
    index's grid coordinates, and the grid's shape. Both executors compute exactly these
    conditions (the incremental engine in this order), so their cells share addresses."""
    d = model.dims
    base, source = ("corrupt", "clean") if direction == "restore" else ("clean", "corrupt")
    conds, index = [], []

    def add(patches, idx):
        conds.append(Condition(base, tuple(patches)))
        index.append(idx)

    if family in ("resid_pre", "resid_mid", "resid_post", "mlp_out"):
        if family in ("resid_mid", "mlp_out") and d.attn_only:
            raise ValueError(f"'{family}' needs MLPs; this model is attention-only")
        for la in range(d.n_layers):
            for p in range(length):
                s = (
                    Site(Kind.MLP, la)
                    if family == "mlp_out"
                    else Site(Kind.RESID, la, channel=family)
                )
                add(site_patches([s.at((p,))], source), (la, p))
        return conds, index, (d.n_layers, length)
    if family == "attn_out":  # all heads of a layer at one position (b_O is shared)
        for la in range(d.n_layers):
            for p in range(length):
                add([Patch(layer_hook(la, "z"), source, frozenset({(p, None)}))], (la, p))
        return conds, index, (d.n_layers, length)
    if family.startswith("head_") and family != "head_out_by_pos":
        ch = family.split("_")[1]
        for la in range(d.n_layers):
            for h in range(d.n_heads):
                if ch == "out":
                    s = Site(Kind.HEAD, la, h)
                elif ch == "pattern":
                    s = Site(Kind.PATTERN, la, h)
                else:
                    s = Site(Kind.HEAD_INPUT, la, h, channel=ch)
                add(site_patches([s], source), (la, h))
        return conds, index, (d.n_layers, d.n_heads)
    if family == "head_out_by_pos":
        for la in range(d.n_layers):
            for p in range(length):
                for h in range(d.n_heads):
                    add(site_patches([Site(Kind.HEAD, la, h, pos=(p,))], source), (la, p, h))
        return conds, index, (d.n_layers, length, d.n_heads)
    if family == "neurons":
        if d.attn_only:
            raise ValueError("'neurons' needs MLPs; this model is attention-only")
        for i in range(d.d_mlp):
            add(site_patches([Site(Kind.NEURON, layer, index=i)], source), (i,))
        return conds, index, (d.d_mlp,)
    raise ValueError(f"unknown sweep family '{family}'; valid: {', '.join(FAMILIES_FAST)}")


def sweep_values(
    model,
    task,
    family: str,
    direction: str,
    metric_name: str,
    *,
    layer: int = 0,
    max_memory: int | None = None,
    progress=None,
) -> tuple[list[Run], Result]:
    """:func:`run_sweep` on a task's examples (one token length, clean and corrupt alike):
    ``direction="restore"`` patches the clean run into the corrupt one, ``"ablate"`` the
    corrupt run into the clean one; a noise corruption enters the corrupt run's embeddings."""
    from causal_mi.engine.noise import embedding_noise

    m = inc.incremental_model(model)
    rows = torch.tensor([(*e.clean, *e.corrupt, e.answer, e.wrong) for e in task.examples])
    rows = rows.to(m.device)
    P = (rows.shape[1] - 2) // 2
    clean, corrupt, answer, wrong = rows[:, :P], rows[:, P : 2 * P], rows[:, -2], rows[:, -1]
    base, src = (corrupt, clean) if direction == "restore" else (clean, corrupt)
    noise = embedding_noise(task.examples, P, m.w.W_E)
    with torch.inference_mode():
        return run_sweep(
            m,
            family,
            base,
            src,
            answer,
            wrong,
            metric_name=metric_name,
            base_is_clean=direction == "ablate",
            layer=layer,
            max_memory=max_memory,
            progress=progress,
            noise=(noise, None) if direction == "restore" else (None, noise),
        )


def runs_for(family: str, m: inc.Model, length: int, layer: int) -> list[Run]:
    """The runs of ``family`` in grid order (the order of ``effects.patching``)."""
    L, H, P = m.n_layers, m.n_heads, length
    if family in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"):
        offset = {"resid_pre": 0, "resid_mid": 1, "attn_out": 1, "resid_post": 2, "mlp_out": 2}
        return [
            Run((la, p), 2 * la + offset[family], p, la, p, None)
            for la in range(L)
            for p in range(P)
        ]
    if family == "head_out_by_pos":
        return [
            Run((la, p, h), 2 * la + 1, p, la, p, h)
            for la in range(L)
            for p in range(P)
            for h in range(H)
        ]
    if family.startswith("head_"):
        return [Run((la, h), 2 * la + 1, 0, la, None, h) for la in range(L) for h in range(H)]
    if family == "neurons":
        return [Run((i,), 2 * layer + 2, 0, layer, None, i) for i in range(m.d_mlp)]
    raise ValueError(f"unknown sweep family '{family}'; valid: {', '.join(FAMILIES_FAST)}")


def _keep(family: str, runs: list[Run]) -> tuple[frozenset[str], frozenset[str], tuple]:
    """(what the base run keeps, what the source run keeps, MLP layers whose neurons)."""
    kv = {"k", "v"} if any(r.p0 > 0 for r in runs) else set()
    if family in ("head_out", "head_out_by_pos"):
        return frozenset(kv | {"z"}), frozenset({"z"}), ()
    if family in ("head_q", "head_k", "head_v"):
        return frozenset(kv | {"q", "k", "v", "z"}), frozenset({family[-1]}), ()
    if family == "head_pattern":
        return frozenset(kv | {"v", "z", "pattern"}), frozenset({"pattern"}), ()
    if family == "neurons":
        return frozenset(kv), frozenset(), (runs[0].layer,) if runs else ()
    return frozenset(kv), frozenset(), ()


def _builder(family: str, m: inc.Model, base: inc.Record, src: inc.Record, runs, p0: int):
    """build(stage, lo, hi) for the chunk ``runs`` sorted by stage, starting at ``p0``."""
    w = m.w

    def head_delta(r: Run) -> torch.Tensor:  # [B, P, d]: the head's new minus old raw term
        la, h = r.layer, r.unit
        g = w.kv_head(h)  # the key/value head query head h reads

        def part(rec: inc.Record, c: str) -> torch.Tensor:  # [B, 1, P, dh]
            i = h if c == "q" else g
            return getattr(rec, c)[la][:, i : i + 1]

        # the old z recomputed with the same kernel as the new one, so that an unchanged
        # head cancels exactly in any precision (the record may use fused attention)
        if family == "head_pattern":
            z = src.pattern[la][:, h] @ base.v[la][:, g]
            z_old = base.pattern[la][:, h] @ base.v[la][:, g]
        else:
            one = slice(h, h + 1)
            z_old = inc.attend(m, la, *(part(base, c) for c in "qkv"), 0, one)[0][:, 0]
            q, k, v = (part(src if family == f"head_{c}" else base, c) for c in "qkv")
            z = inc.attend(m, la, q, k, v, 0, one)[0][:, 0]
        return (z - z_old) @ w.layers[la].W_O[h]

    def attn_delta(la: int, raw_delta: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        """The residual-stream change of a change ``raw_delta`` in the attention's summed
        output whose base value is ``old`` (identical where there is no post norm)."""
        if m.layers[la].post_attn is None:
            return raw_delta
        return inc.attn_term(m, la, old + raw_delta) - inc.attn_term(m, la, old)

    def component(rec: inc.Record, s: int) -> torch.Tensor:  # what the sub-layer before s adds
        return rec.streams[s] - rec.streams[s - 1]

    def build(s: int, lo: int, hi: int) -> torch.Tensor:
        part = runs[lo:hi]
        n = hi - lo
        start = base.streams[s][:, p0:]
        if family in ("resid_pre", "resid_mid", "resid_post"):
            out = start.unsqueeze(0).repeat(n, 1, 1, 1)
            pos = torch.tensor([r.pos for r in part])
            out[torch.arange(n), :, pos - p0] = src.streams[s][:, pos].transpose(0, 1)
            return out
        if family in ("attn_out", "mlp_out", "head_out_by_pos"):
            out = start.unsqueeze(0).repeat(n, 1, 1, 1)
            pos = torch.tensor([r.pos for r in part])
            if family == "head_out_by_pos":
                la = part[0].layer
                heads = torch.tensor([r.unit for r in part])
                dz = src.z[la][:, heads, pos] - base.z[la][:, heads, pos]  # [B, n, dh]
                delta = torch.einsum("bne,ned->nbd", dz, w.layers[la].W_O[heads])
                old = base.attn_raw[la][:, pos].transpose(0, 1) if la in base.attn_raw else None
                delta = attn_delta(la, delta, old)
            else:
                delta = (component(src, s) - component(base, s))[:, pos].transpose(0, 1)
            out[torch.arange(n), :, pos - p0] += delta
            return out
        if family == "neurons":
            la = part[0].layer
            idx = torch.tensor([r.unit for r in part])
            d_post = src.post[la][..., idx] - base.post[la][..., idx]  # [B, P, n]
            delta = torch.einsum("bpn,nd->nbpd", d_post[:, p0:], w.layers[la].W_out[idx])
            if m.layers[la].post_mlp is not None:
                old = base.mlp_raw[la][:, p0:]
                delta = inc.mlp_term(m, la, old + delta) - inc.mlp_term(m, la, old)
            return start.unsqueeze(0) + delta
        if family == "head_out":
            la = part[0].layer
            heads = _index([r.unit for r in part])
            dz = src.z[la][:, heads, p0:] - base.z[la][:, heads, p0:]  # [B, n, t, dh]
            delta = torch.einsum("bnpe,ned->nbpd", dz, w.layers[la].W_O[heads])
            old = base.attn_raw[la][:, p0:] if la in base.attn_raw else None
            return start.unsqueeze(0) + attn_delta(la, delta, old)
        la = part[0].layer
        delta = torch.stack([head_delta(r)[:, p0:] for r in part])
        old = base.attn_raw[la][:, p0:] if la in base.attn_raw else None
        return start.unsqueeze(0) + attn_delta(la, delta, old)

    return build


def _index(units: list[int]) -> slice | torch.Tensor:
    """A slice where ``units`` are consecutive (a view, no gather), else an index tensor."""
    if units == list(range(units[0], units[0] + len(units))):
        return slice(units[0], units[0] + len(units))
    return torch.tensor(units)


def _shape(m: inc.Model):
    """The :class:`causal_mi.engine.budget.Shape` of the engine's model."""
    from causal_mi.engine.budget import Shape

    return Shape(
        d_model=m.d_model,
        n_layers=m.n_layers,
        n_heads=m.n_heads,
        n_kv_heads=m.n_kv_heads,
        d_head=m.d_head,
        d_mlp=m.d_mlp,
        gated=m.layers[0].W_gate is not None,
        d_vocab=m.vocab,
    )


def _item(m: inc.Model) -> int:
    return m.dtype.itemsize if hasattr(m.dtype, "itemsize") else 4


def _bytes_per_run(m: inc.Model, B: int, t: int, P: int) -> int:
    """Peak bytes one run adds to a chunk (activations of ``t`` positions; its logits are
    formed later, a few rows at a time, see :func:`_scorer`), from the architecture
    (:func:`causal_mi.engine.budget.resume_bytes`)."""
    from causal_mi.engine.budget import resume_bytes

    return resume_bytes(_shape(m), B, t, P, _item(m))


def _scorer(m: inc.Model, metric_name: str, answer, wrong, clean_lp, budget: int):
    """score(final [R, d]) -> metric [R] (float64) of final residual streams whose row r
    belongs to prompt ``r % B``, unembedded in products that fit ``budget``. ``logit_diff``
    reads two columns a row: only the blocks of the vocabulary that hold them are computed
    (:func:`causal_mi.engine.incremental.unembed_at`); the other metrics need whole rows
    of logits, split between a product's logits and their float64 temporaries
    (:func:`causal_mi.engine.budget.logit_row_bytes` a row)."""
    from causal_mi.engine.budget import logit_row_bytes

    B, item = answer.shape[0], _item(m)
    pair = torch.stack([answer, wrong], 1)  # [B, 2]
    if metric_name == "logit_diff":
        step, sub = max(1, budget // (2 * B * inc.UNEMBED_BLOCK * item)), 0
    else:
        step = max(1, budget // 2 // (m.vocab * item))
        sub = max(1, budget // 2 // logit_row_bytes(_shape(m), item))

    def score(final: torch.Tensor) -> np.ndarray:
        prompt = torch.arange(B, device=final.device).repeat(final.shape[0] // B)
        out = []
        for lo in range(0, final.shape[0], step):
            p = prompt[lo : lo + step]
            if metric_name == "logit_diff":  # the two columns metric_values reads, to the bit
                logits = inc.unembed_at(m, final[lo : lo + step], pair[p]).double()
                out.append((logits[:, 0] - logits[:, 1]).cpu().numpy())
                continue
            logits = inc.unembed(m, final[lo : lo + step])
            for a in range(0, logits.shape[0], sub):
                q = p[a : a + sub]
                ref = None if clean_lp is None else clean_lp[q]
                lg = logits[a : a + sub]
                out.append(metric_values(metric_name, lg, answer[q], wrong[q], ref).numpy())
            del logits
        return np.concatenate(out)

    return score


def _stage_bytes(m: inc.Model, s: int) -> int:
    """Bytes of the weights stage ``s`` reads (attention, MLP or unembedding matrices)."""
    d, hq, hkv = m.d_model, m.n_heads * m.d_head, m.n_kv_heads * m.d_head
    item = m.dtype.itemsize if hasattr(m.dtype, "itemsize") else 4
    if s == m.final:
        return d * m.vocab * item
    if s % 2 == 0:
        return d * (2 * hq + 2 * hkv) * item
    gated = m.d_mlp and m.layers[0].W_gate is not None
    return (3 if gated else 2) * d * m.d_mlp * item


def _buckets(m: inc.Model, runs: list[Run], B: int, P: int, device: str) -> list[list[int]]:
    """Indices of ``runs`` grouped into buckets sharing one start position; adjacent start
    positions merge where the cost model says one longer loop is cheaper."""
    overhead, rate, bandwidth = _COST.get(device, _COST["cpu"])
    starts = sorted({r.p0 for r in runs})
    if len(starts) == 1:
        return [list(range(len(runs)))]
    by_start = {p: [i for i, r in enumerate(runs) if r.p0 == p] for p in starts}
    # counts[k][s]: runs starting at starts[:k] that join at stage s (prefix sums)
    counts = np.zeros((len(starts) + 1, m.final + 1), dtype=np.int64)
    for k, p in enumerate(starts):
        counts[k + 1] = counts[k]
        for i in by_start[p]:
            counts[k + 1, runs[i].stage] += 1
    K = len(starts)
    # flops[a, s]: one prompt's run joining at stage s, recomputed from position starts[a]
    flops = np.array([[m.run_flops(s, p, P) for s in range(m.final + 1)] for p in starts])
    # reads[s]: bytes of weights a loop starting at stage s reads (once per stage)
    reads = np.cumsum([_stage_bytes(m, s) for s in range(m.final, -1, -1)])[::-1]
    best = np.full(K + 1, np.inf)
    best[0] = 0.0
    cut = [0] * (K + 1)
    for b in range(1, K + 1):
        n = counts[b] - counts[:b]  # [a, stage]: runs of starts[a..b-1]
        work = (n * flops[:b]).sum(1) * B / rate
        first = np.argmax(n > 0, axis=1)
        steps = m.final - first + 1
        c = best[:b] + overhead * steps + reads[first] / bandwidth + work
        a = int(np.argmin(c))
        best[b], cut[b] = c[a], a
    out, b = [], len(starts)
    while b > 0:
        a = cut[b]
        out.append([i for p in starts[a:b] for i in by_start[p]])
        b = a
    return out[::-1]


def run_sweep(
    m: inc.Model,
    family: str,
    base_tokens: torch.Tensor,
    src_tokens: torch.Tensor,
    answer: torch.Tensor,
    wrong: torch.Tensor,
    *,
    metric_name: str,
    base_is_clean: bool,
    layer: int = 0,
    max_memory: int | None = None,
    progress=None,
    noise: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
) -> tuple[list[Run], Result]:
    """Every run of ``family`` patched from ``src_tokens``' run into ``base_tokens``' run;
    ``noise`` (for the base run, for the source run) is added to their embeddings."""
    t0 = time.perf_counter()
    B, P = base_tokens.shape
    runs = runs_for(family, m, P, layer)
    if family in ("mlp_out", "resid_mid", "neurons") and m.d_mlp == 0:
        raise ValueError(f"'{family}' needs MLPs; this model is attention-only")
    keep_b, keep_s, post = _keep(family, runs)
    base, src = inc.record_pair(m, base_tokens, src_tokens, keep_b, keep_s, post, noise)
    flops = 2 * B * m.run_flops(0, 0, P)  # the two recorded runs (at least)
    clean_rec = base if base_is_clean else src
    clean_lp = torch.log_softmax(clean_rec.logits.double(), -1) if metric_name == "kl" else None

    def score_logits(logits: torch.Tensor) -> np.ndarray:  # the recorded runs' [2B, vocab]
        n = logits.shape[0] // B
        ref = clean_lp.repeat(n, 1) if clean_lp is not None else None
        return metric_values(metric_name, logits, answer.repeat(n), wrong.repeat(n), ref).numpy()

    if max_memory is None:
        from causal_mi.engine.budget import sweep_budget

        max_memory = sweep_budget(_shape(m), B, P, _item(m))
    # every run's final stream at the last position is kept (N B d_model, a small part)
    # and unembedded after the loops, in products sized to the budget
    finals = torch.empty(len(runs), B, m.d_model, dtype=m.dtype, device=m.device)
    work = max(0, max_memory - finals.numel() * _item(m))
    score = _scorer(m, metric_name, answer, wrong, clean_lp, work)

    device = m.device.type
    plan = []
    for bucket in _buckets(m, runs, B, P, device):
        p0 = min(runs[i].p0 for i in bucket)
        order = sorted(bucket, key=lambda i: (runs[i].stage, i))
        cap = max(1, int(work // _bytes_per_run(m, B, P - p0, P)))
        plan += [(p0, order[lo : lo + cap]) for lo in range(0, len(order), cap)]
    for done, (p0, chunk) in enumerate(plan):
        part = [runs[i] for i in chunk]
        stages = [r.stage for r in part]
        build = _builder(family, m, base, src, part, p0)
        finals[torch.tensor(chunk, device=m.device)] = inc.resume_final(m, base, stages, p0, build)
        flops += B * sum(m.run_flops(s, p0, P) for s in stages)
        if progress is not None:
            progress(done + 1, len(plan))
    values = score(finals.reshape(-1, m.d_model)).reshape(len(runs), B)
    if metric_name == "logit_diff":  # the unembedding ran on the answers' blocks only
        block = inc.UNEMBED_BLOCK
        starts = {t // block * block for t in answer.tolist() + wrong.tolist()}
        width = sum(min(a + block, m.vocab) - a for a in starts)
        flops -= len(runs) * B * 2 * m.d_model * (m.vocab - width)
    ends = score_logits(torch.cat([clean_rec.logits, (src if base_is_clean else base).logits]))
    result = Result(
        values,
        ends[:B],
        ends[B:],
        flops,
        time.perf_counter() - t0,
        len(plan),
    )
    return runs, result
