"""The three executors behind one interface (causal_mi/engine/executors.py): each says up
front what it cannot run, ``choose`` takes the first that can, and on the same conditions
they give the same numbers (the incremental engine within the engine's batch tolerance of
1e-5 of a logit), sharing one run cache under the same addresses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from causal_mi import pipeline
from causal_mi.engine import joins
from causal_mi.engine.cache import RunCache
from causal_mi.engine.executors import (
    HookExecutor,
    IncrementalExecutor,
    choose,
    executors,
)
from causal_mi.engine.plan import Condition, EdgePlan, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site

ZOO = Path(__file__).parents[2] / "hypotheses" / "zoo"


@pytest.fixture(scope="module")
def prep():
    return pipeline.prepare(ZOO / "handmade-induction" / "true.yaml")


def _family(prep, family="head_out", direction="ablate"):
    length = prep.task.examples[0].length
    return joins.sweep_conditions(family, prep.model, length, direction)[0]


def test_the_incremental_engine_equals_hook_passes_on_a_family(prep):
    conds = _family(prep)
    fast = IncrementalExecutor(Engine(prep.model)).run(prep.task, conds, "logit_diff")
    hooks = HookExecutor(Engine(prep.model)).run(prep.task, conds, "logit_diff")
    assert fast.executor == "incremental engine" and hooks.executor == "hook passes"
    assert np.abs(fast.values - hooks.values).max() <= 1e-5
    assert np.abs(fast.clean - hooks.clean).max() <= 1e-5
    # part of a family, in another order: the same rows of the same sweep
    part = [conds[3], conds[0]]
    some = IncrementalExecutor(Engine(prep.model)).run(prep.task, part, "logit_diff")
    assert np.array_equal(some.values, fast.values[[3, 0]])
    # the failing case: another family's numbers are not these
    other = IncrementalExecutor(Engine(prep.model)).run(
        prep.task, _family(prep, "head_v"), "logit_diff"
    )
    assert np.abs(other.values - hooks.values).max() > 1e-3


def test_choose_by_what_each_executor_says_it_cannot_do(prep):
    engine = Engine(prep.model)
    among = executors(engine)
    family = _family(prep)
    two_heads = [
        Condition("clean", site_patches([parse_site("L0H1"), parse_site("L1H1")], "corrupt"))
    ]
    nothing_cut = [Condition("clean", (), edges=EdgePlan(frozenset(), "corrupt", False))]
    assert choose(prep.task, family, among).name == "incremental engine"
    assert choose(prep.task, two_heads, among).name == "hook passes"
    assert choose(prep.task, nothing_cut, among).name == "path patching"
    assert "not one act-patching sweep family" in among[0].unavailable(prep.task, two_heads)
    assert "hook passes" in among[1].unavailable(prep.task, two_heads)
    assert "own forward pass" in among[2].unavailable(prep.task, nothing_cut)
    # an edge plan that cuts nothing is the clean run (by definition of path patching)
    cut = choose(prep.task, nothing_cut, among).run(prep.task, nothing_cut, "logit_diff")
    assert np.abs(cut.values[0] - cut.clean).max() <= 1e-5
    with pytest.raises(ValueError, match="no executor runs these conditions.*hook passes: edge"):
        choose(prep.task, nothing_cut + two_heads, among)


def test_cells_one_executor_computed_are_read_by_another(prep, monkeypatch):
    engine = Engine(prep.model, cache=RunCache(None))  # one run cache, in memory
    conds = _family(prep)
    fast = IncrementalExecutor(engine).run(prep.task, conds, "logit_diff")
    passes = []
    real = Engine._forward
    monkeypatch.setattr(Engine, "_forward", lambda *a, **k: passes.append(1) or real(*a, **k))
    again = HookExecutor(engine).run(prep.task, conds[:4], "logit_diff")
    assert passes == [] and np.array_equal(again.values, fast.values[:4])
    assert IncrementalExecutor(engine).run(prep.task, conds, "logit_diff").executor == "run cache"
    # the failing case: an engine with its own cache runs the passes
    HookExecutor(Engine(prep.model)).run(prep.task, conds[:4], "logit_diff")
    assert passes
