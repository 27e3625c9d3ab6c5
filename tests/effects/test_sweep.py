"""Bootstrapped head sweeps equal the quantities measured one by one with the hook engine,
for tasks of mixed token lengths (the incremental path runs per length)."""

from __future__ import annotations

import numpy as np
import pytest

from causal_mi.effects import quantities as Q
from causal_mi.effects.sweep import resid_sweep, sweep
from causal_mi.engine.metrics import metric
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import Kind, Site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


@pytest.fixture(scope="module")
def mixed_task(mlp_model):
    gen = GENERATORS["repeated_tokens"]
    a = gen.make(mlp_model.tokens, 5, 0, resolved_params(gen, {"seq_len": 5, "repeat": 2}))
    b = gen.make(mlp_model.tokens, 4, 1, resolved_params(gen, {"seq_len": 7, "repeat": 3}))
    return Task("mixed", tuple(a) + tuple(b))


def _one_by_one(model, task, q):
    conds = list(q.conditions.values())
    r = Engine(model).run(task, conds, metric("logit_diff"))
    values = dict(zip(q.conditions, r.values, strict=True))
    return q.numerator(r.clean, r.corrupt, values).mean() / (r.clean - r.corrupt).mean()


@pytest.mark.parametrize("quantity", ["effect", "restore"])
def test_head_sweep_equals_quantities(mlp_model, mixed_task, quantity):
    s = sweep(mlp_model, mixed_task, quantity=quantity, n_boot=50)
    d = mlp_model.dims
    assert s.grid.shape == (d.n_layers, d.n_heads)
    for layer, h in [(0, 0), (1, d.n_heads - 1)]:
        site = Site(Kind.HEAD, layer, h)
        q = Q.effect(site, "resample") if quantity == "effect" else Q.restore(site)
        assert s.grid[layer, h] == pytest.approx(_one_by_one(mlp_model, mixed_task, q), abs=1e-5)
    assert np.abs(s.grid).max() > 1e-3


def test_mean_ablation_sweep_still_runs_on_hooks(mlp_model, mixed_task):
    s = sweep(mlp_model, mixed_task, quantity="effect", ablation="mean", n_boot=50)
    q = Q.effect(Site(Kind.HEAD, 1, 0), "mean")
    assert s.grid[1, 0] == pytest.approx(_one_by_one(mlp_model, mixed_task, q), abs=1e-5)


def test_resid_sweep_equals_restore(mlp_model, mixed_task):
    grid, labels = resid_sweep(mlp_model, mixed_task)
    length = len(labels)
    sub = Task("s", tuple(e for e in mixed_task.examples if e.length == length))
    q = Q.restore(Site(Kind.RESID, 1, channel="resid_pre", pos=(length - 2,)))
    assert grid[1, length - 2] == pytest.approx(_one_by_one(mlp_model, sub, q), abs=1e-5)
