"""On-disk format for TL-native models (attention-only and other configs HF cannot express).

A model directory holds:

- ``config.json``: ``{"causal_mi_format": "tl-native", "tl_config": {...}}``, the
  ``TransformerBridgeConfig`` fields needed to rebuild the model with ``boot_native``;
- ``model.safetensors``: the bridge's state dict (no pickle anywhere);
- the tokenizer files written by ``PreTrainedTokenizerFast.save_pretrained``.

HF-format directories (``config.json`` with a ``model_type``) are loaded by
``boot_transformers`` instead; see :mod:`causal_mi.models.loading`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT_TAG = "tl-native"

# TransformerBridgeConfig fields that define the computation; everything else is derived.
CONFIG_FIELDS = (
    "d_model",
    "d_head",
    "n_layers",
    "n_ctx",
    "n_heads",
    "d_vocab",
    "d_mlp",
    "act_fn",
    "attn_only",
    "normalization_type",
    "positional_embedding_type",
    "eps",
    "tokenizer_prepends_bos",
)


def is_native_dir(directory: Path) -> bool:
    """True when ``directory/config.json`` is a causal-mi TL-native config."""
    cfg = directory / "config.json"
    if not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("causal_mi_format") == FORMAT_TAG


def save_native(bridge: Any, tokenizer: Any, directory: Path, extra: dict | None = None) -> None:
    """Write ``bridge`` (built with ``boot_native``) and its tokenizer to ``directory``."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    cfg = bridge.cfg
    tl_config = {k: getattr(cfg, k) for k in CONFIG_FIELDS if hasattr(cfg, k)}
    payload = {"causal_mi_format": FORMAT_TAG, "tl_config": tl_config, **(extra or {})}
    (directory / "config.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in bridge.state_dict().items()}
    weights = directory / "model.safetensors"
    save_file(state, str(weights))
    weights.chmod(0o644)  # safetensors writes owner-only; the other files are world-readable
    tokenizer.save_pretrained(str(directory))


def load_native(directory: Path, device: str = "cpu") -> Any:
    """Rebuild a TL-native bridge from ``directory`` (offline, safetensors only)."""
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from safetensors.torch import load_file
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoTokenizer

    data = json.loads((directory / "config.json").read_text())
    cfg = TransformerBridgeConfig(**data["tl_config"], init_weights=False)
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    bridge = TransformerBridge.boot_native(cfg, tokenizer=tokenizer, device=device)
    state = load_file(str(directory / "model.safetensors"), device=device)
    bridge.load_state_dict(state, strict=True)
    bridge.eval()
    return bridge
