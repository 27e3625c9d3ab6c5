"""Built-in task generators. Each takes the tokenizer, ``n``, a seed and its parameters."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from causal_mi.models.tokens import TokenizerView
from causal_mi.tasks.base import Example


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    help: str
    minimum: int | float | None = None


@dataclass(frozen=True)
class Generator:
    name: str
    description: str
    params: dict[str, Param]
    make: Callable[[TokenizerView, int, int, dict[str, Any]], list[Example]]


def _repeated_tokens(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """clean = BOS + s + s[:repeat], answer s[repeat]; corrupt = BOS + s' + s[:repeat], where
    s' is a fresh random segment, and wrong = s'[repeat] (what copying would predict there).

    Induction predicts the answer from the clean prompt only; the corrupt prompt keeps every
    token of the second half but removes the earlier occurrence.
    """
    seq_len, repeat = int(p["seq_len"]), int(p["repeat"])
    rng = random.Random(seed)
    pool = tok.content_ids()
    if len(pool) < 2 * seq_len:
        raise ValueError(
            f"the tokenizer has only {len(pool)} ordinary tokens; repeated_tokens "
            f"needs at least {2 * seq_len} (lower seq_len)"
        )
    bos = [tok.bos_id] if tok.prepends_bos and tok.bos_id is not None else []
    out = []
    for i in range(n):
        picked = rng.sample(pool, 2 * seq_len)
        s, s2 = picked[:seq_len], picked[seq_len:]
        clean = tuple(bos + s + s[:repeat])
        corrupt = tuple(bos + s2 + s[:repeat])
        out.append(Example(clean, corrupt, s[repeat], s2[repeat], f"repeated_tokens #{i}"))
    return out


GENERATORS: dict[str, Generator] = {
    "repeated_tokens": Generator(
        "repeated_tokens",
        "random distinct tokens, then their first `repeat` tokens again; answer: the next one",
        {
            "seq_len": Param(int, 8, "length of the random segment", 2),
            "repeat": Param(int, 4, "how many tokens of the segment are repeated (< seq_len)", 1),
        },
        _repeated_tokens,
    ),
}


def check_params(gen: Generator, params: dict[str, Any]) -> list[str]:
    """Problems with generator parameters (names, types, ranges)."""
    from causal_mi.errors import did_you_mean

    problems = []
    for key, value in params.items():
        if key not in gen.params:
            problems.append(
                f"unknown parameter '{key}' for generator '{gen.name}'; "
                f"{did_you_mean(key, gen.params)}"
            )
            continue
        spec = gen.params[key]
        if spec.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"parameter '{key}' must be an integer, got {value!r}")
        elif spec.minimum is not None and value < spec.minimum:
            problems.append(f"parameter '{key}' must be >= {spec.minimum}, got {value!r}")
    resolved = resolved_params(gen, params)
    if gen.name == "repeated_tokens" and not problems and resolved["repeat"] >= resolved["seq_len"]:
        problems.append(
            f"parameter 'repeat' ({resolved['repeat']}) must be less than 'seq_len' "
            f"({resolved['seq_len']})"
        )
    return problems


def resolved_params(gen: Generator, params: dict[str, Any]) -> dict[str, Any]:
    return {k: params.get(k, p.default) for k, p in gen.params.items()}
