"""Measure a resolved hypothesis: plan every quantity, run the engine, bootstrap each one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from causal_mi.effects import quantities as Q
from causal_mi.effects.quantities import quantity_label
from causal_mi.engine.cache import RunCache
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition
from causal_mi.engine.runner import Engine, Progress
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedClaim, ResolvedHypothesis
from causal_mi.spec.sites import Kind, Site
from causal_mi.stats.bootstrap import Estimate, GapEstimate, bootstrap_ratio, gap_estimate
from causal_mi.stats.corrections import replicates_needed
from causal_mi.tasks.base import Task


@dataclass(frozen=True)
class Measurement:
    """Everything measured for one hypothesis: baselines, G with its interval and the gap
    gate, and one estimate per quantity (all from one set of bootstrap resamples)."""

    clean: np.ndarray
    corrupt: np.ndarray
    gap: float  # G
    estimates: dict[str, Estimate]
    claim_labels: list[str]  # estimate label of each claim, in file order
    notes: list[str] = field(default_factory=list)
    gap_estimate: GapEstimate | None = None
    n_boot: int = 0  # bootstrap replicates used (the file's minimum or what levels need)
    bootstrap_seed: int = 0
    interval: str = "bca"

    def estimate(self, quantity: str, *sites: Site) -> Estimate | None:
        """The estimate of ``quantity`` over ``sites`` (see :func:`quantity_label`), or None
        when it was not measured."""
        return self.estimates.get(quantity_label(quantity, sites))


def claim_label(hyp: ResolvedHypothesis, rc: ResolvedClaim) -> str:
    """The identity of a claim's quantity (:func:`quantity_label`)."""
    return quantity_label(rc.claim.quantity, rc.sites)


def mediators_of(hyp: ResolvedHypothesis, a: Site) -> tuple[Site, ...]:
    """Declared mediators of ``a``: circuit nodes reachable from a along declared edges; with
    no edges, every circuit node computed after a."""
    if hyp.edges:
        import networkx as nx

        g = nx.DiGraph()
        for e in hyp.edges:
            g.add_edge(e.sender.component(), e.receiver.component())
            if e.receiver.kind is Kind.HEAD_INPUT:
                g.add_edge(e.receiver.component(), e.receiver.component())
        start = a.component()
        if start not in g:
            return ()
        reach = nx.descendants(g, start)
        return tuple(s for s in hyp.circuit if s.component() in reach and s.component() != start)
    return tuple(s for s in hyp.circuit if s.order_key() > a.order_key())


def edge_level(hyp: ResolvedHypothesis, model: LoadedModel) -> tuple[Q.EdgeList | None, str | None]:
    """The declared edges for path patching, or None and the reason node level is used."""
    if not hyp.edges:
        return None, None
    from causal_mi.engine.capabilities import capabilities
    from causal_mi.engine.plan import NotAnEdgeSender, receiver_key, sender_index
    from causal_mi.errors import InputError, Problem

    can = capabilities(model)
    if can.encoder:  # no node-level fallback: path patching is undefined there
        raise InputError(Problem(hyp.edges[0].location, can.path or ""))
    why = can.path
    try:
        for e in hyp.edges:
            sender_index(e.sender, model.dims)
            receiver_key(e.receiver)
    except NotAnEdgeSender as exc:
        why = str(exc)
    if why:
        return None, f"faithfulness is measured at node level, not by path patching: {why}"
    return tuple((e.sender, e.receiver) for e in hyp.edges), None


def plan(
    hyp: ResolvedHypothesis, model: LoadedModel
) -> tuple[dict[str, Q.Quantity], list[str], list[str]]:
    """Quantities for every claim, plus the per-node effects every report shows, and notes."""
    abl = hyp.spec.ablation
    circuit = hyp.circuit
    quantities: dict[str, Q.Quantity] = {}
    labels: list[str] = []
    notes: list[str] = []
    dims = model.dims
    edges, why = edge_level(hyp, model)
    if why:
        notes.append(why)

    def add(q: Q.Quantity) -> None:
        quantities.setdefault(q.label, q)

    def faithfulness() -> Q.Quantity:
        if edges is not None:
            return Q.faithfulness_edges(edges, dims, abl)
        return Q.faithfulness(circuit, dims, abl)

    for rc in hyp.claims:
        label = claim_label(hyp, rc)
        labels.append(label)
        c, s = rc.claim.quantity, rc.sites
        if c == "faithfulness":
            add(faithfulness())
        elif c == "complement":
            add(Q.complement(circuit, abl))
        elif c in ("effect", "total"):
            add(Q.effect(s[0], abl, label=label))
        elif c == "restore":
            add(Q.restore(s[0], label=label))
        elif c == "minimality" and edges is not None:
            add(Q.minimality_edges(edges, s[0], dims, abl, label))
        elif c == "minimality":
            add(Q.minimality(circuit, s[0], dims, abl, label))
        elif c == "indirect":
            add(Q.indirect(s[0], s[1], abl, label))
        elif c == "direct":
            add(Q.direct(s[0], mediators_of(hyp, s[0]), abl, label))
    if circuit:
        add(faithfulness())
        if edges is not None:
            node = Q.faithfulness(circuit, dims, abl)
            add(Q.Quantity("faithfulness[node level]", node.conditions, node.numerator))
        add(Q.complement(circuit, abl))
        for site in circuit:
            add(Q.effect(site, abl))
            add(Q.restore(site))
    for sender, receiver in edges or ():
        add(Q.edge_effect(sender, receiver, dims, abl))
    return quantities, labels, notes


MEAN_FIXED_NOTE = (
    "mean ablation: the mean's sampling uncertainty is in every interval (first-order "
    "influence of each example on the mean) except those of path-patching and mediated "
    "quantities, where the mean is held fixed and the interval is narrower than it should "
    "be: "
)


def mean_handling(q: Q.Quantity, influence: dict[str, np.ndarray]) -> str:
    """How the sampling of a mean source enters ``q``'s interval: "" (none used),
    "resampled", or "held fixed: <why>" (path patching's mean, or a stage-1 condition
    reading values recorded under a mean ablation: the correction does not follow the mean
    through a recording)."""
    from causal_mi.engine.influence import uses_mean

    prereq = q.prerequisites or {}
    if not any(uses_mean(c) for c in (*q.conditions.values(), *prereq.values())):
        return ""
    if q.stage == 1 and any(uses_mean(c) for c in prereq.values()):
        return "held fixed: the mean reaches this quantity through a recorded mediator"
    if any(not np.all(np.isfinite(influence[k])) for k in q.conditions):
        return "held fixed: path patching holds the mean fixed"
    return "resampled"


def _stages(quantities: dict[str, Q.Quantity]) -> tuple[dict, dict]:
    """The quantities' conditions: those that read no recording (with the prerequisites
    that make the recordings), and those that do."""
    stage0: dict[str, Condition] = {}
    stage1: dict[str, Condition] = {}
    for q in quantities.values():
        (stage1 if q.stage else stage0).update(q.conditions)
        stage0.update(q.prerequisites or {})
    return stage0, stage1


def declare_runs(hyp: ResolvedHypothesis, model: LoadedModel, runs, stage: str = "claims") -> None:
    """Declare what :func:`measure` reads into ``runs`` (an engine.runplan.RunPlan)."""
    stage0, stage1 = _stages(plan(hyp, model)[0])
    conds = [*stage0.values(), *stage1.values()]
    runs.declare(stage, conds, influence=hyp.spec.ablation == "mean")


def measure(
    hyp: ResolvedHypothesis,
    model: LoadedModel,
    task: Task,
    *,
    max_rows: int = 256,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
    cache: RunCache | None = None,
) -> Measurement:
    """Run every planned quantity and bootstrap it (seeded by the task seed); with a
    ``checkpoint_dir`` an interrupted run resumes from its finished passes."""
    quantities, labels, notes = plan(hyp, model)
    engine = Engine(
        model, max_rows=max_rows, progress=progress, checkpoint_dir=checkpoint_dir, cache=cache
    )
    fn = metric(hyp.spec.metric)
    stage0, stage1 = _stages(quantities)
    keys0 = list(stage0)
    mean = hyp.spec.ablation == "mean"  # carry the mean's sampling into the bootstrap
    r0 = engine.run(task, [stage0[k] for k in keys0], fn, influence=mean)
    values = {k: r0.values[i] for i, k in enumerate(keys0)}
    influence = {k: r0.influence[i] for i, k in enumerate(keys0)} if mean else {}
    if stage1:
        keys1 = list(stage1)
        r1 = engine.run(task, [stage1[k] for k in keys1], fn, recorded=r0.recorded, influence=mean)
        values.update({k: r1.values[i] for i, k in enumerate(keys1)})
        if mean:
            influence.update({k: r1.influence[i] for i, k in enumerate(keys1)})
    clean, corrupt = r0.clean, r0.corrupt
    den = clean - corrupt
    gap = float(den.mean())
    spec = hyp.spec
    alpha = (1 - spec.confidence) / 2
    n_boot = replicates_needed(alpha, len(hyp.claims), spec.bootstrap)
    seed = spec.bootstrap_seed
    gate = gap_estimate(
        den,
        alpha=alpha,
        confidence=spec.confidence,
        n_boot=n_boot,
        seed=seed,
        margin=spec.gap_margin,
    )
    if not gate.decidable:
        notes.append(f"not decidable: {gate.reason}")
    estimates = {}
    adjusted = {k: v + influence.get(k, 0.0) for k, v in values.items()} if mean else {}
    fixed: list[str] = []
    for label, q in sorted(quantities.items()):
        num = q.numerator(clean, corrupt, values)
        resampled, how = None, ""
        if mean:
            how = mean_handling(q, influence)
            if how == "resampled":
                resampled = q.numerator(clean, corrupt, adjusted)
            elif how:
                fixed.append(label)
        estimates[label] = bootstrap_ratio(
            num,
            den,
            label=label,
            confidence=spec.confidence,
            n_boot=n_boot,
            seed=seed,
            method=spec.interval,
            resampled=resampled,
            mean_source=how,
        )
    if fixed:
        notes.append(MEAN_FIXED_NOTE + ", ".join(fixed))
    return Measurement(
        clean, corrupt, gap, estimates, labels, notes, gate, n_boot, seed, spec.interval
    )
