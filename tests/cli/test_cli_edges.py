"""Edges of the command line: an unwritable --out is refused before anything is measured,
each command's --help names exactly what it writes, ``init`` writes a file that verifies."""

from __future__ import annotations

import re
import tempfile

import pytest
from typer.testing import CliRunner

from causal_mi.cli import app
from tests.cli.test_bad_input import OUTPUT_FILES, write


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", ["verify", "run", "sweep"])
def test_out_under_a_file_is_refused_before_measuring(tmp_path, attn_only_dir, command):
    """Reproduces: an --out that cannot be created was an internal error after measuring."""
    hyp = write(tmp_path, attn_only_dir)
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    r = _invoke(command, hyp, "--out", blocker / "sub")
    assert r.exit_code == 2, r.output
    assert f"--out {blocker / 'sub'}: cannot create the output directory: {blocker} is a file" in (
        r.output
    )
    assert "measuring" not in r.output and "internal error" not in r.output


def test_unwritable_out_is_named(tmp_path, attn_only_dir, monkeypatch):
    """A directory where no file can be created (a read-only mount, no permission)."""
    hyp = write(tmp_path, attn_only_dir)
    out = tmp_path / "ro"
    out.mkdir()

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    r = _invoke("verify", hyp, "--out", out)
    assert r.exit_code == 2, r.output
    assert f"--out {out}: the output directory is not writable: Permission denied" in r.output
    assert list(out.iterdir()) == []


def test_discover_out_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("")
    r = _invoke(
        "discover",
        "--model",
        "zoo:handmade-induction",
        "--generator",
        "repeated_tokens",
        "--out",
        blocker / "p.yaml",
    )
    assert r.exit_code == 2 and f"{blocker} is a file" in r.output, r.output


def _help(command: str) -> str:
    return " ".join(_invoke(command, "--help").output.split())


def test_verify_help_lists_exactly_what_it_writes(tmp_path):
    text = _help("verify")
    named = set(re.findall(r"\b[\w-]+\.(?:html|md|json|xml)\b", text))
    assert named == set(OUTPUT_FILES)


def test_run_help_lists_exactly_what_it_writes():
    named = set(re.findall(r"\b[\w-]+\.(?:html|md|json|xml)\b", _help("run")))
    assert named == set(OUTPUT_FILES) - {"junit.xml"}


def test_discover_help_says_it_writes_only_its_output():
    text = _help("discover")
    assert "Writes only the --out file" in text and "Ctrl-C" in text


def test_init_template_declares_embed_edges(tmp_path):
    from causal_mi.spec.loader import load_hypothesis

    path = tmp_path / "h.yaml"
    r = _invoke("init", path)
    assert r.exit_code == 0, r.output
    hyp = load_hypothesis(path)
    assert any(str(e).startswith("embed -> ") for e in hyp.edges)
    assert hyp.spec.model == "zoo:induction-2l"


def test_init_template_verifies_on_the_model_it_names(tmp_path):
    path = tmp_path / "h.yaml"
    assert _invoke("init", path).exit_code == 0
    r = _invoke("verify", path, "--out", tmp_path / "out", "--no-ablation-check", "--no-dowhy")
    assert r.exit_code == 0, r.output
