"""SPEC 3 quantities as intervention conditions plus the arithmetic on their results.

Every quantity is ``numerator / G`` with ``G = m(clean) - m(corrupt)``; a :class:`Quantity`
names the condition(s) it needs and how to form the per-example numerator from the metric
values. The functions here are pure: they build plans, the engine runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from causal_mi.engine.plan import (
    ABLATION_SOURCE,
    Condition,
    EdgePlan,
    Patch,
    cells_of,
    outside_patches,
    receiver_key,
    sender_index,
    site_patches,
)
from causal_mi.models.adapter import hook_point
from causal_mi.spec.resolve import ModelDims
from causal_mi.spec.sites import Site, format_site

# numerator(clean, corrupt, values_by_condition_key) -> per-example numerator
Numerator = Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Quantity:
    """A quantity to estimate: its label, the conditions it needs, and its numerator.

    ``stage`` 0 conditions run first; stage 1 conditions may read values recorded in
    stage 0 (natural indirect effects need b's value under a's ablation).
    """

    label: str
    conditions: dict[str, Condition]
    numerator: Numerator
    stage: int = 0
    prerequisites: dict[str, Condition] | None = None


def _key(*parts: object) -> str:
    return "|".join(str(p) for p in parts)


def effect(site: Site, ablation: str, label: str | None = None) -> Quantity:
    """[m(clean) - m(clean, n ablated)] / G."""
    k = _key("ablate", format_site(site), site.pos, ablation)
    cond = Condition("clean", site_patches([site], ABLATION_SOURCE[ablation]), label=k)
    return Quantity(label or f"effect({format_site(site)})", {k: cond}, lambda c, x, v: c - v[k])


def restore(site: Site, label: str | None = None) -> Quantity:
    """[m(corrupt, n patched from clean) - m(corrupt)] / G."""
    k = _key("restore", format_site(site), site.pos)
    cond = Condition("corrupt", site_patches([site], "clean"), label=k)
    return Quantity(label or f"restore({format_site(site)})", {k: cond}, lambda c, x, v: v[k] - x)


def circuit_only(circuit: tuple[Site, ...], dims: ModelDims, ablation: str) -> Condition:
    """Clean input, every component outside ``circuit`` ablated (node level)."""
    return Condition(
        "clean",
        outside_patches(circuit, dims, ABLATION_SOURCE[ablation]),
        label=_key("circuit-only", *map(str, circuit), ablation),
    )


def faithfulness(circuit: tuple[Site, ...], dims: ModelDims, ablation: str) -> Quantity:
    """[m(circuit only) - m(corrupt)] / G."""
    cond = circuit_only(circuit, dims, ablation)
    return Quantity("faithfulness", {cond.label: cond}, lambda c, x, v: v[cond.label] - x)


def complement(circuit: tuple[Site, ...], ablation: str) -> Quantity:
    """[m(circuit nodes ablated) - m(corrupt)] / G."""
    k = _key("circuit-ablated", *map(str, circuit), ablation)
    cond = Condition("clean", site_patches(circuit, ABLATION_SOURCE[ablation]), label=k)
    return Quantity("complement", {k: cond}, lambda c, x, v: v[k] - x)


def minimality(
    circuit: tuple[Site, ...], node: Site, dims: ModelDims, ablation: str, label: str
) -> Quantity:
    """faithfulness(circuit) - faithfulness(circuit without node)."""
    full = circuit_only(circuit, dims, ablation)
    less = circuit_only(tuple(s for s in circuit if s != node), dims, ablation)
    return Quantity(
        label, {full.label: full, less.label: less}, lambda c, x, v: v[full.label] - v[less.label]
    )


def indirect(a: Site, b: Site, ablation: str, label: str) -> Quantity:
    """Natural indirect effect of a through b: [m(clean) - m(clean, b := b(a ablated))] / G.

    Stage 0 runs the clean input with a ablated and records b's hook; stage 1 runs the clean
    input with b's cells set to the recorded values (a itself clean).
    """
    rec = _key("rec", format_site(a), a.pos, ablation, "->", format_site(b))
    pre = Condition(
        "clean",
        site_patches([a], ABLATION_SOURCE[ablation]),
        record=((rec, hook_point(b).name),),
        label=rec,
    )
    hook = hook_point(b).name
    k = _key("nie", rec, b.pos)
    cond = Condition("clean", (Patch(hook, f"recorded:{rec}", cells_of(b)),), label=k)
    return Quantity(label, {k: cond}, lambda c, x, v: c - v[k], stage=1, prerequisites={rec: pre})


def direct(a: Site, mediators: tuple[Site, ...], ablation: str, label: str) -> Quantity:
    """Natural direct effect: [m(clean) - m(a ablated, mediators held at clean)] / G."""
    patches = site_patches([a], ABLATION_SOURCE[ablation]) + site_patches(mediators, "clean")
    k = _key("nde", format_site(a), a.pos, ablation, *map(str, mediators))
    return Quantity(label, {k: Condition("clean", patches, label=k)}, lambda c, x, v: c - v[k])


EdgeList = tuple[tuple[Site, Site], ...]  # (sender, receiver input)


def edge_circuit(edges: EdgeList, dims: ModelDims, ablation: str) -> Condition:
    """Clean input; every edge of the model graph not in ``edges`` ablated (path patching)."""
    keep = frozenset((sender_index(s, dims), receiver_key(r)) for s, r in edges)
    return Condition(
        "clean",
        edges=EdgePlan(keep, ABLATION_SOURCE[ablation]),
        label=_key("edge-circuit", *sorted(map(str, keep)), ablation),
    )


def faithfulness_edges(edges: EdgeList, dims: ModelDims, ablation: str) -> Quantity:
    """Edge-level faithfulness: [m(declared edges only) - m(corrupt)] / G."""
    cond = edge_circuit(edges, dims, ablation)
    return Quantity("faithfulness", {cond.label: cond}, lambda c, x, v: v[cond.label] - x)


def minimality_edges(
    edges: EdgeList, node: Site, dims: ModelDims, ablation: str, label: str
) -> Quantity:
    """faithfulness(edges) - faithfulness(edges not touching ``node``)."""

    def whole(site: Site) -> Site:  # the component, whatever positions the site names
        return replace(site.component(), pos=None)

    comp = whole(node)
    full = edge_circuit(edges, dims, ablation)
    less = edge_circuit(
        tuple((s, r) for s, r in edges if whole(s) != comp and whole(r) != comp),
        dims,
        ablation,
    )
    return Quantity(
        label, {full.label: full, less.label: less}, lambda c, x, v: v[full.label] - v[less.label]
    )


def edge_effect(sender: Site, receiver: Site, dims: ModelDims, ablation: str) -> Quantity:
    """Path patching of one edge: [m(clean) - m(clean, only this edge ablated)] / G."""
    keep = frozenset({(sender_index(sender, dims), receiver_key(receiver))})
    k = _key("edge", *sorted(map(str, keep)), ablation)
    cond = Condition(
        "clean", edges=EdgePlan(keep, ABLATION_SOURCE[ablation], complement=False), label=k
    )
    return Quantity(
        f"edge({format_site(sender)} -> {format_site(receiver)})",
        {k: cond},
        lambda c, x, v: c - v[k],
    )
