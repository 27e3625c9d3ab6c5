"""Which architectural features a model has, read from its configuration, and which of them
the engine's own forward pass implements.

The engine's forward pass (path patching, :mod:`causal_mi.engine.functional`; sweeps,
:mod:`causal_mi.engine.incremental`) composes a small set of features, each implemented once
in :mod:`causal_mi.engine.blocks`. A model is described by the features it uses; one the
engine does not implement is refused before anything runs, with one sentence naming it, and
node-level patching through the bridge's hooks takes over.
"""

from __future__ import annotations

from typing import Any

# Hugging Face ``model_type`` -> family whose weights :mod:`causal_mi.models.weights` reads.
LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo2")
FAMILIES = (*LLAMA_LIKE, "phi3", "gpt_neox")

# model types the engine knows it does not implement, with the feature it lacks
_MISSING = {
    "mixtral": "mixture-of-experts MLPs",
    "qwen2_moe": "mixture-of-experts MLPs",
    "qwen3_moe": "mixture-of-experts MLPs",
    "olmoe": "mixture-of-experts MLPs",
    "deepseek_v2": "mixture-of-experts MLPs",
    "deepseek_v3": "mixture-of-experts MLPs",
    "granitemoe": "mixture-of-experts MLPs",
    "jamba": "state-space layers",
    "mamba": "state-space layers",
    "mamba2": "state-space layers",
    "falcon_mamba": "state-space layers",
    "bert": "bidirectional (encoder) attention",
    "roberta": "bidirectional (encoder) attention",
    "distilbert": "bidirectional (encoder) attention",
    "bloom": "ALiBi position biases",
    "falcon": "Falcon's fused multi-query attention layouts",
    "gptj": "GPT-J's interleaved rotary embeddings",
    "gpt_neo": "GPT-Neo's local attention layers",
    "opt": "OPT's offset learned positions",
    "gpt_bigcode": "GPT-BigCode's fused multi-query attention",
}

UNSUPPORTED_PREFIX = "the engine's own forward pass (path patching, incremental sweeps) "


class UnsupportedArchitecture(ValueError):
    """The engine's own forward pass does not implement a feature this model uses."""


def hf_model(bridge: Any) -> Any | None:
    """The wrapped Hugging Face model of a bridge loaded from transformers, else None."""
    hf = getattr(bridge, "original_model", None)
    return hf if hf is not None and hasattr(hf, "config") else None


def model_type(bridge: Any) -> str:
    """The Hugging Face ``model_type`` ("native" for a TL-native bridge)."""
    hf = hf_model(bridge)
    return "native" if hf is None else str(getattr(hf.config, "model_type", "unknown"))


def refuse(feature: str) -> UnsupportedArchitecture:
    """The one-sentence refusal naming ``feature``."""
    return UnsupportedArchitecture(f"{UNSUPPORTED_PREFIX}does not implement {feature}")


def check_hf_config(cfg: Any) -> None:
    """Raise :class:`UnsupportedArchitecture` for a feature of ``cfg`` that the family code
    would not reproduce exactly (a config flag the family reader does not handle)."""
    mt = str(getattr(cfg, "model_type", "unknown"))
    if mt in _MISSING:
        raise refuse(f"{_MISSING[mt]} ({mt})")
    if mt not in FAMILIES:
        raise refuse(f"the '{mt}' architecture (implemented: gpt2, {', '.join(FAMILIES)})")
    if getattr(cfg, "num_local_experts", 0) or getattr(cfg, "num_experts", 0):
        raise refuse("mixture-of-experts MLPs")
    if getattr(cfg, "clip_qkv", None) is not None:
        raise refuse("clipped query/key/value projections")
    if getattr(cfg, "use_qk_norm", False) and mt not in ("qwen3", "gemma3_text", "olmo2"):
        raise refuse("query/key norms on this family")
