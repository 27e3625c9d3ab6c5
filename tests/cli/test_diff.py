"""``causal-mi diff`` and ``--format github``: the comparison rule on hand-built results, the
annotations' escaping, and two real checkpoints: the same file run twice (no difference) and
the model after a PEFT LoRA fine-tune that breaks K-composition (the moved claims named)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from causal_mi.cli import app
from causal_mi.diff import compare, moved
from causal_mi.report.github import annotation

STEPS = 5  # enough to weaken the induction circuit, not to erase G
ZOO = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "handmade-induction"


def _q(point, lower, upper):
    return {"point": point, "lower": lower, "upper": upper}


def test_moved_means_each_estimate_outside_the_other_interval():
    assert moved(_q(0.5, 0.4, 0.6), _q(0.9, 0.8, 1.0))
    assert not moved(_q(0.5, 0.4, 0.6), _q(0.55, 0.45, 0.65))  # inside both
    assert not moved(_q(0.5, 0.1, 0.9), _q(0.85, 0.82, 0.88))  # new inside the old, wide one
    assert not moved(_q(0.5, 0.4, 0.6), _q(None, None, None))


def _doc(passed: bool, point: float, prop: str = "holds") -> dict:
    q = _q(point, point - 0.05, point + 0.05)
    return {
        "claims": [
            {
                "text": "effect(a) >= 0.5",
                "quantity": "effect(L0H1)",
                "passed": passed,
                "location": "h.yaml:9:5",
                **q,
            },
            {
                "text": "effect(b) <= 0.1",
                "quantity": "effect(L0H2)",
                "passed": True,
                "location": "h.yaml:10:5",
                **_q(0.0, -0.01, 0.01),
            },
        ],
        "quantities": {"effect(L0H1)": q, "effect(L0H2)": _q(0.0, -0.01, 0.01)},
        "properties": [{"text": "a -> b", "status": prop}],
    }


def test_compare_names_verdicts_properties_and_moves():
    assert compare(_doc(True, 0.7), _doc(True, 0.7)) == []
    changes = compare(_doc(True, 0.7), _doc(False, 0.3, prop="fails"))
    kinds = {(c.kind, c.name) for c in changes}
    assert kinds == {
        ("verdict", "effect(a) >= 0.5"),
        ("property", "a -> b"),
        ("moved", "effect(L0H1)"),
    }
    verdict = next(c for c in changes if c.kind == "verdict")
    assert verdict.location == "h.yaml:9:5" and "holds -> fails" in verdict.message
    new = _doc(True, 0.7)
    new["claims"] = new["claims"][:1]
    assert [c.kind for c in compare(_doc(True, 0.7), new)] == ["removed"]


def test_github_annotation_escapes_its_fields():
    line = annotation("error", "50% of\nG", location="dir/a,b.yaml:9:5", title="t: x")
    assert line == "::error file=dir/a%2Cb.yaml,line=9,col=5,title=t%3A x::50%25 of%0AG"


def test_a_file_that_is_not_results_json_exits_2(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"schema": "other"}))
    r = CliRunner().invoke(app, ["diff", str(bad), str(tmp_path)])
    assert r.exit_code == 2 and "expected causal-mi/results/v1 or later" in r.output, r.output


def _verify(src: Path, out: Path, *extra: str):
    return CliRunner().invoke(
        app, ["verify", str(src), "--out", str(out), "--no-ablation-check", "--no-dowhy", *extra]
    )


def _lora_tuned(directory: Path, task) -> Path:
    """handmade-induction after a LoRA fine-tune of layer 1's key projection that drives the
    logit difference down (PEFT), merged and saved in causal-mi's native format."""
    import torch
    from peft import LoraConfig, get_peft_model

    from causal_mi.models.loading import load_model
    from causal_mi.models.native_format import save_native

    torch.manual_seed(0)
    model = load_model("zoo:handmade-induction")
    target = r".*layers\.1\._original_component\.attn\._original_component\.k\._original_component"
    peft_model = get_peft_model(
        model.bridge.original_model, LoraConfig(r=4, lora_alpha=8, target_modules=target)
    )
    ex = task.examples[:32]
    toks = torch.tensor([e.clean for e in ex])
    ans, wrong = torch.tensor([e.answer for e in ex]), torch.tensor([e.wrong for e in ex])
    opt = torch.optim.Adam([p for p in peft_model.parameters() if p.requires_grad], lr=0.05)
    for _ in range(STEPS):
        logits = peft_model(toks)[:, -1]
        loss = (logits.gather(1, ans[:, None]) - logits.gather(1, wrong[:, None])).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    peft_model.merge_and_unload()
    merged = {
        k.replace(".base_layer.", "."): v
        for k, v in model.bridge.state_dict().items()
        if "lora_" not in k
    }
    fresh = load_model("zoo:handmade-induction")
    fresh.bridge.load_state_dict(merged, strict=True)
    changed = [k for k, v in fresh.bridge.state_dict().items() if not torch.equal(v, merged[k])]
    assert changed == []
    save_native(fresh.bridge, fresh.tokens.tokenizer, directory)
    return directory


def test_diff_of_a_rerun_is_empty_and_of_a_lora_checkpoint_names_the_moved_claims(tmp_path):
    from causal_mi import pipeline

    text = (ZOO / "true.yaml").read_text().replace("n: 100", "n: 30")
    base = tmp_path / "base.yaml"
    base.write_text(text)
    for run in ("a", "b"):
        assert _verify(base, tmp_path / run).exit_code == 0
    same = CliRunner().invoke(app, ["diff", str(tmp_path / "a"), str(tmp_path / "b/results.json")])
    assert same.exit_code == 0, same.output
    assert "no difference" in same.output

    tuned = _lora_tuned(tmp_path / "tuned-model", pipeline.prepare(base).task)
    after = tmp_path / "tuned.yaml"
    after.write_text(text.replace("zoo:handmade-induction", f"path:{tuned}"))
    r = _verify(after, tmp_path / "c", "--format", "github")
    assert r.exit_code == 0, r.output  # weakened, not broken: every claim still holds
    assert "::notice file=" in r.output and "7/7 claims hold" in r.output
    d = CliRunner().invoke(
        app, ["diff", str(tmp_path / "a"), str(tmp_path / "c"), "--format", "json"]
    )
    assert d.exit_code == 1, d.output
    changes = json.loads(d.output)["changes"]
    moved_names = {c["name"] for c in changes if c["kind"] == "moved"}
    # the tuned keys carry the K-composition: its share of G moved, and the claims say so
    assert {"effect(L0H2)", "indirect(L0H2 -> L1H1.k -> logits)"} <= moved_names
    assert any("(claim indirect(prev -> ind.k -> logits) >= 0.8)" in c["message"] for c in changes)
    # heads outside the circuit do nothing before and after: not reported
    assert not moved_names & {"effect(L0H0)", "effect(L1H2)"}
    # every move named is real: the estimates, read back, lie outside each other's intervals
    old = json.loads((tmp_path / "a/results.json").read_text())["quantities"]
    new = json.loads((tmp_path / "c/results.json").read_text())["quantities"]
    for name in moved_names:
        o, n = old[name], new[name]
        assert not o["lower"] <= n["point"] <= o["upper"]
        assert not n["lower"] <= o["point"] <= n["upper"]
    gh = CliRunner().invoke(
        app, ["diff", str(tmp_path / "a"), str(tmp_path / "c"), "--format", "github"]
    )
    assert "::warning file=" in gh.output and "title=causal-mi moved::" in gh.output


def test_verify_format_github_puts_an_error_on_the_failing_claim(tmp_path):
    src = tmp_path / "false.yaml"
    src.write_text((ZOO / "false-missing-node.yaml").read_text().replace("n: 100", "n: 30"))
    r = _verify(src, tmp_path / "out", "--format", "github")
    assert r.exit_code == 1, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("::error "))
    assert line.startswith(f"::error file={src},line=")
    assert "title=causal-mi claim fails::claim fails: faithfulness >= 0.9" in line
