"""Task files: JSON Lines, one ``{"clean", "corrupt", "answer", "wrong"}`` object per line."""

from __future__ import annotations

import json
from pathlib import Path

from causal_mi.errors import Location, Problem
from causal_mi.models.tokens import TokenizerView
from causal_mi.tasks.base import Example

KEYS = ("clean", "corrupt", "answer", "wrong")


def read_pairs(
    path: Path, *, corrupt: bool = True
) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """Parse the file; returns (line number, record) pairs and every problem found.

    ``corrupt=False`` (a task corrupted by noise) makes the ``corrupt`` key optional: the
    corrupt run is then the clean prompt, so a record without it reads its clean prompt."""
    required = KEYS if corrupt else tuple(k for k in KEYS if k != "corrupt")
    records: list[tuple[int, dict[str, str]]] = []
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
        missing = [k for k in required if not isinstance(obj.get(k), str)]
        extra = sorted(set(obj) - set(KEYS))
        if missing:
            problems.append(
                Problem(
                    where,
                    f"missing or non-string key(s) {', '.join(missing)}; "
                    f"each line needs string values for {', '.join(required)}",
                )
            )
            continue
        if extra:
            problems.append(
                Problem(where, f"unknown key(s) {', '.join(extra)}; valid keys: " + ", ".join(KEYS))
            )
            continue
        records.append((number, {k: obj.get(k, obj["clean"]) for k in KEYS}))
    if not records and not problems:
        problems.append(
            Problem(
                Location(str(path)),
                f"task file {path} has no examples; add lines like "
                '{"clean": "...", "corrupt": "...", "answer": " X", "wrong": " Y"}',
            )
        )
    return records, problems


def tokenize_pairs(
    path: Path,
    records: list[tuple[int, dict[str, str]]],
    tok: TokenizerView,
    *,
    corrupt: bool = True,
) -> tuple[list[Example], list[Problem]]:
    """Tokenize with the model's tokenizer; answers must be single tokens and each clean
    prompt must have as many tokens as its corrupt prompt (position-aligned patching).
    ``corrupt=False`` ignores the corrupt prompts (a task corrupted by noise): the corrupt
    tokens are the clean ones."""
    examples: list[Example] = []
    problems: list[Problem] = []
    for number, rec in records:
        where = Location(str(path), number, 1)
        ok = True
        ids = {}
        for key in ("answer", "wrong"):
            pieces = tok.pieces(rec[key])
            if len(pieces) != 1:
                shown = ", ".join(repr(p) for p in tok.show(pieces)) or "no tokens"
                problems.append(
                    Problem(
                        where,
                        f"{key} {rec[key]!r} is {len(pieces)} tokens "
                        f"({shown}) for this model's tokenizer; {key} must be a "
                        "single token (GPT-2-style tokenizers usually need a "
                        "leading space, e.g. ' Mary')",
                    )
                )
                ok = False
            else:
                ids[key] = pieces[0]
        clean = tok.prompt(rec["clean"])
        other = tok.prompt(rec["corrupt"]) if corrupt else clean
        if len(clean) != len(other):
            problems.append(
                Problem(
                    where,
                    f"clean prompt is {len(clean)} tokens but corrupt is "
                    f"{len(other)}; they must have the same length so positions "
                    "line up when patching",
                )
            )
            ok = False
        if ok:
            examples.append(
                Example(
                    tuple(clean),
                    tuple(other),
                    ids["answer"],
                    ids["wrong"],
                    f"{path.name}:{number}",
                )
            )
    return examples, problems
