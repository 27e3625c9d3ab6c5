"""``causal-mi discover``: phases announced, nothing left behind, a clear exit when there is
nothing to propose, a clean stop on Ctrl-C, and a proposal that verifies."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from causal_mi.cli import app


def _leftovers() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("causal-mi-discover-")}


def _discover(cwd: Path, model: str, *extra: str):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(
            app,
            ["discover", "--model", model, "--generator", "repeated_tokens", "--n", "16"]
            + list(extra),
        )
    finally:
        os.chdir(old)


def test_nothing_to_propose_exits_1_naming_the_strongest(tmp_path, attn_only_dir):
    """A random model has no component whose effect clears 5 x G: exit 1, the strongest
    components listed, no file written, no temporary file anywhere."""
    before = _leftovers()
    r = _discover(
        tmp_path, f"path:{attn_only_dir}", "--min-effect", "5", "--out", "mine/proposed.yaml"
    )
    assert r.exit_code == 1, r.output
    assert "nothing to propose" in r.output and "Strongest components measured: L" in r.output
    assert "--min-effect 5" in r.output and "Traceback" not in r.output
    assert "[1/4] effect of each of 8 heads on 16 examples" in r.output
    assert list(tmp_path.iterdir()) == []  # not even the output's folder
    assert _leftovers() == before


def test_ctrl_c_stops_cleanly_and_removes_temporary_files(tmp_path, attn_only_dir, monkeypatch):
    """Interrupted while the intermediate hypothesis is measured: exit 130, a message, no
    traceback, the temporary folder removed, nothing in the user's directory."""
    from causal_mi import pipeline

    seen = []

    def interrupt(prep, **kwargs):
        seen.append(prep.hypothesis.path)
        assert prep.hypothesis.path.exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "evaluate", interrupt)
    before = _leftovers()
    r = _discover(
        tmp_path, f"path:{attn_only_dir}", "--min-effect", "-100", "--out", "proposed.yaml"
    )
    assert r.exit_code == 130, r.output
    assert "discover interrupted; nothing was written" in r.output
    assert seen and not seen[0].exists() and not seen[0].parent.exists()
    assert not str(seen[0]).startswith(str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    assert _leftovers() == before


def test_proposal_on_the_handmade_circuit_verifies(tmp_path):
    """On the hand-set induction circuit, discover finds L0H2 -> L1H1.k; the file verifies."""
    r = _discover(tmp_path, "zoo:handmade-induction", "--min-effect", "0.3", "--out", "p.yaml")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]
    text = (tmp_path / "p.yaml").read_text()
    assert "L0H2" in text and "L1H1" in text and ".k" in text
    v = CliRunner().invoke(app, ["verify", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "o")])
    assert v.exit_code == 0, v.output
