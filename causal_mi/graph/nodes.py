"""Node variables: one documented scalar per graph node per run (the data the graph's
implications, its structural causal model and the mediation decomposition are computed on).

The graph's vertices are ``embed`` (the input), the components the file declares (its nodes
and the endpoints of its edges, at component level: ``ind.k`` is a vertex ``ind``) and
``logits`` (the outcome). Their variables:

- ``embed``: 1 for the clean prompt, 0 for the corrupt one (what varies between the two
  input distributions; the rest of the prompt is exogenous noise of the nodes that read it);
- a component: its activation (the hook the engine patches, every position the node covers,
  flattened) projected on the direction ``w = mean(clean) - mean(corrupt)`` estimated on the
  *fit* half of the examples, and scaled so that the fit half reads 1 on clean and 0 on
  corrupt inputs: ``v = (a - mean_fit(corrupt)) . w / (w . w)``. Examples of different
  token lengths get their own direction (activations of different lengths do not share
  coordinates);
- ``logits``: the metric value.

The fit half (even example indices) only sets directions; every test and fit reads the
*evaluation* half (odd indices), so a direction is never chosen on the data that tests it.

Runs recorded: the clean and corrupt inputs, for every component ``a`` the clean input with
``a`` ablated (the file's ablation: the node-level interventions the plan already measures
``effect(a)`` with), and for every vertex without a declared edge from ``embed`` the
corrupt input with its declared parents patched from the clean run (:func:`held`). All run
as one engine call whose conditions record every vertex's hook, stacked in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import ABLATION_SOURCE, Condition, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.models.adapter import heads_first, hook_point
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.spec.sites import Kind, Site, format_site
from causal_mi.tasks.base import Task

EMBED, LOGITS = "embed", "logits"
CLEAN, CORRUPT = "clean", "corrupt"
MIN_DIRECTION = 1e-12  # squared norm under which clean and corrupt do not differ
MIN_SEPARATION = 0.5  # held-out clean - corrupt mean of a useful variable (the fit half: 1)


def do(name: str) -> str:
    """The run key of the clean input with vertex ``name`` ablated."""
    return f"do({name})"


def held(name: str) -> str:
    """The run key of the corrupt input with ``name``'s declared parents patched from the
    clean run: ``name`` then differs from its clean value only through what it reads from
    the input or from undeclared components (the test of a missing ``embed -> name``)."""
    return f"input({name})"


@dataclass(frozen=True)
class NodeGraph:
    """The declared graph at component level: vertices in computation order, edges."""

    names: tuple[str, ...]  # embed first, logits last
    sites: dict[str, Site]  # component vertices only
    edges: tuple[tuple[str, str], ...]

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n not in (EMBED, LOGITS))

    def parents(self, name: str) -> tuple[str, ...]:
        return tuple(u for u, v in self.edges if v == name)

    def descendants(self, name: str) -> set[str]:
        out: set[str] = set()
        todo = [name]
        while todo:
            x = todo.pop()
            for u, v in self.edges:
                if u == x and v not in out:
                    out.add(v)
                    todo.append(v)
        return out


def node_graph(hyp: ResolvedHypothesis) -> NodeGraph:
    """The file's graph over components (an edge into ``ind.k`` is an edge into ``ind``)."""
    sites: dict[str, Site] = {}

    def vertex(site: Site) -> str:
        if site.kind is Kind.EMBED:
            return EMBED
        if site.kind is Kind.LOGITS:
            return LOGITS
        comp = site.component()
        name = hyp.name_of(comp)
        if name == format_site(comp) and comp.pos is None:
            # a positioned node is named by the user; a bare site keeps its site name
            for n, s in hyp.nodes.items():
                if s.component().without_pos() == comp:
                    name, comp = n, s.component()
                    break
        sites.setdefault(name, comp)
        return name

    for s in hyp.nodes.values():
        vertex(s)
    edges: dict[tuple[str, str], None] = {}
    for e in hyp.edges:
        u, v = vertex(e.sender), vertex(e.receiver)
        if u != v:
            edges.setdefault((u, v), None)
    order = sorted(sites, key=lambda n: (sites[n].order_key(), n))
    return NodeGraph((EMBED, *order, LOGITS), sites, tuple(edges))


@dataclass(frozen=True)
class NodeData:
    """Node variables of every recorded run: ``runs[key]`` is ``[n_examples, n_vertices]``
    in ``graph.names`` order; ``evaluation`` the examples tests read."""

    graph: NodeGraph
    runs: dict[str, np.ndarray]
    evaluation: np.ndarray  # example indices (the odd ones)
    separation: dict[str, float]  # evaluation-half mean(clean) - mean(corrupt), per vertex
    passes: int  # engine conditions run for the recording

    def informative(self, name: str) -> bool:
        """Whether ``name``'s scalar stands in for the node: its held-out clean and corrupt
        means differ by at least ``MIN_SEPARATION`` (1 on the fit half by construction).
        Content with no direction shared across examples (which token a head copies) fails
        this: its fit-half direction is noise that does not replicate."""
        return name in (EMBED, LOGITS) or self.separation.get(name, 0.0) >= MIN_SEPARATION

    def column(self, run: str, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        x = self.runs[run][:, self.graph.names.index(name)]
        return x if rows is None else x[rows]

    def observational(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Clean and corrupt rows stacked: ``[2 * n_rows, n_vertices]``."""
        idx = self.evaluation if rows is None else rows
        return np.vstack([self.runs[CLEAN][idx], self.runs[CORRUPT][idx]])


def _hook(site: Site) -> str:
    return hook_point(site).read_name


def _select(site: Site, act: torch.Tensor) -> torch.Tensor:
    """The site's cells of its hook activation, flattened per example."""
    hp = hook_point(site)
    if heads_first(hp.name):
        return act[:, hp.channel].flatten(1)
    if hp.channel >= 0:
        act = act[:, :, hp.channel]
    if site.pos is not None:
        act = act[:, list(site.pos)]
    return act.flatten(1)


def conditions(graph: NodeGraph, ablation: str) -> dict[str, Condition]:
    """The recording runs: clean, corrupt, and every component ablated on the clean input."""
    hooks = sorted({_hook(s) for s in graph.sites.values()})

    def record(run: str) -> tuple[tuple[str, str], ...]:
        return tuple((f"graph|{run}|{h}", h) for h in hooks)

    out = {
        CLEAN: Condition("clean", (), record(CLEAN), label="graph|clean"),
        CORRUPT: Condition("corrupt", (), record(CORRUPT), label="graph|corrupt"),
    }
    for name in graph.components:
        patches = site_patches([graph.sites[name]], ABLATION_SOURCE[ablation])
        out[do(name)] = Condition("clean", patches, record(do(name)), label=f"graph|{do(name)}")
    for name in graph.names[1:]:
        parents = graph.parents(name)
        if EMBED not in parents:
            patches = site_patches([graph.sites[p] for p in parents], "clean")
            key = held(name)
            out[key] = Condition("corrupt", patches, record(key), label=f"graph|{key}")
    return out


def record_nodes(
    hyp: ResolvedHypothesis, model: LoadedModel, task: Task, *, max_rows: int = 256, cache=None
) -> NodeData:
    """Run the recording conditions once and reduce every vertex to its scalar variable."""
    graph = node_graph(hyp)
    conds = conditions(graph, hyp.spec.ablation)
    keys = list(conds)
    result = Engine(model, max_rows=max_rows, cache=cache).run(
        task, [conds[k] for k in keys], metric(hyp.spec.metric)
    )
    n = len(task)
    fit = np.arange(0, n, 2)
    by_length: dict[int, np.ndarray] = {}
    for i, ex in enumerate(task.examples):
        by_length.setdefault(ex.length, []).append(i)  # type: ignore[arg-type]
    by_length = {k: np.array(v) for k, v in sorted(by_length.items())}  # engine bucket order
    runs = {k: np.zeros((n, len(graph.names))) for k in keys}
    for ri, k in enumerate(keys):
        runs[k][:, 0] = 1.0 if conds[k].base == "clean" else 0.0
        runs[k][:, -1] = result.values[ri]
    fit_set = set(fit.tolist())
    for j, name in enumerate(graph.names):
        if name in (EMBED, LOGITS):
            continue
        site = graph.sites[name]
        hook = _hook(site)
        for length, idx in by_length.items():
            acts = {
                k: _select(site, result.recorded[f"graph|{k}|{hook}"][length]).double().cpu()
                for k in keys
            }
            in_fit = torch.tensor([i in fit_set for i in idx])
            if not bool(in_fit.any()):
                in_fit = torch.ones(len(idx), dtype=torch.bool)
            base = acts[CORRUPT][in_fit].mean(0)
            w = acts[CLEAN][in_fit].mean(0) - base
            norm = float(w @ w)
            if norm < MIN_DIRECTION:
                continue
            for k in keys:
                runs[k][idx, j] = ((acts[k] - base) @ w / norm).numpy()
    evaluation = np.arange(1, n, 2)
    separation = {
        name: float(runs[CLEAN][evaluation, j].mean() - runs[CORRUPT][evaluation, j].mean())
        if len(evaluation)
        else 0.0
        for j, name in enumerate(graph.names)
    }
    return NodeData(graph, runs, evaluation, separation, len(keys))
