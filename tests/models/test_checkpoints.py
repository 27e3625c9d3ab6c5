"""Hugging Face directories as other tools write them: each loads and computes the Hugging
Face model's own logits on the tokenizer's own ids, or is refused with exit 2 naming the
file and what is supported."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from causal_mi.errors import ModelLoadError
from causal_mi.models.loading import load_model

WORDS = [f"w{i}" for i in range(30)]


def _tokenizer(directory: Path, special: tuple[str, ...], only_json: bool = False, **kw):
    """A whitespace word-level tokenizer: ``special`` tokens first, then WORDS."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*special, *WORDS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    directory.mkdir(parents=True, exist_ok=True)
    if only_json:  # tokenizer.json alone, as the tokenizers library writes it
        core.save(str(directory / "tokenizer.json"))
    else:
        PreTrainedTokenizerFast(tokenizer_object=core, **kw).save_pretrained(directory)
    return core


def _model(directory: Path, vocab: int, *, tie: bool = False, dtype=None, **save_kw):
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tie,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(directory, **save_kw)
    return directory


def _reference(directory: Path, ids: list[int]) -> torch.Tensor:
    """The checkpoint run by transformers alone, in float32."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        return hf(torch.tensor([ids])).logits[0]


def _same_logits(m, directory: Path, ids: list[int]) -> None:
    with torch.no_grad():
        got = m.bridge(torch.tensor([ids]))[0]
    want = _reference(directory, ids)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (got.roll(1, dims=-1) - want).abs().max() > 1e-3  # not a constant


BOS = ("<bos>", "<unk>", "<pad>")


def test_sharded_safetensors(tmp_path):
    d = tmp_path / "sharded"
    core = _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    _model(d, core.get_vocab_size(), max_shard_size="20KB")
    shards = sorted(p.name for p in d.glob("model-*.safetensors"))
    assert (d / "model.safetensors.index.json").is_file() and len(shards) > 1
    m = load_model(f"path:{d}")
    ids = m.tokens.prompt("w1 w2 w3")
    assert ids == [0, 4, 5, 6]  # the declared BOS, then the words
    _same_logits(m, d, ids)
    # the model hash covers every shard: changing one changes it
    before = m.weights_sha256
    last = d / shards[-1]
    from safetensors.torch import load_file, save_file

    t = load_file(str(last))
    save_file({k: v + 1 for k, v in t.items()}, str(last), metadata={"format": "pt"})
    assert load_model(f"path:{d}").weights_sha256 != before


def test_missing_shard_is_named(tmp_path):
    d = tmp_path / "sharded"
    core = _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    _model(d, core.get_vocab_size(), max_shard_size="20KB")
    victim = sorted(d.glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(ModelLoadError, match=f"names shard\\(s\\) that are not in .*{victim.name}"):
        load_model(f"path:{d}")


def test_pytorch_model_bin_only(tmp_path):
    d = tmp_path / "bin"
    core = _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    _model(d, core.get_vocab_size())
    from safetensors.torch import load_file

    sd = load_file(str(d / "model.safetensors"))
    os.remove(d / "model.safetensors")
    torch.save(sd, d / "pytorch_model.bin")
    m = load_model(f"path:{d}")
    _same_logits(m, d, m.tokens.prompt("w3 w9 w1"))
    assert m.weights_sha256 != load_model(f"path:{_sibling(d, sd)}").weights_sha256


def _sibling(d: Path, sd: dict) -> Path:
    """A copy of ``d`` whose .bin holds other weights (the hash must tell them apart)."""
    import shutil

    other = d.parent / "other"
    shutil.copytree(d, other)
    torch.save({k: v * 2 for k, v in sd.items()}, other / "pytorch_model.bin")
    return other


class Payload:
    """Anything but tensors: a weights-only unpickler refuses it."""

    def __reduce__(self):
        return (print, ("unpickled",))


def test_pickle_that_needs_more_than_weights_only_is_refused(tmp_path, capsys):
    d = tmp_path / "bin"
    core = _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    _model(d, core.get_vocab_size())
    os.remove(d / "model.safetensors")
    with open(d / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"model.embed_tokens.weight": Payload()}, fh)
    with pytest.raises(ModelLoadError) as exc:
        load_model(f"path:{d}")
    assert f"{d / 'pytorch_model.bin'} holds more than tensors" in str(exc.value)
    assert "weights_only=True" in str(exc.value)
    assert "unpickled" not in capsys.readouterr().out  # nothing ran


@pytest.mark.parametrize("dtype,name", [(torch.bfloat16, "bfloat16"), (torch.float16, "float16")])
def test_reduced_precision_checkpoints_load_in_the_requested_precision(dtype, name, tmp_path):
    d = tmp_path / name
    core = _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    _model(d, core.get_vocab_size(), dtype=dtype)
    assert json.loads((d / "config.json").read_text())["dtype"] == name
    m = load_model(f"path:{d}")
    assert m.bridge.W_E.dtype == torch.float32  # fp32 unless --precision says otherwise
    _same_logits(m, d, m.tokens.prompt("w5 w6 w7"))
    half = load_model(f"path:{d}", precision="bf16")
    assert half.bridge.W_E.dtype == torch.bfloat16


def test_tied_embeddings_without_an_unembedding_in_the_file(tmp_path):
    from safetensors import safe_open

    d = tmp_path / "tied"
    core = _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    _model(d, core.get_vocab_size(), tie=True)
    with safe_open(str(d / "model.safetensors"), "pt") as fh:
        assert not any(k.startswith("lm_head") for k in fh.keys())
    m = load_model(f"path:{d}")
    _same_logits(m, d, m.tokens.prompt("w2 w2 w8"))
    torch.testing.assert_close(m.bridge.W_U, m.bridge.W_E.T)


def test_tokenizer_without_bos_gets_none_prepended(tmp_path):
    """Qwen-style: no BOS token. The bridge would prepend the EOS in its place; causal-mi
    tokenizes as the tokenizer does."""
    from transformers import AutoTokenizer

    d = tmp_path / "qwen-style"
    eos = ("<|endoftext|>", "<unk>")
    core = _tokenizer(d, eos, eos_token="<|endoftext|>", unk_token="<unk>")
    _model(d, core.get_vocab_size())
    m = load_model(f"path:{d}")
    text = "w1 w2 w3"
    own = AutoTokenizer.from_pretrained(d)(text)["input_ids"]
    assert m.tokens.prompt(text) == own == [3, 4, 5]
    assert m.tokens.bos_id is None and not m.tokens.prepends_bos
    _same_logits(m, d, own)


def test_bos_token_with_add_bos_token_false(tmp_path):
    """Pythia-style: a BOS token that the tokenizer does not add. Prompts get the bridge's
    default (its BOS, as for GPT-2), and it is the tokenizer's own BOS id."""
    d = tmp_path / "neox-style"
    core = _tokenizer(
        d, ("<|endoftext|>", "<unk>"), bos_token="<|endoftext|>", eos_token="<|endoftext|>",
        unk_token="<unk>", add_bos_token=False,
    )  # fmt: skip
    _model(d, core.get_vocab_size())
    m = load_model(f"path:{d}")
    ids = m.tokens.prompt("w1 w2")
    assert ids == [0, 3, 4] and m.tokens.bos_id == 0
    _same_logits(m, d, ids)


def test_tokenizer_json_alone(tmp_path):
    """Only tokenizer.json (no tokenizer_config.json): the words keep their ids (the bridge
    would glue an invented BOS string to the first word, making it unknown)."""
    from tokenizers import Tokenizer

    d = tmp_path / "json-only"
    core = _tokenizer(d, ("<unk>",), only_json=True)
    _model(d, core.get_vocab_size())
    assert sorted(p.name for p in d.iterdir() if p.name.startswith("tok")) == ["tokenizer.json"]
    m = load_model(f"path:{d}")
    text = "w1 w2 w3"
    assert m.tokens.prompt(text) == Tokenizer.from_file(str(d / "tokenizer.json")).encode(text).ids
    assert m.tokens.prompt(text) == [2, 3, 4]


def test_missing_tokenizer_is_a_clear_error(tmp_path):
    d = _model(tmp_path / "no-tokenizer", 40)
    with pytest.raises(ModelLoadError, match=f"{d} has no tokenizer; causal-mi reads prompts"):
        load_model(f"path:{d}")


@pytest.mark.parametrize(
    "files,fragment",
    [
        (["tf_model.h5"], "holds only tf_model.h5 (TensorFlow)"),
        (["flax_model.msgpack"], "holds only flax_model.msgpack (Flax)"),
        (["model.gguf"], "holds only model.gguf (GGUF (llama.cpp))"),
        ([], "holds no weight file"),
    ],
)
def test_weights_in_other_formats_are_refused(files, fragment, tmp_path):
    d = tmp_path / "m"
    _tokenizer(d, BOS, bos_token="<bos>", unk_token="<unk>")
    (d / "config.json").write_text(json.dumps({"model_type": "llama"}))
    for f in files:
        (d / f).write_bytes(b"\0")
    with pytest.raises(ModelLoadError) as exc:
        load_model(f"path:{d}")
    assert fragment in str(exc.value)
    assert "causal-mi loads model.safetensors, sharded safetensors" in str(exc.value)


def test_verify_exits_2_naming_the_missing_tokenizer(tmp_path):
    from typer.testing import CliRunner

    from causal_mi.cli import app

    _model(tmp_path / "model", 40)
    hyp = tmp_path / "h.yaml"
    hyp.write_text(
        "version: 1\nname: x\nmodel: path:model\ntask: {generator: repeated_tokens, n: 4}\n"
        "nodes: {a: L0H0}\nclaims:\n  - effect(a) >= 0.1\n"
    )
    r = CliRunner().invoke(app, ["verify", str(hyp), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert f"{hyp}:3:8" in r.output and "has no tokenizer" in r.output
    assert "Traceback" not in r.output
