"""The zoo model ``handmade-induction``: an induction circuit with weights set by hand.

No training: every weight is written analytically, so the circuit is known exactly.

Residual stream (no LayerNorm), in four blocks of coordinates::

    [ token one-hot (V) | position one-hot (n_ctx) | previous token one-hot (V) | output (V) ]

- ``L0H2`` (previous-token head): its query reads position p, its key reads position j
  shifted by one, so it attends from p to p - 1; it copies that position's token into the
  *previous token* block.
- ``L1H1`` (induction head): its query reads the current token, its key reads the previous-
  token block, so it attends to the position right after an earlier occurrence of the current
  token (K-composition with L0H2); it copies that position's token into the *output* block,
  which the unembedding reads.
- The other heads (``L0H0``, ``L0H1``, ``L1H0``, ``L1H2``) are distractors with small random
  weights that write into no block the circuit reads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MODEL_NAME = "handmade-induction"
PLANTED = {"prev": (0, 2), "ind": (1, 1)}  # role -> (layer, head)

SPECIAL = ("<bos>", "<unk>", "<pad>")
WORDS = tuple(f"t{i:02d}" for i in range(24))
N_CTX = 32
N_HEADS = 3
SHARP = 20.0  # attention logit for a match, before the 1/sqrt(d_head) scale


def word_tokenizer(words: tuple[str, ...] | list[str], directory: Path) -> Any:
    """Whitespace word-level tokenizer over ``words`` (ids in order; ``<bos>`` prepended),
    saved to and loaded from ``directory`` (the bridge re-reads tokenizers from there)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(words)}
    core = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<bos>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(directory))
    return AutoTokenizer.from_pretrained(str(directory))


def build_tokenizer(directory: Path) -> Any:
    """The handmade model's tokenizer: :func:`word_tokenizer` over its vocabulary."""
    return word_tokenizer(SPECIAL + WORDS, directory)


def state_dict(seed: int = 0) -> tuple[dict[str, Any], dict[str, int]]:
    """The model's weights (bridge state-dict layout) and its dimensions."""
    import torch

    V = len(SPECIAL) + len(WORDS)
    tok, pos, prev, out = 0, V, V + N_CTX, V + N_CTX + V  # block offsets
    d_model = 3 * V + N_CTX
    d_head = max(V, N_CTX)
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, Any] = {}
    sd["embed.weight"] = torch.zeros(V, d_model)
    sd["embed.weight"][:, tok : tok + V] = torch.eye(V)
    sd["pos_embed.weight"] = torch.zeros(N_CTX, d_model)
    sd["pos_embed.weight"][:, pos : pos + N_CTX] = torch.eye(N_CTX)
    scale = SHARP * math.sqrt(d_head)
    for layer in range(2):
        p = f"blocks.{layer}.attn."
        for c in "qkv":
            # distractors: small random maps from the token block into their head space
            w = 0.01 * torch.randn(N_HEADS * d_head, d_model, generator=g)
            sd[p + f"{c}.weight"] = w
            sd[p + f"{c}.bias"] = torch.zeros(N_HEADS * d_head)
        o = torch.zeros(d_model, N_HEADS * d_head)
        sd[p + "o.weight"] = o
        sd[p + "o.bias"] = torch.zeros(d_model)
    # L0H2: previous-token head
    _, h = PLANTED["prev"]
    rows = slice(h * d_head, (h + 1) * d_head)
    for name in ("q", "k", "v"):
        sd[f"blocks.0.attn.{name}.weight"][rows] = 0
    q = sd["blocks.0.attn.q.weight"]
    k = sd["blocks.0.attn.k.weight"]
    v = sd["blocks.0.attn.v.weight"]
    for i in range(N_CTX):
        q[h * d_head + i, pos + i] = scale  # query: "I am at position i"
        if i + 1 < N_CTX:
            k[h * d_head + i + 1, pos + i] = 1.0  # key of position i answers query i + 1
    v[h * d_head : h * d_head + V, tok : tok + V] = torch.eye(V)
    sd["blocks.0.attn.o.weight"][prev : prev + V, h * d_head : h * d_head + V] = torch.eye(V)
    # L1H1: induction head
    _, h = PLANTED["ind"]
    rows = slice(h * d_head, (h + 1) * d_head)
    for name in ("q", "k", "v"):
        sd[f"blocks.1.attn.{name}.weight"][rows] = 0
    sd["blocks.1.attn.q.weight"][h * d_head : h * d_head + V, tok : tok + V] = scale * torch.eye(V)
    sd["blocks.1.attn.k.weight"][h * d_head : h * d_head + V, prev : prev + V] = torch.eye(V)
    sd["blocks.1.attn.v.weight"][h * d_head : h * d_head + V, tok : tok + V] = torch.eye(V)
    sd["blocks.1.attn.o.weight"][out : out + V, h * d_head : h * d_head + V] = torch.eye(V)
    # Special tokens never count as matches: blank their rows in the induction query.
    for s in range(len(SPECIAL)):
        sd["blocks.1.attn.q.weight"][h * d_head + s, tok + s] = 0
    # Unembedding reads the output block.
    sd["unembed.weight"] = torch.zeros(V, d_model)
    sd["unembed.weight"][:, out : out + V] = 10.0 * torch.eye(V)
    sd["unembed.bias"] = torch.zeros(V)
    dims = {
        "d_model": d_model,
        "d_head": d_head,
        "n_heads": N_HEADS,
        "n_layers": 2,
        "n_ctx": N_CTX,
        "d_vocab": V,
    }
    return sd, dims


def build(out_dir: Path, seed: int = 0, progress: Any = None) -> dict[str, Any]:
    """Write the model to ``out_dir`` (causal-mi's TL-native format) and return its facts."""
    import transformer_lens.model_bridge.sources.native  # noqa: F401
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    from causal_mi.models.native_format import save_native

    sd, dims = state_dict(seed)
    tok = build_tokenizer(out_dir)
    cfg = TransformerBridgeConfig(**dims, attn_only=True, normalization_type=None, seed=seed)
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tok)
    missing = set(bridge.state_dict()) - set(sd)
    for key in missing:  # parameters the construction does not use (none expected)
        sd[key] = bridge.state_dict()[key] * 0
    bridge.load_state_dict(sd, strict=True)
    bridge.eval()
    facts = {
        "planted": {k: f"L{a}H{b}" for k, (a, b) in PLANTED.items()},
        "seed": seed,
        "unused_parameters": sorted(missing),
    }
    save_native(bridge, tok, out_dir, extra={"zoo": facts})
    return facts
