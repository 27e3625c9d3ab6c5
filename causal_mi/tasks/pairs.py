"""Task files: JSON Lines, one example per line, in one of two forms.

Prompts given as text, roles as token positions (BOS included; negative from the end)::

    {"clean": "...", "corrupt": "...", "answer": " Mary", "wrong": " John",
     "roles": {"IO": 2, "S2": 9}, "corrupt_roles": {"IO": 2, "S2": 10}}

``corrupt_roles`` defaults to ``roles``. A template whose placeholders mark the roles::

    {"template": "When {IO} and {S1} went to the store, {S2} gave a drink to",
     "values": {"IO": "Mary", "S1": "John", "S2": "John"},
     "corrupt_values": {"IO": "Alice", "S1": "Bob", "S2": "Carl"},
     "answer": " Mary", "wrong": " John"}

``corrupt_values`` (merged over ``values``) and ``corrupt_template`` (default: the
template) give the corrupt prompt. Each role is then the tokens its value covers (the
tokenizer's offset mapping). Every prompt also defines ``END``, its last token.

``answer`` and ``wrong`` are a string (one token; for ``metric: logprob`` also several,
scored by summed log-probability) or a list of single-token strings (an answer set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causal_mi.errors import Location, Problem
from causal_mi.models.tokens import MASK, TokenizerView
from causal_mi.tasks.base import END, Example, RoleMap, role_map
from causal_mi.tasks.templates import TemplateError, fill, locate

KEYS = ("clean", "corrupt", "answer", "wrong")
TEXT_KEYS = (*KEYS, "roles", "corrupt_roles")
TEMPLATE_KEYS = ("template", "corrupt_template", "values", "corrupt_values", "answer", "wrong")
_EXAMPLE = '{"clean": "...", "corrupt": "...", "answer": " X", "wrong": " Y"}'
MULTI_TOKEN_METRICS = ("logprob",)


@dataclass
class Row:
    """One parsed line: prompt texts, roles as token positions or character spans."""

    number: int
    clean: str
    corrupt: str
    answer: str | list[str]
    wrong: str | list[str]
    roles: dict[str, list[int]] = field(default_factory=dict)
    corrupt_roles: dict[str, list[int]] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] | None = None  # template rows: character spans
    corrupt_spans: dict[str, tuple[int, int]] | None = None

    def get(self, key: str, default: Any = None) -> Any:  # dict-like access for callers
        return getattr(self, key, default)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


def _answer_ok(v: Any) -> bool:
    return isinstance(v, str) or (
        isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v)
    )


def _roles_ok(v: Any) -> dict[str, list[int]] | None:
    if not isinstance(v, dict):
        return None
    out = {}
    for k, p in v.items():
        if not isinstance(k, str) or not k.isidentifier():
            return None
        ps = [p] if isinstance(p, int) and not isinstance(p, bool) else p
        if not isinstance(ps, list) or not ps:
            return None
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in ps):
            return None
        out[k] = ps
    return out


def _parse(obj: dict, number: int, where: Location, corrupt: bool) -> tuple[Row | None, str]:
    """A row from a JSON object, or None and the problem."""
    template = "template" in obj
    valid = TEMPLATE_KEYS if template else TEXT_KEYS
    extra = sorted(set(obj) - set(valid))
    if extra:
        return None, f"unknown key(s) {', '.join(extra)}; valid keys: " + ", ".join(valid)
    for key in ("answer", "wrong"):
        if not _answer_ok(obj.get(key)):
            return None, (
                f"missing or bad '{key}': a string (' Mary') or a non-empty list of strings "
                "(an answer set)"
            )
    if template:
        tmpl, ctmpl = obj.get("template"), obj.get("corrupt_template", obj.get("template"))
        values, cvalues = obj.get("values", {}), obj.get("corrupt_values", {})
        if not isinstance(tmpl, str) or not isinstance(ctmpl, str):
            return None, "'template' and 'corrupt_template' must be strings"
        if not isinstance(values, dict) or not isinstance(cvalues, dict):
            return None, "'values' and 'corrupt_values' must map placeholder names to strings"
        if not all(isinstance(v, str) for v in (*values.values(), *cvalues.values())):
            return None, "placeholder values must be strings"
        try:
            clean, spans = fill(tmpl, values)
            text, cspans = fill(ctmpl, {**values, **cvalues})
        except TemplateError as exc:
            return None, f"template: {exc}"
        return Row(number, clean, text if corrupt else clean, obj["answer"], obj["wrong"],
                   spans=spans, corrupt_spans=cspans if corrupt else spans), ""  # fmt: skip
    required = KEYS if corrupt else tuple(k for k in KEYS if k != "corrupt")
    missing = [k for k in required if k in ("clean", "corrupt") and not isinstance(obj.get(k), str)]
    if missing:
        return None, (
            f"missing or non-string key(s) {', '.join(missing)}; each line needs string "
            f"values for {', '.join(required)} (or a 'template' with 'values')"
        )
    roles = _roles_ok(obj.get("roles", {}))
    croles = _roles_ok(obj.get("corrupt_roles", obj.get("roles", {})))
    if roles is None or croles is None:
        return None, (
            "'roles' / 'corrupt_roles' must map role names (identifiers) to a token "
            'position or a list of them, e.g. {"IO": 2, "S2": 9}'
        )
    clean = obj["clean"]
    other = obj.get("corrupt", clean) if corrupt else clean
    return Row(number, clean, other, obj["answer"], obj["wrong"], roles,
               croles if corrupt else roles), ""  # fmt: skip


def read_pairs(path: Path, *, corrupt: bool = True) -> tuple[list[tuple[int, Row]], list[Problem]]:
    """Parse the file; returns (line number, row) pairs and every problem found.

    ``corrupt=False`` (a task corrupted by noise) makes the ``corrupt`` key optional: the
    corrupt run is then the clean prompt, so a record without it reads its clean prompt."""
    records: list[tuple[int, Row]] = []
    problems: list[Problem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [], [
            Problem(
                Location(str(path)),
                f"task file not found: {path} (task.file is resolved "
                "against the hypothesis file's directory)",
            )
        ]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(Location(str(path)), f"cannot read task file {path}: {exc}")]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = Location(str(path), number, 1)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(Location(str(path), number, exc.colno), f"invalid JSON: {exc.msg}")
            )
            continue
        if not isinstance(obj, dict):
            problems.append(
                Problem(where, "each line must be a JSON object with keys " + ", ".join(KEYS))
            )
            continue
        row, why = _parse(obj, number, where, corrupt)
        if row is None:
            problems.append(Problem(where, why))
        else:
            records.append((number, row))
    if not records and not problems:
        problems.append(
            Problem(
                Location(str(path)),
                f"task file {path} has no examples; add lines like {_EXAMPLE}",
            )
        )
    return records, problems


def answer_tokens(
    tok: TokenizerView, key: str, value: str | list[str], metric: str
) -> tuple[tuple[tuple[int, ...], ...] | None, str]:
    """Token sequences of an answer (set), or None and the problem: list members must be
    single tokens; a multi-token string needs a log-probability metric."""
    members = value if isinstance(value, list) else [value]
    if tok.labels is not None:
        return label_ids(tok.labels, key, members)
    out = []
    for text in members:
        pieces = tuple(tok.pieces(text))
        shown = ", ".join(repr(p) for p in tok.show(list(pieces))) or "no tokens"
        if not pieces:
            return None, f"{key} {text!r} is no token for this model's tokenizer"
        if len(pieces) > 1 and (isinstance(value, list) or metric not in MULTI_TOKEN_METRICS):
            what = (
                f"every member of the {key} set must be a single token"
                if isinstance(value, list)
                else f"{key} must be a single token for metric '{metric}' (a multi-token "
                f"{key} is scored by summed log-probability under metric: logprob only)"
            )
            return None, (
                f"{key} {text!r} is {len(pieces)} tokens ({shown}) for this model's "
                f"tokenizer; {what}; fix: use a word that is one token (GPT-2-style "
                "tokenizers usually need a leading space, e.g. ' Mary') or drop it"
            )
        out.append(pieces)
    return tuple(out), ""


def label_ids(
    labels: dict[str, int], key: str, members: list[str]
) -> tuple[tuple[tuple[int, ...], ...] | None, str]:
    """A classifier's answer (set) as logit indices: each member must name a class label
    of ``config.id2label`` (exactly; labels are not tokens)."""
    from causal_mi.errors import did_you_mean

    out = []
    for text in members:
        if text not in labels:
            return None, (
                f"{key} {text!r} is not a class label of this classifier (its "
                f"config.id2label); {did_you_mean(text, labels, limit=50)}"
            )
        out.append((labels[text],))
    return tuple(out), ""


def with_roles(roles: RoleMap, extra: dict[str, tuple[int, ...]]) -> RoleMap:
    """``roles`` plus the roles a prompt defines by itself (an encoder's ``CLS`` and
    ``MASK``); a role the row names keeps the row's positions."""
    have = dict(roles)
    return tuple(sorted({**extra, **have}.items()))


def tokenize_pairs(
    path: Path,
    records: list[tuple[int, Row]],
    tok: TokenizerView,
    *,
    corrupt: bool = True,
    metric: str = "logit_diff",
    read: str = END,
) -> tuple[list[Example], list[Problem]]:
    """Tokenize with the model's tokenizer and locate each row's roles. ``corrupt=False``
    ignores the corrupt prompts (a task corrupted by noise): the corrupt tokens are the
    clean ones. ``read`` is the role at which the metric is read."""
    examples: list[Example] = []
    problems: list[Problem] = []
    for number, rec in records:
        where = Location(str(path), number, 1)
        ok = True
        sets = {}
        for key in ("answer", "wrong"):
            seqs, why = answer_tokens(tok, key, rec[key], metric)
            if seqs is None:
                problems.append(Problem(where, why))
                ok = False
            else:
                sets[key] = seqs
        try:
            clean, roles, other, croles = _prompts(tok, rec, corrupt)
        except TemplateError as exc:
            problems.append(Problem(where, f"template: {exc}"))
            continue
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        if not ok:
            continue
        clean_roles = with_roles(roles, tok.special_roles(clean))
        croles = with_roles(croles, tok.special_roles(other))
        roles = clean_roles
        if read == MASK and tok.head == "masked_lm":
            bad = next(
                (
                    (name, ids)
                    for name, ids, rm in (("clean", clean, roles), ("corrupt", other, croles))
                    if len(dict(rm).get(MASK, ())) != 1
                ),
                None,
            )
            if bad is not None:
                n = len(dict(roles if bad[0] == "clean" else croles).get(MASK, ()))
                problems.append(
                    Problem(
                        where,
                        f"this masked-LM reads its metric at the mask token {tok.mask_token}, "
                        f"and the {bad[0]} prompt has {n} of them; put exactly one "
                        f"{tok.mask_token} where the answer goes in both prompts (or set "
                        "task.read_at to another role)",
                    )
                )
                continue
        multi = any(len(s) > 1 for s in sets["answer"])
        if multi and read != END:
            problems.append(
                Problem(
                    where,
                    f"a multi-token answer is scored after the prompt's last token, so the "
                    f"metric cannot be read at role {read}; use a single-token answer",
                )
            )
            continue
        examples.append(
            Example(
                tuple(clean),
                tuple(other),
                sets["answer"][0][0],
                sets["wrong"][0][0],
                f"{path.name}:{number}",
                roles=roles,
                corrupt_roles=croles,
                answers=sets["answer"] if sets["answer"] != ((sets["answer"][0][0],),) else (),
                wrongs=sets["wrong"] if sets["wrong"] != ((sets["wrong"][0][0],),) else (),
                read=read,
            )
        )
    return examples, problems


def _prompts(tok: TokenizerView, rec: Row, corrupt: bool):
    """(clean tokens, clean roles, corrupt tokens, corrupt roles) of a row."""
    if rec.spans is not None:
        clean, roles = locate(tok, rec.clean, rec.spans)
        if corrupt:
            other, croles = locate(tok, rec.corrupt, rec.corrupt_spans or {})
        else:
            other, croles = clean, roles
        return clean, role_map(roles, len(clean)), other, role_map(croles, len(other))
    clean = tok.prompt(rec.clean)
    other = tok.prompt(rec.corrupt) if corrupt else clean
    for name, given, n, which in (
        ("roles", rec.roles, len(clean), "clean"),
        ("corrupt_roles", rec.corrupt_roles, len(other), "corrupt"),
    ):
        for role, ps in given.items():
            bad = [p for p in ps if not -n <= p < n]
            if bad:
                raise ValueError(
                    f"{name}: {role} = {bad[0]} is outside the {which} prompt ({n} tokens, "
                    f"positions 0..{n - 1} or -{n}..-1)"
                )
    return clean, role_map(rec.roles, len(clean)), other, role_map(rec.corrupt_roles, len(other))
