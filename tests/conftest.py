"""Shared fixtures: tiny models written to temp dirs by the tests themselves (no hub)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = [f"w{i}" for i in range(40)]


def make_tokenizer(directory: Path):
    """A whitespace word-level tokenizer saved into ``directory`` and loaded back from there
    (the bridge re-reads the tokenizer from its saved location)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<unk>": 1, "<pad>": 2}
    for w in WORDS:
        vocab[w] = len(vocab)
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", unk_token="<unk>", pad_token="<pad>"
    )
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return AutoTokenizer.from_pretrained(directory)


def make_native(directory: Path, *, attn_only: bool, seed: int = 0) -> Path:
    """A random TL-native model (2 layers, 4 heads) saved in causal-mi's native format."""
    import torch
    import transformer_lens.model_bridge.sources.native  # noqa: F401
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    from causal_mi.models.native_format import save_native

    tok = make_tokenizer(directory)
    cfg = TransformerBridgeConfig(
        d_model=32,
        d_head=8,
        n_heads=4,
        n_layers=2,
        n_ctx=32,
        d_vocab=len(tok),
        d_mlp=64,
        attn_only=attn_only,
        act_fn="gelu_new",
        seed=seed,
    )
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tok)
    # Larger weights than the default init so patching moves the logits visibly.
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        for p in bridge.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    bridge.eval()
    save_native(bridge, tok, directory)
    return directory


def make_gpt2(directory: Path, seed: int = 0) -> Path:
    """A random HF GPT-2 (2 layers) saved with save_pretrained, plus its tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = make_tokenizer(directory)
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def attn_only_dir(tmp_path_factory) -> Path:
    return make_native(tmp_path_factory.mktemp("attn-only"), attn_only=True)


@pytest.fixture(scope="session")
def mlp_dir(tmp_path_factory) -> Path:
    return make_native(tmp_path_factory.mktemp("with-mlp"), attn_only=False, seed=1)


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory) -> Path:
    return make_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(scope="session")
def mlp_model(mlp_dir):
    from causal_mi.models.loading import load_model

    return load_model(f"path:{mlp_dir}")


@pytest.fixture(scope="session")
def attn_model(attn_only_dir):
    from causal_mi.models.loading import load_model

    return load_model(f"path:{attn_only_dir}")
