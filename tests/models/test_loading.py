"""Model references: path: (HF-format and TL-native dirs), hf: on a local dir, zoo:."""

from __future__ import annotations

import shutil

import pytest
import torch

from causal_mi.errors import ModelLoadError
from causal_mi.models.loading import load_model, zoo_names


def test_path_loads_an_hf_gpt2_directory(gpt2_dir):
    from transformers import GPT2LMHeadModel

    m = load_model(f"path:{gpt2_dir}")
    assert (m.dims.n_layers, m.dims.n_heads, m.dims.attn_only) == (2, 4, False)
    ids = m.tokens.prompt("w1 w2 w3")
    assert ids[0] == m.tokens.bos_id and len(ids) == 4
    hf = GPT2LMHeadModel.from_pretrained(gpt2_dir).eval()
    with torch.no_grad():
        ours = m.bridge(torch.tensor([ids]))
        theirs = hf(torch.tensor([ids])).logits
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert len(m.weights_sha256) == 64


def test_path_is_relative_to_the_hypothesis_dir(gpt2_dir, tmp_path):
    target = tmp_path / "models" / "tiny"
    shutil.copytree(gpt2_dir, target)
    m = load_model("path:models/tiny", base_dir=tmp_path)
    assert m.source == str(target.resolve())


def test_hf_accepts_a_local_directory(gpt2_dir):
    m = load_model(f"hf:{gpt2_dir}")
    assert m.dims.n_layers == 2


def test_native_directory_round_trip(attn_only_dir):
    m = load_model(f"path:{attn_only_dir}")
    assert m.dims.attn_only
    m2 = load_model(f"path:{attn_only_dir}")
    ids = torch.tensor([m.tokens.prompt("w3 w4 w5")])
    with torch.no_grad():
        assert torch.equal(m.bridge(ids), m2.bridge(ids))


def test_zoo_models_are_listed_and_load():
    assert "handmade-induction" in zoo_names()
    m = load_model("zoo:handmade-induction")
    assert m.dims.n_heads == 3


@pytest.mark.parametrize(
    "ref,fragment",
    [
        ("zoo:nope", "unknown zoo model 'nope'"),
        ("path:/definitely/missing", "model directory not found"),
        ("s3:bucket", "must start with zoo:, hf: or path:"),
    ],
)
def test_bad_references(ref, fragment):
    with pytest.raises(ModelLoadError, match=fragment):
        load_model(ref)


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(f"path:{tmp_path}")


def test_corrupt_weights_are_a_load_error(gpt2_dir, tmp_path):
    target = tmp_path / "broken"
    shutil.copytree(gpt2_dir, target)
    (target / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not load model"):
        load_model(f"path:{target}")
