"""The graph analysis in results.json and report.md: every table present, JSON-safe."""

from __future__ import annotations

import dataclasses
import json

from causal_mi.report import causal_model, markdown, results_json
from tests.graph.conftest import MEDIATION


def test_sections_render_the_full_analysis(evaluated, analysed):
    ctx = evaluated(MEDIATION / "false-missing-edge.yaml")
    _, full = analysed(MEDIATION / "false-missing-edge.yaml")
    ctx = dataclasses.replace(ctx, causal_model=full)
    data = json.loads(json.dumps(results_json.to_dict(ctx), allow_nan=False))
    section = data["causal_model"]
    assert section["ran"] and not section["implications"]["hold"]
    edges = {
        i["absent_edge"] for i in section["implications"]["items"] if i["status"] == "contradicted"
    }
    assert "M2 -> logits" in edges
    assert section["abstraction"]["predictions"] and section["decompositions"]
    assert all(d["identity_holds"] for d in section["decompositions"])
    text = markdown.render(ctx)
    assert "## The graph as a causal model" in text
    assert "**contradicted**" in text and "Abstraction accuracy" in text
    assert "Mediation decomposition" in text


def test_section_says_why_it_did_not_run(evaluated):
    ctx = evaluated(MEDIATION / "true.yaml")
    none = dataclasses.replace(ctx, causal_model=None)
    assert causal_model.to_json(none) == {"ran": False, "reason": "not requested"}
    assert causal_model.to_markdown(none) == []
