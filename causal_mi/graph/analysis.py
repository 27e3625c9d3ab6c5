"""The hypothesis graph as a causal model: one call, one frozen result.

:func:`analyse` records the node variables (:mod:`.nodes`), tests the graph's implications
(:mod:`.implications`), fits the graph as a structural causal model and compares its
predictions with the measured interventions (:mod:`.scm`), and decomposes the mediation
claims (:mod:`.decomposition`). ``full=False`` runs only what the claim ``implications
hold`` needs (the recording and the implications), for runs that want verdicts only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from causal_mi.effects.measure import Measurement
from causal_mi.graph.decomposition import Decomposition, PathEffect
from causal_mi.graph.implications import Implications
from causal_mi.graph.nodes import NodeGraph
from causal_mi.graph.scm import Abstraction
from causal_mi.graph.verdict import is_implication
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.tasks.base import Task

NO_EDGES = "the file declares no edges, so there is no graph to test"


@dataclass(frozen=True)
class CausalModelResult:
    """Everything the graph analysis found; ``ran`` is False (with ``reason``) when it did
    not run. ``seconds`` times each stage; ``conditions`` counts the engine conditions it
    ran (each one forward pass per example, stacked in the batch)."""

    ran: bool
    reason: str = ""
    graph: NodeGraph | None = None
    separation: dict[str, float] = field(default_factory=dict)
    implications: Implications | None = None
    abstraction: Abstraction | None = None
    decompositions: tuple[Decomposition, ...] = ()
    paths: tuple[PathEffect, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)
    conditions: int = 0
    notes: tuple[str, ...] = ()

    @classmethod
    def skipped(cls, reason: str) -> CausalModelResult:
        return cls(False, reason)


def wanted(hyp: ResolvedHypothesis, full: bool) -> bool:
    """Whether a run should analyse the graph: always when asked for everything, and
    whenever a claim gates on the implications."""
    return full or any(is_implication(rc) for rc in hyp.claims)


def declare_runs(hyp: ResolvedHypothesis, runs, *, full: bool = True) -> None:
    """Declare what :func:`analyse` reads: the node recordings and, with ``full``, the
    mediation decomposition's runs."""
    if not hyp.edges:
        return
    from causal_mi.graph.nodes import conditions, node_graph

    recordings = conditions(node_graph(hyp), hyp.spec.ablation)
    runs.declare("graph: node recordings", list(recordings.values()))
    if full:
        from causal_mi.graph.decomposition import declare_runs as declare_decomposition

        declare_decomposition(hyp, runs)


def analyse(
    hyp: ResolvedHypothesis,
    model: LoadedModel,
    task: Task,
    m: Measurement,
    *,
    max_rows: int = 256,
    full: bool = True,
    cache=None,
) -> CausalModelResult:
    """Analyse the file's graph against the runs (see the module docstring)."""
    if not hyp.edges:
        return CausalModelResult.skipped(NO_EDGES)
    from causal_mi.graph.implications import test_implications
    from causal_mi.graph.nodes import record_nodes

    seconds: dict[str, float] = {}
    t = time.perf_counter()
    data = record_nodes(hyp, model, task, max_rows=max_rows, cache=cache)
    seconds["record"] = time.perf_counter() - t
    t = time.perf_counter()
    implications = test_implications(data, confidence=hyp.spec.confidence, gap=m.gap)
    seconds["implications"] = time.perf_counter() - t
    conditions = data.passes
    abstraction = None
    decs: tuple[Decomposition, ...] = ()
    paths: tuple[PathEffect, ...] = ()
    notes: list[str] = []
    if full:
        from causal_mi.graph.decomposition import decompose
        from causal_mi.graph.scm import abstraction as fit_scm

        t = time.perf_counter()
        gate = m.gap_estimate
        if gate is None or gate.decidable:
            try:
                abstraction = fit_scm(hyp, data, m, seed=hyp.spec.task.seed)
            except (ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
                # informational, never a verdict: a fit DoWhy cannot make is reported
                notes.append(f"the SCM could not be fitted ({type(exc).__name__}: {exc})")
        else:
            notes.append(f"not decidable: {gate.reason}; so the SCM was not compared")
        seconds["scm"] = time.perf_counter() - t
        t = time.perf_counter()
        decs, paths, n, found = decompose(hyp, model, task, max_rows=max_rows, cache=cache)
        conditions += n
        if found > len(paths):
            notes.append(
                f"path-specific effects: the {len(paths)} shortest of the graph's {found} "
                "chains from a mediation claim's treatment to the logits are measured"
            )
        seconds["decomposition"] = time.perf_counter() - t
    return CausalModelResult(
        True,
        graph=data.graph,
        separation=data.separation,
        implications=implications,
        abstraction=abstraction,
        decompositions=decs,
        paths=paths,
        seconds=seconds,
        conditions=conditions,
        notes=tuple(notes),
    )
