"""The statistics a verdict rests on, end to end on a zoo model: a corruption that barely
changes the behaviour is never a pass, equivalence claims tell a null component from a real
one, and `causal-mi plan` sizes a task from a pilot run."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from typer.testing import CliRunner

from causal_mi.cli import app

ZOO = Path(__file__).parents[2] / "hypotheses" / "zoo" / "occupation-bias"


def _file(tmp: Path, claims: list[str], rows: list[dict] | None = None, n: int = 120) -> Path:
    shutil.copy(ZOO / "pairs.jsonl", tmp / "pairs.jsonl")
    if rows is not None:
        (tmp / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = "\n".join(
        [
            "version: 1",
            "name: stats",
            "model: zoo:occupation-bias",
            f"task: {{file: pairs.jsonl, n: {n}, seed: 0}}",
            "nodes: {male_head: L0H1, gender_mlp: L0.mlp}",
            "claims:",
            *[f"  - {c!r}" for c in claims],
        ]
    )
    path = tmp / "h.yaml"
    path.write_text(text + "\n")
    return path


def _verify(path: Path, out: Path):
    return CliRunner().invoke(
        app, ["verify", str(path), "-o", str(out), "--no-ablation-check", "--no-dowhy"]
    )


def _same_gender_rows() -> list[dict]:
    """The task with each corrupt occupation replaced by another occupation of the clean
    prompt's own stereotype: the corruption barely changes the pronoun preference."""
    rows = [json.loads(x) for x in (ZOO / "pairs.jsonl").read_text().splitlines() if x.strip()]
    occupation = {}
    for r in rows:
        a, b = r["clean"].split(), r["corrupt"].split()
        (i,) = [k for k in range(len(a)) if a[k] != b[k]]
        occupation[id(r)] = (i, a[i])
    words = sorted({w for i, w in occupation.values()})
    rng = random.Random(0)
    out = []
    for r in rows:
        i, w = occupation[id(r)]
        other = rng.choice([x for x in words if x != w])
        toks = r["clean"].split()
        toks[i] = other if r["answer"] == "she" else w  # half the rows: no change at all
        out.append({**r, "corrupt": " ".join(toks)})
    return out


def test_near_null_corruption_is_not_decidable(tmp_path):
    rows = _same_gender_rows()
    # a component that cannot reach the output is claimed to do nothing; on noise it passed
    path = _file(tmp_path, ["effect(L1H0) <= 0.01", "effect(male_head) >= 0.0"], rows)
    r = _verify(path, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert data["baseline"]["gap_gate"]["decidable"] is False  # the rows are seeded: no skip
    assert r.exit_code == 1, r.output
    assert "NOT DECIDABLE" in r.output and "does not change the behaviour" in r.output
    assert data["verdict"] == "not decidable" and data["passed"] is False
    assert {c["status"] for c in data["claims"]} == {"not decidable"}
    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert 'type="not decidable"' in junit and 'name="not_decidable"' in junit
    # no fraction of G is printed for an undecidable file
    assert "not decidable" in (tmp_path / "out" / "report.md").read_text()


def test_equivalence_tells_a_null_component_from_a_real_one(tmp_path):
    path = _file(
        tmp_path,
        ["effect(L1H0) ~= 0 +- 0.05", "effect(male_head) ~= 0 +- 0.05"],
    )
    r = _verify(path, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    status = {c["text"]: c["status"] for c in data["claims"]}
    assert status == {
        "effect(L1H0) ~= 0 +- 0.05": "holds",
        "effect(male_head) ~= 0 +- 0.05": "fails",
    }, r.output
    assert r.exit_code == 1
    null = data["claims"][0]
    lo, hi = null["decision_bounds"]
    assert -0.05 <= lo <= null["point"] <= hi <= 0.05


def test_plan_sizes_each_claim_from_a_pilot(tmp_path):
    path = _file(tmp_path, ["effect(male_head) >= 0.3", "effect(male_head) >= 0.95"], n=60)
    r = CliRunner().invoke(app, ["plan", str(path)])
    assert r.exit_code == 0, r.output
    assert "pilot: stats, n = 60" in r.output and "gap gate: needs about" in r.output
    lines = [x for x in r.output.splitlines() if "effect(male_head)" in x]
    assert "examples for 80% power" in lines[0]
    assert "on the failing side" in lines[1]  # the effect is ~0.5: no n makes >= 0.95 hold
    n_needed = int(lines[0].split(": ")[-1].split()[0])
    assert 2 <= n_needed < 60  # a strong claim needs fewer examples than the pilot had
