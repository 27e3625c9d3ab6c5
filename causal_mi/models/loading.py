"""Resolve a model reference (``zoo:``, ``path:``, ``hf:``) to a TransformerBridge.

All models go through transformer_lens' ``TransformerBridge`` so hook names are canonical.
A local directory is one of three formats, told apart by its ``config.json``: a Hugging
Face checkpoint (``model_type``; :mod:`causal_mi.models.checkpoint` checks its files
first), causal-mi's TL-native format (``causal_mi_format``;
:mod:`causal_mi.models.native_format`) or a model written by TransformerLens'
``HookedTransformer`` (its config fields; :mod:`causal_mi.models.tl_checkpoint`). Weights
load from safetensors or with ``torch.load(weights_only=True)``; nothing else is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causal_mi.errors import Location, ModelLoadError, Problem, did_you_mean
from causal_mi.models.checkpoint import (
    PICKLE_SUFFIXES,
    CheckpointError,
    check_hf_dir,
    read_config,
)
from causal_mi.models.encoders import EncoderLoadError, encoder_type, load_encoder
from causal_mi.models.native_format import is_native_dir, load_native
from causal_mi.models.tl_checkpoint import is_tl_config, load_tl
from causal_mi.models.tokens import TokenizerView, declared_bos, settle_bos
from causal_mi.spec.resolve import ModelDims

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo" / "models"


class DerivedCache:
    """What the engine derives from a model's weights once and reuses: the weight views its
    own forward pass reads (``weights``) and the incremental engine's model
    (``incremental``). Owned by one :class:`LoadedModel`, declared there, so nothing is
    attached to the model at run time and a copy with other weights gets its own."""

    def __init__(self) -> None:
        self.weights: Any = None
        self.incremental: Any = None
        self.capabilities: Any = None  # engine.capabilities.Capabilities


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for interventions, with what reports need to say about it (frozen)."""

    bridge: Any
    ref: str
    source: str  # resolved directory or hub id
    dims: ModelDims
    tokens: TokenizerView
    weights_sha256: str
    device: str
    precision: str = "fp32"
    config_sha256: str = ""  # the config the weights are read under (eps, rotary base, ...)
    derived: DerivedCache = field(
        default_factory=DerivedCache, init=False, repr=False, compare=False
    )

    @property
    def cfg(self) -> Any:
        return self.bridge.cfg


def zoo_names() -> list[str]:
    """Names of the shipped zoo models."""
    if not ZOO_DIR.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").is_file())


def _sha256(directory: Path) -> str:
    """The hash of a directory's weight files (safetensors, then pickled state dicts), so
    two checkpoints never share a run-cache address."""
    h = hashlib.sha256()
    files = sorted(directory.glob("*.safetensors"))
    files += sorted(f for f in directory.iterdir() if f.suffix in PICKLE_SUFFIXES)
    for f in files:
        with f.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _load_dir(directory: Path, device: str, dtype: str = "float32") -> tuple[Any, str | None]:
    """(the bridge, the tokenizer's own BOS token or None) for a local directory."""
    if is_native_dir(directory):
        return load_native(directory, device=device), declared_bos(directory)
    cfg = directory / "config.json"
    data = read_config(directory)
    if is_tl_config(data):
        bridge, _, bos = load_tl(directory, device, dtype)
        return bridge, bos
    if "model_type" not in data:
        raise CheckpointError(
            f"{cfg} has neither 'model_type' (a Hugging Face model), 'causal_mi_format' (a "
            "causal-mi TL-native model) nor the fields of a TransformerLens "
            "HookedTransformerConfig (d_model, n_layers, d_head, ...)"
        )
    check_hf_dir(directory, data)
    if encoder_type(data):
        return load_encoder(str(directory), device, dtype), None
    return _boot_transformers(str(directory), device, dtype), declared_bos(directory)


def _load_hub(name: str, device: str, dtype: str) -> Any:
    """A hub id: an encoder through :func:`load_encoder` (the bridge would drop a
    classifier's head), any other model through the bridge."""
    from transformers import AutoConfig

    if encoder_type(AutoConfig.from_pretrained(name).to_dict()):
        return load_encoder(name, device, dtype)
    return _boot_transformers(name, device, dtype)


def _boot_transformers(name: str, device: str, dtype: str = "float32") -> Any:
    """Boot an HF checkpoint through the bridge, its weights loaded in ``dtype`` directly (a
    bf16 checkpoint asked for in bf16 is never materialized in fp32: half the peak memory)."""
    import torch
    import transformer_lens.model_bridge.sources.transformers  # noqa: F401  (registers boot)
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(name, device=device, dtype=getattr(torch, dtype))
    bridge.eval()
    return bridge


def _d_mlp(bridge: Any) -> int:
    """The MLP width: the HF config's own field where it has one (the bridge's ``d_mlp``
    defaults to 4 x d_model for families that name it differently, e.g. OPT's ``ffn_dim``)."""
    hf = getattr(getattr(bridge, "original_model", None), "config", None)
    for key in ("intermediate_size", "ffn_dim", "n_inner"):
        value = getattr(hf, key, None) if hf is not None else None
        if isinstance(value, int) and value > 0:
            return value
    return int(bridge.cfg.d_mlp or 0)


PRECISIONS = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def load_model(
    ref: str,
    *,
    base_dir: Path | None = None,
    device: str = "cpu",
    where: Location | None = None,
    precision: str = "fp32",
) -> LoadedModel:
    """Load ``ref``; failures raise :class:`ModelLoadError` (exit code 2) naming the fix.

    ``precision`` (fp32 | bf16 | fp16) casts the weights: reduced precision is for GPUs,
    where it roughly halves memory and time; metrics are always computed in float64 from
    the logits.

    >>> model = load_model("zoo:induction-2l")  # doctest: +SKIP
    """
    where = where or Location("<model>")
    if precision not in PRECISIONS:
        raise ModelLoadError(
            Problem(where, f"unknown precision '{precision}'; valid: {', '.join(PRECISIONS)}")
        )
    base_dir = base_dir or Path.cwd()
    scheme, _, name = ref.partition(":")

    def fail(message: str) -> ModelLoadError:
        return ModelLoadError(Problem(where, message))

    directory: Path | None = None
    if scheme == "zoo":
        directory = ZOO_DIR / name
        if not (directory / "config.json").is_file():
            raise fail(f"unknown zoo model '{name}'; {did_you_mean(name, zoo_names())}")
    elif scheme == "path":
        directory = (base_dir / name).resolve() if not Path(name).is_absolute() else Path(name)
        if not directory.is_dir():
            raise fail(
                f"model directory not found: {directory} (path: is resolved against the "
                "hypothesis file's directory); it must hold config.json, model.safetensors "
                "and tokenizer files"
            )
        if not (directory / "config.json").is_file():
            raise fail(
                f"{directory} has no config.json; expected an HF-format directory "
                "(config.json, model.safetensors, tokenizer files)"
            )
    elif scheme == "hf":
        local = (base_dir / name) if not Path(name).is_absolute() else Path(name)
        directory = local.resolve() if local.is_dir() else None
    else:
        raise fail(f"model '{ref}' must start with zoo:, hf: or path:")
    try:
        if directory is not None:
            bridge, bos = _load_dir(directory, device, PRECISIONS[precision])
        else:
            bridge = _load_hub(name, device, PRECISIONS[precision])
            bos = getattr(bridge.tokenizer, "bos_token", None)
    except ModelLoadError:
        raise
    except (EncoderLoadError, CheckpointError) as exc:
        raise fail(f"could not load model '{ref}': {exc}") from None
    except Exception as exc:  # third-party loaders raise anything; the user needs the reason
        offline = (
            " (no network: set HF_HUB_OFFLINE=1 and use a local directory)"
            if (scheme == "hf" and os.environ.get("HF_HUB_OFFLINE") != "1")
            else ""
        )
        raise fail(f"could not load model '{ref}': {type(exc).__name__}: {exc}{offline}") from None
    bridge.eval()
    if precision != "fp32":
        import torch

        bridge.to(getattr(torch, PRECISIONS[precision]))
    cfg = bridge.cfg
    dims = ModelDims(
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_mlp=_d_mlp(bridge),
        attn_only=bool(cfg.attn_only),
    )
    tokens = TokenizerView(bridge, has_bos=settle_bos(bridge, bos))
    digest = _sha256(directory) if directory is not None else ""
    config = ""
    if directory is not None:
        config = hashlib.sha256((directory / "config.json").read_bytes()).hexdigest()
    return LoadedModel(
        bridge, ref, str(directory or name), dims, tokens, digest, device, precision, config
    )


def local_config(ref: str, base_dir: Path | None = None) -> dict | None:
    """The config.json of a ``zoo:`` model or a local ``path:`` / ``hf:`` directory, read
    without loading the model (None where there is none to read)."""
    from causal_mi.reuse import model_directory

    directory = model_directory(ref, base_dir or Path.cwd())
    if directory is None:
        return None
    try:
        return json.loads((directory / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
