"""Prompt templates whose placeholders mark token roles, and locating roles in tokens.

``fill("When {IO} and {S1} went to the store, {S2} gave a drink to", values)`` returns the
text and the character span of each placeholder's value; :func:`locate` maps those spans to
the tokens the model's tokenizer makes (its offset mapping), so a role is found in every
prompt however the words around it tokenize. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re

from causal_mi.models.tokens import TokenizerView

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{|\}")


class TemplateError(ValueError):
    """A template that cannot be filled (a placeholder without a value, a stray brace)."""


def placeholders(template: str) -> list[str]:
    """Placeholder names in order of appearance (repeats kept)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


def fill(template: str, values: dict[str, str]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The filled text and each placeholder's character span ``[start, end)``.

    >>> fill("{A} met {B}", {"A": "Ann", "B": "Bo"})
    ('Ann met Bo', {'A': (0, 3), 'B': (8, 10)})

    A placeholder used twice is a template error (a role is one place in the prompt; use two
    names, e.g. ``S1`` and ``S2``, for two occurrences of one value)."""
    out: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    at = 0
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        out.append(template[pos : m.start()])
        at += m.start() - pos
        pos = m.end()
        text = m.group(0)
        if text in ("{{", "}}"):
            out.append(text[0])
            at += 1
            continue
        name = m.group(1)
        if name is None:
            raise TemplateError(
                f"stray '{text}' at character {m.start()} of the template; placeholders are "
                "{NAME} (letters, digits, _), and '{{' / '}}' write literal braces"
            )
        if name in spans:
            raise TemplateError(
                f"placeholder {{{name}}} appears twice; each role is one place in the prompt "
                f"(write {{{name}1}} and {{{name}2}} with the same value)"
            )
        if name not in values:
            known = ", ".join(sorted(values)) or "none"
            raise TemplateError(
                f"placeholder {{{name}}} has no value; give it one in the row's values "
                f"(values given: {known})"
            )
        value = str(values[name])
        spans[name] = (at, at + len(value))
        out.append(value)
        at += len(value)
    out.append(template[pos:])
    return "".join(out), spans


def locate(
    tok: TokenizerView, text: str, spans: dict[str, tuple[int, int]]
) -> tuple[list[int], dict[str, tuple[int, ...]]]:
    """Tokenize ``text`` as the model does (BOS included) and give each span's token
    positions: the tokens whose characters overlap it. Raises :class:`TemplateError` when the
    tokenizer has no offset mapping or a span covers no token."""
    ids = tok.prompt(text)
    hf = tok.tokenizer
    try:
        enc = hf(text, return_offsets_mapping=True, add_special_tokens=False)
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise TemplateError(
            "templates need a fast tokenizer (one with an offset mapping) to find each "
            f"role's tokens; this one has none ({exc}); give token positions with 'roles' "
            "instead"
        ) from None
    body = [int(i) for i in enc["input_ids"]]
    # special tokens the model adds around the text: BOS before it, an encoder's
    # [CLS] before and [SEP] after it
    shift = len(ids) - len(body) - len(_trailing(tok, ids))
    if shift < 0 or ids[shift : shift + len(body)] != body:
        raise TemplateError(
            "the tokenizer's offset mapping does not match the model's tokenization of "
            f"{text!r}; give token positions with 'roles' instead"
        )
    offsets = enc["offset_mapping"]
    roles: dict[str, tuple[int, ...]] = {}
    for name, (start, end) in spans.items():
        hit = tuple(
            shift + i
            for i, (a, b) in enumerate(offsets)
            if (a < end and b > start) or (a == b == start and start == end)
        )
        if not hit:
            raise TemplateError(
                f"placeholder {{{name}}} (characters {start}-{end} of {text!r}) covers no "
                "token; give it a non-empty value"
            )
        roles[name] = hit
    return ids, roles


def _trailing(tok: TokenizerView, ids: list[int]) -> list[int]:
    """The separator an encoder's tokenizer appends after the text (``[SEP]``, ``</s>``)."""
    sep = getattr(tok.tokenizer, "sep_token_id", None) if tok.encoder else None
    return ids[-1:] if sep is not None and ids and ids[-1] == sep else []
