"""The zoo model ``handmade-mediation``: a treatment head, two mediators and an interaction,
with every weight set by hand, so its causal graph over scalar node variables is exact.

Prompts are ``<bos> x u v q`` (positions 0..4): ``x`` carries a value f in [0, 1], ``u`` and
``v`` carry values in [-0.5, 0.5] (each token's value sits in residual coordinate ``F``).
No LayerNorm; the residual stream has coordinates::

    [ F | position one-hot (n_ctx) | t | m1 | m2 | y ]

Each head's key position answers every query with attention logit 40 and BOS with 20, so a
position at or after the key reads the key (the rest of the weight is e^-20) and one before
it reads BOS, whose value is 0: a head writes only from its key position on.

- ``L0H0`` (treatment ``T``): every position from 1 on attends to position 1 and copies its
  value into ``t``: t = f.
- ``L1H0`` (mediator ``M1``): positions from 2 on attend to position 2 and copy ``F + t``
  into ``m1``: m1 = f + u.
- ``L1H1`` (mediator ``M2``): positions from 3 on attend to position 3: m2 = f + v.
- ``L1.mlp`` (``mix``): one ReLU neuron, active only at the last position, writes
  y = relu(t + m1 - 1.2): the product-like term in which the treatment interacts with M1.
- Unembedding: logit(yes) = t + m1 + m2 + 2 y, every other logit 0; the metric is the logit
  difference yes - no.

So the treatment reaches the logits directly (t), through M1 (linear and through the
interaction) and through M2 (linear only). ``L0H1`` is an inert head (all weights 0).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

MODEL_NAME = "handmade-mediation"
PLANTED = {"T": "L0H0", "M1": "L1H0", "M2": "L1H1", "mix": "L1.mlp"}
SPECIAL = ("<bos>", "<unk>", "<pad>")
N_VALUES = 16
X_WORDS = tuple(f"x{i:02d}" for i in range(N_VALUES))  # value i / 15
U_WORDS = tuple(f"u{i:02d}" for i in range(N_VALUES))  # value i / 15 - 0.5
OTHER = ("q", "yes", "no")
N_CTX = 8
N_HEADS = 2
D_HEAD = 8
SHARP = 40.0  # attention logit of a matching key, before the 1 / sqrt(d_head) scale
SINK = 0.5  # BOS answers every query at half that: positions before a head's key read 0
THRESHOLD = 1.2  # the interaction neuron fires when t + m1 > THRESHOLD
Y_GAIN = 2.0
CLEAN_X = range(9, 16)  # f in [0.6, 1.0]
CORRUPT_X = range(0, 7)  # f in [0.0, 0.4]


def vocabulary() -> tuple[str, ...]:
    return SPECIAL + X_WORDS + U_WORDS + OTHER


def value(word: str) -> float:
    """The value a token carries in coordinate ``F`` (0 for tokens without one)."""
    if word in X_WORDS:
        return int(word[1:]) / (N_VALUES - 1)
    if word in U_WORDS:
        return int(word[1:]) / (N_VALUES - 1) - 0.5
    return 0.0


def pairs(n: int = 200, seed: int = 0) -> list[dict[str, str]]:
    """Task rows: clean ``x`` from the high values, corrupt ``x`` from the low ones; ``u``
    and ``v`` drawn afresh for each prompt; answer ``yes``, wrong ``no``."""
    rng = random.Random(seed)

    def prompt(xs: range) -> str:
        x = X_WORDS[rng.choice(xs)]
        return f"{x} {rng.choice(U_WORDS)} {rng.choice(U_WORDS)} q"

    return [
        {"clean": prompt(CLEAN_X), "corrupt": prompt(CORRUPT_X), "answer": "yes", "wrong": "no"}
        for _ in range(n)
    ]


def state_dict() -> tuple[dict[str, Any], dict[str, Any]]:
    """The weights (bridge state-dict layout) and the dimensions."""
    import torch

    words = vocabulary()
    V = len(words)
    F, pos = 0, 1
    t, m1, m2, y = pos + N_CTX, pos + N_CTX + 1, pos + N_CTX + 2, pos + N_CTX + 3
    d_model = y + 1
    width = N_HEADS * D_HEAD
    sd: dict[str, Any] = {}
    sd["embed.weight"] = torch.zeros(V, d_model)
    for i, w in enumerate(words):
        sd["embed.weight"][i, F] = value(w)
    sd["pos_embed.weight"] = torch.zeros(N_CTX, d_model)
    sd["pos_embed.weight"][:, pos : pos + N_CTX] = torch.eye(N_CTX)
    for layer in range(2):
        p = f"blocks.{layer}.attn."
        for c in "qkv":
            sd[p + f"{c}.weight"] = torch.zeros(width, d_model)
            sd[p + f"{c}.bias"] = torch.zeros(width)
        sd[p + "o.weight"] = torch.zeros(d_model, width)
        sd[p + "o.bias"] = torch.zeros(d_model)
        sd[f"blocks.{layer}.mlp.in.weight"] = torch.zeros(2, d_model)
        sd[f"blocks.{layer}.mlp.in.bias"] = torch.zeros(2)
        sd[f"blocks.{layer}.mlp.out.weight"] = torch.zeros(d_model, 2)
        sd[f"blocks.{layer}.mlp.out.bias"] = torch.zeros(d_model)
    scale = SHARP * math.sqrt(D_HEAD)

    def head(layer: int, h: int, keys: tuple[int, ...], reads: tuple[int, ...], writes: int):
        p, r = f"blocks.{layer}.attn.", h * D_HEAD
        sd[p + "q.weight"][r, pos : pos + N_CTX] = scale  # every position asks the same
        sd[p + "k.weight"][r, pos + 0] = SINK  # BOS (value 0) takes the query before the key
        for k in keys:
            sd[p + "k.weight"][r, pos + k] = 1.0  # only these positions answer
        for c in reads:
            sd[p + "v.weight"][r, c] = 1.0
        sd[p + "o.weight"][writes, r] = 1.0

    head(0, 0, (1,), (F,), t)  # T: t = f
    head(1, 0, (2,), (F, t), m1)  # M1: u + f
    head(1, 1, (3,), (F, t), m2)  # M2: v + f
    big = 10.0  # the neuron is silenced away from the last position (4)
    sd["blocks.1.mlp.in.weight"][0, t] = 1.0
    sd["blocks.1.mlp.in.weight"][0, m1] = 1.0
    sd["blocks.1.mlp.in.weight"][0, pos + 4] = big
    sd["blocks.1.mlp.in.bias"][0] = -big - THRESHOLD
    sd["blocks.1.mlp.out.weight"][y, 0] = 1.0
    sd["unembed.weight"] = torch.zeros(V, d_model)
    yes = words.index("yes")
    for c, gain in ((t, 1.0), (m1, 1.0), (m2, 1.0), (y, Y_GAIN)):
        sd["unembed.weight"][yes, c] = gain
    sd["unembed.bias"] = torch.zeros(V)
    dims = {
        "d_model": d_model,
        "d_head": D_HEAD,
        "n_heads": N_HEADS,
        "n_layers": 2,
        "n_ctx": N_CTX,
        "d_vocab": V,
        "d_mlp": 2,
    }
    return sd, dims


def reference_logit_diff(prompt: str) -> float:
    """The metric computed from the construction's formulas (no model): the evidence the
    tests compare the built model against."""
    x, u, v, _ = prompt.split()
    f = value(x)
    m1 = f + value(u)
    m2 = f + value(v)
    return f + m1 + m2 + Y_GAIN * max(0.0, f + m1 - THRESHOLD)


def build_tokenizer(directory: Path) -> Any:
    """A whitespace word-level tokenizer over :func:`vocabulary` (the handmade one's builder)."""
    from causal_mi.zoo.handmade import word_tokenizer

    return word_tokenizer(vocabulary(), directory)


def build(out_dir: Path, seed: int = 0, progress: Any = None) -> dict[str, Any]:
    """Write the model to ``out_dir`` (causal-mi's TL-native format); ``seed`` only names the
    task rows (the weights have no randomness)."""
    import transformer_lens.model_bridge.sources.native  # noqa: F401
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    from causal_mi.models.native_format import save_native

    sd, dims = state_dict()
    tok = build_tokenizer(out_dir)
    cfg = TransformerBridgeConfig(
        **dims, attn_only=False, act_fn="relu", normalization_type=None, seed=seed
    )
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tok)
    bridge.load_state_dict(sd, strict=True)
    bridge.eval()
    facts = {"planted": PLANTED, "seed": seed, "threshold": THRESHOLD}
    save_native(bridge, tok, out_dir, extra={"zoo": facts})
    return facts


def write_pairs(path: Path, n: int = 200, seed: int = 0) -> None:
    """Write the task file the hypothesis files read."""
    path.write_text("".join(json.dumps(r) + "\n" for r in pairs(n, seed)))
