"""The hand-built zoo model handmade-mediation: its logits are the construction's formula
(computed here without the model), the script rebuilds the shipped weights exactly, and
every one of its hypothesis files gets its expected verdict."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from causal_mi.models.loading import ZOO_DIR, load_model
from causal_mi.zoo import mediation as Z
from tests.graph.conftest import MEDIATION


def _by_hand(prompt: str) -> float:
    """t + m1 + m2 + 2 relu(t + m1 - 1.2) with t = f(x), m1 = t + u, m2 = t + v."""
    x, u, v, _ = prompt.split()
    values = {f"x{i:02d}": i / 15 for i in range(16)} | {
        f"u{i:02d}": i / 15 - 0.5 for i in range(16)
    }
    t = values[x]
    m1, m2 = t + values[u], t + values[v]
    return t + m1 + m2 + 2.0 * max(0.0, t + m1 - 1.2)


def test_logits_follow_the_construction():
    model = load_model("zoo:handmade-mediation")
    rows = [json.loads(x) for x in (MEDIATION / "pairs.jsonl").read_text().splitlines()][:40]
    tok = model.bridge.tokenizer
    yes, no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
    with torch.no_grad():
        for r in rows:
            for prompt in (r["clean"], r["corrupt"]):
                logits = model.bridge(model.bridge.to_tokens(prompt))[0, -1]
                assert float(logits[yes] - logits[no]) == pytest.approx(_by_hand(prompt), abs=1e-5)


def test_script_rebuilds_the_shipped_weights(tmp_path):
    Z.build(tmp_path)
    shipped = load_file(str(ZOO_DIR / "handmade-mediation" / "model.safetensors"))
    rebuilt = load_file(str(tmp_path / "model.safetensors"))
    assert shipped.keys() == rebuilt.keys()
    for k in shipped:
        assert torch.equal(shipped[k], rebuilt[k]), k
    assert [json.dumps(r) for r in Z.pairs()] == (
        MEDIATION / "pairs.jsonl"
    ).read_text().splitlines()


def test_zoo_validate_passes_on_its_files(tmp_path):
    from causal_mi.zoo.validate import validate

    shutil.copytree(MEDIATION, tmp_path / "handmade-mediation")
    rows = validate(tmp_path)
    assert len(rows) == 3 and all(r.ok for r in rows), [(r.file, r.expected, r.got) for r in rows]
