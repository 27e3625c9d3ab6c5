"""Task data: pairs of clean and corrupt prompts, already tokenized, with their token roles.

A *role* names a token position of a prompt (``IO``, ``S2``, ``END``); each prompt has its
own positions, so a role may sit elsewhere in the corrupt prompt than in the clean one, and
the two prompts may differ in length. Patching a site at a role maps the clean prompt's role
position to the corrupt prompt's. Every prompt defines ``END``, its last prompt token.

Answers: ``answers`` / ``wrongs`` are sets of token sequences (one member of one token in
the plain case). A multi-token member is scored teacher-forced: its tokens but the last are
appended to the prompt (``continuation``) and the metric reads the log-probabilities of its
tokens at the prompt's last position and the continuation's. See
:mod:`causal_mi.engine.metrics` for how a set is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

END = "END"  # the role every prompt defines: its last prompt token

RoleMap = tuple[tuple[str, tuple[int, ...]], ...]  # (role, its positions, >= 0), sorted


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


def role_map(roles: dict[str, tuple[int, ...] | list[int] | int], length: int) -> RoleMap:
    """A prompt's roles as a sorted, hashable map with non-negative positions; negative
    positions count from the end (``length`` tokens). ``END`` is added when missing."""
    out: dict[str, tuple[int, ...]] = {}
    for name, pos in roles.items():
        ps = (pos,) if isinstance(pos, int) else tuple(pos)
        out[name] = tuple(p if p >= 0 else length + p for p in ps)
    out.setdefault(END, (length - 1,))
    return tuple(sorted(out.items()))


@dataclass(frozen=True)
class Example:
    """One clean/corrupt pair. ``clean`` and ``corrupt`` are the prompts' tokens (BOS
    included when the model uses it); they may differ in length. With ``noise`` the corrupt
    prompt is the clean one (``corrupt == clean``) and the engine adds the noise to its
    embeddings.

    ``answer`` / ``wrong`` are the first token of the first member of ``answers`` /
    ``wrongs`` (the plain single-token case reads only them). ``read`` is the role where the
    metric is read (``END``: the last prompt position)."""

    clean: tuple[int, ...]
    corrupt: tuple[int, ...]
    answer: int
    wrong: int
    source: str  # where it came from: "repeated_tokens #3" or "pairs.jsonl:3"
    noise: Noise | None = None
    roles: RoleMap = ()  # the clean prompt's roles (empty: END only)
    corrupt_roles: RoleMap = ()  # the corrupt prompt's roles (empty: END only)
    answers: tuple[tuple[int, ...], ...] = ()  # empty: ((answer,),)
    wrongs: tuple[tuple[int, ...], ...] = ()  # empty: ((wrong,),)
    read: str = END

    @property
    def length(self) -> int:
        """Token count of the clean prompt."""
        return len(self.clean)

    @property
    def answer_set(self) -> tuple[tuple[int, ...], ...]:
        return self.answers or ((self.answer,),)

    @property
    def wrong_set(self) -> tuple[tuple[int, ...], ...]:
        return self.wrongs or ((self.wrong,),)

    @property
    def continuation(self) -> tuple[int, ...]:
        """Tokens appended to both prompts to score a multi-token answer teacher-forced
        (the answer's tokens but its last); empty for single-token answers."""
        seqs = self.answer_set
        return seqs[0][:-1] if len(seqs) == 1 and len(seqs[0]) > 1 else ()

    def roles_of(self, prompt: str) -> dict[str, tuple[int, ...]]:
        """Role -> positions in the ``"clean"`` or ``"corrupt"`` prompt (``END`` always)."""
        tokens = self.clean if prompt == "clean" else self.corrupt
        given = self.roles if prompt == "clean" else self.corrupt_roles
        out = dict(given)
        out.setdefault(END, (len(tokens) - 1,))
        return out

    @property
    def plain(self) -> bool:
        """Equal prompt lengths, single-token answer and wrong, metric at the last token,
        no role that moves: what every engine (hooks, incremental, path patching) runs."""
        return (
            len(self.clean) == len(self.corrupt)
            and len(self.answer_set) == 1
            and len(self.wrong_set) == 1
            and len(self.answer_set[0]) == 1
            and len(self.wrong_set[0]) == 1
            and self.read == END
        )


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

    def roles(self) -> set[str]:
        """Roles every prompt of the task defines (clean and corrupt)."""
        sets = [set(e.roles_of(p)) for e in self.examples for p in ("clean", "corrupt")]
        return set.intersection(*sets) if sets else {END}

    def not_plain(self) -> str | None:
        """Why some engine that needs plain examples cannot run this task, or None."""
        for e in self.examples:
            if len(e.clean) != len(e.corrupt):
                return f"{e.source}: the clean and corrupt prompts differ in length"
            if not e.plain:
                return (
                    f"{e.source}: answer sets, multi-token answers or a metric read at a "
                    "role other than END"
                )
        return None
