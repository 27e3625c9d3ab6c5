"""The DoWhy-frames benchmark (``benchmarks/dowhy_frames.py``) runs end to end, and its
equality check fails when the two frames give different estimates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dowhy_frames.py"


def _module():
    spec = importlib.util.spec_from_file_location("dowhy_frames_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_runs_and_reports_equal_estimates(monkeypatch, capsys):
    bench = _module()
    monkeypatch.setattr(sys, "argv", ["x", "--rows", "20", "--fits", "1", "--repeats", "2"])
    assert bench.main() == 0
    assert "estimates equal to the bit" in capsys.readouterr().out


def test_a_difference_is_reported(monkeypatch, capsys):
    from causal_mi.effects import crosscheck

    bench = _module()
    real = crosscheck._fit
    calls = [0]

    def shifted(frame, kind, identified=None):  # every other fit off by a little
        calls[0] += 1
        value, ident, est = real(frame, kind, identified)
        return value + (1e-9 if calls[0] % 2 else 0.0), ident, est

    monkeypatch.setattr(crosscheck, "_fit", shifted)
    monkeypatch.setattr(sys, "argv", ["x", "--rows", "20", "--fits", "2", "--repeats", "2"])
    assert bench.main() == 1
    assert "ESTIMATES DIFFER" in capsys.readouterr().out
