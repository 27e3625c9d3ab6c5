"""Resolve a validated hypothesis: node names -> sites, edges, claims, graph checks.

Everything here is pure: no model weights are needed. Checks that need the model's shape
(layer and head ranges, MLPs in attention-only models) live in :func:`check_dims`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from causal_mi.errors import Location, Problem, did_you_mean
from causal_mi.spec.claims import IMPLICATIONS, PATHS, Claim, ClaimSyntaxError, parse_claim
from causal_mi.spec.schema import Hypothesis, NodeAt
from causal_mi.spec.sites import (
    HEAD_INPUTS,
    HEAD_SUFFIXES,
    SITE_FORMS,
    Kind,
    Position,
    Role,
    Site,
    SiteSyntaxError,
    format_site,
    looks_like_site,
    parse_site,
    with_input,
)


@dataclass(frozen=True)
class Edge:
    """A declared causal path ``sender -> receiver`` (receiver is a component input)."""

    sender: Site
    receiver: Site
    text: str
    location: Location

    def __str__(self) -> str:
        return f"{format_site(self.sender)} -> {format_site(self.receiver)}"


@dataclass(frozen=True)
class ResolvedClaim:
    claim: Claim
    sites: tuple[Site, ...]
    location: Location


@dataclass(frozen=True)
class ModelDims:
    """The shape facts validation needs from a model."""

    n_layers: int
    n_heads: int
    d_mlp: int
    attn_only: bool


@dataclass(frozen=True)
class ResolvedHypothesis:
    """A hypothesis whose names all point to sites; the engine's input."""

    spec: Hypothesis
    path: Path
    nodes: dict[str, Site]
    edges: tuple[Edge, ...]
    claims: tuple[ResolvedClaim, ...]
    site_refs: tuple[tuple[Site, Location], ...] = field(repr=False)
    model_location: Location
    task_location: Location

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def circuit(self) -> tuple[Site, ...]:
        """The circuit's components (node sites, de-duplicated, in declaration order)."""
        seen: dict[Site, None] = {}
        for s in self.nodes.values():
            seen.setdefault(s, None)
        return tuple(seen)

    def name_of(self, site: Site) -> str:
        """The user's node name for ``site`` if it has one, else the site name."""
        for name, s in self.nodes.items():
            if s == site:
                return name
        return format_site(site)


class _Resolver:
    def __init__(
        self,
        hyp: Hypothesis,
        root: object,
        file: str,
        broken_nodes: Iterable[str] = (),
        skip: Iterable[tuple[str, int]] = (),
    ):
        from causal_mi.spec.yaml_source import locate

        self.hyp, self.root, self.file = hyp, root, file
        self.problems: list[Problem] = []
        self.nodes: dict[str, Site] = {}
        # Nodes already reported as invalid: references to them are not reported again.
        self.broken: set[str] = set(broken_nodes)
        self.skip: set[tuple[str, int]] = set(skip)
        self.site_refs: list[tuple[Site, Location]] = []
        self._locate = locate

    def loc(self, *path: object, key: bool = False) -> Location:
        return self._locate(self.root, tuple(path), self.file, key=key)

    def error(self, where: Location, message: str) -> None:
        self.problems.append(Problem(where, message))

    # nodes -------------------------------------------------------------------------------
    def resolve_nodes(self) -> None:
        for name, value in self.hyp.nodes.items():
            where = self.loc("nodes", name)
            if name in ("embed", "logits") or looks_like_site(name):
                self.error(
                    self.loc("nodes", name, key=True),
                    f"node name '{name}' looks like a site name; choose a plain name "
                    "(for example 'prev' or 'ind') and write the site as its value",
                )
                continue
            text, pos = (value.at, value.pos) if isinstance(value, NodeAt) else (value, None)
            try:
                site = parse_site(text)
            except SiteSyntaxError:
                self.error(
                    where, f"unknown site '{text}' for node '{name}'; valid forms: {SITE_FORMS}"
                )
                self.broken.add(name)
                continue
            if site.kind in (Kind.LOGITS, Kind.EMBED):
                self.error(
                    where,
                    f"node '{name}' cannot be '{text}': embed and logits are always part "
                    "of the graph; name components (heads, MLPs, neurons, residual points)",
                )
                self.broken.add(name)
                continue
            if pos is not None:
                positions = _positions(pos)
                if positions is None:
                    self.error(
                        self.loc("nodes", name, "pos"),
                        f"node '{name}': a role in pos must be a name (letters, digits, _) "
                        f"such as END or IO, got {pos!r}",
                    )
                    self.broken.add(name)
                    continue
                site = site.at(positions)
            self.nodes[name] = site
            self.site_refs.append((site, where))

    def resolve_ref(self, ref: str, where: Location) -> Site | None:
        """A node name, ``node.q|k|v|pattern``, or a site name -> Site (records an error
        otherwise)."""
        ref = ref.strip()
        if ref in self.nodes:
            return self.nodes[ref]
        base, _, suffix = ref.rpartition(".")
        if ref in self.broken or (base in self.broken and suffix in HEAD_SUFFIXES):
            return None  # the node's own definition is already reported
        if base in self.nodes and suffix in HEAD_SUFFIXES:
            try:
                site = with_input(self.nodes[base], suffix)
            except SiteSyntaxError as exc:
                self.error(where, f"'{ref}': {exc}")
                return None
            # Not recorded in site_refs: the node's own entry already stands for its layer
            # and head, so a bad node is reported once, at its definition.
            return site
        try:
            site = parse_site(ref)
        except SiteSyntaxError:
            names = list(self.nodes) + [
                f"{n}.{c}"
                for n, s in self.nodes.items()
                if s.kind is Kind.HEAD
                for c in HEAD_SUFFIXES
            ]
            hint = did_you_mean(ref, names + ["embed", "logits"])
            self.error(where, f"unknown node or site '{ref}'; {hint}; or a site: {SITE_FORMS}")
            return None
        self.site_refs.append((site, where))
        return site

    # edges -------------------------------------------------------------------------------
    def resolve_edges(self) -> list[Edge]:
        edges: list[Edge] = []
        for i, text in enumerate(self.hyp.edges):
            if ("edges", i) in self.skip:
                continue
            where = self.loc("edges", i)
            parts = [p.strip() for p in text.split("->")]
            if len(parts) != 2 or not all(parts):
                self.error(
                    where,
                    f"malformed edge '{text}': write 'sender -> receiver', "
                    "for example 'prev -> ind.k'",
                )
                continue
            sender, receiver = (self.resolve_ref(p, where) for p in parts)
            if sender is None or receiver is None:
                continue
            pattern = next((s for s in (sender, receiver) if s.kind is Kind.PATTERN), None)
            if pattern is not None:
                rule = _PATTERN_SENDER if pattern is sender else _PATTERN_RECEIVER
                self.error(
                    where,
                    rule.format(
                        text=text,
                        site=format_site(pattern),
                        head=format_site(pattern.without_pos().component()),
                    ),
                )
                continue
            if sender.kind is Kind.LOGITS or sender.is_input:
                self.error(
                    where,
                    f"edge '{text}': the sender must be a component output (embed, a "
                    f"head, an MLP, a neuron or a residual point), not {format_site(sender)}",
                )
                continue
            for rcv in _receiver_inputs(receiver):
                if rcv is None:
                    self.error(
                        where,
                        f"edge '{text}': the receiver must be a component input: a "
                        "head (or its .q/.k/.v), an MLP (or .mlp.in) or logits, not "
                        f"{format_site(receiver)}",
                    )
                    break
                edges.append(Edge(sender, rcv, text, where))
        self._check_graph(edges)
        return edges

    def _check_graph(self, edges: list[Edge]) -> None:
        import networkx as nx

        graph = nx.DiGraph()
        for e in edges:
            graph.add_edge(
                format_site(e.sender.component()), format_site(e.receiver.component()), edge=e
            )
        in_cycle: set[tuple[str, str]] = set()
        for cycle in nx.simple_cycles(graph):
            pairs = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
            in_cycle.update(pairs)
            # Report at the edge declared last: the one that closes the cycle.
            k = max(range(len(pairs)), key=lambda j: _position(graph.edges[pairs[j]]["edge"]))
            closing = graph.edges[pairs[k]]["edge"]
            if len(cycle) == 1:
                self.error(
                    closing.location,
                    f"edge '{closing.text}' feeds {cycle[0]} into its own input; a component "
                    "cannot cause itself (a sender must come from an earlier layer)",
                )
                continue
            path = cycle[k + 1 :] + cycle[: k + 1]  # ... -> sender, then the closing hop
            self.error(
                closing.location,
                f"edge '{closing.text}' closes a cycle: "
                + " -> ".join(path + path[:1])
                + "; a causal graph must be acyclic (a sender must come from an earlier layer)",
            )
        for e in edges:
            pair = (format_site(e.sender.component()), format_site(e.receiver.component()))
            if pair in in_cycle:
                continue
            same_layer = (
                e.sender.kind is Kind.HEAD
                and e.receiver.kind is Kind.HEAD_INPUT
                and e.sender.layer == e.receiver.layer
            )
            if same_layer:
                self.error(
                    e.location,
                    f"edge '{e.text}' stays inside layer {e.sender.layer}: the heads of one "
                    f"layer run in parallel, so {format_site(e.sender)}'s output cannot reach "
                    f"{format_site(e.receiver)}; a sender must come from an earlier layer "
                    "(or feed logits)",
                )
            elif e.sender.order_key() >= e.receiver.order_key():
                self.error(
                    e.location,
                    f"edge '{e.text}' goes backwards in the model's computation "
                    f"order: {format_site(e.sender)} (layer {e.sender.layer}) is computed "
                    f"after {format_site(e.receiver)} (layer {e.receiver.layer}) reads its "
                    "input; a sender must come from an earlier layer (or feed logits)",
                )

    # claims ------------------------------------------------------------------------------
    def resolve_claims(self) -> list[ResolvedClaim]:
        out: list[ResolvedClaim] = []
        for i, text in enumerate(self.hyp.claims):
            if ("claims", i) in self.skip:
                continue
            where = self.loc("claims", i)
            try:
                claim = parse_claim(text)
            except ClaimSyntaxError as exc:
                self.error(where, str(exc))
                continue
            sites = [self.resolve_ref(a, where) for a in claim.args]
            if any(s is None for s in sites):
                continue
            ok = True
            if claim.quantity in PATHS:
                if sites[-1].kind is not Kind.LOGITS:
                    self.error(where, f"'{claim.label}': the path must end at logits")
                    ok = False
                for a, b in zip(sites, sites[1:], strict=False):
                    if a.order_key() >= b.order_key():
                        self.error(
                            where,
                            f"'{claim.label}': {format_site(a)} does not come before "
                            f"{format_site(b)} in the model's computation order",
                        )
                        ok = False
            elif sites and sites[0].kind in (Kind.LOGITS,):
                self.error(where, f"'{claim.label}': logits cannot be ablated; name a component")
                ok = False
            if claim.quantity == "minimality" and sites and sites[0] not in self.nodes.values():
                self.error(
                    where,
                    f"'{claim.label}': minimality is about a circuit node; "
                    f"{did_you_mean(claim.args[0], self.nodes)}",
                )
                ok = False
            if claim.quantity == IMPLICATIONS and not self.hyp.edges:
                self.error(where, f"'{claim.text}' needs a graph: declare its edges under 'edges'")
                ok = False
            if claim.quantity in ("faithfulness", "complement", "minimality") and not self.nodes:
                self.error(
                    where, f"'{claim.label}' needs a circuit: declare its components under 'nodes'"
                )
                ok = False
            if ok:
                out.append(ResolvedClaim(claim, tuple(sites), where))  # type: ignore[arg-type]
        return out


_PATTERN_SENDER = (
    "edge '{text}': an attention pattern ({site}) is not an edge sender: it writes nothing "
    "to the residual stream, only weights the head's values; use the head itself as the "
    "sender (for example '{head} -> ...'), or claim on the pattern node (effect, restore)"
)
_PATTERN_RECEIVER = (
    "edge '{text}': an attention pattern ({site}) is not an edge receiver: the pattern is "
    "computed from the head's query and key, so edges end at '{head}.q' or '{head}.k' (or "
    "'{head}' for q, k and v); claim on the pattern node instead (effect, restore, indirect)"
)


def _positions(pos: int | str | list[int | str]) -> tuple[Position, ...] | None:
    """A node's ``pos`` as positions: integers stay, names become :class:`Role` (None when a
    name is not an identifier)."""
    out: list[Position] = []
    for p in pos if isinstance(pos, list) else [pos]:
        if isinstance(p, str):
            if not p.isidentifier():
                return None
            out.append(Role(p))
        else:
            out.append(p)
    return tuple(out)


def _position(edge: Edge) -> tuple[int, int]:
    return (edge.location.line, edge.location.col)


def _receiver_inputs(site: Site) -> list[Site | None]:
    """The input sites an edge into ``site`` reaches (a bare head means q, k and v)."""
    if site.kind is Kind.HEAD:
        return [with_input(site.without_pos(), c) for c in HEAD_INPUTS]
    if site.kind is Kind.MLP:
        return [Site(Kind.MLP_IN, site.layer)]
    if site.kind in (Kind.HEAD_INPUT, Kind.MLP_IN, Kind.LOGITS):
        return [site]
    return [None]


def resolve(
    hyp: Hypothesis,
    root: object,
    path: Path,
    *,
    broken_nodes: Iterable[str] = (),
    skip: Iterable[tuple[str, int]] = (),
) -> tuple[ResolvedHypothesis | None, list[Problem]]:
    """Resolve names and check the graph; returns the problems found (all of them).

    ``broken_nodes`` are node names whose definitions were already reported as invalid (so
    references to them are not reported again); ``skip`` holds ``("edges" | "claims", index)``
    items already reported.
    """
    r = _Resolver(hyp, root, str(path), broken_nodes, skip)
    r.resolve_nodes()
    edges = r.resolve_edges()
    claims = r.resolve_claims()
    if r.problems:
        return None, r.problems
    return ResolvedHypothesis(
        spec=hyp,
        path=path,
        nodes=r.nodes,
        edges=tuple(edges),
        claims=tuple(claims),
        site_refs=tuple(r.site_refs),
        model_location=r.loc("model"),
        task_location=r.loc("task"),
    ), []


def check_dims(hyp: ResolvedHypothesis, dims: ModelDims) -> list[Problem]:
    """Problems with sites that do not exist in a model of shape ``dims``."""
    problems: list[Problem] = []
    seen: set[tuple[Site, Location]] = set()
    for site, where in hyp.site_refs:
        if (site, where) in seen:
            continue
        seen.add((site, where))
        name = format_site(site)
        if site.kind in (Kind.EMBED, Kind.LOGITS):
            continue
        if not 0 <= site.layer < dims.n_layers:
            problems.append(
                Problem(
                    where,
                    f"{name}: layer {site.layer} is out of range; the model "
                    f"has layers 0..{dims.n_layers - 1}",
                )
            )
            continue
        heads = (Kind.HEAD, Kind.HEAD_INPUT, Kind.PATTERN)
        if site.kind in heads and not 0 <= site.head < dims.n_heads:
            problems.append(
                Problem(
                    where,
                    f"{name}: head {site.head} is out of range; layer "
                    f"{site.layer} has heads 0..{dims.n_heads - 1}",
                )
            )
        if site.kind in (Kind.MLP, Kind.MLP_IN, Kind.NEURON) and dims.attn_only:
            problems.append(
                Problem(
                    where,
                    f"{name}: this model is attention-only and has no MLPs; "
                    "valid sites: embed, logits, L<l>H<h>, L<l>H<h>.q|k|v, "
                    "L<l>.resid_pre, L<l>.resid_post",
                )
            )
        elif site.kind is Kind.NEURON and not 0 <= site.index < dims.d_mlp:
            problems.append(
                Problem(
                    where,
                    f"{name}: neuron {site.index} is out of range; the MLP "
                    f"has neurons 0..{dims.d_mlp - 1}",
                )
            )
        if site.kind is Kind.RESID and site.channel == "resid_mid" and dims.attn_only:
            problems.append(
                Problem(
                    where,
                    f"{name}: an attention-only model has no resid_mid; "
                    f"use L{site.layer}.resid_post",
                )
            )
    return problems
