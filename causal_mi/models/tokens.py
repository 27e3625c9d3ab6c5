"""Tokenization as the model sees it: BOS handling, single-token answers, readable text.

Encoders (:mod:`causal_mi.models.encoders`) tokenize with their own special tokens
(``[CLS] ... [SEP]``, ``<s> ... </s>``); their prompts define the roles ``CLS`` (position 0,
the pooling position) and ``MASK`` (the mask token's position, where a masked LM is read),
and a classifier's answers are its class labels (``config.id2label``), not tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MASK = "MASK"  # role: the prompt's mask token, where a masked-LM's metric is read
CLS = "CLS"  # role: position 0, the pooling position of a classifier


def declared_bos(directory: Path) -> str | None:
    """The BOS token a saved tokenizer declares (``tokenizer_config.json`` or
    ``special_tokens_map.json``), None when it declares none (Qwen-style tokenizers, a
    ``tokenizer.json`` saved alone).

    transformer_lens' bridge gives a tokenizer without one its EOS as BOS, or invents an
    ``<|endoftext|>`` that is no token of the vocabulary; causal-mi prepends nothing then.
    """
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            data = json.loads((directory / name).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        bos = data.get("bos_token") if isinstance(data, dict) else None
        if isinstance(bos, dict):
            bos = bos.get("content")
        if isinstance(bos, str) and bos:
            return bos
    return None


def settle_bos(bridge: Any, bos: str | None) -> bool:
    """Keep the bridge's default BOS handling when the tokenizer has a BOS token of its own
    (one id of the vocabulary), else turn prepending off. Returns whether prompts may get
    a BOS (see docs/decisions.md, "Checkpoints from other tools")."""
    tok = bridge.tokenizer
    ok = False
    if bos is not None and tok is not None:
        ids = tok(bos, add_special_tokens=False)["input_ids"]
        unk = getattr(tok, "unk_token_id", None)
        ok = len(ids) == 1 and ids[0] != unk and 0 <= ids[0] < int(bridge.cfg.d_vocab)
    if not ok:
        bridge.cfg.default_prepend_bos = False
    return ok


class TokenizerView:
    """The model's own tokenizer with its default BOS handling (SPEC 2)."""

    def __init__(self, bridge: Any, has_bos: bool = True):
        from causal_mi.models.encoders import is_encoder

        self.bridge = bridge
        self.tokenizer = bridge.tokenizer
        if self.tokenizer is None:
            raise ValueError("the model has no tokenizer; causal-mi needs one to read prompts")
        self.vocab_size = int(bridge.cfg.d_vocab)
        self.has_bos = has_bos
        self.encoder = is_encoder(bridge)
        # "masked_lm" | "classifier" for encoders, "lm" for every other model
        self.head: str = bridge.head if self.encoder else "lm"
        # class label -> logit index (classifiers only)
        self.labels: dict[str, int] | None = bridge.labels if self.head == "classifier" else None

    def prompt(self, text: str) -> list[int]:
        """Token ids of a prompt, with BOS as the model prepends it by default (an encoder:
        with its own special tokens, ``[CLS] ... [SEP]``)."""
        if self.encoder:
            return [int(t) for t in self.tokenizer(text, add_special_tokens=True)["input_ids"]]
        return [int(t) for t in self._tokens(text, None)[0].tolist()]

    def pieces(self, text: str) -> list[int]:
        """Token ids of a fragment, without BOS (answers, wrong answers)."""
        if self.encoder:
            return [int(t) for t in self.tokenizer(text, add_special_tokens=False)["input_ids"]]
        return [int(t) for t in self._tokens(text, False)[0].tolist()]

    def _tokens(self, text: str, prepend_bos: bool | None) -> Any:
        """``bridge.to_tokens``; a tokenizer that cannot read ``text`` (a word-level
        vocabulary without an unknown token meeting a word it lacks) is a ValueError that
        names the text, which task loaders report at the row (exit 2)."""
        try:
            return self.bridge.to_tokens(text, prepend_bos=prepend_bos)
        except Exception as exc:  # the tokenizers library raises a bare Exception
            raise ValueError(f"the model's tokenizer cannot read {text!r}: {exc}") from None

    @property
    def default_read(self) -> str | None:
        """The role where the metric is read unless ``task.read_at`` says otherwise: the
        mask token for a masked LM, the pooling position for a classifier; None for other
        models (the last token, END)."""
        return {"masked_lm": MASK, "classifier": CLS}.get(self.head)

    @property
    def mask_token(self) -> str | None:
        return getattr(self.tokenizer, "mask_token", None) if self.encoder else None

    def special_roles(self, ids: list[int]) -> dict[str, tuple[int, ...]]:
        """Roles an encoder's prompt defines by itself: ``CLS`` (position 0) and ``MASK``
        (every mask token; a role used as one position must be one token)."""
        if not self.encoder:
            return {}
        out: dict[str, tuple[int, ...]] = {CLS: (0,)}
        mask_id = getattr(self.tokenizer, "mask_token_id", None)
        masks = tuple(i for i, t in enumerate(ids) if mask_id is not None and t == mask_id)
        if masks:
            out[MASK] = masks
        return out

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def show(self, ids: list[int]) -> list[str]:
        return [self.tokenizer.decode([i]) for i in ids]

    @property
    def prepends_bos(self) -> bool:
        """Whether prompts get BOS by default (the bridge's setting)."""
        return bool(getattr(self.bridge.cfg, "default_prepend_bos", True))

    @property
    def bos_id(self) -> int | None:
        """The BOS token's id; None when the tokenizer has no BOS token of its own."""
        return getattr(self.tokenizer, "bos_token_id", None) if self.has_bos else None

    def content_ids(self) -> list[int]:
        """Ids of ordinary tokens: every id the tokenizer knows, minus special tokens."""
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        n = min(len(self.tokenizer), self.vocab_size)
        return [i for i in range(n) if i not in special]
