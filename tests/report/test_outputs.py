"""The files verify writes: report.html (self-contained), report.md, results.json, junit.xml."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app

ZOO = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "handmade-induction"


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    target = tmp_path_factory.mktemp("out")
    src = tmp_path_factory.mktemp("hyp") / "true.yaml"
    src.write_text((ZOO / "true.yaml").read_text().replace("n: 100", "n: 30"))
    result = CliRunner().invoke(app, ["verify", str(src), "--out", str(target)])
    assert result.exit_code == 0, result.output
    return target


def test_all_outputs_exist(out):
    assert {p.name for p in out.iterdir()} == {
        "report.html",
        "report.md",
        "results.json",
        "junit.xml",
        ".cache",  # the saved forward passes a rerun reads back
    }


def test_html_is_self_contained(out):
    html = (out / "report.html").read_text()
    assert "<svg" in html and "PASS" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html
    for fragment in (
        "Hypothesis graph",
        "effect of each head",
        "restore(resid_pre)",
        "attention of prev",
        "Provenance",
        "weights sha256",
    ):
        assert fragment in html


def test_results_json_schema(out):
    data = json.loads((out / "results.json").read_text())
    assert data["schema"] == "causal-mi/results/v2"
    assert data["passed"] is True
    n = data["task"]["n"]
    assert len(data["baseline"]["clean"]) == n
    for q in data["quantities"].values():
        assert len(q["per_example"]) == n
        assert q["lower"] <= q["point"] + 1e-9 and q["point"] <= q["upper"] + 1e-9
    claim = data["claims"][0]
    assert {
        "text",
        "point",
        "lower",
        "upper",
        "decision_bound",
        "decision_level",
        "decision_bound_mc_error",
        "p_adjusted",
        "near_threshold",
        "detectable_margin",
        "status",
        "passed",
        "rule",
        "location",
    } <= set(claim)
    assert data["verdict"] == "pass" and claim["status"] == "holds"
    gate = data["baseline"]["gap_gate"]
    assert gate["decidable"] is True and gate["lower_bound"] >= 0.5 * data["baseline"]["G"]
    assert data["settings"]["bootstrap_replicates"] >= data["settings"]["bootstrap"]
    assert "intersection-union" in data["settings"]["levels"]
    assert data["provenance"]["versions"]["torch"]


def test_junit_has_one_case_per_claim_and_property(out):
    root = ET.parse(out / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    data = json.loads((out / "results.json").read_text())
    assert data["properties"], "the file states properties"
    assert len(cases) == len(data["claims"]) + len(data["properties"])
    assert sum(c.get("name").startswith("property: ") for c in cases) == len(data["properties"])
    assert all(c.find("failure") is None for c in cases)


def test_markdown_has_verdicts(out):
    md = (out / "report.md").read_text()
    assert "PASS (7/7 claims hold)" in md
    assert "faithfulness (edge level, path patching)" in md


def test_ablation_check_is_reported(out):
    data = json.loads((out / "results.json").read_text())
    by_claim = data["ablation_check"]
    assert set(next(iter(by_claim.values()))) == {"resample", "mean", "zero"}
    html = (out / "report.html").read_text()
    assert "depend on the ablation" in html


def test_a_flipping_verdict_is_named():
    """On induction-2l the previous-token heads' effects hold with resample ablation and fail
    with mean and zero ablation (their average output still marks "a previous token")."""
    from causal_mi import pipeline

    path = ZOO.parents[1] / "induction.yaml"
    ctx = pipeline.evaluate(pipeline.prepare(str(path)), ablation_check=True)
    table = ctx.ablations["effect(prev_a) >= 0.4"]
    assert [table[a]["passed"] for a in ("resample", "mean", "zero")] == [True, False, False]
    assert any("'effect(prev_a) >= 0.4' depends on the ablation" in n for n in ctx.notes)
    steady = ctx.ablations["faithfulness >= 0.45"]
    assert all(r["passed"] for r in steady.values())
    assert not any("'faithfulness >= 0.45'" in n for n in ctx.notes)
