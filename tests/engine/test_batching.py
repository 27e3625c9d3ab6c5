"""Batched interventions equal one-at-a-time; results do not depend on chunking or order."""

from __future__ import annotations

import numpy as np
import pytest

from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, outside_patches, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


def _conditions(dims):
    sites = [
        "L0H0",
        "L0H1",
        "L1H3",
        "L1H2.k",
        "L0.mlp",
        "L1.mlp[5]",
        "L1.resid_pre",
        "L0.resid_mid",
    ]
    conds = [Condition("clean")]
    for text in sites:
        s = parse_site(text)
        conds.append(Condition("clean", site_patches([s], "corrupt")))
        conds.append(Condition("corrupt", site_patches([s], "clean")))
        conds.append(Condition("clean", site_patches([s.at((-1,))], "mean")))
    circuit = (parse_site("L0H1"), parse_site("L1H3"), parse_site("L1.mlp[5]"))
    conds.append(Condition("clean", outside_patches(circuit, dims, "corrupt")))
    conds.append(Condition("clean", site_patches(circuit, "zero")))
    return conds


def _mixed_task(model) -> Task:
    """Two token lengths, so the engine works on two buckets."""
    gen = GENERATORS["repeated_tokens"]
    a = gen.make(model.tokens, 9, 1, resolved_params(gen, {}))
    b = gen.make(model.tokens, 7, 2, resolved_params(gen, {"seq_len": 6, "repeat": 3}))
    mixed = [x for pair in zip(a, b, strict=False) for x in pair] + a[len(b) :]
    return Task("mixed", tuple(mixed))


@pytest.mark.parametrize("metric_name", ["logit_diff", "kl"])
def test_batched_equals_one_at_a_time(mlp_model, metric_name):
    task = _mixed_task(mlp_model)
    conds = _conditions(mlp_model.dims)
    fn = metric(metric_name)
    batched = Engine(mlp_model, max_rows=512).run(task, conds, fn)
    # One condition at a time, all examples in one pass each.
    for i, c in enumerate(conds):
        alone = Engine(mlp_model, max_rows=512).run(task, [c], fn)
        np.testing.assert_allclose(alone.values[0], batched.values[i], atol=1e-5)
    # One example and one condition per pass (mean sources need the whole task: skipped).
    for i in (1, 2, len(conds) - 2):
        for j in (0, 1, len(task) - 1):
            one = Engine(mlp_model, max_rows=1).run(
                Task("one", (task.examples[j],)), [conds[i]], fn
            )
            assert one.values[0, 0] == pytest.approx(batched.values[i, j], abs=1e-5)


def test_chunking_and_order_do_not_matter(mlp_model):
    task = _mixed_task(mlp_model)
    conds = _conditions(mlp_model.dims)
    fn = metric("logit_diff")
    ref = Engine(mlp_model, max_rows=512).run(task, conds, fn).values
    for rows in (1, 5, 16, 33):
        got = Engine(mlp_model, max_rows=rows).run(task, conds, fn).values
        np.testing.assert_allclose(got, ref, atol=1e-5)
    perm = np.random.default_rng(0).permutation(len(conds))
    got = Engine(mlp_model, max_rows=16).run(task, [conds[k] for k in perm], fn).values
    np.testing.assert_allclose(got, ref[perm], atol=1e-5)
    ex_perm = np.random.default_rng(1).permutation(len(task))
    shuffled = Task("s", tuple(task.examples[k] for k in ex_perm))
    got = Engine(mlp_model, max_rows=16).run(shuffled, conds, fn).values
    np.testing.assert_allclose(got, ref[:, ex_perm], atol=1e-5)


def test_mean_is_over_corrupt_prompts_of_same_length(mlp_model):
    """Mean ablation of a site equals patching in the per-position mean by hand."""
    task = _mixed_task(mlp_model)
    s = parse_site("L0H1")
    fn = metric("logit_diff")
    got = (
        Engine(mlp_model, max_rows=7)
        .run(task, [Condition("clean", site_patches([s], "mean"))], fn)
        .values[0]
    )
    for length in {e.length for e in task.examples}:
        idx = [i for i, e in enumerate(task.examples) if e.length == length]
        sub = Task("b", tuple(task.examples[i] for i in idx))
        alone = Engine(mlp_model).run(sub, [Condition("clean", site_patches([s], "mean"))], fn)
        np.testing.assert_allclose(got[idx], alone.values[0], atol=1e-5)


def test_hooks_are_removed(mlp_model):
    task = _mixed_task(mlp_model)
    Engine(mlp_model).run(task, _conditions(mlp_model.dims), metric("logit_diff"))
    leftover = [n for n, hp in mlp_model.bridge.hook_dict.items() if hp._forward_hooks]
    assert leftover == []


def test_unpatched_condition_equals_baseline(mlp_model):
    task = _mixed_task(mlp_model)
    r = Engine(mlp_model).run(
        task, [Condition("clean"), Condition("corrupt")], metric("logit_diff")
    )
    np.testing.assert_allclose(r.values[0], r.clean, atol=1e-6)
    np.testing.assert_allclose(r.values[1], r.corrupt, atol=1e-6)
    assert np.abs(r.clean - r.corrupt).max() > 1e-3
