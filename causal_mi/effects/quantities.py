"""SPEC 3 quantities as intervention conditions plus the arithmetic on their results.

Every quantity is ``numerator / G`` with ``G = m(clean) - m(corrupt)``; a :class:`Quantity`
names the condition(s) it needs and how to form the per-example numerator from the metric
values. The functions here are pure: they build plans, the engine runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from causal_mi.engine.address import record_key
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

CLEAN, CORRUPT = "clean", "corrupt"  # the baselines' names in a numerator


@dataclass(frozen=True)
class Numerator:
    """A quantity's per-example numerator as data: the metric of run ``plus`` minus that of
    run ``minus``, each the clean or corrupt baseline or a condition's key (every SPEC 3
    quantity has this form). Printable, hashable, comparable; called with the baselines and
    the values by condition key it gives the per-example numerator.

    >>> n = Numerator(CLEAN, "ablate|L1H3")
    >>> n(np.array([2.0]), np.array([0.0]), {"ablate|L1H3": np.array([0.5])})
    array([1.5])
    """

    plus: str
    minus: str

    def __call__(
        self, clean: np.ndarray, corrupt: np.ndarray, values: dict[str, np.ndarray]
    ) -> np.ndarray:
        runs = {CLEAN: clean, CORRUPT: corrupt}
        a = runs[self.plus] if self.plus in runs else values[self.plus]
        b = runs[self.minus] if self.minus in runs else values[self.minus]
        return a - b

    def __str__(self) -> str:
        return f"m({self.plus}) - m({self.minus})"


@dataclass(frozen=True)
class Quantity:
    """A quantity to estimate: its label, the conditions it needs, and its numerator.

    ``stage`` 0 conditions run first; stage 1 conditions may read values recorded in
    stage 0 (natural indirect effects need b's value under a's ablation). Everything is
    data (conditions, numerator), so a quantity prints, hashes and compares by content.
    """

    label: str
    conditions: dict[str, Condition]
    numerator: Numerator
    stage: int = 0
    prerequisites: dict[str, Condition] | None = None

    def digest(self) -> str:
        """The content address of what this quantity measures: its conditions (by content:
        labels are not identity), its numerator and its stage; not its label."""
        from causal_mi.engine.address import condition_key, digest

        names = {
            k: condition_key(c)
            for k, c in {**self.conditions, **(self.prerequisites or {})}.items()
        }
        num = [names.get(x, x) for x in (self.numerator.plus, self.numerator.minus)]
        pre = sorted(condition_key(c) for c in (self.prerequisites or {}).values())
        return digest([sorted(names[k] for k in self.conditions), num, self.stage, pre])


def _key(*parts: object) -> str:
    return "|".join(str(p) for p in parts)


def quantity_label(quantity: str, sites: Sequence[Site] = ()) -> str:
    """The identity of a measured quantity: its kind and its sites in canonical site names,
    so equal quantities share an estimate however a file names its nodes. Every estimate is
    keyed by it and every reader asks through it
    (:meth:`causal_mi.effects.measure.Measurement.estimate`)."""
    if quantity in ("faithfulness", "complement"):
        return quantity
    sep = " -> " if quantity in ("indirect", "direct", "edge") else ", "
    return f"{quantity}(" + sep.join(format_site(s) for s in sites) + ")"


def effect(site: Site, ablation: str, label: str | None = None) -> Quantity:
    """[m(clean) - m(clean, n ablated)] / G."""
    k = _key("ablate", format_site(site), site.pos, ablation)
    cond = Condition("clean", site_patches([site], ABLATION_SOURCE[ablation]), label=k)
    return Quantity(label or quantity_label("effect", (site,)), {k: cond}, Numerator(CLEAN, k))


def restore(site: Site, label: str | None = None) -> Quantity:
    """[m(corrupt, n patched from clean) - m(corrupt)] / G."""
    k = _key("restore", format_site(site), site.pos)
    cond = Condition("corrupt", site_patches([site], "clean"), label=k)
    return Quantity(label or quantity_label("restore", (site,)), {k: cond}, Numerator(k, CORRUPT))


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
    return Quantity("faithfulness", {cond.label: cond}, Numerator(cond.label, CORRUPT))


def complement(circuit: tuple[Site, ...], ablation: str) -> Quantity:
    """[m(circuit nodes ablated) - m(corrupt)] / G."""
    k = _key("circuit-ablated", *map(str, circuit), ablation)
    cond = Condition("clean", site_patches(circuit, ABLATION_SOURCE[ablation]), label=k)
    return Quantity("complement", {k: cond}, Numerator(k, CORRUPT))


def minimality(
    circuit: tuple[Site, ...], node: Site, dims: ModelDims, ablation: str, label: str
) -> Quantity:
    """faithfulness(circuit) - faithfulness(circuit without node)."""
    full = circuit_only(circuit, dims, ablation)
    less = circuit_only(tuple(s for s in circuit if s != node), dims, ablation)
    return Quantity(label, {full.label: full, less.label: less}, Numerator(full.label, less.label))


def indirect(a: Site, b: Site, ablation: str, label: str) -> Quantity:
    """Natural indirect effect of a through b: [m(clean) - m(clean, b := b(a ablated))] / G.

    Stage 0 runs the clean input with a ablated and records b's hook; stage 1 runs the clean
    input with b's cells set to the recorded values (a itself clean).
    """
    hook = hook_point(b).name
    ablated = Condition("clean", site_patches([a], ABLATION_SOURCE[ablation]))
    rec = record_key(ablated, hook)  # a content name: equal recordings of any stage are one
    name = _key("rec", format_site(a), a.pos, ablation, "->", format_site(b))
    pre = replace(ablated, record=((rec, hook),), label=name)
    k = _key("nie", name, b.pos)
    cond = Condition("clean", (Patch.from_recording(hook, rec, cells_of(b)),), label=k)
    return Quantity(label, {k: cond}, Numerator(CLEAN, k), stage=1, prerequisites={rec: pre})


def direct(a: Site, mediators: tuple[Site, ...], ablation: str, label: str) -> Quantity:
    """Natural direct effect: [m(clean) - m(a ablated, mediators held at clean)] / G."""
    patches = site_patches([a], ABLATION_SOURCE[ablation]) + site_patches(mediators, "clean")
    k = _key("nde", format_site(a), a.pos, ablation, *map(str, mediators))
    return Quantity(label, {k: Condition("clean", patches, label=k)}, Numerator(CLEAN, k))


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
    return Quantity("faithfulness", {cond.label: cond}, Numerator(cond.label, CORRUPT))


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
    return Quantity(label, {full.label: full, less.label: less}, Numerator(full.label, less.label))


def edge_effect(sender: Site, receiver: Site, dims: ModelDims, ablation: str) -> Quantity:
    """Path patching of one edge: [m(clean) - m(clean, only this edge ablated)] / G."""
    keep = frozenset({(sender_index(sender, dims), receiver_key(receiver))})
    k = _key("edge", *sorted(map(str, keep)), ablation)
    cond = Condition(
        "clean", edges=EdgePlan(keep, ABLATION_SOURCE[ablation], complement=False), label=k
    )
    return Quantity(
        quantity_label("edge", (sender, receiver)),
        {k: cond},
        Numerator(CLEAN, k),
    )
