"""The public Python API: lazy names, and verify_file usable more than once per process."""

from __future__ import annotations

from pathlib import Path

import causal_mi

TRUE = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo" / "handmade-induction"


def test_verify_file_twice_and_write_outputs(tmp_path):
    a = causal_mi.verify_file(str(TRUE / "true.yaml"))
    b = causal_mi.verify_file(str(TRUE / "false-wrong-edge.yaml"))
    assert a.verdict.passed and not b.verdict.passed
    causal_mi.write_outputs(a, str(tmp_path / "out"))
    assert (tmp_path / "out" / "report.md").is_file()


def test_exports_resolve():
    for name in causal_mi.__all__:
        assert getattr(causal_mi, name) is not None
    assert str(causal_mi.parse_site("L1H3.k")) == "L1H3.k"
