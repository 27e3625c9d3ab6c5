"""``causal-mi sweep`` and the run settings ``--max-memory`` / ``--precision``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from causal_mi.cli import app
from causal_mi.engine.budget import parse_size, row_bytes, rows_for
from tests.cli.test_bad_input import hypothesis_text


@pytest.fixture()
def hyp(tmp_path, mlp_dir):
    p = tmp_path / "h.yaml"
    p.write_text(hypothesis_text(mlp_dir))
    return p


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_sweep_writes_table_grid_and_heatmap(hyp, tmp_path, mlp_model):
    out = tmp_path / "out"
    r = _invoke("sweep", hyp, "-f", "head_out", "-f", "resid_pre", "-o", out)
    assert r.exit_code == 0, r.output
    assert "head_out: " in r.output and "largest |fraction of G|" in r.output
    doc = json.loads((out / "sweep-head_out.json").read_text())
    assert doc["schema"] == "causal-mi/sweep/v1" and doc["engine"] == "incremental"
    grid = np.array(doc["grid"])
    assert grid.shape == (mlp_model.dims.n_layers, mlp_model.dims.n_heads)
    lines = (out / "sweep-resid_pre.csv").read_text().splitlines()
    assert lines[0] == "layer,pos,metric,fraction_of_G"
    assert len(lines) - 1 == mlp_model.dims.n_layers * doc["length"]
    image = (out / "sweep-head_out.svg").read_text()
    assert image.startswith("<svg") and 'class="colorbar"' in image
    assert ">layer</text>" in image and ">head</text>" in image
    assert f"n = {doc['n']}" in image and "clean patched into corrupt" in image
    # the file's numbers are the API's numbers
    from causal_mi import pipeline
    from causal_mi.effects.patching import act_patch

    prep = pipeline.prepare(hyp)
    want = act_patch(prep.model, prep.task, "head_out", method="hooks")
    np.testing.assert_allclose(grid, want.grid, atol=1e-4)


def test_sweep_budget_and_hooks_method_agree(hyp, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _invoke("sweep", hyp, "-f", "attn_out", "-o", a, "--max-memory", "1KiB").exit_code == 0
    r = _invoke("sweep", hyp, "-f", "attn_out", "-o", b, "--method", "hooks")
    assert r.exit_code == 0, r.output
    ga = np.array(json.loads((a / "sweep-attn_out.json").read_text())["grid"])
    doc = json.loads((b / "sweep-attn_out.json").read_text())
    assert doc["engine"] == "hooks"
    np.testing.assert_allclose(ga, np.array(doc["grid"]), atol=1e-4)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-f", "heads"], "unknown sweep family 'heads'; valid: resid_pre"),
        (["--direction", "forward"], "valid: restore, ablate"),
        (["--method", "fast"], "valid: auto, incremental, hooks"),
        (["--max-memory", "lots"], "--max-memory: invalid memory size 'lots'"),
        (["--max-memory", "-5MB"], "invalid memory size"),
        (["--precision", "fp8"], "unknown precision 'fp8'; valid: fp32, bf16, fp16"),
        (["-f", "neurons", "--layer", "7"], "--layer 7 is out of range"),
    ],
)
def test_sweep_bad_options(hyp, tmp_path, args, message):
    out = tmp_path / "out"
    r = _invoke("sweep", hyp, "-o", out, *args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir())


def test_sweep_mlp_family_on_attention_only_model(tmp_path, attn_only_dir):
    p = tmp_path / "h.yaml"
    p.write_text(hypothesis_text(attn_only_dir))
    r = _invoke("sweep", p, "-f", "mlp_out", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "mlp_out: 'mlp_out' needs MLPs" in r.output


def test_sweep_bad_file_is_reported_like_verify(tmp_path, mlp_dir):
    p = tmp_path / "h.yaml"
    p.write_text(hypothesis_text(mlp_dir, metric="logit_dif"))
    r = _invoke("sweep", p, "-o", tmp_path / "out")
    assert r.exit_code == 2 and f"{p}:5:" in r.output and "logit_diff" in r.output


def test_verify_with_memory_budget_gives_same_results(hyp, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # a random model: its verdict does not matter (its gap gate fails), its numbers do
    first = _invoke("verify", hyp, "-o", a, "--no-ablation-check").exit_code
    r = _invoke("verify", hyp, "-o", b, "--no-ablation-check", "--max-memory", "64KiB")
    assert r.exit_code == first and first in (0, 1), r.output
    ra = json.loads((a / "results.json").read_text())["claims"]
    rb = json.loads((b / "results.json").read_text())["claims"]
    keys = ("point", "lower", "upper")
    np.testing.assert_allclose(
        [[c[k] for k in keys] for c in ra], [[c[k] for k in keys] for c in rb], atol=1e-4
    )
    from causal_mi import pipeline
    from causal_mi.verify_command import rows_for

    assert rows_for(pipeline.prepare(hyp), 256, parse_size("64KiB")) < 4  # the budget bites


def test_reduced_precision_runs_and_stays_close(hyp, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _invoke("sweep", hyp, "-f", "head_out", "-o", a).exit_code == 0
    r = _invoke("sweep", hyp, "-f", "head_out", "-o", b, "--precision", "bf16")
    assert r.exit_code == 0, r.output
    ga = np.array(json.loads((a / "sweep-head_out.json").read_text())["grid"])
    doc = json.loads((b / "sweep-head_out.json").read_text())
    assert doc["precision"] == "bf16"
    gb = np.array(doc["grid"])
    assert not np.array_equal(ga, gb)  # really ran in another precision
    np.testing.assert_allclose(gb, ga, atol=0.1 * np.abs(ga).max() + 0.05)


def test_parse_size_and_rows():
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size("2GB") == 2 * 10**9
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size("100") == 100 * 2**20
    for bad in ("", "MB", "5 parsecs", "0", "-1GB"):
        with pytest.raises(ValueError, match="invalid memory size"):
            parse_size(bad)

    class Cfg:
        d_model, n_heads, d_head, d_mlp, d_vocab, attn_only = 768, 12, 64, 3072, 50257, False

    per_row = row_bytes(Cfg, 24)
    assert rows_for(Cfg, 24, 10 * per_row) == 10
    assert rows_for(Cfg, 24, 1) == 1  # never zero rows


def test_sweep_checks_every_family_before_writing(tmp_path, attn_only_dir):
    p = tmp_path / "h.yaml"
    p.write_text(hypothesis_text(attn_only_dir))
    out = tmp_path / "out"
    r = _invoke("sweep", p, "-f", "head_out", "-f", "mlp_out", "-o", out)
    assert r.exit_code == 2 and "needs MLPs" in r.output
    assert not out.exists() or not any(out.iterdir())  # head_out was not written either


def test_act_patch_rejects_a_bad_layer(mlp_model, hyp):
    from causal_mi import pipeline
    from causal_mi.effects.patching import act_patch

    task = pipeline.prepare(hyp).task
    for layer in (-1, 7):
        with pytest.raises(ValueError, match=f"layer {layer} is out of range"):
            act_patch(mlp_model, task, "neurons", layer=layer)


def test_sweep_summary_ranks_by_absolute_value():
    """The largest effect here is negative (-0.76): it leads the summary."""
    import pandas as pd

    from causal_mi.sweep_command import strongest

    table = pd.DataFrame(
        {
            "layer": [0, 0, 1, 1],
            "head": [0, 1, 0, 1],
            "metric": [1.0, 2.0, 3.0, 4.0],
            "fraction_of_G": [0.41, 0.05, -0.76, 0.30],
        }
    )
    assert strongest(table, ("layer", "head")) == (
        "(layer=1, head=0) -0.76, (layer=0, head=0) +0.41, (layer=1, head=1) +0.30"
    )


@pytest.mark.parametrize(
    "second", [["--max-memory", "64KiB"], ["--max-rows", "3"], [], ["tampered"]]
)
def test_an_interrupted_verify_resumes_with_other_settings(hyp, tmp_path, monkeypatch, second):
    # the reported bugs: a verify interrupted with one row budget and rerun with another
    # read other examples' values, or crashed (exit 3, a shape mismatch). (Without DoWhy
    # and the graph analysis, no claim condition records anything, so the claims read the
    # saved cells as they are: the tampered case shows they are read.)
    from causal_mi.engine.runner import Engine

    whole = tmp_path / "whole"
    assert _invoke("verify", hyp, "-o", whole, "--no-ablation-check", "--no-dowhy").exit_code in (
        0,
        1,
    )
    want = json.loads((whole / "results.json").read_text())
    out = tmp_path / "resumed"
    real, calls = Engine._forward, [0]

    def forward(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] > 6:  # a few passes saved, then Ctrl-C
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Engine, "_forward", forward)
        r = _invoke(
            "verify", hyp, "-o", out, "--no-ablation-check", "--no-dowhy", "--max-rows", "8"
        )
    assert r.exit_code == 130 and not (out / "results.json").exists(), r.output
    saved = sorted((out / ".cache").rglob("*.safetensors"))
    assert saved  # what finished was saved
    tampered = second == ["tampered"]
    if tampered:  # the failing case: saved cells that are not what they say
        from safetensors import safe_open
        from safetensors.torch import save_file

        for f in saved:
            with safe_open(str(f), framework="pt") as fh:
                meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
            values = tensors["values"].clone()
            values[:-2] += 1.0  # conditions' cells, not the baselines (those cancel in G)
            save_file({**tensors, "values": values}, str(f), metadata=meta)
        second = []
    r = _invoke("verify", hyp, "-o", out, "--no-ablation-check", "--no-dowhy", *second)
    assert r.exit_code in (0, 1), r.output  # never 3
    got = json.loads((out / "results.json").read_text())
    assert tampered or got["verdict"] == want["verdict"]
    # every measured value within the engine's batch tolerance, 1e-5 of a logit: the
    # baselines, and each quantity's per-example numerator (per_example x G)
    for k in ("clean", "corrupt"):
        if not tampered:
            np.testing.assert_allclose(got["baseline"][k], want["baseline"][k], atol=1e-5)
    assert got["quantities"].keys() == want["quantities"].keys()

    def numerators(doc):
        g = doc["baseline"]["G"]
        return {q: np.array(v["per_example"]) * g for q, v in doc["quantities"].items()}

    same = all(
        np.allclose(numerators(got)[q], numerators(want)[q], atol=1e-5, rtol=0)
        for q in want["quantities"]
    )
    assert same == (not tampered)
