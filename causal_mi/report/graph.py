"""The hypothesis graph as an SVG figure: nodes in layers (embed at the bottom, logits at the
top), one readable label per node and per edge, edge width by the measured effect.

Layout (Sugiyama style): each node sits in the row of its place in the computation; an edge
that skips rows passes through a waypoint in every row between, so it never runs under a
node; the order within rows comes from Graphviz's ``dot`` when it is installed (crossing
minimisation), otherwise from barycentre sweeps over a networkx graph. Edge labels are placed
greedily along their edges where they overlap no node and no other label; when some cannot
be placed the rows are spread further apart and the placement tried again.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import networkx as nx

from causal_mi.report.svg import color, text_width

NODE_H = 38
ROW_GAP = 130
MIN_W = 1000
LABEL_SIZE = 11
_TRIES = 5


@dataclass(frozen=True)
class GraphNode:
    id: str
    title: str  # the name the file gives it (bold line)
    detail: str  # the site and its measured effect (second line)
    rank: int  # computation order: embed lowest, logits highest
    effect: float | None = None


@dataclass(frozen=True)
class GraphEdge:
    src: str
    dst: str
    label: str  # e.g. "k +0.25"
    weight: float | None  # |measured effect| drawn as width; None: not measured
    tip: str = ""
    negative: bool = False


@dataclass
class _Box:
    x: float  # centre
    y: float
    w: float
    h: float

    def hits(self, o: _Box, pad: float = 2.0) -> bool:
        return (
            abs(self.x - o.x) * 2 < self.w + o.w + 2 * pad
            and abs(self.y - o.y) * 2 < self.h + o.h + 2 * pad
        )


@dataclass
class Layout:
    width: float
    height: float
    nodes: dict[str, _Box]
    paths: dict[int, list[tuple[float, float]]]  # edge index -> points, sender to receiver
    labels: dict[int, _Box] = field(default_factory=dict)  # edge index -> label box
    engine: str = "networkx"


def node_width(n: GraphNode) -> float:
    return max(text_width(n.title, 12) * 1.08, text_width(n.detail, 11)) + 18


def _rows(nodes: Sequence[GraphNode]) -> dict[str, int]:
    ranks = sorted({n.rank for n in nodes})
    return {n.id: ranks.index(n.rank) for n in nodes}


def _chains(nodes, edges, row) -> tuple[nx.DiGraph, list[list[str]]]:
    """The layered graph with a waypoint in every row an edge skips; per edge its chain."""
    g = nx.DiGraph()
    for n in nodes:
        g.add_node(n.id, row=row[n.id], dummy=False)
    chains = []
    for i, e in enumerate(edges):
        chain = [e.src]
        for r in range(row[e.src] + 1, row[e.dst]):
            d = f"__e{i}_{r}"
            g.add_node(d, row=r, dummy=True)
            chain.append(d)
        chain.append(e.dst)
        for a, b in zip(chain, chain[1:], strict=False):
            g.add_edge(a, b)
        chains.append(chain)
    return g, chains


def _order_barycentre(g: nx.DiGraph) -> dict[int, list[str]]:
    """Rows ordered by the mean position of their neighbours, sweeping up then down."""
    rows: dict[int, list[str]] = {}
    for v, d in g.nodes(data=True):
        rows.setdefault(d["row"], []).append(v)
    for _ in range(4):
        for seq, nbrs in ((sorted(rows), g.predecessors), (sorted(rows)[::-1], g.successors)):
            for r in seq:
                pos = {}
                for k, v in enumerate(rows[r]):
                    ps = [
                        rows[g.nodes[u]["row"]].index(u) / max(len(rows[g.nodes[u]["row"]]), 1)
                        for u in nbrs(v)
                    ]
                    pos[v] = sum(ps) / len(ps) if ps else k / max(len(rows[r]), 1)
                rows[r].sort(key=lambda v: pos[v])
    return rows


def parse_plain(text: str) -> dict[str, float]:
    """Node x positions from Graphviz ``-Tplain`` output (``node NAME X Y W H ...``)."""
    xs = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "node":
            xs[parts[1].strip('"')] = float(parts[2])
    return xs


def _order_graphviz(g: nx.DiGraph) -> dict[int, list[str]] | None:
    """Row orders from ``dot`` (None when it is missing or fails)."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    ids = {v: f"n{k}" for k, v in enumerate(g.nodes)}
    lines = ["digraph G { rankdir=BT; node [shape=box, width=1.2, height=0.4];"]
    rows: dict[int, list[str]] = {}
    for v, d in g.nodes(data=True):
        rows.setdefault(d["row"], []).append(v)
    for r in sorted(rows):
        lines.append("{ rank=same; " + " ".join(ids[v] for v in rows[r]) + "; }")
    for a, b in g.edges:
        lines.append(f"{ids[a]} -> {ids[b]};")
    for r in sorted(rows)[:-1]:  # keep empty-free rows in order
        lines.append(f"{ids[rows[r][0]]} -> {ids[rows[r + 1][0]]} [style=invis];")
    lines.append("}")
    try:
        res = subprocess.run(
            [dot, "-Tplain"], input="\n".join(lines), capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    xs = parse_plain(res.stdout)
    back = {i: v for v, i in ids.items()}
    if set(back) - set(xs):
        return None
    return {r: sorted(vs, key=lambda v: xs[ids[v]]) for r, vs in rows.items()}


def layout(
    nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], *, row_gap: float = ROW_GAP
) -> Layout:
    """Positions of nodes, edge paths and edge-label boxes (no label overlaps another label
    or a node; an edge whose label found no place has no entry in ``labels``)."""
    row = _rows(nodes)
    g, chains = _chains(nodes, edges, row)
    order = _order_graphviz(g)
    engine = "graphviz"
    if order is None:
        order, engine = _order_barycentre(g), "networkx"
    widths = {n.id: node_width(n) for n in nodes}
    dummy_w = 70.0  # room for an edge label beside a waypoint
    n_rows = max(order) + 1 if order else 1
    row_w = {
        r: sum(widths.get(v, dummy_w) for v in vs) + 40 * (len(vs) + 1) for r, vs in order.items()
    }
    width = max([MIN_W, *row_w.values()])
    height = 30 + NODE_H + (n_rows - 1) * row_gap + NODE_H / 2 + 20
    pos: dict[str, tuple[float, float]] = {}
    for r, vs in order.items():
        y = height - 30 - NODE_H / 2 - r * row_gap
        total = sum(widths.get(v, dummy_w) for v in vs)
        gap = (width - total) / (len(vs) + 1)
        x = gap
        for v in vs:
            w = widths.get(v, dummy_w)
            pos[v] = (x + w / 2, y)
            x += w + gap
    boxes = {n.id: _Box(*pos[n.id], widths[n.id], NODE_H) for n in nodes}
    paths = {}
    for i, chain in enumerate(chains):
        (x0, y0), (x1, y1) = pos[chain[0]], pos[chain[-1]]
        pts = [(x0, y0 - NODE_H / 2)]
        pts += [pos[d] for d in chain[1:-1]]
        pts.append((x1, y1 + NODE_H / 2))
        paths[i] = pts
    out = Layout(width, height, boxes, paths, engine=engine)
    _place_labels(out, edges)
    return out


def _along(pts: list[tuple[float, float]], t: float) -> tuple[float, float]:
    """The point a fraction ``t`` of the way along a polyline."""
    segs = [
        ((a, b), ((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5)
        for a, b in zip(pts, pts[1:], strict=False)
    ]
    total = sum(s for _, s in segs) or 1.0
    goal = t * total
    for (a, b), s in segs:
        if goal <= s or s == 0:
            f = goal / s if s else 0.0
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
        goal -= s
    return pts[-1]


_FRACTIONS = (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78, 0.15, 0.85)


def _place_labels(lay: Layout, edges: Sequence[GraphEdge]) -> None:
    taken = list(lay.nodes.values())
    # shorter edges first: they have the fewest free spots
    order = sorted(range(len(edges)), key=lambda i: len(lay.paths[i]))
    for i in order:
        if not edges[i].label:
            continue
        w = text_width(edges[i].label, LABEL_SIZE) + 8
        for t in _FRACTIONS:
            x, y = _along(lay.paths[i], t)
            for dx in (0.0, w / 2 + 4, -w / 2 - 4):
                box = _Box(x + dx, y, w, LABEL_SIZE + 5)
                if not any(box.hits(o) for o in taken) and 0 < box.x - w / 2 < lay.width - w / 2:
                    lay.labels[i] = box
                    taken.append(box)
                    break
            if i in lay.labels:
                break


def fit(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]) -> Layout:
    """The first layout, spreading rows further apart, where every edge label has a place."""
    gap = ROW_GAP
    for _ in range(_TRIES):
        lay = layout(nodes, edges, row_gap=gap)
        if len(lay.labels) == sum(1 for e in edges if e.label):
            return lay
        gap *= 1.4
    return lay


def _path_d(pts: list[tuple[float, float]]) -> str:
    """A smooth path through the points (vertical tangents at each waypoint)."""
    d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        my = (y0 + y1) / 2
        d += f" C{x0:.1f},{my:.1f} {x1:.1f},{my:.1f} {x1:.1f},{y1:.1f}"
    return d


def draw(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], *, fig_id: str = "graph") -> str:
    """The graph as inline SVG; hover shows every edge's and node's full numbers."""
    lay = fit(nodes, edges)
    top = max((abs(e.weight) for e in edges if e.weight is not None), default=0.0) or 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="figure graph" id="{fig_id}" '
        f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" width="{lay.width:.0f}" '
        f'height="{lay.height:.0f}" role="img" aria-label="hypothesis graph" '
        f'data-layout="{lay.engine}" font-family="system-ui,sans-serif">',
        "<title>hypothesis graph: node effect and edge effect, fractions of G</title>",
        f'<defs><marker id="{fig_id}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
    ]
    for i, e in enumerate(edges):
        width = 1.2 if e.weight is None else 1.2 + 5.0 * min(abs(e.weight) / top, 1.0)
        stroke = "#999" if e.weight is None else ("#2166ac" if e.negative else "#444")
        dash = ' stroke-dasharray="4 3"' if e.weight is None else ""
        out.append(
            f'<path class="edge" d="{_path_d(lay.paths[i])}" fill="none" stroke="{stroke}" '
            f'stroke-width="{width:.1f}" stroke-opacity="0.75"{dash} '
            f'marker-end="url(#{fig_id}-arrow)"><title>{escape(e.tip)}</title></path>'
        )
    for i, box in lay.labels.items():
        e = edges[i]
        out.append(
            f'<g class="edge-label"><title>{escape(e.tip)}</title>'
            f'<rect x="{box.x - box.w / 2:.1f}" y="{box.y - box.h / 2:.1f}" '
            f'width="{box.w:.1f}" height="{box.h:.1f}" rx="3" fill="#fff" '
            'fill-opacity="0.92" stroke="#ccc" stroke-width="0.5"/>'
            f'<text x="{box.x:.1f}" y="{box.y + 4:.1f}" font-size="{LABEL_SIZE}" '
            f'text-anchor="middle" fill="#222">{escape(e.label)}</text></g>'
        )
    for n in nodes:
        b = lay.nodes[n.id]
        fill = "#eef1f4" if n.effect is None else color(n.effect, 1.0)
        out.append(
            f'<g class="node" data-node="{escape(n.id)}"><title>{escape(n.title)}: '
            f"{escape(n.detail)}</title>"
            f'<rect x="{b.x - b.w / 2:.1f}" y="{b.y - b.h / 2:.1f}" width="{b.w:.1f}" '
            f'height="{b.h:.1f}" rx="6" fill="{fill}" stroke="#333"/>'
            f'<text x="{b.x:.1f}" y="{b.y - 3:.1f}" font-size="12" font-weight="bold" '
            f'text-anchor="middle">{escape(n.title)}</text>'
            f'<text x="{b.x:.1f}" y="{b.y + 12:.1f}" font-size="11" text-anchor="middle" '
            f'fill="#333">{escape(n.detail)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)
