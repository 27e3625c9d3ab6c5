"""Sweeps: one quantity for every head (or MLP) of a model, as a table and a grid.

The same conditions as :mod:`causal_mi.effects.quantities`, stacked into as few forward
passes as the engine's row budget allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.effects import quantities as Q
from causal_mi.effects.metrics import metric
from causal_mi.engine.runner import Engine, Progress
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.sites import Kind, Site
from causal_mi.stats.bootstrap import Estimate, bootstrap_ratio
from causal_mi.tasks.base import Task


@dataclass(frozen=True)
class Sweep:
    """``grid[layer, head]`` point estimates and the full estimate of every site."""

    quantity: str
    sites: tuple[Site, ...]
    estimates: tuple[Estimate, ...]
    grid: np.ndarray  # [n_layers, n_heads] for heads, [n_layers, 1] for MLPs

    def table(self):
        """A pandas DataFrame: site, layer, head, point, lower, upper."""
        import pandas as pd

        return pd.DataFrame(
            {
                "site": [str(s) for s in self.sites],
                "layer": [s.layer for s in self.sites],
                "head": [s.head if s.kind is Kind.HEAD else -1 for s in self.sites],
                "point": [e.point for e in self.estimates],
                "lower": [e.lower for e in self.estimates],
                "upper": [e.upper for e in self.estimates],
            }
        )

    def ranked(self) -> list[tuple[Site, Estimate]]:
        """Sites by decreasing point estimate."""
        return sorted(zip(self.sites, self.estimates, strict=True), key=lambda x: -x[1].point)


def sweep(
    model: LoadedModel,
    task: Task,
    *,
    quantity: str = "effect",
    kind: str = "head",
    metric_name: str = "logit_diff",
    ablation: str = "resample",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    max_rows: int = 256,
    progress: Progress | None = None,
) -> Sweep:
    """``effect`` or ``restore`` of every head (``kind="head"``) or MLP (``kind="mlp"``)."""
    d = model.dims
    if kind == "head":
        sites = [Site(Kind.HEAD, layer, h) for layer in range(d.n_layers) for h in range(d.n_heads)]
        shape = (d.n_layers, d.n_heads)
    elif kind == "mlp":
        if d.attn_only:
            raise ValueError("this model is attention-only: it has no MLPs to sweep")
        sites = [Site(Kind.MLP, layer) for layer in range(d.n_layers)]
        shape = (d.n_layers, 1)
    else:
        raise ValueError(f"unknown sweep kind '{kind}'; valid: head, mlp")
    if quantity == "effect":
        qs = [Q.effect(s, ablation) for s in sites]
    elif quantity == "restore":
        qs = [Q.restore(s) for s in sites]
    else:
        raise ValueError(f"unknown sweep quantity '{quantity}'; valid: effect, restore")
    conds = {k: c for q in qs for k, c in q.conditions.items()}
    keys = list(conds)
    r = Engine(model, max_rows=max_rows, progress=progress).run(
        task, [conds[k] for k in keys], metric(metric_name)
    )
    values = {k: r.values[i] for i, k in enumerate(keys)}
    den = r.clean - r.corrupt
    ests = tuple(
        bootstrap_ratio(
            q.numerator(r.clean, r.corrupt, values),
            den,
            label=q.label,
            confidence=confidence,
            n_boot=n_boot,
            seed=seed,
        )
        for q in qs
    )
    grid = np.array([e.point for e in ests]).reshape(shape)
    return Sweep(quantity, tuple(sites), ests, grid)


def resid_sweep(
    model: LoadedModel,
    task: Task,
    *,
    metric_name: str = "logit_diff",
    max_examples: int = 32,
    max_rows: int = 256,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """restore(L<l>.resid_pre at position p) for every layer and position: the causal-tracing
    map of where the clean information sits. Uses the examples of the most common length
    (at most ``max_examples``); returns the [n_layers, pos] grid of point estimates and the
    position labels (tokens of the first example)."""
    lengths = [e.length for e in task.examples]
    length = max(set(lengths), key=lengths.count)
    exs = tuple(e for e in task.examples if e.length == length)[:max_examples]
    sub = Task(task.name, exs)
    qs = [
        Q.restore(Site(Kind.RESID, layer, channel="resid_pre", pos=(p,)))
        for layer in range(model.dims.n_layers)
        for p in range(length)
    ]
    conds = {k: c for q in qs for k, c in q.conditions.items()}
    keys = list(conds)
    r = Engine(model, max_rows=max_rows, progress=progress).run(
        sub, [conds[k] for k in keys], metric(metric_name)
    )
    values = {k: r.values[i] for i, k in enumerate(keys)}
    g = (r.clean - r.corrupt).mean()
    grid = np.array(
        [(q.numerator(r.clean, r.corrupt, values).mean() / g) if g else np.nan for q in qs]
    ).reshape(model.dims.n_layers, length)
    return grid, model.tokens.show(list(exs[0].clean))
