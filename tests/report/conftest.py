"""Reports shared by the report tests: one verify run of a passing and of a failing file
(small n), made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app

ZOO = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "handmade-induction"


def _verify(tmp_path_factory, name: str, expect: int) -> Path:
    target = tmp_path_factory.mktemp(f"out-{Path(name).stem}")
    src = tmp_path_factory.mktemp("hyp") / name
    src.write_text((ZOO / name).read_text().replace("n: 100", "n: 30"))
    result = CliRunner().invoke(app, ["verify", str(src), "--out", str(target)])
    assert result.exit_code == expect, result.output
    return target


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory) -> Path:
    """``verify`` outputs of the handmade induction circuit's true file (all claims hold)."""
    return _verify(tmp_path_factory, "true.yaml", 0)


@pytest.fixture(scope="session")
def failing_report_dir(tmp_path_factory) -> Path:
    """``verify`` outputs of a false file (a necessary node left out: claims fail)."""
    return _verify(tmp_path_factory, "false-missing-node.yaml", 1)
