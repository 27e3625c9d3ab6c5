"""Built-in task generators. Each takes the tokenizer, ``n``, a seed and its parameters."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from causal_mi.models.tokens import TokenizerView
from causal_mi.tasks.base import Example, role_map


@dataclass(frozen=True)
class Param:
    kind: type
    default: Any
    help: str
    minimum: int | float | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generator:
    name: str
    description: str
    params: dict[str, Param]
    make: Callable[[TokenizerView, int, int, dict[str, Any]], list[Example]]


def _repeated_tokens(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """clean = BOS + s + s[:repeat], answer s[repeat]; corrupt = BOS + s' + s[:repeat], where
    s' is a fresh random segment, and wrong = s'[repeat] (what copying would predict there).
    Roles: A1, the first occurrence of the last token (s[repeat - 1]); B1, the token after
    it (s[repeat], what induction copies); END.

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
        at = {"A1": len(bos) + repeat - 1, "B1": len(bos) + repeat}  # as in induction
        out.append(
            Example(
                clean,
                corrupt,
                s[repeat],
                s2[repeat],
                f"repeated_tokens #{i}",
                roles=role_map(at, len(clean)),
                corrupt_roles=role_map(at, len(corrupt)),
            )  # fmt: skip
        )
    return out


def _literature() -> dict[str, Generator]:
    from causal_mi.tasks import literature as lit
    from causal_mi.tasks import natural as nat

    return {
        "ioi": Generator(
            "ioi",
            "indirect object identification (Wang et al. 2022), ABC corruption; roles IO, S1, "
            "S1_next, S2, END",
            {"order": Param(str, "both", "ABBA, BABA or both (alternating)", choices=_ORDERS)},
            lit.ioi,
        ),
        "greater_than": Generator(
            "greater_than",
            "'The war lasted from the year 1732 to the year 17' (Hanna et al. 2023); answer "
            "set: years > YY, wrong set: years <= YY; corrupt start year XX01; roles XX1, YY, "
            "XX2, END",
            {},
            lit.greater_than,
        ),
        "docstring": Generator(
            "docstring",
            "the next ':param' name of a Python docstring (Heimersheim & Janiak 2023); "
            "corrupt: the def's arguments renamed; roles A_def..D_def, A_doc, B_doc, END",
            {},
            lit.docstring,
        ),
        "gendered_pronoun": Generator(
            "gendered_pronoun",
            "'The doctor said that' -> the stereotyped pronoun (Vig et al. 2020); corrupt: "
            "'The person said that'; roles OCC, END",
            {},
            nat.gendered_pronoun,
        ),
        "factual_recall": Generator(
            "factual_recall",
            "subject -> object facts (data/facts.jsonl); corrupt: another subject, or "
            "task.noise on role subject (causal tracing, Meng et al. 2022); roles subject, "
            "subject_last, END",
            {},
            nat.factual_recall,
        ),
        "induction": Generator(
            "induction",
            "a span of natural text, then its first `repeat` tokens again; roles A1, B1, END",
            {
                "seq_len": Param(int, 12, "length of the natural span", 4),
                "repeat": Param(int, 6, "how many tokens of it are repeated (< seq_len)", 2),
            },
            nat.induction,
        ),
    }


_ORDERS = ("ABBA", "BABA", "both")

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
    **_literature(),
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
        elif spec.kind is str and (not isinstance(value, str) or value not in spec.choices):
            problems.append(
                f"parameter '{key}' must be one of {', '.join(spec.choices)}, got {value!r}"
            )
        elif spec.minimum is not None and value < spec.minimum:
            problems.append(f"parameter '{key}' must be >= {spec.minimum}, got {value!r}")
    resolved = resolved_params(gen, params)
    if (
        gen.name in ("repeated_tokens", "induction")
        and not problems
        and resolved["repeat"] >= resolved["seq_len"]
    ):
        problems.append(
            f"parameter 'repeat' ({resolved['repeat']}) must be less than 'seq_len' "
            f"({resolved['seq_len']})"
        )
    return problems


def resolved_params(gen: Generator, params: dict[str, Any]) -> dict[str, Any]:
    return {k: params.get(k, p.default) for k, p in gen.params.items()}
