"""End to end on an HF GPT-2 directory with a JSONL task of mixed lengths: every quantity,
every metric, positions and edges, without a crash and with consistent outputs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app

PAIRS = [
    ("w1 w2 w3 w4 w1 w2", "w5 w6 w7 w8 w1 w2", "w3", "w7"),
    ("w9 w10 w11 w9 w10", "w12 w13 w14 w9 w10", "w11", "w14"),
    ("w2 w4 w6 w8 w2 w4", "w1 w3 w5 w7 w2 w4", "w6", "w5"),
    ("w20 w21 w22 w20 w21", "w23 w24 w25 w20 w21", "w22", "w25"),
    ("w30 w31 w32 w33 w34 w30 w31", "w35 w36 w37 w38 w39 w30 w31", "w32", "w37"),
] * 4

HYP = """version: 1
name: gpt2-mixed
model: path:{model}
task: {{file: pairs.jsonl, n: 20, seed: 0}}
metric: {metric}
ablation: {ablation}
bootstrap: 500
nodes:
  a: L0H1
  b: L1H3
  m: L0.mlp
  late: {{at: L1H0, pos: -1}}
  n5: L1.mlp[5]
edges:
  - embed -> a
  - embed -> b
  - a -> b.k
  - m -> b.v
  - embed -> m
  - b -> logits
  - m -> logits
claims:
  - faithfulness >= -100
  - complement <= 100
  - effect(b) >= -100
  - restore(a) >= -100
  - total(m) >= -100
  - minimality(a) >= -100
  - indirect(a -> b.k -> logits) >= -100
  - direct(a -> logits) <= 100
  - effect(late) >= -100
  - effect(L1.resid_mid) >= -100
"""


@pytest.mark.parametrize(
    "metric,ablation", [("logit_diff", "resample"), ("kl", "mean"), ("prob", "zero")]
)
def test_every_quantity_runs(gpt2_dir, tmp_path, metric, ablation):
    (tmp_path / "pairs.jsonl").write_text(
        "\n".join(
            json.dumps({"clean": c, "corrupt": x, "answer": a, "wrong": w}) for c, x, a, w in PAIRS
        )
    )
    hyp = tmp_path / "h.yaml"
    hyp.write_text(HYP.format(model=gpt2_dir, metric=metric, ablation=ablation))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["verify", str(hyp), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    data = json.loads((out / "results.json").read_text())
    assert data["task"]["n"] == 20
    assert len(data["claims"]) == 10
    assert "faithfulness[node level]" in data["quantities"]  # edge level ran too
    assert any(k.startswith("edge(") for k in data["quantities"])
    if data["baseline"]["G"] and data["baseline"]["G"] > 0:
        assert result.exit_code == 0, result.output  # every claim is trivially true
