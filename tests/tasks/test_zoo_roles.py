"""Roles on the zoo model ioi-names (prompts of 13 to 18 tokens): a file stated in roles
gets the verdicts (and numbers) of the same claims at the positions of a fixed-length
task; the right heads at the wrong role fail.

The roles are found here from the words (the zoo tokenizer is word-level: token = word + 1
for BOS), independently of the template machinery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app

ZOO_PAIRS = Path(__file__).parents[2] / "hypotheses" / "zoo" / "ioi-names" / "pairs.jsonl"
HEADER = (
    "version: 1\nname: {name}\nmodel: zoo:ioi-names\n"
    "task: {{file: {file}, n: {n}, seed: 0}}\nmetric: logit_diff\nablation: resample\n"
    "bootstrap: 300\n"
)


def role_rows() -> list[dict]:
    from causal_mi.zoo.ioi import NAMES

    out = []
    for line in ZOO_PAIRS.read_text().splitlines():
        r = json.loads(line)
        words = r["clean"].split()
        a, b, s = [i for i, w in enumerate(words) if w in NAMES]
        io, s1 = (a, b) if words[a] == r["answer"] else (b, a)
        assert words[s] == words[s1] == r["wrong"]
        out.append(r | {"roles": {"IO": io + 1, "S1": s1 + 1, "S2": s + 1}})
    return out


def write(tmp: Path, name: str, rows: list[dict], nodes: dict[str, str], claims, n: int) -> Path:
    data = tmp / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = HEADER.format(name=name, file=data.name, n=n)
    text += "nodes:\n" + "".join(f"  {k}: {v}\n" for k, v in nodes.items())
    text += "claims:\n" + "".join(f"  - {c}\n" for c in claims)
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    return path


def verify(path: Path) -> tuple[int, dict]:
    out = path.parent / f"out-{path.stem}"
    r = CliRunner().invoke(
        app, ["verify", str(path), "--out", str(out), "--no-ablation-check", "--no-dowhy"]
    )
    assert r.exit_code in (0, 1), r.output
    res = json.loads((out / "results.json").read_text())
    return r.exit_code, {c["text"]: (c["passed"], c["point"], c["lower"]) for c in res["claims"]}


CLAIMS = [
    "effect(mlp0) >= 0.5",
    "effect(mover) >= 0.1",
    "effect(sup_b) >= 0.1",
    "effect(sup_d) >= 0.1",
    "effect(mlp0) <= 0.2",  # fails: the S2 name's embedding at S2 is most of the effect
]


@pytest.mark.slow
def test_role_file_matches_position_file_and_wrong_role_fails(tmp_path):
    rows = role_rows()
    fixed = [r for r in rows if len(r["clean"].split()) == 13 and r["roles"]["S2"] == 9]
    assert len(fixed) > 100
    assert len({len(r["clean"].split()) for r in rows}) > 3  # the full task varies in length
    by_role = {
        "mlp0": "{at: L0.mlp, pos: S2}",
        "mover": "{at: L0H3, pos: END}",
        "sup_b": "{at: L1H3, pos: END}",
        "sup_d": "{at: L2H3, pos: END}",
    }
    by_pos = {
        "mlp0": "{at: L0.mlp, pos: 9}",
        "mover": "{at: L0H3, pos: -1}",
        "sup_b": "{at: L1H3, pos: -1}",
        "sup_d": "{at: L2H3, pos: -1}",
    }
    code_r, roles = verify(write(tmp_path, "roles", fixed, by_role, CLAIMS, 80))
    code_p, positions = verify(write(tmp_path, "positions", fixed, by_pos, CLAIMS, 80))
    assert code_r == code_p == 1
    assert roles == positions  # same verdicts, same numbers
    assert [v[0] for v in roles.values()] == [True, True, True, True, False]

    # The whole task (prompts of several lengths): true at the roles, false at wrong roles.
    code, full = verify(write(tmp_path, "full", rows, by_role, CLAIMS[:4], 100))
    assert code == 0, full
    wrong = {k: v.replace("S2", "IO").replace("END", "S1") for k, v in by_role.items()}
    code, bad = verify(write(tmp_path, "wrong-role", rows, wrong, CLAIMS[:4], 100))
    assert code == 1
    assert not any(v[0] for v in bad.values()), bad
