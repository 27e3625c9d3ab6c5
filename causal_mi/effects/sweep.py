"""Sweeps: one quantity for every head (or MLP) of a model, as a table and a grid.

The quantities of :mod:`causal_mi.effects.quantities` with bootstrap intervals. A head's
``restore``, and its ``effect`` under resample ablation, patch one head from the paired run:
those run as an :func:`~causal_mi.effects.patching.act_patch` sweep (the incremental engine
where the architecture allows, per token length); other cases stack the quantities'
conditions into as few hook passes as the row budget allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.effects import quantities as Q
from causal_mi.engine.metrics import metric
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
    engine: Engine | None = None,
) -> Sweep:
    """``effect`` or ``restore`` of every head (``kind="head"``) or MLP (``kind="mlp"``).
    ``engine``: read and extend its run cache (see
    :func:`~causal_mi.effects.patching.act_patch`)."""
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
    if kind == "head" and (quantity == "restore" or ablation == "resample"):
        # one patch per head from the paired run: the incremental engine's head_out sweep
        direction = "restore" if quantity == "restore" else "ablate"
        per, clean, corrupt = _paired(
            model, task, "head_out", direction, metric_name, max_rows, engine=engine
        )
        nums = [clean - p if quantity == "effect" else p - corrupt for p in per]
        den = clean - corrupt
    else:
        conds = {k: c for q in qs for k, c in q.conditions.items()}
        keys = list(conds)
        if engine is None:
            engine = Engine(model, max_rows=max_rows, progress=progress)
        r = engine.run(task, [conds[k] for k in keys], metric(metric_name))
        values = {k: r.values[i] for i, k in enumerate(keys)}
        nums = [q.numerator(r.clean, r.corrupt, values) for q in qs]
        den = r.clean - r.corrupt
    ests = tuple(
        bootstrap_ratio(num, den, label=q.label, confidence=confidence, n_boot=n_boot, seed=seed)
        for q, num in zip(qs, nums, strict=True)
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
    engine: Engine | None = None,
) -> tuple[np.ndarray, list[str]]:
    """restore(L<l>.resid_pre at position p) for every layer and position: the causal-tracing
    map of where the clean information sits. Uses the examples of the most common length
    (at most ``max_examples``); returns the [n_layers, pos] grid of point estimates and the
    position labels (tokens of the first example)."""
    lengths = [e.length for e in task.examples]
    length = max(set(lengths), key=lengths.count)
    chosen = resid_examples(task, max_examples)
    if not chosen:  # prompts of different lengths: no position-by-position map
        first = next(e for e in task.examples if e.length == length)
        return np.full((model.dims.n_layers, length), np.nan), model.tokens.show(list(first.clean))
    exs = tuple(task.examples[i] for i in chosen)
    sub = Task(task.name, exs)
    per, clean, corrupt = _paired(
        model, sub, "resid_pre", "restore", metric_name, max_rows, engine=engine
    )
    g = (clean - corrupt).mean()
    grid = ((per - corrupt).mean(axis=1) / g if g else np.full(len(per), np.nan)).reshape(
        model.dims.n_layers, length
    )
    return grid, model.tokens.show(list(exs[0].clean))


def resid_examples(task: Task, max_examples: int = 32) -> tuple[int, ...]:
    """Which examples :func:`resid_sweep` maps: the first ``max_examples`` of the most
    common token length, less those whose corrupt prompt has another length."""
    lengths = [e.length for e in task.examples]
    length = max(set(lengths), key=lengths.count)
    exs = [i for i, e in enumerate(task.examples) if e.length == length][:max_examples]
    return tuple(i for i in exs if len(task.examples[i].corrupt) == length)


def run_family(request, task: Task, engine: Engine, metric_fn) -> None:
    """Execute a run plan's sweep request (:class:`~causal_mi.engine.runplan.Request` with
    a family) on ``task`` (already its examples) into ``engine``'s run cache, per token
    length, by the executor :func:`~causal_mi.effects.patching.act_patch` chooses;
    ``metric_fn`` is the plan's metric (its ``key`` is the metric's name)."""
    _paired(
        engine.model,
        task,
        request.family,
        request.direction,
        metric_fn.key,
        engine.max_rows,
        engine=engine,
    )


def _paired(
    model: LoadedModel,
    task: Task,
    family: str,
    direction: str,
    metric_name: str,
    max_rows: int,
    *,
    engine: Engine | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example metric of every index of ``family`` patched from the paired run
    (:func:`causal_mi.effects.patching.act_patch`, run per token length): values
    [n_indices, n_examples], clean [n_examples], corrupt [n_examples]."""
    from causal_mi.effects.patching import act_patch

    n = len(task.examples)
    clean, corrupt, per = np.zeros(n), np.zeros(n), None
    # prompts of different clean and corrupt lengths have no all-position patch: NaN
    even = [i for i, e in enumerate(task.examples) if len(e.corrupt) == e.length]
    if len(even) < n:
        clean[:], corrupt[:] = np.nan, np.nan
    lengths = sorted({task.examples[i].length for i in even})
    for length in lengths:
        idx = [i for i in even if task.examples[i].length == length]
        sub = Task(task.name, tuple(task.examples[i] for i in idx))
        s = act_patch(
            model,
            sub,
            family,
            direction=direction,
            metric_name=metric_name,
            max_rows=max_rows,
            engine=engine,
        )
        if per is None:
            per = np.full((s.per_example.shape[0], n), np.nan)
        per[:, idx] = s.per_example
        clean[idx], corrupt[idx] = s.clean_values, s.corrupt_values
    return per, clean, corrupt
