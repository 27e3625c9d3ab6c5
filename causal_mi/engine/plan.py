"""Intervention plans: pure data describing what to patch, from where, in which run.

A :class:`Patch` replaces cells of one hook activation: the cells are (position, channel)
pairs where a channel is a head or a neuron (for an attention pattern, a head and a query
position: the whole row over keys). ``complement=True`` patches every cell *except*
those listed (how "ablate everything outside the circuit" is expressed). A
:class:`Condition` is one forward pass per example: the base input (clean or corrupt) plus
patches, optionally recording activations for a later condition (mediation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from causal_mi.models.adapter import HookPoint, hook_point, layer_hook
from causal_mi.spec.resolve import ModelDims
from causal_mi.spec.sites import Kind, Site

SOURCES = ("clean", "corrupt", "mean", "zero", "recorded")
ABLATION_SOURCE = {"resample": "corrupt", "mean": "mean", "zero": "zero"}

Cell = tuple[int | None, int | None]  # (position or None = all, channel or None = all)


@dataclass(frozen=True)
class Patch:
    """Replace ``cells`` of hook ``hook`` with values from ``source``.

    ``source`` is one of ``clean`` / ``corrupt`` (the same example's run), ``mean`` (mean over
    the task's corrupt prompts of the same length, per position), ``zero``, or ``recorded``
    (the values an earlier condition recorded under the name ``recording``; see
    :meth:`from_recording`).
    """

    hook: str
    source: str
    cells: frozenset[Cell]
    complement: bool = False
    read: str = ""  # hook whose cached values are the source (default: ``hook``)
    minus: str = ""  # hook of the same pass subtracted from the source (resid_mid)
    recording: str = ""  # the recording a ``recorded`` source reads (its content name)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"patch source {self.source!r}; valid: {', '.join(SOURCES)}")
        if (self.source == "recorded") != bool(self.recording):
            raise ValueError("a recorded source names its recording, and only it does")

    @classmethod
    def from_recording(cls, hook: str, recording: str, cells: Iterable[Cell]) -> Patch:
        """Set ``cells`` of ``hook`` to the values recorded under ``recording`` (a name
        :func:`causal_mi.engine.address.record_key` gives)."""
        return cls(hook, "recorded", frozenset(cells), recording=recording)

    @property
    def read_hook(self) -> str:
        return self.read or self.hook


Receiver = tuple  # ("q"|"k"|"v", layer, head) | ("mlp", layer) | ("logits",)


@dataclass(frozen=True)
class EdgePlan:
    """Edge-level intervention (path patching): receivers read the ablated output of a
    sender instead of its current one. ``keep`` lists (sender index, receiver) pairs; with
    ``complement=True`` every *other* edge of the model graph is ablated (a circuit run),
    otherwise exactly the listed edges are."""

    keep: frozenset[tuple[int, Receiver]]
    source: str  # "corrupt" | "mean" | "zero"
    complement: bool = True


@dataclass(frozen=True)
class Condition:
    """One intervention: a base input, patches, and hooks whose values to record. A
    condition with ``edges`` runs on the engine's own forward pass instead of hooks."""

    base: str  # "clean" | "corrupt"
    patches: tuple[Patch, ...] = ()
    record: tuple[tuple[str, str], ...] = ()  # (key, hook name)
    label: str = field(default="", compare=False)  # a name for people: not its identity
    edges: EdgePlan | None = None


def cells_of(site: Site) -> frozenset[Cell]:
    """The cells a site covers inside its hook activation."""
    hp = hook_point(site)
    channel = hp.channel if hp.channel >= 0 else None
    positions: Iterable[int | None] = site.pos if site.pos is not None else (None,)
    return frozenset((p, channel) for p in positions)


def site_patches(sites: Iterable[Site], source: str) -> tuple[Patch, ...]:
    """Patches replacing each site with ``source`` (sites sharing a hook are merged)."""
    by_hook: dict[HookPoint, set[Cell]] = {}
    for site in sites:
        hp = hook_point(site)
        by_hook.setdefault(HookPoint(hp.name, read=hp.read, minus=hp.minus), set()).update(
            cells_of(site)
        )
    return tuple(
        Patch(hp.name, source, frozenset(c), read=hp.read, minus=hp.minus)
        for hp, c in sorted(by_hook.items(), key=lambda kv: kv[0].name)
    )


def component_sites(dims: ModelDims) -> list[Site]:
    """Every component of the model graph at node level: all heads and all MLPs."""
    out = [Site(Kind.HEAD, layer, h) for layer in range(dims.n_layers) for h in range(dims.n_heads)]
    if not dims.attn_only:
        out += [Site(Kind.MLP, layer) for layer in range(dims.n_layers)]
    return out


def outside_patches(circuit: Iterable[Site], dims: ModelDims, source: str) -> tuple[Patch, ...]:
    """Patches ablating every component cell not covered by ``circuit`` (node level).

    Head inputs count as their head; a neuron keeps only itself, so the rest of its MLP is
    ablated neuron by neuron. Residual-stream nodes are not components and ablate nothing.
    """
    keep: dict[str, set[Cell]] = {}
    partial_mlp: set[int] = set()
    for site in circuit:
        if site.kind in (Kind.RESID, Kind.EMBED, Kind.LOGITS):
            continue
        comp = site.component() if site.kind is not Kind.MLP_IN else Site(Kind.MLP, site.layer)
        if site.kind is Kind.NEURON:
            partial_mlp.add(site.layer)
        comp = comp.at(site.pos)
        keep.setdefault(hook_point(comp).name, set()).update(cells_of(comp))
    patches: list[Patch] = []
    hooks = sorted({hook_point(s).name for s in component_sites(dims)})
    for layer in sorted(partial_mlp):
        if layer_hook(layer, "mlp_out") in keep:
            continue  # the whole MLP (or some positions of it) is declared: patch its output
        hooks.remove(layer_hook(layer, "mlp_out"))
        hooks.append(layer_hook(layer, "mlp_post"))
    for h in hooks:
        patches.append(Patch(h, source, frozenset(keep.get(h, ())), complement=True))
    return tuple(patches)


class NotAnEdgeSender(ValueError):
    """An edge whose sender is not a whole component (embed, a head, an MLP)."""


def sender_index(site: Site, dims: ModelDims) -> int:
    """Index of a sender in the functional forward pass, in computation order: embed, then
    each layer's heads and its MLP (see engine.functional)."""
    if site.pos is not None:
        raise NotAnEdgeSender(f"{site}: edges carry whole components, not positions")
    if site.kind is Kind.EMBED:
        return 0
    per_layer = dims.n_heads + (0 if dims.attn_only else 1)
    if site.kind is Kind.HEAD:
        return 1 + site.layer * per_layer + site.head
    if site.kind is Kind.MLP:
        return 1 + site.layer * per_layer + dims.n_heads
    raise NotAnEdgeSender(f"{site}: an edge-level sender must be embed, a head or an MLP")


def receiver_key(site: Site) -> Receiver:
    if site.kind is Kind.HEAD_INPUT:
        return (site.channel, site.layer, site.head)
    if site.kind is Kind.MLP_IN:
        return ("mlp", site.layer)
    if site.kind is Kind.LOGITS:
        return ("logits",)
    raise NotAnEdgeSender(f"{site} is not a component input")


def post_ln(c: Condition) -> Condition:
    """``c`` for a post-LN encoder: a ``resid_mid`` patch (planned as a write through the
    attention output, ``attn_out := value - resid_pre``, which is exact only where the block
    adds ``attn_out`` to ``resid_pre`` unnormalized) writes the normalized stream itself."""
    if not any(p.minus for p in c.patches):
        return c
    patches = tuple(
        replace(p, hook=p.read_hook, read="", minus="") if p.minus else p for p in c.patches
    )
    return replace(c, patches=patches)
