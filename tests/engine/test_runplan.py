"""The run plan (causal_mi/engine/runplan.py): every stage of a verify declares its runs
before anything runs; the plan runs each distinct condition once, in phases; afterwards no
stage runs a forward pass of its own; the plan prints, hashes and saves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from causal_mi import pipeline
from causal_mi.engine import joins, paths
from causal_mi.engine.address import record_key
from causal_mi.engine.plan import Condition, Patch, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.engine.runplan import RunPlan
from causal_mi.spec.sites import parse_site

ZOO = Path(__file__).parents[2] / "hypotheses" / "zoo"
HOOK = "blocks.1.attn.hook_z"


def _ablate(site: str, label: str = "") -> Condition:
    return Condition("clean", site_patches([parse_site(site)], "corrupt"), label=label)


def _reads(producer: Condition) -> Condition:
    patch = Patch.from_recording(HOOK, record_key(producer, HOOK), {(None, 3)})
    return Condition("clean", (patch,))


def test_conditions_are_one_by_content_and_phased_by_what_they_read():
    runs = RunPlan()
    a = _ablate("L0H1", "claims' name")
    recording = Condition(a.base, a.patches, record=((record_key(a, HOOK), HOOK),))
    runs.declare("claims", [a, _ablate("L0H2")])
    runs.declare("another stage", [_ablate("L0H1", "its own name"), recording, _reads(a)])
    assert len(runs.conditions()) == 3  # L0H1 (declared twice), L0H2, the reader
    assert [len(p) for p in runs.phases()] == [2, 1]
    assert runs.summary()[1] == {
        "stage": "another stage",
        "declared": 2,
        "new": 1,
        "gated": False,
        "influence": False,
    }
    lonely = RunPlan()
    lonely.declare("stage", [_reads(_ablate("L0H3"))])  # nobody records what it reads
    with pytest.raises(ValueError, match="no declared condition makes"):
        lonely.phases()


def test_the_digest_is_the_content():
    def plan(label: str, site: str) -> RunPlan:
        runs = RunPlan()
        runs.declare("claims", [_ablate(site, label), _ablate("L1H0")])
        return runs

    assert plan("x", "L0H1").digest() == plan("y", "L0H1").digest()  # labels aside
    assert plan("x", "L0H1").digest() != plan("x", "L0H2").digest()
    text = plan("x", "L0H1").describe()
    assert "claims" in text and "2 distinct conditions" in text


@pytest.fixture()
def passes(monkeypatch):
    """Forward passes (hook engine, the engine's own forward pass) and incremental-engine
    sweeps, split by whether the plan was executing."""
    count = {"plan": 0, "stages": 0}
    inside = [False]
    real_execute, real_forward, real_paths = RunPlan.execute, Engine._forward, paths.forward

    def execute(self, *args, **kwargs):
        inside[0] = True
        try:
            return real_execute(self, *args, **kwargs)
        finally:
            inside[0] = False

    def counted(fn):
        def wrapper(*args, **kwargs):
            count["plan" if inside[0] else "stages"] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(RunPlan, "execute", execute)
    monkeypatch.setattr(Engine, "_forward", counted(real_forward))
    monkeypatch.setattr(paths, "forward", counted(real_paths))
    monkeypatch.setattr(joins, "sweep_values", counted(joins.sweep_values))
    return count


def test_after_the_plan_no_stage_runs_a_pass(passes):
    # claims with edges (path patching), indirect claims, properties, the ablation check,
    # the graph's recordings and decomposition, DoWhy
    # and the report's views (head map, layer x position map)
    prep = pipeline.prepare(ZOO / "handmade-induction" / "true.yaml")
    ctx = pipeline.evaluate(prep, ablation_check=True, dowhy=True, views=True)
    assert ctx.properties and ctx.causal_model is not None and ctx.dowhy.ran
    assert ctx.views is not None
    assert passes["plan"] > 0
    assert passes["stages"] == 0, f"{passes['stages']} passes outside the plan"
    stages = {row["stage"] for row in ctx.runs["stages"]}
    assert {"claims", "properties", "DoWhy cross-check", "graph: node recordings"} <= stages
    assert {"views: head map", "views: layer x position map"} <= stages
    assert any(s.startswith("ablation check") for s in stages)
    assert json.loads(json.dumps(ctx.runs)) == ctx.runs  # saved as it is
    expected = pipeline.declare(prep, ablation_check=True, views=True).digest()
    assert ctx.runs["digest"] == expected


def test_a_stage_the_plan_forgot_would_be_seen(passes, monkeypatch):
    from causal_mi.properties import check

    monkeypatch.setattr(check, "declare_runs", lambda *a, **k: None)  # undeclared stage
    prep = pipeline.prepare(ZOO / "handmade-induction" / "true.yaml")
    pipeline.evaluate(prep, ablation_check=False, dowhy=False)
    assert passes["stages"] > 0


def test_plan_runs_prints_the_plan_without_running_it(passes):
    from typer.testing import CliRunner

    from causal_mi.cli import app

    path = ZOO / "handmade-induction" / "true.yaml"
    r = CliRunner().invoke(app, ["plan", str(path), "--runs"])
    assert r.exit_code == 0, r.output
    digest = pipeline.declare(pipeline.prepare(path), ablation_check=True, views=True).digest()
    assert f"run plan {digest}" in r.output
    assert "DoWhy cross-check" in r.output and "(gated)" in r.output
    assert passes == {"plan": 0, "stages": 0}


def test_a_patch_source_is_typed_not_parsed():
    read = _reads(_ablate("L0H1"))
    (patch,) = read.patches
    assert patch.source == "recorded" and patch.recording.startswith("rec:")
    with pytest.raises(ValueError, match="valid: clean, corrupt, mean, zero, recorded"):
        Patch(HOOK, f"recorded:{patch.recording}", frozenset())  # the old string form
    with pytest.raises(ValueError, match="names its recording"):
        Patch(HOOK, "recorded", frozenset())
    with pytest.raises(ValueError, match="names its recording"):
        Patch(HOOK, "corrupt", frozenset(), recording=patch.recording)


def test_the_head_map_and_the_claims_read_one_table(passes):
    # the head map (the incremental engine's head_out sweep, run once in the plan) and the
    # claims on single heads are the same conditions: one cell each, one number in both
    prep = pipeline.prepare(ZOO / "handmade-induction" / "true.yaml")
    ctx = pipeline.evaluate(prep, ablation_check=False, dowhy=False, views=True)
    assert passes["stages"] == 0
    for layer, head in ((0, 0), (1, 2)):
        claim = ctx.measurement.estimates[f"effect(L{layer}H{head})"].point
        assert ctx.views.head_effect[layer, head] == claim  # the same cells, not 1e-6 apart
    # the failing case: views measured without the plan's engine run a second sweep, and
    # the pass count sees it
    from causal_mi.analysis.views import compute

    before = passes["stages"]
    own = compute(prep.hypothesis, prep.model, prep.task)
    assert passes["stages"] > before
    assert np.allclose(own.head_effect, ctx.views.head_effect, atol=1e-5)


def test_a_label_is_not_a_conditions_identity():
    a, b = _ablate("L0H1", "one name"), _ablate("L0H1", "another")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != _ablate("L0H2", "one name")  # the failing case: other content
