"""Task data: pairs of clean and corrupt prompts, already tokenized."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One clean/corrupt pair. ``clean`` and ``corrupt`` include BOS when the model uses it;
    the metric is read at the last position."""

    clean: tuple[int, ...]
    corrupt: tuple[int, ...]
    answer: int
    wrong: int
    source: str  # where it came from: "repeated_tokens #3" or "pairs.jsonl:3"

    @property
    def length(self) -> int:
        return len(self.clean)


@dataclass(frozen=True)
class Task:
    """A named, ordered set of examples."""

    name: str
    examples: tuple[Example, ...]

    def __len__(self) -> int:
        return len(self.examples)
