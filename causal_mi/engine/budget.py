"""Memory budgets (``--max-memory``): parsing sizes and fitting the engines' work to one.

The hook engine is bounded by rows per forward pass, so a byte budget becomes a row count
here from a per-row estimate of what one pass holds at once, computed from the
architecture (:class:`Shape`: widths, query and key/value heads, a gated MLP, the prompt
length, the dtype) after what the engine caches for the whole task; the incremental
engine sizes its chunks from the same per-position estimate
(:mod:`causal_mi.engine.joins`). Weights are not part of the budget: the engines read
them as views of the loaded model's parameters (no second copy).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from causal_mi.models.arch import LLAMA_LIKE

_UNITS = {
    "": 2**20,
    "b": 1,
    "k": 2**10,
    "kb": 10**3,
    "kib": 2**10,
    "m": 2**20,
    "mb": 10**6,
    "mib": 2**20,
    "g": 2**30,
    "gb": 10**9,
    "gib": 2**30,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``512MiB``, ``2GB``, ``1.5GiB``, or a bare number of MiB."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(
            f"invalid memory size '{text}'; write a positive number with a unit, e.g. 512MiB, "
            "2GB, 1.5GiB (a bare number means MiB)"
        )
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"invalid memory size '{text}': less than one byte")
    return size


@dataclass(frozen=True)
class Shape:
    """What activation memory depends on, read from a config (no weights needed)."""

    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int  # 0: attention only
    gated: bool  # act(x W_gate) * (x W_in): two hidden tensors and their product
    d_vocab: int

    @classmethod
    def of(cls, cfg: Any) -> Shape:
        """From a TransformerLens config (``d_model``, ``n_heads``, ``d_head``, ``d_mlp``,
        ``n_key_value_heads``, ``gated_mlp``, ``attn_only`` ...) or any object with those
        attributes."""
        d, H = int(cfg.d_model), int(cfg.n_heads)
        attn_only = bool(getattr(cfg, "attn_only", False))
        return cls(
            d_model=d,
            n_layers=int(getattr(cfg, "n_layers", 1) or 1),
            n_heads=H,
            n_kv_heads=int(getattr(cfg, "n_key_value_heads", None) or H),
            d_head=int(getattr(cfg, "d_head", None) or d // H),
            d_mlp=0 if attn_only else int(getattr(cfg, "d_mlp", None) or 4 * d),
            gated=bool(getattr(cfg, "gated_mlp", False)),
            d_vocab=int(cfg.d_vocab),
        )

    @classmethod
    def of_hf_config(cls, cfg: dict[str, Any]) -> Shape:
        """From a Hugging Face ``config.json`` (Llama-style names, GPT-2-style fallbacks);
        gated for the families whose MLP is (Llama, Mistral, Qwen, Gemma, OLMo 2, Phi-3)."""
        d = int(cfg.get("hidden_size") or cfg["n_embd"])
        H = int(cfg.get("num_attention_heads") or cfg["n_head"])
        gated = str(cfg.get("model_type", "")) in (*LLAMA_LIKE, "phi3")
        return cls(
            d_model=d,
            n_layers=int(cfg.get("num_hidden_layers") or cfg["n_layer"]),
            n_heads=H,
            n_kv_heads=int(cfg.get("num_key_value_heads") or H),
            d_head=int(cfg.get("head_dim") or d // H),
            d_mlp=int(cfg.get("intermediate_size") or cfg.get("n_inner") or 4 * d),
            gated=gated,
            d_vocab=int(cfg["vocab_size"]),
        )

    @property
    def n_params(self) -> int:
        """Parameters (embedding and an untied unembedding included; biases and norms,
        a fraction of a percent, left out)."""
        attn = self.d_model * self.d_head * (2 * self.n_heads + 2 * self.n_kv_heads)
        mlp = (3 if self.gated else 2) * self.d_model * self.d_mlp
        return self.n_layers * (attn + mlp) + 2 * self.d_vocab * self.d_model


def position_floats(shape: Shape, length: int) -> int:
    """Activation elements one position of one row holds at the peak of a forward pass.

    Counted as live at once (an upper bound: the attention's tensors are freed before the
    MLP runs, but a pass also keeps hook aliases and the allocator's slack): the residual
    stream with its norm, sublayer output and hook copies (6 d_model); the attention's q,
    k and v with their rotary copies, the key/value heads expanded per query head, and
    z (4 H d_head + 4 H_kv d_head); the scores and their softmax against every key (2 H
    length); the MLP's hidden layer with its activation's temporaries (5
    d_mlp gated: gate, up, act(gate), product, one temporary; 8 d_mlp plain: tanh-GELU
    builds several). Measured against the RSS high-water mark of real passes in
    ``tests/engine/test_budget.py`` (an upper bound within a factor 2)."""
    attn = 4 * shape.n_heads * shape.d_head + 4 * shape.n_kv_heads * shape.d_head
    attn += 2 * shape.n_heads * length
    mlp = (5 if shape.gated else 8) * shape.d_mlp
    return 6 * shape.d_model + attn + mlp


def row_bytes(cfg: Any, length: int, itemsize: int = 4) -> int:
    """Peak bytes one row (one prompt of ``length`` tokens) adds to a forward pass: every
    position's activations (:func:`position_floats`) and the last position's logits, in
    the weights' dtype, then as float32 and the metric's float64."""
    shape = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    return itemsize * length * position_floats(shape, length) + shape.d_vocab * (itemsize + 12)


def cache_bytes(cfg: Any, length: int, n_examples: int, itemsize: int = 4) -> int:
    """What the hook engine keeps for a whole task while it runs (independent of rows per
    pass): the clean and corrupt runs' activations at the sites patches read, at most
    every head's output (z) and every MLP's output of every layer, which node-level
    faithfulness ablates (a file naming neurons or residual streams adds those sites), and
    the clean run's last-position log-probabilities."""
    s = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    per_layer = s.n_heads * s.d_head + (s.d_model if s.d_mlp else 0)
    runs = 2 * n_examples * length * s.n_layers * per_layer * itemsize
    return runs + n_examples * s.d_vocab * 4


def run_bytes(cfg: Any, rows: int, positions: int, length: int, itemsize: int = 4) -> int:
    """Peak bytes of one incremental-engine run over ``rows`` prompts recomputing
    ``positions`` of ``length`` (its activations and last-position logits)."""
    s = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    per_pos = position_floats(s, length)
    return rows * (positions * per_pos * itemsize + s.d_vocab * (itemsize + 16))


def resume_bytes(cfg: Any, rows: int, positions: int, length: int, itemsize: int = 4) -> int:
    """Peak bytes one incremental-engine run over ``rows`` prompts adds to a chunk while it
    recomputes ``positions`` of ``length``: its activations only (the sweep forms logits
    afterwards, a few rows at a time, bounded by :func:`logit_row_bytes`)."""
    s = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    return rows * positions * position_floats(s, length) * itemsize


def logit_row_bytes(cfg: Any, itemsize: int = 4) -> int:
    """Peak bytes of one row of full-vocabulary logits while a metric reads it: the logits
    in the weights' dtype, their float64 copy and the metric's float64 temporaries
    (log-softmax, and for ``kl`` the reference's probabilities and their product)."""
    s = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    return s.d_vocab * (itemsize + 32)


def sweep_record_bytes(cfg: Any, length: int, n_examples: int, itemsize: int = 4) -> int:
    """What a sweep keeps for its whole task: the base and source runs' residual stream at
    every stage (after each layer's attention and MLP) and their head outputs (z), and the
    base run's keys and values (read again by runs that start past position 0)."""
    s = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    both = 2 * s.d_model + s.n_heads * s.d_head
    per_layer = 2 * both + 2 * s.n_kv_heads * s.d_head
    return n_examples * length * (s.n_layers * per_layer + 2 * s.d_model) * itemsize


def rows_for(cfg: Any, length: int, budget: int, itemsize: int = 4, reserved: int = 0) -> int:
    """Rows per pass that fit ``budget`` bytes after ``reserved`` (at least one)."""
    return max(1, (budget - reserved) // row_bytes(cfg, length, itemsize))


def rows_for_model(model: Any, length: int, budget: int, n_examples: int = 0) -> int:
    """:func:`rows_for` a loaded model at its weights' precision, its shape read from its
    config (grouped key/value heads, the MLP's real width, gated or not), after the hook
    engine's caches for ``n_examples``."""
    itemsize = next(model.bridge.parameters()).dtype.itemsize
    shape = shape_of(model)
    reserved = cache_bytes(shape, length, n_examples, itemsize) if n_examples else 0
    return rows_for(shape, length, budget, itemsize, reserved)


def shape_of(model: Any) -> Shape:
    """The :class:`Shape` of a loaded model: the bridge's config, with the MLP width and
    gating of the Hugging Face config where there is one."""
    shape = Shape.of(model.bridge.cfg)
    hf = getattr(getattr(model.bridge, "original_model", None), "config", None)
    if hf is None or shape.d_mlp == 0:
        return shape
    d_mlp = model.dims.d_mlp or shape.d_mlp
    gated = shape.gated or str(getattr(hf, "model_type", "")) in (*LLAMA_LIKE, "phi3")
    return dataclasses.replace(shape, d_mlp=int(d_mlp), gated=gated)


SWEEP_BUDGET_CAP = 64 * 2**20  # the most a default sweep budget grows to (bytes)
SWEEP_BUDGET_PASSES = 2  # the default sweep budget, in reference forward passes


def reference_pass_bytes(cfg: Any, rows: int, length: int, itemsize: int = 4) -> int:
    """Peak bytes of one plain forward pass over ``rows`` prompts of ``length`` tokens, as a
    hook library runs it for every patch: every position's activations
    (:func:`position_floats`) and logits at every position."""
    s = cfg if isinstance(cfg, Shape) else Shape.of(cfg)
    return rows * length * (position_floats(s, length) + s.d_vocab) * itemsize


def sweep_budget(cfg: Any, rows: int, length: int, itemsize: int = 4) -> int:
    """The default working budget of a sweep over ``rows`` prompts of ``length`` tokens:
    :data:`SWEEP_BUDGET_PASSES` reference forward passes (:func:`reference_pass_bytes`),
    at most :data:`SWEEP_BUDGET_CAP`. Scaled to the workload so that a small one (one short
    prompt) does not stack runs into a working set many times what patching it one pass at
    a time would hold; a large one is capped, since past a few hundred rows per product
    stacking more gains nothing. Measured (``benchmarks/RESULTS.md``, "Llama-shaped model"):
    at one prompt of 4 tokens on a 123M Llama shape this keeps a sweep's peak memory growth
    below transformer_lens' (three passes' worth did not), and on GPT-2's shape at 2 x 8
    sweeps are no slower than under the former fixed 64 MiB."""
    budget = SWEEP_BUDGET_PASSES * reference_pass_bytes(cfg, rows, length, itemsize)
    return min(SWEEP_BUDGET_CAP, budget)
