"""The project's acceptance test: every zoo hypothesis gets its expected verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app

ROOT = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo"


def test_zoo_validate_passes():
    result = CliRunner().invoke(app, ["zoo", "validate", "--dir", str(ROOT)])
    assert result.exit_code == 0, result.output
    assert "MISMATCH" not in result.output
    files = sorted(ROOT.glob("*/*.yaml"))
    assert len(files) >= 5
    assert f"{len(files)}/{len(files)} verdicts as expected" in result.output


def test_zoo_validate_detects_a_mismatch(tmp_path):
    """A true-named file whose claim is false must make validate exit 1."""
    model_dir = tmp_path / "handmade-induction"
    model_dir.mkdir()
    text = (ROOT / "handmade-induction" / "false-wrong-edge.yaml").read_text()
    (model_dir / "true.yaml").write_text(text)
    result = CliRunner().invoke(app, ["zoo", "validate", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "MISMATCH" in result.output


@pytest.mark.slow
def test_verdicts_are_stable_across_five_task_seeds():
    result = CliRunner().invoke(
        app, ["zoo", "validate", "--dir", str(ROOT), "--seeds", "0,1,2,3,4"]
    )
    assert result.exit_code == 0, result.output
    assert "mixed" not in result.output
