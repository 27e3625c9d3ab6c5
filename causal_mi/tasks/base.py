"""Task data: pairs of clean and corrupt prompts, already tokenized."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Noise:
    """Gaussian noise on the embeddings as one example's corruption (causal tracing).

    The example's corrupt run is its clean prompt with noise of standard deviation
    ``scale * std(W_E)`` added to the token + position embeddings at ``positions`` (negative
    ones count from the end). The draw is fixed by ``(seed, index)``, the task's noise seed
    and the example's index in the task, so it does not depend on batching, chunking, order
    or which subset of the task is run."""

    positions: tuple[int, ...]
    scale: float
    seed: int
    index: int


@dataclass(frozen=True)
class Example:
    """One clean/corrupt pair. ``clean`` and ``corrupt`` include BOS when the model uses it;
    the metric is read at the last position. With ``noise`` the corrupt prompt is the clean
    one (``corrupt == clean``) and the engine adds the noise to its embeddings."""

    clean: tuple[int, ...]
    corrupt: tuple[int, ...]
    answer: int
    wrong: int
    source: str  # where it came from: "repeated_tokens #3" or "pairs.jsonl:3"
    noise: Noise | None = None

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

    @property
    def noise(self) -> Noise | None:
        """The noise corruption of the task's examples (the first example's), or None when
        the corrupt prompts are token prompts."""
        return next((e.noise for e in self.examples if e.noise is not None), None)
