"""What the engine's own forward pass implements, what it refuses (one sentence naming the
feature), and the head listing ``causal-mi init`` writes."""

from __future__ import annotations

import json

import pytest

from causal_mi.models.arch import UnsupportedArchitecture, check_hf_config, head_groups_comment


def test_head_listing_shows_each_query_heads_kv_group():
    text = head_groups_comment(
        {"num_attention_heads": 6, "num_key_value_heads": 2, "num_hidden_layers": 3}
    )
    assert "3 layers x 6 query heads (L0H0 ... L2H5)" in text
    assert "kv0: H0 H1 H2   kv1: H3 H4 H5" in text
    assert "query\n# head y's own key / value" in text


def test_head_listing_without_groups_for_multi_head_attention():
    text = head_groups_comment({"n_heads": 4, "n_layers": 2})
    assert "2 layers x 4 query heads" in text
    assert "kv0" not in text  # one key/value head per query head: no groups to list
    assert head_groups_comment({"hidden_size": 8}) == ""  # nothing to read: no listing


@pytest.mark.parametrize(
    "config,feature",
    [
        ("MixtralConfig", "mixture-of-experts MLPs"),
        ("MambaConfig", "state-space layers"),
        ("BertConfig", "post-LayerNorm encoder blocks"),
    ],
)
def test_unimplemented_features_are_named(config, feature):
    import transformers

    cfg = getattr(transformers, config)()
    with pytest.raises(UnsupportedArchitecture) as exc:
        check_hf_config(cfg)
    message = str(exc.value)
    assert message.startswith("the engine's own forward pass (path patching, incremental")
    assert feature in message
    assert message.count(".") <= 1  # one sentence


def test_init_lists_kv_groups_of_a_local_model(tmp_path):
    from typer.testing import CliRunner

    from causal_mi.cli import app
    from tests.engine.families import build

    model = build("llama", tmp_path / "llama")
    out = tmp_path / "h.yaml"
    r = CliRunner().invoke(app, ["init", str(out), "--model", f"path:{model}"])
    assert r.exit_code == 0, r.output
    text = out.read_text()
    assert "#   kv0: H0 H1   kv1: H2 H3\nnodes:" in text
    import yaml

    assert yaml.safe_load(text)["model"] == f"path:{model}"  # still a valid file


def test_mixture_of_experts_is_measured_at_node_level_with_the_reason(tmp_path):
    """An architecture the engine does not implement: edge claims fall back to node level,
    the report names the missing feature, and verify exits 0/1 (never 3)."""
    import torch
    from transformers import MixtralConfig, MixtralForCausalLM
    from typer.testing import CliRunner

    from causal_mi.cli import app
    from tests.conftest import make_tokenizer

    d = tmp_path / "mixtral"
    tok = make_tokenizer(d)
    torch.manual_seed(0)
    cfg = MixtralConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=2,
        num_experts_per_tok=1,
        bos_token_id=0,
        eos_token_id=0,
    )
    MixtralForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    hyp = tmp_path / "h.yaml"
    hyp.write_text(
        f"""version: 1
name: mixtral
model: path:{d}
task: {{generator: repeated_tokens, n: 20, seed: 0, params: {{seq_len: 5, repeat: 3}}}}
metric: logit_diff
ablation: resample
bootstrap: 200
nodes:
  a: L0H1
  b: L1H3
edges:
  - embed -> a
  - a -> b.k
  - b -> logits
claims:
  - faithfulness >= -100
"""
    )
    r = CliRunner().invoke(app, ["verify", str(hyp), "--out", str(tmp_path / "out")])
    assert r.exit_code in (0, 1), r.output
    data = json.dumps(json.loads((tmp_path / "out" / "results.json").read_text()))
    assert "node level, not by path patching" in data
    assert "mixture-of-experts MLPs (mixtral)" in data


def test_reduced_precision_loads_the_checkpoint_in_that_dtype(tmp_path):
    """``precision: bf16`` loads the HF weights in bf16 directly (no fp32 copy first), and the
    engine's own forward runs on them, agreeing with the bridge's bf16 forward to bf16
    rounding while differing from fp32 (the failing case of a silent fp32 run)."""
    import torch

    from causal_mi.engine.functional import forward
    from causal_mi.models.loading import load_model
    from causal_mi.models.weights import extract
    from tests.engine.families import build

    d = build("llama", tmp_path / "llama")
    half = load_model(f"path:{d}", precision="bf16")
    full = load_model(f"path:{d}")
    assert {p.dtype for p in half.bridge.original_model.parameters()} == {torch.bfloat16}
    toks = torch.tensor([[0, 5, 6, 7, 8, 9, 10, 5, 6]])
    with torch.no_grad():
        want = half.bridge(toks)[:, -1].float()
        got = forward(extract(half.bridge), toks).logits.float()
        ref = full.bridge(toks)[:, -1]
    assert (got - want).abs().max() < 0.05
    assert (got - ref).abs().max() > 1e-4
