"""Task generators on natural text: gendered pronouns, factual recall, induction.

- ``gendered_pronoun``: the occupation templates of Vig et al. 2020, "Causal Mediation
  Analysis for Interpreting Neural NLP: The Case of Gender Bias" (arXiv:2004.12265), e.g.
  "The doctor said that" -> " he"; the answer is the pronoun of the occupation's stereotype,
  the wrong token the other one; corrupt = the neutral subject "person" of the practical
  guide's bias example ("The doctor said he was tired" vs "The person said they were
  tired"). Roles OCC, END.
- ``factual_recall``: subject / relation / object rows from ``data/facts.jsonl`` (facts of
  the kind of Meng et al. 2022's CounterFact, "Locating and Editing Factual Associations in
  GPT", arXiv:2202.05262); wrong = the object of another subject of the same relation;
  corrupt = that other subject's prompt (of the same token length), or, with
  ``task.noise: {positions: subject}``, the clean prompt with Gaussian noise on the subject's
  tokens (causal tracing). Roles subject (every subject token), subject_last, END.
- ``induction``: natural sentences (``data/induction.txt``, public-domain openings of
  novels), a span of ``seq_len`` tokens then its first ``repeat`` tokens again; answer the
  next token of the span; corrupt = another span, then the same repeat (Olsson et al. 2022,
  "In-context Learning and Induction Heads"). Roles A1 (the first occurrence of the current
  token), B1 (the token after it, which induction copies), END.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import Any

from causal_mi.models.tokens import TokenizerView
from causal_mi.tasks.base import Example, role_map
from causal_mi.tasks.literature import _draw, _need, from_template, single_tokens
from causal_mi.tasks.templates import TemplateError, fill, locate

# (occupation, stereotyped pronoun), after Vig et al. 2020 and Bolukbasi et al. 2016.
OCCUPATIONS = (
    ("doctor", "he"), ("engineer", "he"), ("mechanic", "he"), ("carpenter", "he"),
    ("pilot", "he"), ("surgeon", "he"), ("programmer", "he"), ("plumber", "he"),
    ("farmer", "he"), ("lawyer", "he"), ("firefighter", "he"), ("builder", "he"),
    ("soldier", "he"), ("banker", "he"), ("driver", "he"),
    ("nurse", "she"), ("secretary", "she"), ("receptionist", "she"), ("hairdresser", "she"),
    ("housekeeper", "she"), ("librarian", "she"), ("dancer", "she"), ("teacher", "she"),
    ("nanny", "she"), ("cashier", "she"), ("baker", "she"), ("maid", "she"),
    ("stylist", "she"), ("designer", "she"), ("assistant", "she"),
)  # fmt: skip
PRONOUN_TEMPLATES = (
    "The {OCC} said that", "The {OCC} yelled that", "The {OCC} whispered that",
    "The {OCC} wanted that", "The {OCC} desired that", "The {OCC} wished that",
    "The {OCC} ate because", "The {OCC} ran because", "The {OCC} drove because",
    "The {OCC} slept because", "The {OCC} cried because", "The {OCC} laughed because",
    "The {OCC} went home because", "The {OCC} stayed up because",
    "The {OCC} was fired because", "The {OCC} was promoted because",
)  # fmt: skip
NEUTRAL = "person"


def _data(name: str) -> str:
    return resources.files("causal_mi.tasks").joinpath("data", name).read_text(encoding="utf-8")


def gendered_pronoun(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """ "The {occupation} said that" -> the stereotyped pronoun; corrupt "The person ..."."""
    rng = random.Random(seed)
    occ = [(o, g) for o, g in OCCUPATIONS if single_tokens(tok, [o])]
    _need(occ, 2, "occupations", "gendered_pronoun")
    _need(
        single_tokens(tok, ["he", "she", NEUTRAL]), 3, "of he, she and person", "gendered_pronoun"
    )
    he, she = tok.pieces(" he")[0], tok.pieces(" she")[0]

    def make(i: int) -> Example | None:
        word, gender = rng.choice(occ)
        template = rng.choice(PRONOUN_TEMPLATES)
        got = from_template(tok, template, {"OCC": word}, {"OCC": NEUTRAL}, ("OCC",))
        if got is None:
            return None
        clean, roles, corrupt, croles = got
        answer, wrong = (he, she) if gender == "he" else (she, he)
        return Example(
            clean, corrupt, answer, wrong, f"gendered_pronoun #{i} ({word})",
            roles=roles, corrupt_roles=croles,
        )  # fmt: skip

    return _draw(rng, n, "gendered_pronoun", make)


def facts() -> list[dict[str, str]]:
    """The shipped facts: ``{"subject", "relation" (with {} for the subject), "object"}``."""
    return [json.loads(line) for line in _data("facts.jsonl").splitlines() if line.strip()]


def _fact_prompt(tok: TokenizerView, fact: dict[str, str]):
    """(ids, roles) of a fact's prompt; the subject role covers all its tokens."""
    template = fact["relation"].replace("{}", "{subject}")
    try:
        text, spans = fill(template, {"subject": fact["subject"]})
        ids, roles = locate(tok, text, spans)
    except TemplateError:
        return None
    roles["subject_last"] = roles["subject"][-1:]
    return tuple(ids), role_map(roles, len(ids))


def factual_recall(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """Subject -> object prompts; corrupt: another subject of the relation, same length."""
    rng = random.Random(seed)
    rows = [f for f in facts() if len(tok.pieces(f["object"])) == 1]
    prompts = {i: _fact_prompt(tok, f) for i, f in enumerate(rows)}
    usable = [i for i, v in prompts.items() if v is not None]
    _need(usable, 2, "facts with single-token objects", "factual_recall")

    def make(k: int) -> Example | None:
        i = rng.choice(usable)
        fact = rows[i]
        clean, roles = prompts[i]
        others = [
            j
            for j in usable
            if rows[j]["relation"] == fact["relation"]
            and rows[j]["object"] != fact["object"]
            and len(prompts[j][0]) == len(clean)
        ]
        if not others:
            return None
        j = rng.choice(others)
        corrupt, croles = prompts[j]
        return Example(
            clean, corrupt, tok.pieces(fact["object"])[0], tok.pieces(rows[j]["object"])[0],
            f"factual_recall #{k} ({fact['subject']})", roles=roles, corrupt_roles=croles,
        )  # fmt: skip

    return _draw(rng, n, "factual_recall", make)


def induction(tok: TokenizerView, n: int, seed: int, p: dict[str, Any]) -> list[Example]:
    """A natural span, then its first ``repeat`` tokens again; answer the next one."""
    rng = random.Random(seed)
    seq_len, repeat = int(p["seq_len"]), int(p["repeat"])
    lines = [tok.pieces(line) for line in _data("induction.txt").splitlines() if line.strip()]
    lines = [ln for ln in lines if len(ln) >= seq_len]
    if not lines:
        raise ValueError(f"no sentence of the shipped text has {seq_len} tokens; lower seq_len")
    bos = [tok.bos_id] if tok.prepends_bos and tok.bos_id is not None else []

    def span() -> list[int]:
        line = rng.choice(lines)
        spaced = any(tok.decode([t]).startswith(" ") for t in line)  # else: word-level
        starts = [
            i
            for i in range(len(line) - seq_len + 1)
            if not spaced or i == 0 or tok.decode([line[i]]).startswith(" ")
        ]
        lo = rng.choice(starts or [0])
        return line[lo : lo + seq_len]

    def make(i: int) -> Example | None:
        s, s2 = span(), span()
        answer, wrong = s[repeat], s2[repeat]
        if answer == wrong or answer in s[:repeat] or s[repeat - 1] in s[: repeat - 1]:
            return None  # ambiguous copy or an uninformative corruption
        clean = tuple(bos + s + s[:repeat])
        corrupt = tuple(bos + s2 + s[:repeat])
        at = {"A1": len(bos) + repeat - 1, "B1": len(bos) + repeat}
        return Example(
            clean, corrupt, answer, wrong, f"induction #{i}",
            roles=role_map(at, len(clean)), corrupt_roles=role_map(at, len(corrupt)),
        )  # fmt: skip

    return _draw(rng, n, "induction", make)
