"""Files of ``causal-mi sweep``: the labelled table (CSV), the grid (JSON) and a heatmap (SVG).

All three are written to a temporary name and renamed, so an interrupted sweep leaves no
half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from causal_mi.effects.patching import PatchSweep
from causal_mi.report import svg


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


_AXES = {"layer": "layer", "head": "head", "pos": "position", "neuron": "neuron"}


def _heatmap(s: PatchSweep, title: str) -> str:
    """Fraction of G per cell, with a colour scale, axis names and the full title; 3-D grids
    (layer x pos x head) show their sum over heads, 1-D grids (neurons) one row."""
    g = s.clean - s.corrupt
    frac = (s.grid - s.corrupt) / g if g else np.full_like(s.grid, np.nan)
    if frac.ndim == 1:
        return svg.heatmap(
            frac[None, :],
            [""],
            [str(i) for i in range(len(frac))],
            title=title,
            row_axis="",
            col_axis="neuron",
            cell=14,
            fig_id=f"sweep-{s.family}",
        )
    if frac.ndim == 3:
        frac = frac.sum(axis=2)
        title += " (summed over heads)"
    rows = [f"L{i}" for i in range(frac.shape[0])]
    name = s.axes[1]
    cols = [f"{'H' if name == 'head' else 'p'}{j}" for j in range(frac.shape[1])]
    return svg.heatmap(
        frac,
        rows,
        cols,
        title=title,
        row_axis=_AXES.get(s.axes[0], s.axes[0]),
        col_axis=_AXES.get(name, name),
        fig_id=f"sweep-{s.family}",
    )


def title(s: PatchSweep, meta: dict) -> str:
    """The heatmap's full title: what was patched, into what, on which model and n."""
    into = {"restore": "clean patched into corrupt", "ablate": "corrupt patched into clean"}
    direction = meta.get("direction", "")
    return (
        f"{s.family}: fraction of G, {direction} ({into.get(direction, direction)}); "
        f"model {meta.get('model', '?')}, metric {meta.get('metric', '?')}, "
        f"n = {meta.get('n', '?')}"
    )


def write(s: PatchSweep, out_dir: Path, *, meta: dict) -> list[Path]:
    """Write ``sweep-<family>.csv|json|svg`` into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"sweep-{s.family}"
    csv, js, image = (stem.with_suffix(x) for x in (".csv", ".json", ".svg"))
    _atomic(csv, s.table().to_csv(index=False))
    doc = {
        "schema": "causal-mi/sweep/v1",
        "family": s.family,
        "axes": list(s.axes),
        "grid": s.grid.tolist(),
        "clean": s.clean,
        "corrupt": s.corrupt,
        "seconds": s.seconds,
        "flops": s.flops,
        **meta,
    }
    _atomic(js, json.dumps(doc, indent=1))
    _atomic(image, _heatmap(s, title(s, meta)))
    return [csv, js, image]
