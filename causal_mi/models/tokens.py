"""Tokenization as the model sees it: BOS handling, single-token answers, readable text."""

from __future__ import annotations

from typing import Any


class TokenizerView:
    """The model's own tokenizer with its default BOS handling (SPEC 2)."""

    def __init__(self, bridge: Any):
        self.bridge = bridge
        self.tokenizer = bridge.tokenizer
        if self.tokenizer is None:
            raise ValueError("the model has no tokenizer; causal-mi needs one to read prompts")
        self.vocab_size = int(bridge.cfg.d_vocab)

    def prompt(self, text: str) -> list[int]:
        """Token ids of a prompt, with BOS as the model prepends it by default."""
        return [int(t) for t in self.bridge.to_tokens(text)[0].tolist()]

    def pieces(self, text: str) -> list[int]:
        """Token ids of a fragment, without BOS (answers, wrong answers)."""
        return [int(t) for t in self.bridge.to_tokens(text, prepend_bos=False)[0].tolist()]

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
        return getattr(self.tokenizer, "bos_token_id", None)

    def content_ids(self) -> list[int]:
        """Ids of ordinary tokens: every id the tokenizer knows, minus special tokens."""
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        n = min(len(self.tokenizer), self.vocab_size)
        return [i for i in range(n) if i not in special]
