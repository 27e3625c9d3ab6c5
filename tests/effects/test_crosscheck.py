"""DoWhy cross-check of the mediation quantities: planted data with known answers, the zoo's
occupation-bias model (known indirect / direct split), a nonlinear case that must be flagged,
refuters, determinism, and the report outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from causal_mi import pipeline
from causal_mi.cli import app
from causal_mi.effects.crosscheck import (
    TOLERANCE_FLOOR,
    CrossCheck,
    MediationData,
    check_quantity,
    crosscheck,
    tolerance,
)
from causal_mi.stats.bootstrap import bootstrap_ratio

ZOO = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo"
SIMS = 8  # refuter simulations in direct calls (the pipeline uses the default)


def _estimate(num: np.ndarray, gap: float, label: str = "q"):
    """The interventional estimate of a quantity from its per-example numerator."""
    den = np.full(len(num), gap)
    return bootstrap_ratio(num, den, label=label, confidence=0.95, n_boot=400, seed=0)


# Planted data ------------------------------------------------------------------------------
def _planted(interaction: bool, n: int = 120, seed: int = 0):
    """Structural model Y(t, b) with the mediator b(t); returns the cross-check's data (M(t) =
    Y(0, b(t)), the mediator mapped through the outcome) and the exact interventional
    numerators. Linear: Y = c + 1.5 b - 0.4 t. Interaction: Y = c + 1.5 b (1 - t), the
    mediator only counts while the sender is on (an AND), which no linear model can fit."""
    rng = np.random.default_rng(seed)
    c = rng.normal(0.0, 0.5, n)
    b0 = rng.normal(1.0, 0.3, n)
    b1 = b0 - 0.5 + rng.normal(0.0, 0.3, n)

    def y(t: int, b: np.ndarray) -> np.ndarray:
        return c + 1.5 * b * (1 - t) if interaction else c + 1.5 * b - 0.4 * t

    data = MediationData(y(0, b0), y(1, b1), y(0, b0), y(0, b1))
    nums = {
        "indirect": y(0, b0) - y(0, b1),
        "direct": y(0, b0) - y(1, b0),
        "total": y(0, b0) - y(1, b1),
    }
    return data, nums


@pytest.mark.parametrize("kind", ["indirect", "direct", "total"])
def test_planted_linear_mediation_agrees(kind):
    data, nums = _planted(interaction=False)
    gap = 2.0
    est = _estimate(nums[kind], gap)
    known = {"indirect": 1.5 * 0.5, "direct": 0.4, "total": 1.5 * 0.5 + 0.4}[kind] / gap
    c = check_quantity(data, kind, gap, est, simulations=SIMS)
    assert c.agrees and c.difference < 1e-9
    assert c.dowhy == pytest.approx(est.point, abs=1e-9)
    assert est.point == pytest.approx(known, abs=0.05)  # the planted effect (noisy mediator)
    assert c.estimand == {"indirect": "NIE", "direct": "NDE", "total": "ATE"}[kind]


def test_planted_interaction_is_flagged():
    data, nums = _planted(interaction=True)
    for kind in ("indirect", "direct"):
        c = check_quantity(data, kind, 1.0, _estimate(nums[kind], 1.0), simulations=SIMS)
        assert not c.agrees, kind
        assert c.difference > c.tolerance >= TOLERANCE_FLOOR


def test_mismatched_data_is_flagged():
    """The frame of one quantity checked against another quantity's estimate."""
    data, nums = _planted(interaction=False)
    c = check_quantity(data, "indirect", 2.0, _estimate(nums["total"], 2.0), simulations=SIMS)
    assert not c.agrees and c.difference == pytest.approx(0.2, abs=0.02)


def test_tolerance_rule():
    narrow = _estimate(np.ones(50), 1.0)
    assert tolerance(narrow) == TOLERANCE_FLOOR
    rng = np.random.default_rng(1)
    wide = _estimate(rng.normal(0.5, 2.0, 40), 1.0)
    assert tolerance(wide) == pytest.approx(wide.upper - wide.lower) and tolerance(wide) > 0.05


def test_planted_refuters_and_determinism():
    data, nums = _planted(interaction=False)
    runs = [
        check_quantity(
            data, "indirect", 2.0, _estimate(nums["indirect"], 2.0), seed=3, simulations=SIMS
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    placebo, subset = runs[0].refutations
    assert placebo.name == "placebo treatment" and abs(placebo.new_effect) < 0.05
    assert subset.name == "data subset"
    assert subset.new_effect == pytest.approx(runs[0].dowhy, abs=0.05)
    assert placebo.p_value is not None and 0 <= placebo.p_value <= 1


def test_unknown_kind_is_rejected():
    data, nums = _planted(interaction=False)
    with pytest.raises(ValueError, match="valid: indirect, direct, total"):
        check_quantity(data, "effect", 1.0, _estimate(nums["total"], 1.0))


# The zoo: occupation-bias (known split) and boolean-logic (an AND: nonlinear) --------------
OCCUPATION = """\
version: 1
name: occupation-bias-mediation
model: zoo:occupation-bias
task: {{file: {pairs}, n: 50, seed: 0}}
metric: logit_diff
ablation: resample
nodes: {{male_head: L0H1, female_head: L0H3, gender_mlp: L0.mlp}}
edges:
  - embed -> male_head
  - embed -> female_head
  - embed -> gender_mlp
  - male_head -> gender_mlp
  - female_head -> gender_mlp
  - male_head -> logits
  - female_head -> logits
  - gender_mlp -> logits
claims:
  - indirect(male_head -> gender_mlp -> logits) >= 0.3
  - direct(male_head -> logits) >= 0.1
  - total(male_head) >= 0.45
  - direct(embed -> logits) <= 0.5
"""

BOOLEAN = """\
version: 1
name: boolean-logic-mediation
model: zoo:boolean-logic
task: {{file: {pairs}, n: 50, seed: 0}}
metric: logit_diff
ablation: resample
nodes: {{ab: L1H2, mlp1: L1.mlp}}
edges: [ab -> mlp1, ab -> logits, mlp1 -> logits]
claims:
  - indirect(ab -> mlp1 -> logits) >= 0.15
  - direct(ab -> logits) >= 0.15
"""


def _file(tmp_path_factory, text: str, model: str) -> Path:
    path = tmp_path_factory.mktemp(model) / "h.yaml"
    path.write_text(text.format(pairs=ZOO / model / "pairs.jsonl"))
    return path


@pytest.fixture(scope="module")
def occupation(tmp_path_factory):
    prep = pipeline.prepare(_file(tmp_path_factory, OCCUPATION, "occupation-bias"))
    ctx = pipeline.evaluate(prep)
    return prep, ctx


@pytest.fixture(scope="module")
def boolean(tmp_path_factory):
    prep = pipeline.prepare(_file(tmp_path_factory, BOOLEAN, "boolean-logic"))
    return prep, pipeline.evaluate(prep)


def _by_label(cc: CrossCheck):
    return {c.label: c for c in cc.checks}


def test_zoo_mediation_agrees_with_interventions(occupation):
    """occupation-bias: L0H1's effect splits into ~0.38 through the layer-0 MLP and ~0.18
    direct (MODEL.md); DoWhy's linear estimates agree within tolerance."""
    _, ctx = occupation
    cc = ctx.dowhy
    assert cc.ran and cc.disagreements == []
    checks = _by_label(cc)
    assert set(checks) == {
        "indirect(L0H1 -> L0.mlp -> logits)",
        "direct(L0H1 -> logits)",
        "total(L0H1)",
        "direct(embed -> logits)",
    }
    nie = checks["indirect(L0H1 -> L0.mlp -> logits)"]
    nde = checks["direct(L0H1 -> logits)"]
    total = checks["total(L0H1)"]
    assert nie.interventional == pytest.approx(0.38, abs=0.05)
    assert nde.interventional == pytest.approx(0.18, abs=0.05)
    for c in (nie, nde, total):
        assert c.agrees and c.difference <= c.tolerance
        assert c.dowhy == pytest.approx(c.interventional, abs=0.05)
    assert total.difference < 1e-6  # a balanced paired design: regression = mean difference
    assert (nie.estimand, nde.estimand, total.estimand) == ("NIE", "NDE", "ATE")
    assert nie.rows == 2 * 50 and nde.mediators == ("L0.mlp",) and not nde.note


def test_many_mediators_are_named_not_dropped(occupation):
    _, ctx = occupation
    c = _by_label(ctx.dowhy)["direct(embed -> logits)"]
    assert c.mediators == ("L0H1", "L0H3", "L0.mlp")
    assert "3 mediators (male_head, female_head, gender_mlp)" in c.note
    assert "takes one mediator" in c.note


def test_zoo_refuters_run_and_placebo_is_near_zero(occupation):
    _, ctx = occupation
    for c in ctx.dowhy.checks:
        placebo, subset = c.refutations
        assert placebo.name == "placebo treatment" and abs(placebo.new_effect) < 0.05
        assert subset.name == "data subset"
        assert subset.new_effect == pytest.approx(c.dowhy, abs=0.05)
        assert all(r.p_value is not None for r in c.refutations)


def test_crosscheck_is_deterministic(occupation):
    prep, ctx = occupation
    again = crosscheck(prep.hypothesis, prep.model, prep.task, ctx.measurement)
    assert again == crosscheck(prep.hypothesis, prep.model, prep.task, ctx.measurement)
    # inside verify its passes share the run cache (other batches): equal to batch tolerance
    for a, b in zip(again.checks, ctx.dowhy.checks, strict=True):
        assert a.dowhy == pytest.approx(b.dowhy, abs=1e-5) and a.agrees == b.agrees


def test_nonlinear_mediation_is_flagged_and_verdicts_unchanged(boolean):
    """boolean-logic computes (a AND b) OR c: L1H2's effect through L1.mlp is not additive,
    so the linear re-estimate disagrees; the flag changes no verdict."""
    prep, ctx = boolean
    checks = _by_label(ctx.dowhy)
    flagged = checks["indirect(L1H2 -> L1.mlp -> logits)"]
    assert not flagged.agrees and flagged.difference > flagged.tolerance
    assert "indirect(L1H2 -> L1.mlp -> logits)" in ctx.dowhy.disagreements
    assert any("verdicts are unchanged" in n for n in ctx.dowhy.notes)
    plain = pipeline.evaluate(prep, dowhy=False)
    assert not plain.dowhy.ran and plain.dowhy.reason == "disabled (--no-dowhy)"
    assert [c.passed for c in plain.verdict.claims] == [c.passed for c in ctx.verdict.claims]
    assert plain.verdict.passed == ctx.verdict.passed


def test_reports_carry_the_numbers(occupation, boolean, tmp_path):
    _, ctx = occupation
    pipeline.write_outputs(ctx, tmp_path / "occ", with_junit=False)
    data = json.loads((tmp_path / "occ" / "results.json").read_text())
    assert data["schema"] == "causal-mi/results/v2"
    section = data["dowhy"]
    assert section["ran"] is True and section["disagreements"] == []
    rows = {q["quantity"]: q for q in section["quantities"]}
    nie = _by_label(ctx.dowhy)["indirect(L0H1 -> L0.mlp -> logits)"]
    row = rows[nie.label]
    assert row["dowhy"] == pytest.approx(nie.dowhy) and row["agrees"] is True
    assert row["interventional"] == pytest.approx(nie.interventional)
    assert row["tolerance"] == pytest.approx(nie.tolerance)
    assert [r["name"] for r in row["refuters"]] == ["placebo treatment", "data subset"]
    md = (tmp_path / "occ" / "report.md").read_text()
    assert "## DoWhy cross-check" in md
    assert f"| `{nie.label}` (NIE) | {nie.dowhy:+.3f} | {nie.interventional:+.3f}" in md
    html = (tmp_path / "occ" / "report.html").read_text()
    assert "DoWhy cross-check" in html and "<tr class=flag>" not in html

    _, bad = boolean
    pipeline.write_outputs(bad, tmp_path / "bool", with_junit=False)
    md = (tmp_path / "bool" / "report.md").read_text()
    assert "| `indirect(L1H2 -> L1.mlp -> logits)` (NIE) |" in md and "**no: flagged**" in md
    assert "<tr class=flag>" in (tmp_path / "bool" / "report.html").read_text()
    section = json.loads((tmp_path / "bool" / "results.json").read_text())["dowhy"]
    assert "indirect(L1H2 -> L1.mlp -> logits)" in section["disagreements"]


def test_cli_no_dowhy(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text(BOOLEAN.format(pairs=ZOO / "boolean-logic" / "pairs.jsonl").replace("50", "20"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(path), "--out", str(out), "--no-dowhy", "--no-ablation-check"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert data["dowhy"] == {"ran": False, "reason": "disabled (--no-dowhy)"}
    assert "DoWhy cross-check: not run (disabled (--no-dowhy))" in (out / "report.md").read_text()
