"""Every intervention of a verify runs once: claims, indirect and direct claims, the ablation
check, the DoWhy cross-check, the graph analysis, the properties and the report's views
share one run cache, so no (condition, example) cell is computed twice, by either executor
(hook passes, or the incremental engine's sweeps)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch

from causal_mi import pipeline
from causal_mi.engine import joins
from causal_mi.engine.cache import bucket_keys
from causal_mi.engine.influence import INFLUENCE_SUFFIX
from causal_mi.engine.runner import Engine

ZOO = Path(__file__).parents[2] / "hypotheses" / "zoo"


def _identity(clean, corrupt, answer, wrong) -> str:
    """An example by content (tokens and answer), the same whichever sub-task it is in."""
    return repr((list(clean), list(corrupt), answer, wrong))


@pytest.fixture()
def counted(monkeypatch):
    """Each (condition, example) cell every hook pass and every incremental-engine sweep
    computes, with the hooks it recorded: a cell computed again is a duplicate unless it
    records something not recorded before."""
    seen: dict = defaultdict(list)
    original = Engine._patched
    sweep = joins.sweep_values

    def patched(self, b, conds, e_lo, e_hi, *args, **kwargs):
        ids = [
            _identity(b.clean[i].tolist(), b.corrupt[i].tolist(), b.answer[i].tolist(),
                      b.wrong[i].tolist())
            for i in range(len(b.index))
        ]  # fmt: skip
        keys = bucket_keys(conds, ids)
        if torch.is_grad_enabled():  # a mean source's influence pass: cells of their own
            keys = [k + INFLUENCE_SUFFIX for k in keys]
        for k, c in zip(keys, conds, strict=True):
            for i in ids[e_lo:e_hi]:
                seen[(k, i)].append({h for _, h in c.record})
        return original(self, b, conds, e_lo, e_hi, *args, **kwargs)

    def incremental(model, task, family, direction, metric_name, *, layer=0, **kw):
        length = task.examples[0].length
        conds = joins.sweep_conditions(family, model, length, direction, layer)[0]
        ids = [_identity(e.clean, e.corrupt, e.answer, e.wrong) for e in task.examples]
        for k in bucket_keys(conds, ids):
            for i in ids:
                seen[(k, i)].append(set())
        return sweep(model, task, family, direction, metric_name, layer=layer, **kw)

    monkeypatch.setattr(Engine, "_patched", patched)
    monkeypatch.setattr(joins, "sweep_values", incremental)
    return seen


def duplicates(seen: dict) -> list:
    out = []
    for cell, runs in seen.items():
        for n, hooks in enumerate(runs[1:], start=1):
            before = set().union(*runs[:n])
            if hooks <= before:
                out.append((cell, n))
    return out


def test_each_condition_runs_once_per_verify(counted):
    path = ZOO / "handmade-induction" / "true.yaml"  # claims, indirect claims, properties
    prep = pipeline.prepare(path)
    ctx = pipeline.evaluate(prep, ablation_check=True, dowhy=True, views=True)
    assert ctx.verdict.claims and ctx.properties and ctx.views is not None
    twice = duplicates(counted)
    assert not twice, f"{len(twice)} cells computed again for nothing, e.g. {twice[0]}"
    assert counted  # the counter saw the passes


def test_the_counter_catches_a_duplicate(counted, tmp_path):
    from causal_mi.engine.metrics import metric
    from causal_mi.engine.plan import Condition, site_patches
    from causal_mi.spec.sites import parse_site

    prep = pipeline.prepare(ZOO / "handmade-induction" / "true.yaml")
    cond = Condition("clean", site_patches([parse_site("L0H2")], "corrupt"))
    Engine(prep.model).run(prep.task, [cond], metric("logit_diff"))
    Engine(prep.model).run(prep.task, [cond], metric("logit_diff"))  # no shared cache
    assert duplicates(counted)
    counted.clear()
    relabelled = Condition("clean", cond.patches, label="another name")
    Engine(prep.model).run(prep.task, [cond, relabelled], metric("logit_diff"))
    assert not duplicates(counted)  # equal content in one run: one computation


def test_the_counter_sees_a_sweep_run_twice(counted):
    from causal_mi.effects.patching import act_patch

    prep = pipeline.prepare(ZOO / "handmade-induction" / "true.yaml")
    act_patch(prep.model, prep.task, "head_out", direction="ablate", metric_name="logit_diff")
    assert not duplicates(counted)
    act_patch(prep.model, prep.task, "head_out", direction="ablate", metric_name="logit_diff")
    assert duplicates(counted)  # no shared engine: the second sweep computes every cell again
