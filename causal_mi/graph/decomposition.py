"""Mediation decomposition of a treatment's total effect over any set of mediators, and
path-specific effects along the declared chains to the logits, all measured by intervention.

Write ``Y(a, M)`` for the metric with the treatment node clean (``a = 0``) or ablated
(``a = 1``) and the mediators ``M`` at their values under ``a = 0`` (``M0``), under ``a = 1``
(``M1``, recorded in the ablated run and patched in) or ablated themselves (``m*``, the
reference level). Every term is a loss, ``clean - ...``, as a fraction of G (like
``effect``). VanderWeele's (2014) four-way decomposition::

    TE     = Y(0, M0) - Y(1, M1)                                   total effect = effect(a)
    CDE    = Y(0, m*) - Y(1, m*)                                   controlled direct
    INTref = [Y(0, M0) - Y(1, M0)] - CDE                           reference interaction
    INTmed = Y(1, M0) + Y(0, M1) - Y(0, M0) - Y(1, M1)             mediated interaction
    PIE    = Y(0, M0) - Y(0, M1)                                   pure indirect = indirect
    TE     = CDE + INTref + INTmed + PIE                           exactly, example by example

with PNDE = CDE + INTref the natural direct effect (``direct``: mediators held clean) and
TNIE = PIE + INTmed. The interaction terms are zero when the outcome is additive in the
treatment and the mediators, and only then (the construction of ``zoo:handmade-mediation``).

Every term's interval comes from the same bootstrap: :func:`bootstrap_ratio` with the task's
seed and the same examples draws the same resampled indices for every term, and the terms'
numerators add up to the total's, so the replicates add up too; the identity is checked on
the point estimates and on every replicate.

A path-specific effect along a declared chain ``a -> b1 -> ... -> bk -> logits``: ``a``
ablated with every other declared node held clean, ``b1``'s value recorded; then ``b1`` set
to it (the others held clean) and ``b2`` recorded; and so on to the logits. Only the chain
carries the change (within the declared nodes; undeclared components stay free). Chains start
at the treatments of the ``indirect`` / ``direct`` claims; the shortest ``MAX_CHAINS`` are
measured (a dense graph has many: ioi-names' true file has 73).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from causal_mi.effects.measure import mediators_of
from causal_mi.engine.address import record_key
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import ABLATION_SOURCE, Condition, Patch, cells_of, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.models.adapter import hook_point
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.spec.sites import Kind, Site, format_site
from causal_mi.stats.bootstrap import Estimate, bootstrap_ratio
from causal_mi.tasks.base import Task

TERMS = ("CDE", "INTref", "INTmed", "PIE")
IDENTITY_TOLERANCE = 1e-6
MAX_CHAINS = 16  # path-specific effects measured per file (the shortest chains first)


@dataclass(frozen=True)
class Decomposition:
    """The four-way decomposition of one treatment over one mediator set."""

    treatment: str
    mediators: tuple[str, ...]
    total: Estimate
    terms: dict[str, Estimate]  # CDE, INTref, INTmed, PIE
    pnde: Estimate
    tnie: Estimate
    identity_error: float  # max |sum of terms - total| over the point and every replicate

    @property
    def identity_holds(self) -> bool:
        return self.identity_error <= IDENTITY_TOLERANCE

    @property
    def interaction(self) -> float:
        return self.terms["INTref"].point + self.terms["INTmed"].point


@dataclass(frozen=True)
class PathEffect:
    """The effect carried by one declared chain from a node to the logits."""

    chain: tuple[str, ...]  # vertex names, ending at logits
    estimate: Estimate


def _record(sites: tuple[Site, ...], producer: Condition) -> tuple[tuple[str, str], ...]:
    """What ``producer`` records of ``sites``: each hook under its content name."""
    hooks = sorted({hook_point(s).name for s in sites})
    return tuple((record_key(producer, h), h) for h in hooks)


def _from_record(sites: tuple[Site, ...], producer: Condition) -> tuple[Patch, ...]:
    """Patches setting ``sites`` to their values recorded under ``producer``."""
    cells: dict[str, set] = {}
    for s in sites:
        cells.setdefault(hook_point(s).name, set()).update(cells_of(s))
    return tuple(
        Patch.from_recording(h, record_key(producer, h), c) for h, c in sorted(cells.items())
    )


def _targets(hyp: ResolvedHypothesis) -> list[tuple[Site, tuple[Site, ...]]]:
    """(treatment, mediator set) pairs: each indirect claim's mediator, each direct claim's
    declared mediators, and every treatment's whole declared mediator set."""
    out: dict[tuple[Site, tuple[Site, ...]], None] = {}
    for rc in hyp.claims:
        q, s = rc.claim.quantity, rc.sites
        if q == "indirect":
            out.setdefault((s[0], (s[1],)), None)
        if q in ("indirect", "direct"):
            meds = mediators_of(hyp, s[0])
            if meds:
                out.setdefault((s[0], meds), None)
    return list(out)


def _stages(hyp: ResolvedHypothesis, targets: list) -> tuple[dict, dict]:
    """Per (treatment a, mediators M): Y11 (a ablated, recording M), Y10 (a ablated, M
    clean), Y1* and Y0* (M ablated, with and without a), then Y01 (M set to Y11's record)."""
    src = ABLATION_SOURCE[hyp.spec.ablation]
    stage0: dict[str, Condition] = {}
    stage1: dict[str, Condition] = {}
    for i, (a, meds) in enumerate(targets):
        k = f"dec{i}"
        ablate_a = site_patches([a], src)
        y11 = Condition("clean", ablate_a, label=f"{k}|Y11")
        stage0[f"{k}|Y11"] = replace(y11, record=_record(meds, y11))
        stage0[f"{k}|Y10"] = Condition("clean", ablate_a + site_patches(meds, "clean"))
        stage0[f"{k}|Y1*"] = Condition("clean", ablate_a + site_patches(meds, src))
        stage0[f"{k}|Y0*"] = Condition("clean", site_patches(meds, src))
        stage1[f"{k}|Y01"] = Condition("clean", _from_record(meds, y11))
    return stage0, stage1


def declare_runs(hyp: ResolvedHypothesis, runs) -> None:
    """Declare what :func:`decompose` reads: the decompositions' runs and every chain's."""
    stage0, stage1 = _stages(hyp, _targets(hyp))
    steps = [c for batch in _chain_steps(hyp, _chains(hyp)[0]) for c, _ in batch]
    conds = [*stage0.values(), *stage1.values(), *steps]
    if conds:
        runs.declare("graph: mediation decomposition", conds)


def decompose(
    hyp: ResolvedHypothesis, model: LoadedModel, task: Task, *, max_rows: int = 256, cache=None
) -> tuple[tuple[Decomposition, ...], tuple[PathEffect, ...], int, int]:
    """Every decomposition and path-specific effect of the file, the conditions run, and
    how many chains the graph has (at most ``MAX_CHAINS`` are measured)."""
    spec = hyp.spec
    fn = metric(spec.metric)
    engine = Engine(model, max_rows=max_rows, cache=cache)
    targets = _targets(hyp)
    stage0, stage1 = _stages(hyp, targets)
    values: dict[str, np.ndarray] = {}
    r0 = engine.run(task, list(stage0.values()), fn) if stage0 else None
    if r0 is not None:
        values.update({k: r0.values[i] for i, k in enumerate(stage0)})
        r1 = engine.run(task, list(stage1.values()), fn, recorded=r0.recorded)
        values.update({k: r1.values[i] for i, k in enumerate(stage1)})
        clean, corrupt = r0.clean, r0.corrupt
    else:
        clean = corrupt = None
    passes = len(stage0) + len(stage1)
    decs = []
    for i, (a, meds) in enumerate(targets):
        assert clean is not None and corrupt is not None
        k = f"dec{i}"
        y00, y11, y10 = clean, values[f"{k}|Y11"], values[f"{k}|Y10"]
        y01, y1s, y0s = values[f"{k}|Y01"], values[f"{k}|Y1*"], values[f"{k}|Y0*"]
        cde = y0s - y1s
        nums = {
            "CDE": cde,
            "INTref": (y00 - y10) - cde,
            "INTmed": y10 + y01 - y00 - y11,
            "PIE": y00 - y01,
        }
        decs.append(_estimates(hyp, a, meds, clean - corrupt, y00 - y11, nums, y00 - y10))
    paths, n_paths, found = _paths(hyp, engine, task, fn)
    return tuple(decs), paths, passes + n_paths, found


def _estimates(hyp, a, meds, den, total, nums, pnde) -> Decomposition:
    spec = hyp.spec

    def est(num: np.ndarray, label: str) -> Estimate:
        return bootstrap_ratio(
            num,
            den,
            label=label,
            confidence=spec.confidence,
            n_boot=spec.bootstrap,
            seed=spec.task.seed,
        )

    name = hyp.name_of(a)
    tail = f"{name}; {', '.join(hyp.name_of(m) for m in meds)}"
    te = est(total, f"TE({tail})")
    terms = {t: est(nums[t], f"{t}({tail})") for t in TERMS}
    summed = sum(terms[t].samples for t in TERMS)
    point = sum(terms[t].point for t in TERMS)
    err = max(abs(point - te.point), float(np.max(np.abs(summed - te.samples))))
    return Decomposition(
        name,
        tuple(hyp.name_of(m) for m in meds),
        te,
        terms,
        est(pnde, f"PNDE({tail})"),
        est(total - pnde, f"TNIE({tail})"),
        err,
    )


def _chains(hyp: ResolvedHypothesis) -> tuple[list[tuple[Site, ...]], int]:
    """The directed chains of declared components from each mediation claim's treatment to
    the logits, shortest first, at most ``MAX_CHAINS`` (and how many there were)."""
    from causal_mi.graph.nodes import LOGITS, node_graph

    graph = node_graph(hyp)
    treatments = {
        rc.sites[0].component().without_pos()
        for rc in hyp.claims
        if rc.claim.quantity in ("indirect", "direct")
    }
    out: list[tuple[Site, ...]] = []

    def walk(path: list[str]) -> None:
        for u, v in graph.edges:
            if u == path[-1] and v not in path:
                if v == LOGITS:
                    out.append(tuple(graph.sites[n] for n in path) + (Site(Kind.LOGITS),))
                else:
                    walk([*path, v])

    for name, site in graph.sites.items():
        if site.without_pos() in treatments:
            walk([name])
    ranked = sorted(out, key=len)  # stable: declaration order within a length
    return ranked[:MAX_CHAINS], len(out)


def _chain_steps(hyp: ResolvedHypothesis, chains: list) -> list[list[tuple[Condition, tuple]]]:
    """The runs of the path-specific effects, step by step: at step j, one condition per
    chain still going (its j-th node set from the previous step's record, every other
    declared component clean), with its owner ``(chain index, final step)``."""
    src = ABLATION_SOURCE[hyp.spec.ablation]
    circuit = hyp.circuit
    before: dict[int, Condition] = {}  # chain index -> its previous step's condition
    batches = []
    for j in range(max((len(c) for c in chains), default=1) - 1):
        batch = []
        for ci, chain in enumerate(chains):
            steps = chain[:-1]
            if j >= len(steps):
                continue
            node = steps[j]
            nxt = steps[j + 1] if j + 1 < len(steps) else None
            keep = {node.without_pos(), *(() if nxt is None else (nxt.without_pos(),))}
            others = tuple(s for s in circuit if s.component().without_pos() not in keep)
            if j == 0:
                patches = site_patches([node], src)
            else:
                patches = _from_record((node,), before[ci])
            step = Condition("clean", patches + site_patches(others, "clean"))
            before[ci] = step
            record = _record((nxt,), step) if nxt is not None else ()
            batch.append((replace(step, record=record), (ci, nxt is None)))
        batches.append(batch)
    return batches


def _paths(hyp, engine: Engine, task: Task, fn) -> tuple[tuple[PathEffect, ...], int, int]:
    """Path-specific effects of every chain; the j-th step of all chains runs as one engine
    call (their conditions stacked), so a run costs as many calls as the longest chain."""
    spec = hyp.spec
    chains, found = _chains(hyp)
    if not chains:
        return (), 0, found
    batches = _chain_steps(hyp, chains)
    recorded: dict = {}
    last: dict[int, tuple] = {}  # chain index -> (run result, row of its final condition)
    conditions = 0
    for batch in batches:
        r = engine.run(task, [c for c, _ in batch], fn, recorded=recorded)
        conditions += len(batch)
        recorded = {**recorded, **r.recorded}
        for row, (_, (ci, final)) in enumerate(batch):
            if final:
                last[ci] = (r, row)
    out = []
    for ci, chain in enumerate(chains):
        r, row = last[ci]
        names = tuple(hyp.name_of(s) if s.kind is not Kind.LOGITS else "logits" for s in chain)
        label = "path(" + " -> ".join(format_site(s) for s in chain) + ")"
        est = bootstrap_ratio(
            r.clean - r.values[row],
            r.clean - r.corrupt,
            label=label,
            confidence=spec.confidence,
            n_boot=spec.bootstrap,
            seed=spec.task.seed,
        )
        out.append(PathEffect(names, est))
    return tuple(out), conditions, found
