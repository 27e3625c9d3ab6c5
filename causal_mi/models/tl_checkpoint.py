"""Models written by TransformerLens' ``HookedTransformer``: a config dict and a TL-named
state dict, the usual way compiled models (tracr RASP programs converted to
TransformerLens) and models trained with TransformerLens are saved.

A directory holds:

- ``config.json``: the fields of ``HookedTransformerConfig.to_dict()`` as JSON (``d_model``,
  ``d_head``, ``n_layers``, ``n_ctx``, ``d_vocab``, ``n_heads``, ``d_mlp``, ``act_fn``,
  ``normalization_type``, ``attn_only``, ...; fields that are not JSON, such as ``dtype`` or
  ``device``, may be strings or absent). No ``model_type``: that marks an HF directory.
- the weights under TL names (``embed.W_E``, ``pos_embed.W_pos``, ``blocks.{l}.attn.W_Q``
  [n_heads, d_model, d_head], ``b_Q``, ``W_K``, ``W_V``, ``W_O`` [n_heads, d_head, d_model],
  ``b_O``, ``blocks.{l}.ln1.w|b``, ``blocks.{l}.mlp.W_in|b_in|W_out|b_out``,
  ``unembed.W_U|b_U``, ...): ``model.safetensors``, or one ``.pt`` / ``.pth`` / ``.bin`` file
  read with ``torch.load(weights_only=True)``;
- a tokenizer: HF tokenizer files (``tokenizer.json``, with or without
  ``tokenizer_config.json``), or ``vocab.json`` giving the vocabulary as a list: either a
  JSON list of token strings (token id = index) or ``{"tokens": [...], "bos_token": "BOS",
  "unk_token": "<unk>"}`` (both special tokens optional, each one of the tokens). Prompts
  are split on whitespace, one word per token. Without ``bos_token`` nothing is prepended
  (write the BOS in the prompt if the model needs one); with it, every prompt starts with it.

The model is rebuilt with ``TransformerBridge.boot_native`` and the TL names are mapped onto
the bridge's by transformer_lens' own ``convert_tl_checkpoint``; an absent ``unembed.b_U``
is zero (HookedTransformer always has one; exporters often drop it). Features the bridge's
native model does not implement the way ``HookedTransformer`` did are refused up front with
a sentence naming them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from causal_mi.models.checkpoint import PICKLE_SUFFIXES, CheckpointError, check_pickle

#: fields a TL config must give
REQUIRED = ("d_model", "d_head", "n_layers", "n_ctx", "d_vocab")
#: fields copied into the bridge's config (the rest describe HookedTransformer internals)
COPIED = (
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
    "eps",
    "attention_dir",
    "use_attn_scale",
    "attn_scale",
    "n_key_value_heads",
    "final_rms",
    "attn_scores_soft_cap",
    "output_logits_soft_cap",
    "default_prepend_bos",
)
NORMS = ("LN", "LNPre", "RMS", "RMSPre", None)
ACTS = ("relu", "gelu", "gelu_new", "silu", "swish", "solu", "solu_ln")

# config flags HookedTransformer implemented and the native bridge does not (or not the same
# way): field -> the feature's name in the refusal
_UNSUPPORTED = {
    "parallel_attn_mlp": "parallel attention and MLP",
    "gated_mlp": "a gated MLP",
    "use_local_attn": "local attention",
    "num_experts": "mixture-of-experts MLPs",
    "post_embedding_ln": "a LayerNorm after the embeddings",
    "scale_attn_by_inverse_layer_idx": "attention scaled by inverse layer index",
    "use_normalization_before_and_after": "norms before and after each sublayer",
    "use_qk_norm": "query/key norms",
}
SUPPORTED = (
    "learned absolute positions, LN / LNPre / RMS / RMSPre / no normalization, attention-only "
    "or a plain MLP (relu, gelu, gelu_new, silu, solu), causal or bidirectional attention, "
    "grouped key/value heads"
)


def is_tl_config(data: dict[str, Any]) -> bool:
    """True for a ``HookedTransformerConfig.to_dict()`` dump (no HF ``model_type``, not
    causal-mi's own native format)."""
    return (
        "model_type" not in data
        and "causal_mi_format" not in data
        and all(k in data for k in ("d_model", "n_layers", "d_head"))
    )


def bridge_config(data: dict[str, Any], where: Path) -> Any:
    """The ``TransformerBridgeConfig`` for a TL config dict; raises :class:`CheckpointError`
    naming every field it cannot honour."""
    from transformer_lens.config import TransformerBridgeConfig

    problems = [f"'{k}' is missing" for k in REQUIRED if not isinstance(data.get(k), int)]
    pos = data.get("positional_embedding_type", "standard") or "standard"
    if pos != "standard":
        problems.append(f"positional_embedding_type '{pos}' (supported: standard)")
    for key, feature in _UNSUPPORTED.items():
        if data.get(key):
            problems.append(f"{feature} ({key}: {json.dumps(data[key])})")
    norm = data.get("normalization_type", "LN")
    if norm not in NORMS:
        problems.append(f"normalization_type '{norm}' (supported: LN, LNPre, RMS, RMSPre, null)")
    act = data.get("act_fn") or "relu"
    if not data.get("attn_only") and act not in ACTS:
        problems.append(f"act_fn '{act}' (supported: {', '.join(ACTS)})")
    out = data.get("d_vocab_out", -1)
    if isinstance(out, int) and out > 0 and out != data.get("d_vocab"):
        problems.append(
            f"a separate output vocabulary (d_vocab_out {out} != d_vocab "
            f"{data.get('d_vocab')}): answers are read as input-token ids, so pad W_U to "
            "d_vocab columns with each output at its input token's id"
        )
    if data.get("attention_dir", "causal") not in ("causal", "bidirectional"):
        problems.append(f"attention_dir '{data.get('attention_dir')}'")
    if problems:
        raise CheckpointError(
            f"{where}: this TransformerLens model cannot be loaded: {'; '.join(problems)}. "
            f"Supported: {SUPPORTED}"
        )
    kwargs = {k: data[k] for k in COPIED if k in data and data[k] is not None}
    kwargs["act_fn"] = act
    kwargs["normalization_type"] = norm
    if "attn_scale" in kwargs and kwargs["attn_scale"] <= 0:
        kwargs.pop("attn_scale")
    return TransformerBridgeConfig(**kwargs, init_weights=False, positional_embedding_type=pos)


def _weights_file(directory: Path) -> Path:
    if (directory / "model.safetensors").is_file():
        return directory / "model.safetensors"
    files = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and (p.suffix in PICKLE_SUFFIXES or p.suffix == ".safetensors")
    )
    if len(files) == 1:
        return files[0]
    found = ", ".join(p.name for p in files) or "none"
    raise CheckpointError(
        f"{directory}: a TransformerLens model needs one weights file (model.safetensors, or "
        f"one .pt / .pth / .bin state dict read with weights_only=True); found: {found}"
    )


def read_state_dict(directory: Path) -> tuple[Path, dict[str, Any]]:
    """(the weights file, its TL-named tensors); a ``{"state_dict": {...}}`` wrapper (one
    dict of tensors inside) is unwrapped."""
    import torch

    path = _weights_file(directory)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return path, load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"{path} is not a readable safetensors file: {exc}") from None
    check_pickle(path)
    sd = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(sd, dict):
        inner = [v for v in sd.values() if isinstance(v, dict)]
        if len(inner) == 1 and not any(isinstance(v, torch.Tensor) for v in sd.values()):
            sd = inner[0]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} must hold a state dict: TL parameter names -> tensors")
    return path, sd


def _word_level(tokens: list[str], bos: str | None, unk: str | None, where: Path) -> Any:
    """A whitespace word-level tokenizer over ``tokens`` (id = index)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    if not all(isinstance(t, str) and t and not t.isspace() for t in tokens):
        raise CheckpointError(f"{where}: every token must be a non-empty string without spaces")
    if len(set(tokens)) != len(tokens):
        raise CheckpointError(f"{where}: the token list repeats a token")
    for name, tok in (("bos_token", bos), ("unk_token", unk)):
        if tok is not None and tok not in tokens:
            raise CheckpointError(f"{where}: {name} '{tok}' is not one of the tokens")
    vocab = {t: i for i, t in enumerate(tokens)}
    core = Tokenizer(WordLevel(vocab=vocab, unk_token=unk or "<unk>"))
    core.pre_tokenizer = WhitespaceSplit()
    special = {k: v for k, v in (("bos_token", bos), ("unk_token", unk)) if v is not None}
    return PreTrainedTokenizerFast(tokenizer_object=core, **special)


def read_tokenizer(directory: Path, scratch: Path) -> Any:
    """The model's tokenizer: HF tokenizer files, or ``vocab.json`` (see the module
    docstring). Tokenizers built here are saved to and reloaded from ``scratch``, since the
    bridge reloads a tokenizer from where it was saved."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if (directory / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if (directory / "tokenizer.json").is_file():
        tok = PreTrainedTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"))
    elif (directory / "vocab.json").is_file():
        path = directory / "vocab.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path} is not readable JSON: {exc}") from None
        if isinstance(data, list):
            tok = _word_level(data, None, None, path)
        elif isinstance(data, dict) and isinstance(data.get("tokens"), list):
            tok = _word_level(data["tokens"], data.get("bos_token"), data.get("unk_token"), path)
        else:
            raise CheckpointError(
                f"{path} must be a list of token strings or "
                '{"tokens": [...], "bos_token": ..., "unk_token": ...}'
            )
    else:
        raise CheckpointError(
            f"{directory} has no tokenizer: give the vocabulary as vocab.json (a list of token "
            "strings, id = index) or save an HF tokenizer (tokenizer.json) beside the weights"
        )
    tok.save_pretrained(str(scratch))
    return AutoTokenizer.from_pretrained(str(scratch), local_files_only=True)


def load_tl(
    directory: Path, device: str = "cpu", dtype: str = "float32"
) -> tuple[Any, Path, str | None]:
    """Rebuild a HookedTransformer-written model as a bridge; returns it, the weights file
    and the tokenizer's own BOS token (None: it has none). Raises :class:`CheckpointError`
    for what it cannot load."""
    import torch
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    config_path = directory / "config.json"
    data = json.loads(config_path.read_text())
    cfg = bridge_config(data, config_path)
    path, sd = read_state_dict(directory)
    sd = {k: v for k, v in sd.items() if not k.endswith(("hook_dummy", ".mask", ".IGNORE"))}
    try:
        converted = convert_tl_checkpoint(sd, cfg)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    d_out = cfg.d_vocab
    converted.setdefault("unembed.bias", torch.zeros(d_out))
    with tempfile.TemporaryDirectory(prefix="causal-mi-tok-") as scratch:
        tokenizer = read_tokenizer(directory, Path(scratch))
        bos = tokenizer.bos_token  # before the bridge gives a tokenizer without one its EOS
        bridge = TransformerBridge.boot_native(
            cfg, tokenizer=tokenizer, device=device, dtype=getattr(torch, dtype)
        )
    expected = set(bridge.state_dict())
    missing = sorted(expected - set(converted))
    unexpected = sorted(set(converted) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(_tl_name(k) for k in missing)}")
        if unexpected:
            parts.append(f"unexpected {', '.join(_tl_name(k) for k in unexpected)}")
        raise CheckpointError(
            f"{path} does not match {config_path}: {'; '.join(parts)} (TL parameter names)"
        )
    bridge.load_state_dict({k: v.to(getattr(torch, dtype)) for k, v in converted.items()})
    bridge.eval()
    return bridge, path, bos


_BACK = {
    ".q.weight": ".W_Q",
    ".k.weight": ".W_K",
    ".v.weight": ".W_V",
    ".o.weight": ".W_O",
    ".q.bias": ".b_Q",
    ".k.bias": ".b_K",
    ".v.bias": ".b_V",
    ".o.bias": ".b_O",
    ".in.weight": ".W_in",
    ".in.bias": ".b_in",
    ".out.weight": ".W_out",
    ".out.bias": ".b_out",
    "pos_embed.weight": "pos_embed.W_pos",
    "unembed.weight": "unembed.W_U",
    "unembed.bias": "unembed.b_U",
    "embed.weight": "embed.W_E",
    ".weight": ".w",
    ".bias": ".b",
}


def _tl_name(key: str) -> str:
    """The TL name of a bridge state-dict key (for messages)."""
    for new, old in _BACK.items():
        if key.endswith(new):
            return key[: -len(new)] + old
    return key
