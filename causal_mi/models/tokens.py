"""Tokenization as the model sees it: BOS handling, single-token answers, readable text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
        self.bridge = bridge
        self.tokenizer = bridge.tokenizer
        if self.tokenizer is None:
            raise ValueError("the model has no tokenizer; causal-mi needs one to read prompts")
        self.vocab_size = int(bridge.cfg.d_vocab)
        self.has_bos = has_bos

    def prompt(self, text: str) -> list[int]:
        """Token ids of a prompt, with BOS as the model prepends it by default."""
        return [int(t) for t in self._tokens(text, None)[0].tolist()]

    def pieces(self, text: str) -> list[int]:
        """Token ids of a fragment, without BOS (answers, wrong answers)."""
        return [int(t) for t in self._tokens(text, False)[0].tolist()]

    def _tokens(self, text: str, prepend_bos: bool | None) -> Any:
        """``bridge.to_tokens``; a tokenizer that cannot read ``text`` (a word-level
        vocabulary without an unknown token meeting a word it lacks) is a ValueError that
        names the text, which task loaders report at the row (exit 2)."""
        try:
            return self.bridge.to_tokens(text, prepend_bos=prepend_bos)
        except Exception as exc:  # the tokenizers library raises a bare Exception
            raise ValueError(f"the model's tokenizer cannot read {text!r}: {exc}") from None

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
