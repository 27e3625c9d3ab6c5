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
GPT_LIKE = ("gptj", "gpt_neo", "opt", "gpt_bigcode", "bloom", "falcon")
FAMILIES = (*LLAMA_LIKE, "phi3", "gpt_neox", *GPT_LIKE)

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
    # encoders run node-level patching on the HF model's own forward pass
    # (causal_mi.models.encoders); edges on them are refused before anything runs
    "bert": "post-LayerNorm encoder blocks",
    "roberta": "post-LayerNorm encoder blocks",
    "distilbert": "post-LayerNorm encoder blocks",
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


def head_groups_comment(config: dict) -> str:
    """Comment lines for ``causal-mi init`` listing a model's heads and, under grouped-query
    attention, each query head's key/value group, from its config.json (no weights loaded).

    >>> print(head_groups_comment({"num_attention_heads": 4, "num_key_value_heads": 2,
    ...                            "num_hidden_layers": 2}))  # doctest: +NORMALIZE_WHITESPACE
    # This model: 2 layers x 4 query heads (L0H0 ... L1H3).
    # Grouped-query attention, 2 query heads per key/value head: LxHy.k / LxHy.v is query
    # head y's own key / value (patching it changes no other head's). Key/value groups:
    #   kv0: H0 H1   kv1: H2 H3
    """
    cfg = config.get("tl_config", config.get("text_config", config))
    heads = cfg.get("num_attention_heads", cfg.get("n_heads", cfg.get("n_head")))
    layers = cfg.get("num_hidden_layers", cfg.get("n_layers", cfg.get("n_layer")))
    if not isinstance(heads, int) or not isinstance(layers, int):
        return ""
    kv = cfg.get("num_key_value_heads", cfg.get("n_key_value_heads")) or heads
    if cfg.get("multi_query"):
        kv = 1
    lines = [
        f"# This model: {layers} layers x {heads} query heads (L0H0 ... L{layers - 1}H{heads - 1})."
    ]
    if kv != heads and heads % kv == 0:
        g = heads // kv
        groups = "   ".join(
            f"kv{i}: " + " ".join(f"H{h}" for h in range(i * g, (i + 1) * g)) for i in range(kv)
        )
        lines += [
            f"# Grouped-query attention, {g} query heads per key/value head: LxHy.k / LxHy.v is "
            "query",
            "# head y's own key / value (patching it changes no other head's). Key/value groups:",
            f"#   {groups}",
        ]
    return "\n".join(lines) + "\n"
