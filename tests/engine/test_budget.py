"""The memory budget is computed from the architecture: its per-row estimate bounds the peak
a real forward pass reaches (the RSS high-water mark of that pass in a fresh process,
measured here)
within a factor 2, and a config shaped like a 1B-parameter model (no weights loaded) gets
rows per pass that fit a 24 GB machine, for verify and for sweeps."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from causal_mi.engine.budget import (
    Shape,
    cache_bytes,
    row_bytes,
    rows_for,
    run_bytes,
    sweep_record_bytes,
)

ROWS = 33
MEASURE = f"""
import ctypes, gc, sys, torch
from causal_mi.models.loading import load_model
from causal_mi.engine.runner import Engine
from causal_mi.engine.budget import shape_of
m = load_model("path:" + sys.argv[1])
length = int(sys.argv[2])
eng = Engine(m)
def run(rows):
    g = torch.Generator().manual_seed(0)
    toks = torch.randint(3, int(m.bridge.cfg.d_vocab), (rows, length), generator=g)
    with torch.no_grad():
        eng._forward(toks, [])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
run(1); run(1)
# the peak of the 33-row pass alone: memory the allocator kept from loading the model (or
# the load's own peak) would otherwise hide it. Return free heap pages to the system, then
# reset the kernel's high-water mark (Linux: clear_refs 5) and start from the current RSS
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    print("{{}}")  # no way to reset the high-water mark here
    sys.exit(0)
base = status("VmRSS:")
run({ROWS})
peak = status("VmHWM:")
import dataclasses, json
print(json.dumps({{"per_row": (peak - base) / ({ROWS} - 1),
                  "shape": dataclasses.asdict(shape_of(m))}}))
"""


def _build(family: str, directory: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    from tests.conftest import make_tokenizer

    tok = make_tokenizer(directory)
    ids = dict(vocab_size=len(tok), bos_token_id=0, eos_token_id=0)
    if family == "llama":  # grouped key/value heads, a gated MLP
        cfg = LlamaConfig(
            hidden_size=256, intermediate_size=1024, num_hidden_layers=2, num_attention_heads=8,
            num_key_value_heads=2, max_position_embeddings=512, **ids,
        )  # fmt: skip
    else:  # a plain tanh-GELU MLP
        cfg = GPT2Config(n_embd=256, n_layer=2, n_head=8, n_positions=512, **ids)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(directory)
    return directory


def _measure(directory: Path, length: int) -> tuple[float, Shape]:
    """Bytes one more row adds to the peak of a bridge pass, in a fresh process."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(directory), str(length)],
        capture_output=True, text=True, cwd=root, timeout=300,
        env={"PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if not data:
        pytest.skip("this kernel does not let a process reset its RSS high-water mark")
    return data["per_row"], Shape(**data["shape"])


@pytest.mark.slow  # a fresh process per case (~30 s each on a shared 2-core machine)
@pytest.mark.parametrize(
    "family,length", [("llama", 64), ("llama", 256), ("gpt2", 64), ("gpt2", 256)]
)
def test_estimate_bounds_the_measured_peak_within_a_factor_2(family, length, tmp_path):
    measured, shape = _measure(_build(family, tmp_path / family), length)
    assert shape.gated == (family == "llama") and shape.n_kv_heads == (
        2 if family == "llama" else 8
    )
    estimate = row_bytes(shape, length)
    # measured per row (two runs each): Llama 1.90 MB at 64 tokens, 8.8-8.9 at 256; GPT-2
    # 2.2-2.5 and 11.5-12.2; estimates 2.29 / 12.32 and 3.28 / 16.25. RSS moves in BLAS
    # scratch buffers of a few MiB, hence 10% above the estimate is still within it
    assert measured <= 1.1 * estimate and estimate <= 2 * measured, (estimate, measured)
    # the failing case: an estimate that counts the residual stream only (blind to the
    # attention's heads and the MLP's width) falls below the real peak. Blinding one part
    # alone is not a robust failing case: the RSS mark moves by ~7% between runs, and which
    # part dominates depends on the length (a clean-clone run measured 7.13 MB against
    # 7.60 MB for a head-blind estimate of the Llama at 256 tokens; 3x margin here)
    blind = dataclasses.replace(shape, n_heads=1, n_kv_heads=1, d_mlp=0)
    assert row_bytes(blind, length) < measured


def test_estimate_follows_the_architecture():
    base = Shape(2048, 16, 32, 32, 64, 8192, False, 32000)
    gqa = dataclasses.replace(base, n_kv_heads=8)
    gated = dataclasses.replace(base, gated=True)
    assert row_bytes(gqa, 64) < row_bytes(base, 64)  # fewer key/value heads: less memory
    assert row_bytes(gated, 64) != row_bytes(base, 64)
    assert row_bytes(base, 512) > 8 * row_bytes(base, 64)  # scores grow with the length
    assert row_bytes(base, 64, itemsize=2) < row_bytes(base, 64)


# a Llama-3.2-1B-shaped config.json: only the config, no weights
ONE_B = {
    "model_type": "llama",
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "vocab_size": 128256,
}
MACHINE = 24 * 10**9
RUNTIME = 2 * 2**30  # python, torch and the libraries, measured at ~1.2 GiB here


@pytest.mark.parametrize("itemsize", [4, 2])
def test_a_1b_model_fits_a_24gb_machine_for_verify(itemsize):
    shape = Shape.of_hf_config(ONE_B)
    assert 1.0e9 < shape.n_params < 1.6e9 and shape.gated
    weights = shape.n_params * itemsize  # read as views: no second copy
    length, n = 64, 200
    budget = MACHINE - weights - RUNTIME
    cache = cache_bytes(shape, length, n, itemsize)
    rows = rows_for(shape, length, budget, itemsize, reserved=cache)
    assert rows >= 64  # enough to batch conditions and examples
    assert weights + RUNTIME + cache + rows * row_bytes(shape, length, itemsize) <= MACHINE
    # the failing case: a machine a quarter the size cannot hold the same plan
    assert weights + RUNTIME + cache + rows * row_bytes(shape, length, itemsize) > MACHINE / 4


@pytest.mark.parametrize("itemsize,n", [(4, 100), (2, 200)])
def test_a_1b_model_fits_a_24gb_machine_for_sweeps(itemsize, n):
    shape = Shape.of_hf_config(ONE_B)
    weights = shape.n_params * itemsize
    length = 64
    record = sweep_record_bytes(shape, length, n, itemsize)
    one_run = run_bytes(shape, n, length, length, itemsize)  # the largest chunk: one run
    assert weights + RUNTIME + record + one_run <= MACHINE
    assert weights + RUNTIME + record + one_run > MACHINE / 4
