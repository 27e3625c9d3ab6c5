"""Exit codes of verify on the shipped induction hypothesis and on wrong ones (SPEC 6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app

ROOT = Path(__file__).resolve().parents[2] / "hypotheses"


# Exit codes only: the informational stages (DoWhy, graph analysis, ablation check) change no
# verdict and are skipped where a test reads nothing but the verdict.
VERDICT_ONLY = ["--no-dowhy", "--no-ablation-check"]


def _verify(path: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", str(path), "--out", str(out), *extra])
    return result.exit_code, result.output


def test_shipped_induction_hypothesis_verifies(tmp_path):
    code, output = _verify(ROOT / "induction.yaml", tmp_path)
    assert code == 0, output
    assert "PASS: induction-2l: 6/6 claims hold" in output
    assert (tmp_path / "junit.xml").is_file() and (tmp_path / "report.html").is_file()


@pytest.mark.parametrize(
    "name",
    ["false-swapped-head", "false-missing-node", "false-wrong-edge", "false-irrelevant-node"],
)
def test_wrong_induction_hypotheses_fail(tmp_path, name):
    code, output = _verify(ROOT / "zoo" / "induction-2l" / f"{name}.yaml", tmp_path, *VERDICT_ONLY)
    assert code == 1, output
    assert "FAILS" in output


def test_several_files_give_one_junit_and_the_worst_exit_code(tmp_path):
    files = [
        ROOT / "zoo" / "handmade-induction" / f for f in ("true.yaml", "false-wrong-edge.yaml")
    ]
    result = CliRunner().invoke(
        app, ["verify", *map(str, files), "--out", str(tmp_path), *VERDICT_ONLY]
    )
    assert result.exit_code == 1
    assert (tmp_path / "junit.xml").is_file()
    assert (tmp_path / "true" / "report.md").is_file()
    assert (tmp_path / "false-wrong-edge" / "results.json").is_file()


def test_run_does_not_gate(tmp_path):
    path = ROOT / "zoo" / "handmade-induction" / "false-wrong-edge.yaml"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path), *VERDICT_ONLY])
    assert result.exit_code == 0
    assert not (tmp_path / "junit.xml").exists()
