"""Inline SVG drawings for the HTML report: heatmaps and the hypothesis graph. No external
assets, so the report opens offline."""

from __future__ import annotations

import math
from html import escape

import numpy as np


def _color(v: float, vmax: float) -> str:
    """Diverging blue (negative) - white - red (positive)."""
    if not math.isfinite(v):
        return "#ddd"
    t = max(-1.0, min(1.0, v / vmax)) if vmax > 0 else 0.0
    if t >= 0:
        r, g, b = 255, int(255 * (1 - t)), int(255 * (1 - t))
    else:
        r, g, b = int(255 * (1 + t)), int(255 * (1 + t)), 255
    return f"rgb({r},{g},{b})"


def heatmap(
    grid: np.ndarray,
    rows: list[str],
    cols: list[str],
    *,
    title: str,
    cell: int = 26,
    vmax: float | None = None,
    fmt: str = "{:+.2f}",
) -> str:
    """A labelled heatmap; every cell shows its value on hover."""
    grid = np.asarray(grid, dtype=float)
    finite = grid[np.isfinite(grid)]
    vmax = vmax or (float(np.abs(finite).max()) if finite.size else 1.0) or 1.0
    left, top = 70, 40
    w = max(left + cell * grid.shape[1] + 10, left + 7 * len(title))
    h = top + cell * grid.shape[0] + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, label in enumerate(rows):
        y = top + i * cell + cell * 0.65
        out.append(
            f'<text x="{left - 6}" y="{y:.0f}" font-size="11" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    for j, label in enumerate(cols):
        x = left + j * cell + cell / 2
        y = top + grid.shape[0] * cell + 12
        out.append(
            f'<text x="{x:.0f}" y="{y}" font-size="10" text-anchor="end" '
            f'transform="rotate(-60 {x:.0f} {y})">{escape(label)}</text>'
        )
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            out.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 1}" '
                f'height="{cell - 1}" fill="{_color(v, vmax)}"><title>{escape(rows[i])} '
                f"{escape(cols[j])}: {fmt.format(v)}</title></rect>"
            )
    out.append("</svg>")
    return "\n".join(out)


def graph(
    nodes: list[tuple[str, str, int, float | None]],
    edges: list[tuple[str, str, str]],
    *,
    n_layers: int,
) -> str:
    """The hypothesis graph: ``nodes`` (id, label, layer, effect), ``edges`` (from, to,
    label), laid out by layer (embed at the bottom, logits at the top)."""
    by_layer: dict[int, list[tuple[str, str, int, float | None]]] = {}
    for n in nodes:
        by_layer.setdefault(n[2], []).append(n)
    width, row = 640, 80
    height = row * (n_layers + 2) + 20
    pos: dict[str, tuple[float, float]] = {}
    for layer, items in by_layer.items():
        y = height - 30 - (layer + 1) * row
        for k, n in enumerate(items):
            pos[n[0]] = ((k + 1) * width / (len(items) + 1), y)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'role="img" aria-label="hypothesis graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker>'
        "</defs>",
    ]
    for a, b, label in edges:
        if a not in pos or b not in pos:
            continue
        (x1, y1), (x2, y2) = pos[a], pos[b]
        out.append(
            f'<line x1="{x1:.0f}" y1="{y1 - 14:.0f}" x2="{x2:.0f}" y2="{y2 + 16:.0f}" '
            'stroke="#555" marker-end="url(#arrow)"/>'
        )
        out.append(
            f'<text x="{(x1 + x2) / 2 + 4:.0f}" y="{(y1 + y2) / 2:.0f}" font-size="11" '
            f'fill="#333">{escape(label)}</text>'
        )
    for node_id, label, _, effect in nodes:
        x, y = pos[node_id]
        fill = "#eee" if effect is None else _color(effect, 1.0)
        out.append(
            f'<rect x="{x - 55:.0f}" y="{y - 14:.0f}" width="110" height="30" rx="6" '
            f'fill="{fill}" stroke="#333"/>'
        )
        out.append(
            f'<text x="{x:.0f}" y="{y + 5:.0f}" font-size="12" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
