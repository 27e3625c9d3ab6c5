"""Retraining each trained zoo model from its script gives a model on which every one of its
hypothesis files gets the same verdict (slow: one to three minutes per model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from causal_mi.zoo.registry import TRAINERS
from causal_mi.zoo.validate import validate

ROOT = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["boolean-logic", "occupation-bias", "ioi-names"])
def test_retrained_model_gets_the_same_verdicts(tmp_path, name):
    model_dir = tmp_path / "model"
    TRAINERS[name](model_dir, seed=0)
    hyp_dir = tmp_path / "hyp" / name
    shutil.copytree(ROOT / name, hyp_dir)
    for f in hyp_dir.glob("*.yaml"):
        f.write_text(f.read_text().replace(f"model: zoo:{name}", f"model: path:{model_dir}"))
    rows = validate(tmp_path / "hyp")
    assert rows and all(r.ok for r in rows), [(r.file, r.expected, r.got) for r in rows]
