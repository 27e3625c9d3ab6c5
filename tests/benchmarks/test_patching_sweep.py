"""The sweep benchmark (``benchmarks/patching_sweep.py``) runs end to end, and its
correctness check fails on a wrong grid.

Evidence from outside causal-mi: the contenders' grids come from transformer_lens, nnsight
and pyvene on the same checkpoint; a grid perturbed by 1e-3 must be reported as differing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "patching_sweep.py"


def _module():
    spec = importlib.util.spec_from_file_location("patching_sweep_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_equal_catches_a_perturbed_grid():
    bench = _module()
    ref = np.linspace(-3, 3, 12).reshape(3, 4)
    assert bench.equal(ref + 5e-5, ref, 1e-4)
    bad = ref.copy()
    bad[2, 1] += 2e-4  # one cell off
    assert not bench.equal(bad, ref, 1e-4)
    assert bench.max_diff(bad, ref) > 1e-4
    assert not bench.equal(ref.T, ref, 1e-4)  # wrong shape
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert not bench.equal(nan, ref, 1e-4)


def test_benchmark_runs_end_to_end_and_flags_a_wrong_contender(tmp_path, capsys):
    """One run on a tiny Llama (grouped-query, rotary, SwiGLU, RMSNorm) with every installed
    contender; transformer_lens' grid is perturbed by 1e-3: the others must agree with
    causal-mi to 1e-4 and the perturbed one must be reported, with exit status 1."""
    out = tmp_path / "bench.json"
    argv = ["--model", "tiny-llama", "--batch", "2", "--length", "5", "--repeats", "1"]
    argv += [
        "--memory",
        "off",
        "--peak-seconds",
        "0.1",
        "--json",
        str(out),
        "--perturb",
        "transformer_lens",
        "1e-3",
    ]
    threads = torch.get_num_threads()
    try:  # in this process (no second interpreter to start), one thread (a shared machine)
        assert _module().main(argv + ["--threads", "1"]) == 1
    finally:
        torch.set_num_threads(threads)
    assert "FAIL: a contender's grid differs" in capsys.readouterr().out
    data = json.loads(out.read_text())
    rows = {(x["family"], x["contender"]): x for x in data["rows"]}
    ran = {c for _, c in rows}
    assert {"causal-mi", "transformer_lens"} <= ran
    for lib in ("nnsight", "pyvene"):  # an optional contender runs or is skipped, with why
        if importlib.util.find_spec(lib) is None:
            assert any(k.startswith(lib) for k in data["skipped"])
        else:
            assert any(c.startswith(lib) for c in ran)
    for family in ("head_out", "resid_pre"):
        for c in ran:
            d = rows[family, c]["max_diff"]
            if c == "transformer_lens":
                assert 1e-3 - 1e-4 < d < 1e-3 + 1e-4  # the perturbation, caught
            else:
                assert d <= 1e-4, (family, c, d)
            assert len(rows[family, c]["times"]) == 1 and rows[family, c]["flops"] > 0
