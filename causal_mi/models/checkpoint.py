"""What a checkpoint directory written by another tool holds, checked before anything loads.

Hugging Face directories come in several shapes (``save_pretrained`` with or without
sharding, older ``pytorch_model.bin`` files, tokenizers saved as ``tokenizer.json`` alone,
or not saved at all). The loaders behind the bridge accept most of them but fail on the
rest with messages about their internals (a missing tokenizer surfaces as "Couldn't
instantiate the backend tokenizer"). This module looks at the files first and refuses what
causal-mi cannot load with one message naming the file and what is supported, so the user
gets exit 2 and the fix instead of a third-party error.

Pickled weights are only ever read with ``torch.load(..., weights_only=True)`` (SPEC 2):
a ``.bin`` / ``.pt`` that needs anything beyond tensors is refused here, before
transformers opens it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: the weight files of an HF directory, in the order transformers prefers them
HF_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: weight files causal-mi does not read, with what wrote them
FOREIGN_WEIGHTS = {
    ".h5": "TensorFlow",
    ".msgpack": "Flax",
    ".gguf": "GGUF (llama.cpp)",
    ".ckpt": "a training-framework checkpoint",
    ".onnx": "ONNX",
}
#: files that make a tokenizer loadable by transformers
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")

SUPPORTED_HF = (
    "model.safetensors, sharded safetensors (model.safetensors.index.json + shards) or "
    "pytorch_model.bin (read with weights_only=True)"
)
NO_TOKENIZER = (
    "{where} has no tokenizer; causal-mi reads prompts with the model's own tokenizer: save "
    "it beside the weights (tokenizer.save_pretrained(dir), or a tokenizer.json alone)"
)
FALCON_GROUPS = (
    "{where}: Falcon's new decoder architecture with {n} key/value groups (num_kv_heads > 1) "
    "is not supported: transformer_lens' bridge splits its fused query_key_value as if "
    "there were one group, which would compute another model"
)


class CheckpointError(ValueError):
    """A checkpoint directory causal-mi cannot load; the message names the file and what
    is supported (exit 2)."""


def read_config(directory: Path) -> dict[str, Any]:
    """``directory/config.json`` as a dict (a :class:`CheckpointError` when unreadable)."""
    path = directory / "config.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def check_pickle(path: Path) -> None:
    """Refuse a pickled weight file that ``torch.load(weights_only=True)`` cannot read (it
    holds objects beyond tensors, whose unpickling could run code, or is no PyTorch file)."""
    import torch

    try:
        try:  # mapped, not read: checking a large file costs no memory
            torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            torch.load(str(path), map_location="cpu", weights_only=True)  # a legacy file
    except Exception as exc:  # torch raises several types here; each means "refused"
        lines = str(exc).strip().splitlines()
        first = (lines[0] if lines else type(exc).__name__)[:160]
        raise CheckpointError(
            f"{path} holds more than tensors or is no PyTorch file, so it cannot be read with "
            f"torch.load(weights_only=True) (causal-mi never unpickles objects; {first}); "
            "save the state dict alone, e.g. safetensors.torch.save_file(model.state_dict(), "
            "'model.safetensors')"
        ) from None


def _shards(index: Path) -> list[str]:
    try:
        data = json.loads(index.read_text())
        return sorted(set(data["weight_map"].values()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{index} is not a shard index (a JSON object with a 'weight_map'): {exc}"
        ) from None


def weight_files(directory: Path) -> list[Path]:
    """The files holding an HF directory's weights, checked: every shard an index names
    exists, pickled files read with ``weights_only=True``. Raises :class:`CheckpointError`
    naming what is there and what is supported."""
    for name in HF_WEIGHTS:
        path = directory / name
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            shards = _shards(path)
            missing = [s for s in shards if not (directory / s).is_file()]
            if missing:
                raise CheckpointError(
                    f"{path} names shard(s) that are not in {directory}: {', '.join(missing)}"
                )
            files = [directory / s for s in shards]
        else:
            files = [path]
        for f in files:
            if f.suffix in PICKLE_SUFFIXES:
                check_pickle(f)
        return files
    found = sorted(p.name for p in directory.iterdir() if p.is_file())
    foreign = [
        f"{n} ({FOREIGN_WEIGHTS[s]})" for n in found if (s := Path(n).suffix) in FOREIGN_WEIGHTS
    ]
    what = f"only {', '.join(foreign)}" if foreign else "no weight file"
    raise CheckpointError(f"{directory} holds {what}; causal-mi loads {SUPPORTED_HF}")


def has_tokenizer(directory: Path) -> bool:
    return any((directory / n).is_file() for n in TOKENIZER_FILES)


def check_hf_dir(directory: Path, config: dict[str, Any]) -> list[Path]:
    """Everything that can be checked about an HF directory before booting it: its weight
    files, a tokenizer, and architectures the bridge would load wrongly. Returns the
    weight files (for the model hash)."""
    files = weight_files(directory)
    if not has_tokenizer(directory):
        raise CheckpointError(NO_TOKENIZER.format(where=directory))
    if config.get("model_type") == "falcon" and config.get("new_decoder_architecture"):
        n = int(config.get("num_kv_heads") or config.get("num_attention_heads") or 1)
        if n > 1:
            raise CheckpointError(FALCON_GROUPS.format(where=directory / "config.json", n=n))
    return files
