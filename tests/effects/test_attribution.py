"""Attribution patching: integrated gradients are complete (they add up to the exact effect of
patching every head at once); plain attribution is the first-order term of the same sum."""

from __future__ import annotations

import numpy as np
import pytest

from causal_mi.effects.attribution import attribute_heads, compare
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, component_sites, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import Kind
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


@pytest.fixture(scope="module")
def setup(attn_model):
    gen = GENERATORS["repeated_tokens"]
    task = Task("t", tuple(gen.make(attn_model.tokens, 16, 3, resolved_params(gen, {}))))
    heads = [s for s in component_sites(attn_model.dims) if s.kind is Kind.HEAD]
    r = Engine(attn_model).run(
        task, [Condition("corrupt", site_patches(heads, "clean"))], metric("logit_diff")
    )
    return task, float(r.values[0].mean() - r.corrupt.mean())


def test_integrated_gradients_are_complete(attn_model, setup):
    task, exact_total = setup
    ig = attribute_heads(attn_model, task, steps=64)
    assert ig.grid.sum() == pytest.approx(exact_total, rel=0.02, abs=1e-3)


def test_first_order_is_not_complete_in_general(attn_model, setup):
    task, exact_total = setup
    first = attribute_heads(attn_model, task, steps=1)
    ig = attribute_heads(attn_model, task, steps=64)
    assert abs(first.grid.sum() - exact_total) > abs(ig.grid.sum() - exact_total)


def test_compare_reports_rank_agreement():
    exact = np.array([[3.0, 1.0], [2.0, 0.0]])
    assert compare(exact, exact, k=2) == {
        "spearman": 1.0,
        "top_k_overlap": 1.0,
        "max_abs_error": 0.0,
    }
    flipped = compare(-exact, exact, k=2)
    assert flipped["spearman"] == -1.0 and flipped["top_k_overlap"] == 0.0
