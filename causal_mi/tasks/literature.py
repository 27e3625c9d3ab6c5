"""Task generators of the circuits literature, built from templates whose placeholders are
the token roles (see :mod:`causal_mi.tasks.templates`).

Each takes the model's tokenizer and keeps only the names and words that are one token for
it (a word the tokenizer splits would shift every later role), is seeded and deterministic
(``random.Random(seed)``; nothing else is drawn), and says where its prompts come from:

- ``ioi``: Wang et al. 2022, "Interpretability in the Wild: a Circuit for Indirect Object
  Identification in GPT-2 small" (arXiv:2211.00593), the BABA templates of their
  ``ioi_dataset.py`` and their ABBA mirror images; corrupt = the ABC distribution (three
  fresh names for IO, S1, S2). Roles IO, S1, S1_next (their "S1+1"), S2, END; answer IO,
  wrong S.
- ``greater_than``: Hanna et al. 2023, "How does GPT-2 compute greater-than?"
  (arXiv:2305.00586): "The {noun} lasted from the year XXYY to the year XX"; answer set the
  two-digit years > YY, wrong set those <= YY (metric ``prob_diff``: their probability
  difference); corrupt = the "01" start year (XX01). Roles XX1, YY, END.
- ``docstring``: Heimersheim & Janiak 2023, "A circuit for Python docstrings in a 4-layer
  attention-only transformer" (Alignment Forum): a ``def`` with arguments A..D and a
  docstring describing A and B, then ``:param``; answer C, wrong set the other arguments;
  corrupt = the def's arguments renamed (the docstring keeps A and B). Roles A_def, B_def,
  C_def, D_def, A_doc, B_doc, END.
"""

from __future__ import annotations

import random
from typing import Any

from causal_mi.models.tokens import TokenizerView
from causal_mi.tasks.base import Example, role_map
from causal_mi.tasks.templates import TemplateError, fill, locate

NAMES = (
    "Mary", "John", "Tom", "James", "Dan", "Sid", "Martin", "Amy", "Kate", "Paul", "Alex",
    "Anna", "Lisa", "Sarah", "David", "Michael", "Emma", "Jane", "Mark", "Peter", "Laura",
    "Sam", "Jack", "Ben", "Lucy", "Rose", "Adam", "Chris", "Eric", "Ryan", "Nick", "Mike",
    "Steve", "Joe", "Jim", "Bob", "Alice", "Claire", "Grace", "Henry",
)  # fmt: skip
PLACES = ("store", "garden", "restaurant", "school", "hospital", "office", "house", "station")
OBJECTS = ("ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack")
# Wang et al.'s BABA templates ([B] = S, [A] = IO); ABBA swaps the first two names.
IOI_TEMPLATES = (
    "Then, {S1} and {IO} went to the {PLACE}. {S2} gave a {OBJECT} to",
    "Then, {S1} and {IO} had a lot of fun at the {PLACE}. {S2} gave a {OBJECT} to",
    "Then, {S1} and {IO} were working at the {PLACE}. {S2} decided to give a {OBJECT} to",
    "Then, {S1} and {IO} were thinking about going to the {PLACE}. {S2} wanted to give a "
    "{OBJECT} to",
    "Then, {S1} and {IO} had a long argument, and afterwards {S2} said to",
    "After {S1} and {IO} went to the {PLACE}, {S2} gave a {OBJECT} to",
    "When {S1} and {IO} got a {OBJECT} at the {PLACE}, {S2} decided to give it to",
    "While {S1} and {IO} were working at the {PLACE}, {S2} gave a {OBJECT} to",
    "While {S1} and {IO} were commuting to the {PLACE}, {S2} gave a {OBJECT} to",
    "After the lunch, {S1} and {IO} went to the {PLACE}. {S2} gave a {OBJECT} to",
    "Afterwards, {S1} and {IO} went to the {PLACE}. {S2} gave a {OBJECT} to",
    "Then, {S1} and {IO} had a long argument. Afterwards {S2} said to",
    "Friends {S1} and {IO} found a {OBJECT} at the {PLACE}. {S2} gave it to",
)
# Hanna et al.'s nouns (a subset of their list of event nouns).
GT_NOUNS = (
    "war", "attack", "campaign", "case", "conflict", "contract", "deal", "dispute",
    "dynasty", "effort", "expedition", "journey", "marriage", "operation", "plague", "program",
    "project", "reign", "relationship", "rule", "siege", "strike", "study", "tour", "treaty",
    "trial", "trip", "voyage", "work", "order",
)  # fmt: skip
GT_TEMPLATE = "The {NOUN} lasted from the year {XX1}{YY} to the year {XX2}"
DOC_WORDS = (
    "load", "size", "files", "last", "port", "name", "data", "value", "text", "path", "mode",
    "user", "key", "item", "node", "line", "page", "state", "count", "index", "image", "token",
    "table", "field", "shape", "color", "order", "level", "group", "label", "query", "result",
)  # fmt: skip
DOC_DESC = (
    "oil", "column", "piece", "crime", "population", "unit", "dark", "river", "stone", "glass",
    "paper", "tree", "cloud", "music", "money", "light", "board", "plant", "metal", "water",
)  # fmt: skip
DOC_TEMPLATE = (
    "def {FN}(self, {A_def}, {B_def}, {C_def}, {D_def}):\n"
    '    """{W1} {W2} {W3}\n\n'
    "    :param {A_doc}: {W4} {W5}\n"
    "    :param {B_doc}: {W6} {W7}\n"
    "    :param"
)


def single_tokens(tok: TokenizerView, words, *, space: bool = True) -> list[str]:
    """The words that are one token for ``tok`` (after a space when ``space``)."""
    return [w for w in words if len(tok.pieces((" " if space else "") + w)) == 1]


def from_template(
    tok: TokenizerView,
    template: str,
    values: dict[str, str],
    corrupt_values: dict[str, str],
    roles: tuple[str, ...],
) -> tuple[tuple[int, ...], tuple, tuple[int, ...], tuple] | None:
    """(clean ids, clean roles, corrupt ids, corrupt roles), or None when a role's value is
    not exactly one token in context. ``roles``: the placeholders that are roles. A broken
    template (a placeholder without a value, a role it lacks) is a ``ValueError``."""
    try:
        text, spans = fill(template, values)
        ctext, cspans = fill(template, {**values, **corrupt_values})
    except TemplateError as exc:
        raise ValueError(f"broken template {template!r}: {exc}") from None
    lacking = [k for k in roles if k not in spans]
    if lacking:
        raise ValueError(
            f"broken template {template!r}: it lacks the placeholder(s) "
            + ", ".join("{" + k + "}" for k in lacking)
            + " of its roles"
        )
    try:
        clean, r = locate(tok, text, {k: spans[k] for k in roles})
        corrupt, cr = locate(tok, ctext, {k: cspans[k] for k in roles})
    except TemplateError:
        return None
    if any(len(p) != 1 for p in (*r.values(), *cr.values())):
        return None
    return tuple(clean), role_map(r, len(clean)), tuple(corrupt), role_map(cr, len(corrupt))


def _need(pool: list, k: int, what: str, gen: str) -> None:
    if len(pool) < k:
        raise ValueError(
            f"only {len(pool)} {what} are one token for this tokenizer; {gen} needs at least {k}"
        )


def _draw(rng: random.Random, n: int, gen: str, make) -> list[Example]:
    """``n`` examples from ``make(i)`` (None: this draw does not tokenize; try another)."""
    out: list[Example] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 20 * n + 100:
            raise ValueError(
                f"{gen}: fewer than {n} of {tries} drawn prompts tokenize with every role "
                "one token; this tokenizer splits the template's words"
            )
        ex = make(len(out))
        if ex is not None:
            out.append(ex)
    return out


def _with_s1_next(clean, roles, corrupt, croles):
    """Add role S1_next, the token after S1 (Wang et al.'s "S1+1", where the previous-token
    heads act)."""

    def add(rm, n):
        d = dict(rm)
        return role_map({**d, "S1_next": (d["S1"][0] + 1,)}, n)

    return clean, add(roles, len(clean)), corrupt, add(croles, len(corrupt))


def ioi(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """IOI prompts (Wang et al. 2022); ``order``: ABBA, BABA or both (alternating)."""
    rng = random.Random(seed)
    names = single_tokens(tok, NAMES)
    places, objects = single_tokens(tok, PLACES), single_tokens(tok, OBJECTS)
    _need(names, 5, "names", "ioi")
    _need(places, 1, "places", "ioi")
    _need(objects, 1, "objects", "ioi")
    order = str(p["order"])

    def make(i: int) -> Example | None:
        template = rng.choice(IOI_TEMPLATES)
        io, s, c1, c2, c3 = rng.sample(names, 5)
        abba = order == "ABBA" or (order == "both" and i % 2 == 0)
        if abba:  # A and B ... B ... -> A: IO first
            template = template.replace("{S1} and {IO}", "{IO} and {S1}")
        values = {"IO": io, "S1": s, "S2": s, "PLACE": rng.choice(places)}
        values["OBJECT"] = rng.choice(objects)
        got = from_template(
            tok, template, values, {"IO": c1, "S1": c2, "S2": c3}, ("IO", "S1", "S2")
        )
        if got is None:
            return None
        clean, roles, corrupt, croles = _with_s1_next(*got)
        kind = "ABBA" if abba else "BABA"
        return Example(
            clean, corrupt, tok.pieces(" " + io)[0], tok.pieces(" " + s)[0],
            f"ioi #{i} ({kind})", roles=roles, corrupt_roles=croles,
        )  # fmt: skip

    return _draw(rng, n, "ioi", make)


def greater_than(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """Greater-than prompts (Hanna et al. 2023): answers the years after YY, wrongs the
    years up to YY (both as two-digit tokens), corrupt start year XX01."""
    rng = random.Random(seed)
    nouns = single_tokens(tok, GT_NOUNS)
    _need(nouns, 1, "nouns", "greater_than")
    years = [f"{y:02d}" for y in range(100)]
    ok = [y for y in years if len(tok.pieces(y)) == 1]
    _need(ok, 100, "two-digit years (00-99, no space)", "greater_than")
    ids = {y: tok.pieces(y)[0] for y in ok}
    centuries = [c for c in range(11, 18) if len(tok.pieces(f" {c}")) == 1]
    _need(centuries, 1, "centuries (11-17, after a space)", "greater_than")

    def make(i: int) -> Example | None:
        yy = rng.randrange(2, 99)  # Hanna et al.: YY in 02..98
        xx = str(rng.choice(centuries))
        values = {"NOUN": rng.choice(nouns), "XX1": xx, "YY": f"{yy:02d}", "XX2": xx}
        got = from_template(tok, GT_TEMPLATE, values, {"YY": "01"}, ("XX1", "YY", "XX2"))
        if got is None:
            return None
        clean, roles, corrupt, croles = got
        if clean[dict(roles)["YY"][0]] != ids[f"{yy:02d}"]:
            return None  # the year did not split into XX and YY tokens
        above = tuple((ids[f"{y:02d}"],) for y in range(yy + 1, 100))
        below = tuple((ids[f"{y:02d}"],) for y in range(0, yy + 1))
        return Example(
            clean, corrupt, above[0][0], below[0][0], f"greater_than #{i} (YY={yy:02d})",
            roles=roles, corrupt_roles=croles, answers=above, wrongs=below,
        )  # fmt: skip

    return _draw(rng, n, "greater_than", make)


def docstring(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """Docstring prompts (Heimersheim & Janiak 2023): predict the next argument's name."""
    rng = random.Random(seed)
    words = single_tokens(tok, DOC_WORDS)
    desc = single_tokens(tok, DOC_DESC)
    _need(words, 9, "argument words", "docstring")
    _need(desc, 7, "description words", "docstring")
    roles = ("A_def", "B_def", "C_def", "D_def", "A_doc", "B_doc")

    def make(i: int) -> Example | None:
        fn, a, b, c, d, a2, b2, c2, d2 = rng.sample(words, 9)
        w = rng.sample(desc, 7)
        values = {"FN": fn, "A_def": a, "B_def": b, "C_def": c, "D_def": d}
        values |= {"A_doc": a, "B_doc": b} | {f"W{k + 1}": w[k] for k in range(7)}
        corrupt = {"A_def": a2, "B_def": b2, "C_def": c2, "D_def": d2}
        got = from_template(tok, DOC_TEMPLATE, values, corrupt, roles)
        if got is None:
            return None
        clean, r, cor, cr = got
        others = tuple((tok.pieces(" " + x)[0],) for x in (a, b, d))
        return Example(
            clean, cor, tok.pieces(" " + c)[0], others[0][0], f"docstring #{i}",
            roles=r, corrupt_roles=cr, wrongs=others,
        )  # fmt: skip

    return _draw(rng, n, "docstring", make)
