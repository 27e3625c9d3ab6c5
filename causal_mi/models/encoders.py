"""Bidirectional encoders (BERT, RoBERTa, DistilBERT) with a masked-LM or a
sequence-classification head, run as the Hugging Face model itself with hook points on its
modules.

transformer_lens 4.3's bridge loads ``BertForMaskedLM`` and ``RobertaForMaskedLM`` only: a
``BertForSequenceClassification`` checkpoint is silently booted as ``BertForMaskedLM`` (its
classifier dropped, a random MLM head in its place) and DistilBERT has no adapter. So encoders
do not go through the bridge: :class:`EncoderModel` wraps the HF model and exposes what the
hook engine uses of a bridge (``hooks``, ``hook_dict``, ``cfg``, ``W_E``, ``tokenizer``,
calling it on tokens) with the canonical hook names, each fired by a PyTorch hook on the HF
module that computes that activation. The forward pass *is* the HF forward: the attention
mask is the model's own (bidirectional; the engine never pads, so every position attends to
every position), dropout is off, nothing is re-implemented.

Post-LN blocks (``h = LN1(x + attn(x))``, ``out = LN2(h + mlp(h))``) place the sites thus:
``resid_pre`` the block's input, ``LxHy`` a head's slice of the attention's output-projection
input (``hook_z``), ``hook_attn_out`` that projection's output (before the residual add and
LN1), ``resid_mid`` the normalized stream ``h`` (the MLP's input and its residual),
``Lx.mlp.in`` the MLP's first linear input only, ``Lx.mlp[i]`` the activation after the
nonlinearity, ``Lx.mlp`` the MLP's output projection (before the residual add and LN2),
``resid_post`` the block's output. ``hook_pattern`` can be read (the eager attention's
weights) but not written: the weights are returned after they were used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from causal_mi.models.tokens import CLS, MASK  # noqa: F401  (the roles, defined there)

ENCODER_TYPES = ("bert", "roberta", "distilbert")
HEADS = {"ForMaskedLM": "masked_lm", "ForSequenceClassification": "classifier"}

PATTERN_READ_ONLY = (
    "this encoder's attention weights are returned after the attention used them, so "
    "pattern sites (LxHy.pattern, the head_pattern sweep) can be read but not patched; "
    "patch the head's q/k/v inputs or its output instead"
)
EDGES_REFUSED = (
    "edges (path patching) are not available on encoders ({model_type}): the engine's own "
    "forward pass does not implement post-LayerNorm encoder blocks, where each block "
    "normalizes the residual sum, so a sender's output is no additive term of a later "
    "component's input; drop the edges to measure the claims at node level"
)


class EncoderLoadError(ValueError):
    """An encoder checkpoint causal-mi cannot run (a head it does not read)."""


@dataclass
class EncoderConfig:
    """The bridge-config fields the engine reads, for an encoder."""

    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    model_type: str
    head: str  # "masked_lm" | "classifier"
    attn_only: bool = False
    default_prepend_bos: bool = False
    n_key_value_heads: int | None = None
    attention_dir: str = "bidirectional"


class _Point:
    """A named activation; the functions added for one scoped pass run in order on it."""

    def __init__(self, name: str, writable: bool = True):
        self.name = name
        self.writable = writable
        self.fns: list[Callable] = []

    def __call__(self, act: torch.Tensor) -> torch.Tensor:
        for fn in self.fns:
            out = fn(act, self)
            if out is not None:
                if not self.writable and out is not act:
                    raise EncoderPatchError(PATTERN_READ_ONLY)
                act = out
        return act


class EncoderPatchError(ValueError):
    """A write to an activation that cannot be written on this encoder."""


def _heads(n_heads: int) -> tuple[Callable, Callable]:
    """[b, p, h*d] <-> [b, p, h, d] views of a fused head activation."""

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)

    def merge(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-2], -1)

    return split, merge


class EncoderModel(torch.nn.Module):
    """An HF encoder with canonical hook points (see the module docstring).

    >>> model = EncoderModel(hf, tokenizer)  # doctest: +SKIP
    >>> with model.hooks(fwd_hooks=[("blocks.0.attn.hook_z", fn)]):
    ...     logits = model(tokens)  # [batch, pos, vocab] (masked LM) or [batch, labels]
    """

    def __init__(self, hf: Any, tokenizer: Any):
        super().__init__()
        self.original_model = hf
        self.tokenizer = tokenizer
        cfg = hf.config
        mt = str(cfg.model_type)
        arch = type(hf).__name__
        head = next((h for suffix, h in HEADS.items() if arch.endswith(suffix)), None)
        if head is None:
            raise EncoderLoadError(_head_message(arch))
        base = getattr(hf, {"bert": "bert", "roberta": "roberta", "distilbert": "distilbert"}[mt])
        if mt == "distilbert":
            layers = base.transformer.layer
            d_model, n_heads, d_mlp = cfg.dim, cfg.n_heads, cfg.hidden_dim
        else:
            layers = base.encoder.layer
            d_model, n_heads = cfg.hidden_size, cfg.num_attention_heads
            d_mlp = cfg.intermediate_size
        self.cfg = EncoderConfig(
            n_layers=len(layers),
            n_heads=n_heads,
            d_model=d_model,
            d_head=d_model // n_heads,
            d_mlp=d_mlp,
            d_vocab=int(cfg.vocab_size),
            model_type=mt,
            head=head,
        )
        self._word_embeddings = base.embeddings.word_embeddings
        self.hook_dict: dict[str, _Point] = {}
        self._handles: list = []
        for i, layer in enumerate(layers):
            self._hook_layer(i, layer, mt)
        if head == "masked_lm":
            mlm = {"bert": "cls", "roberta": "lm_head", "distilbert": "vocab_transform"}[mt]
            self._pre("unembed.hook_in", getattr(hf, mlm))
            last = getattr(hf, "vocab_projector" if mt == "distilbert" else mlm)
        else:
            last = hf.classifier
        # the logits: [batch, pos, vocab] (masked LM) or [batch, labels] (classifier)
        self._out("unembed.hook_out", last)

    # what the engine uses of a bridge --------------------------------------------------------
    @property
    def W_E(self) -> torch.Tensor:
        return self._word_embeddings.weight

    @property
    def head(self) -> str:
        return self.cfg.head

    @property
    def labels(self) -> dict[str, int]:
        """Class label -> logit index, from ``config.id2label`` (classifiers)."""
        id2label = getattr(self.original_model.config, "id2label", {}) or {}
        return {str(v): int(k) for k, v in sorted(id2label.items(), key=lambda kv: int(kv[0]))}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the HF model on unpadded ``tokens`` [batch, pos] (its own all-ones
        attention mask): [batch, pos, vocab] for a masked LM, [batch, labels] for a classifier
        (read at its pooling position by the model itself)."""
        return self.original_model(input_ids=tokens).logits

    @contextmanager
    def hooks(self, fwd_hooks: list[tuple[str, Callable]]) -> Iterator[None]:
        """Add ``fn(activation, hook) -> new activation | None`` to the named points for the
        block; removed in ``finally``."""
        added: list[tuple[_Point, Callable]] = []
        try:
            for name, fn in fwd_hooks:
                point = self.hook_dict.get(name)
                if point is None:
                    raise KeyError(f"this encoder has no activation '{name}'")
                point.fns.append(fn)
                added.append((point, fn))
            yield
        finally:
            for point, fn in added:
                point.fns.remove(fn)

    # hook points on the HF modules -----------------------------------------------------------
    def _point(self, name: str, writable: bool = True) -> _Point:
        point = _Point(name, writable)
        self.hook_dict[name] = point
        return point

    def _out(self, name: str, module: torch.nn.Module, *, view=None, index=None, writable=True):
        """A point on ``module``'s output (``index``: which element of a tuple output)."""
        point = self._point(name, writable)
        split, merge = view or (None, None)

        def fn(mod, args, out):
            if not point.fns:
                return None
            x = out if index is None else out[index]
            y = point(split(x) if split else x)
            y = merge(y) if merge else y
            if index is None:
                return y
            return (*out[:index], y, *out[index + 1 :])

        self._handles.append(module.register_forward_hook(fn))
        return point

    def _pre(self, name: str, module: torch.nn.Module, *, view=None):
        """A point on ``module``'s first input (positional or ``hidden_states=``)."""
        point = self._point(name)
        split, merge = view or (None, None)

        def fn(mod, args, kwargs):
            if not point.fns:
                return None
            if args:
                x = args[0]
            else:
                key = next((k for k in ("hidden_states", "input", "x") if k in kwargs), None)
                if key is None:
                    raise RuntimeError(f"{name}: {type(mod).__name__} got no input to hook")
                x = kwargs[key]
            y = point(split(x) if split else x)
            y = merge(y) if merge else y
            if args:
                return (y, *args[1:]), kwargs
            return args, {**kwargs, key: y}

        self._handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
        return point

    def _hook_layer(self, i: int, layer: torch.nn.Module, mt: str) -> None:
        heads = _heads(self.cfg.n_heads)
        b = f"blocks.{i}"
        self._pre(f"{b}.hook_resid_pre", layer)
        if mt == "distilbert":
            attn = layer.attention
            q, k, v, o = attn.q_lin, attn.k_lin, attn.v_lin, attn.out_lin
            self_attn, mid = attn, layer.sa_layer_norm
            mlp_in, mlp_out = layer.ffn.lin1, layer.ffn.lin2
        else:
            sa = layer.attention.self
            q, k, v, o = sa.query, sa.key, sa.value, layer.attention.output.dense
            self_attn, mid = sa, layer.attention.output
            mlp_in, mlp_out = layer.intermediate.dense, layer.output.dense
        self._out(f"{b}.attn.hook_q", q, view=heads)
        self._out(f"{b}.attn.hook_k", k, view=heads)
        self._out(f"{b}.attn.hook_v", v, view=heads)
        self._out(f"{b}.attn.hook_pattern", self_attn, index=1, writable=False)
        self._pre(f"{b}.attn.hook_z", o, view=heads)
        self._out(f"{b}.hook_attn_out", o)
        self._out(f"{b}.hook_resid_mid", mid)
        self._pre(f"{b}.mlp.hook_in", mlp_in)
        self._pre(f"{b}.mlp.hook_post", mlp_out)
        self._out(f"{b}.hook_mlp_out", mlp_out)
        self._out(f"{b}.hook_resid_post", layer)


def _head_message(arch: str) -> str:
    return (
        f"{arch}: causal-mi reads encoders with a masked-LM head (*ForMaskedLM: the metric at "
        "the prompt's mask token) or a sequence-classification head "
        "(*ForSequenceClassification: answers are class labels); this checkpoint has neither"
    )


def encoder_type(config: dict) -> str | None:
    """The encoder ``model_type`` of a config.json, or None for any other model."""
    mt = config.get("model_type")
    return mt if mt in ENCODER_TYPES else None


def load_encoder(name: str, device: str, dtype: str = "float32") -> EncoderModel:
    """Load an encoder checkpoint (a local directory or a hub id) from safetensors, with the
    head its config names, eager attention (so the attention weights can be read) and its
    own tokenizer."""
    from transformers import (
        AutoConfig,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    config = AutoConfig.from_pretrained(name)
    archs = list(getattr(config, "architectures", None) or [])
    arch = archs[0] if archs else "?"
    head = next((h for suffix, h in HEADS.items() if arch.endswith(suffix)), None)
    if head is None:
        raise EncoderLoadError(_head_message(arch if archs else f"{config.model_type} (no head)"))
    cls = AutoModelForMaskedLM if head == "masked_lm" else AutoModelForSequenceClassification
    if head == "classifier" and int(getattr(config, "num_labels", 0)) < 2:
        raise EncoderLoadError(
            f"{arch} has {config.num_labels} output: a regression head has no class labels to "
            "name as answer and wrong; causal-mi reads classifiers with two or more labels"
        )
    hf = cls.from_pretrained(
        name, use_safetensors=True, attn_implementation="eager", dtype=getattr(torch, dtype)
    )
    hf.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(name)
    return EncoderModel(hf, tokenizer).eval()


def is_encoder(bridge: Any) -> bool:
    """True for a model loaded as an :class:`EncoderModel`."""
    return isinstance(bridge, EncoderModel)
