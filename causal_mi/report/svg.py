"""Inline SVG figures for the reports: heatmaps with a colour scale, and the forest plot of
the claims. No external assets or scripts, so a figure opens offline and stands alone
(``sweep-*.svg`` files are these heatmaps written to disk).

Every figure carries a ``viewBox`` and scales to its container (readable from phone width
to a wide screen); every coloured mark carries its value in a ``<title>`` (shown on hover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

#: average advance of one character, in px per px of font size (system sans-serif);
#: generous, so an estimated box never clips its text
CHAR_EM = 0.62


def text_width(text: str, size: float) -> float:
    """Estimated rendered width of ``text`` at font ``size`` (px)."""
    return len(text) * size * CHAR_EM


_RED = (178, 24, 43)
_BLUE = (33, 102, 172)


def color(v: float, vmax: float, *, vmin: float | None = None) -> str:
    """Diverging blue (negative) - white - red (positive) on [-vmax, vmax]; with ``vmin`` =
    0 a sequential white - red scale on [0, vmax]. Non-finite values are grey."""
    if not math.isfinite(v):
        return "#ddd"
    t = max(-1.0, min(1.0, v / vmax)) if vmax > 0 else 0.0
    if vmin is not None:
        t = max(0.0, t)
    end = _RED if t >= 0 else _BLUE
    r, g, b = (int(round(255 + (c - 255) * abs(t))) for c in end)
    return f"rgb({r},{g},{b})"


def wrap(text: str, width: int) -> list[str]:
    """Greedy word wrap at ``width`` characters (a word longer than that keeps its line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


@dataclass(frozen=True)
class Scale:
    """The value range a heatmap's colours map to, and what the values are."""

    vmax: float
    sequential: bool  # True: [0, vmax], white to red; False: [-vmax, vmax]
    label: str

    def ticks(self) -> list[float]:
        if self.sequential:
            return [0.0, self.vmax / 2, self.vmax]
        return [-self.vmax, 0.0, self.vmax]


def _colorbar(fig_id: str, scale: Scale, x: float, y: float, height: float, fmt: str) -> str:
    """A vertical colour bar with ticks and the scale's label, top = largest value."""
    stops = []
    for k in range(11):
        t = k / 10
        v = scale.vmax * (1 - t) if scale.sequential else scale.vmax * (1 - 2 * t)
        stops.append(
            f'<stop offset="{t:.1f}" stop-color="'
            f'{color(v, scale.vmax, vmin=0.0 if scale.sequential else None)}"/>'
        )
    lo = 0.0 if scale.sequential else -scale.vmax
    out = [
        f'<g class="colorbar"><defs><linearGradient id="{fig_id}-grad" x1="0" y1="0" x2="0" '
        f'y2="1">{"".join(stops)}</linearGradient></defs>',
        f'<rect x="{x}" y="{y}" width="12" height="{height:.0f}" fill="url(#{fig_id}-grad)" '
        'stroke="#888" stroke-width="0.5"/>',
    ]
    for v in scale.ticks():
        ty = y + height * (scale.vmax - v) / (scale.vmax - lo)
        out.append(
            f'<line x1="{x + 12}" y1="{ty:.1f}" x2="{x + 16}" y2="{ty:.1f}" stroke="#555"/>'
            f'<text x="{x + 19}" y="{ty + 4:.1f}" font-size="11">{escape(fmt.format(v))}</text>'
        )
    out.append(
        f'<text x="{x + 6}" y="{y - 8}" font-size="11" text-anchor="middle">'
        f"{escape(scale.label)}</text></g>"
    )
    return "".join(out)


def heatmap(
    grid: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    *,
    title: str,
    row_axis: str,
    col_axis: str,
    scale_label: str = "fraction of G",
    cell: int = 26,
    vmax: float | None = None,
    sequential: bool = False,
    fmt: str = "{:+.2f}",
    fig_id: str = "hm",
) -> str:
    """A heatmap with its title (wrapped, never clipped), axis names, a colour bar and every
    cell's value on hover. ``vmax`` defaults to the largest absolute finite value."""
    grid = np.asarray(grid, dtype=float)
    finite = grid[np.isfinite(grid)]
    vmax = vmax or (float(np.abs(finite).max()) if finite.size else 1.0) or 1.0
    scale = Scale(vmax, sequential, scale_label)
    n_r, n_c = grid.shape
    left = int(max(text_width(r, 11) for r in rows) + 34) if rows else 40
    col_h = int(max(text_width(c, 10) for c in cols) * 0.87 + 14) if cols else 20
    grid_w = cell * n_c
    bar_x = left + grid_w + 18
    inner_w = bar_x + 60 + max(text_width(scale_label, 11) / 2 - 6, 0)
    title_lines = wrap(title, max(30, int((max(inner_w, 360) - 20) / (13 * CHAR_EM))))
    top = 18 * len(title_lines) + 30
    w = int(max(inner_w, 20 + max(text_width(t, 13) for t in title_lines)))
    h = int(top + cell * n_r + col_h + 22)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="figure heatmap" id="{fig_id}" '
        f'viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{escape(title)}" font-family="system-ui,sans-serif">',
        f"<title>{escape(title)}</title>",
    ]
    for k, line in enumerate(title_lines):
        out.append(
            f'<text x="10" y="{18 + 18 * k}" font-size="13" font-weight="bold">'
            f"{escape(line)}</text>"
        )
    for i, label in enumerate(rows):
        y = top + i * cell + cell * 0.65
        out.append(
            f'<text x="{left - 6}" y="{y:.0f}" font-size="11" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    for j, label in enumerate(cols):
        x = left + j * cell + cell / 2 + 3
        y = top + n_r * cell + 6
        out.append(
            f'<text x="{x:.0f}" y="{y}" font-size="10" text-anchor="end" '
            f'transform="rotate(-60 {x:.0f} {y})">{escape(label)}</text>'
        )
    mid_y = top + n_r * cell / 2
    out.append(
        f'<text x="12" y="{mid_y:.0f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {mid_y:.0f})" class="axis">{escape(row_axis)}</text>'
    )
    out.append(
        f'<text x="{left + grid_w / 2:.0f}" y="{h - 6}" font-size="12" text-anchor="middle" '
        f'class="axis">{escape(col_axis)}</text>'
    )
    for i in range(n_r):
        for j in range(n_c):
            v = grid[i, j]
            shown = fmt.format(v) if math.isfinite(v) else "n/a"
            out.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 1}" '
                f'height="{cell - 1}" fill="{color(v, vmax, vmin=0.0 if sequential else None)}"'
                f' data-value="{shown}"><title>{escape(row_axis)} {escape(rows[i])}, '
                f"{escape(col_axis)} {escape(cols[j])}: {shown}</title></rect>"
            )
    out.append(_colorbar(fig_id, scale, bar_x, top + 4, max(cell * n_r - 8, 60), fmt))
    out.append("</svg>")
    return "\n".join(out)


@dataclass(frozen=True)
class ForestRow:
    """One claim in the forest plot: estimate, interval, threshold and verdict."""

    label: str
    point: float
    lower: float
    upper: float
    op: str
    threshold: float  # the threshold, or the centre of an equivalence claim (``~=``)
    passed: bool
    tolerance: float = 0.0  # the half-width of an equivalence claim
    status: str = ""  # holds | fails | not decidable | undefined (default: from passed)

    @property
    def word(self) -> str:
        return self.status or ("holds" if self.passed else "fails")


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    out = []
    v = start
    while v <= hi + 1e-12:
        out.append(round(v, 10))
        v += step
    return out


def forest(rows: Sequence[ForestRow], *, fig_id: str = "forest") -> str:
    """Every claim on one axis: its interval (line), estimate (dot) and threshold (tick and
    the side that must be cleared), green when it holds and red when it fails."""
    finite = [
        x
        for r in rows
        for x in (r.lower, r.upper, r.point, r.threshold - r.tolerance, r.threshold + r.tolerance)
        if math.isfinite(x)
    ]
    lo, hi = (min(finite + [0.0]), max(finite + [0.0])) if finite else (0.0, 1.0)
    pad = (hi - lo) * 0.06 or 0.1
    lo, hi = lo - pad, hi + pad
    label_w = int(min(max((text_width(r.label, 12) for r in rows), default=100), 420)) + 20
    plot_w, row_h, top = 560, 30, 26
    verdict_w = 110
    w = label_w + plot_w + verdict_w + 20
    h = top + row_h * len(rows) + 40

    def x(v: float) -> float:
        return label_w + plot_w * (min(max(v, lo), hi) - lo) / (hi - lo)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="figure forest" id="{fig_id}" '
        f'viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="forest plot of the claims" font-family="system-ui,sans-serif">',
        "<title>estimate and interval of every claim, with its threshold</title>",
        f'<text x="{label_w}" y="14" font-size="11" fill="#555">fraction of G; dot: estimate, '
        "line: interval, bar: threshold</text>",
    ]
    axis_y = top + row_h * len(rows) + 4
    for t in _nice_ticks(lo, hi):
        out.append(
            f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{axis_y}" '
            f'stroke="{"#999" if t == 0 else "#eee"}"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 16}" font-size="11" text-anchor="middle">'
            f"{t:g}</text>"
        )
    for k, r in enumerate(rows):
        cy = top + row_h * k + row_h / 2
        word = r.word
        col = {"holds": "#1a7f37", "fails": "#cf222e"}.get(word, "#6e7781")
        label = r.label if len(r.label) <= 64 else r.label[:63] + "…"
        if r.op == "~=":
            need = (
                f"needs the interval inside [{r.threshold - r.tolerance:g}, "
                f"{r.threshold + r.tolerance:g}]"
            )
        else:
            need = f"needs the {'lower' if r.op == '>=' else 'upper'} bound {r.op} {r.threshold:g}"
        tip = f"{r.label}: estimate {r.point:+.3f} [{r.lower:+.3f}, {r.upper:+.3f}]; {need}; {word}"
        out.append(f'<g class="claim-row"><title>{escape(tip)}</title>')
        if k % 2 == 0:
            out.append(
                f'<rect x="0" y="{cy - row_h / 2:.0f}" width="{w}" height="{row_h}" '
                'fill="#f6f8fa"/>'
            )
        out.append(
            f'<text x="{label_w - 10}" y="{cy + 4:.0f}" font-size="12" text-anchor="end" '
            f'font-family="ui-monospace,monospace">{escape(label)}</text>'
        )
        if r.op == "~=":  # the equivalence band, both ends marked
            lo_x, hi_x = x(r.threshold - r.tolerance), x(r.threshold + r.tolerance)
            out.append(
                f'<rect x="{lo_x:.1f}" y="{cy - 9:.0f}" width="{hi_x - lo_x:.1f}" height="18" '
                'fill="#ddf4ff" stroke="#333" stroke-width="1.5"/>'
            )
        else:
            tx = x(r.threshold)
            side = 1 if r.op == ">=" else -1
            out.append(
                f'<line x1="{tx:.1f}" y1="{cy - 11:.0f}" x2="{tx:.1f}" y2="{cy + 11:.0f}" '
                'stroke="#333" stroke-width="2"/>'
                f'<path d="M{tx:.1f},{cy - 11:.0f} l{6 * side},0" stroke="#333" '
                'stroke-width="2"/>'
            )
        if math.isfinite(r.lower) and math.isfinite(r.upper):
            out.append(
                f'<line x1="{x(r.lower):.1f}" y1="{cy:.0f}" x2="{x(r.upper):.1f}" '
                f'y2="{cy:.0f}" stroke="{col}" stroke-width="3"/>'
            )
        if math.isfinite(r.point):
            out.append(f'<circle cx="{x(r.point):.1f}" cy="{cy:.0f}" r="5" fill="{col}"/>')
        out.append(
            f'<text x="{label_w + plot_w + 14}" y="{cy + 4:.0f}" font-size="12" '
            f'font-weight="bold" fill="{col}">{word}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)
