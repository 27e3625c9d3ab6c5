"""Per-row positions for the hook engine: buckets of examples and patches at token roles.

A bucket holds examples whose clean runs share one token length and corrupt runs another
(no padding, so nothing can leak from a pad token). Inside it, positions are resolved per
row: a :class:`~causal_mi.spec.sites.Role` to the row's position of that role in each run,
a negative integer from the end of the row's prompt. Patching cell ``(role, channel)`` of a
run writes the source run's value at *its* position of the role: role maps to role, so the
clean and corrupt prompts may place a role differently or differ in length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from causal_mi.engine.plan import Patch
from causal_mi.errors import InputError
from causal_mi.models.adapter import heads_first
from causal_mi.spec.sites import Role
from causal_mi.tasks.base import Example

_ALL_POSITIONS = (
    "{hook}: a patch over all positions needs the clean and corrupt prompts to have the "
    "same length; {source} (name positions or roles, e.g. {{at: L9H9, pos: END}}, or use "
    "prompts of equal length)"
)


def run_tokens(ex: Example, base: str) -> tuple[int, ...]:
    """The tokens a run of ``ex`` feeds the model: its prompt, then the teacher-forced
    continuation of a multi-token answer."""
    return (ex.clean if base == "clean" else ex.corrupt) + ex.continuation


def run_key(ex: Example) -> int | tuple[int, int]:
    """The key of ``ex``'s bucket in the engine's recordings: its run length, or (clean run
    length, corrupt run length) when they differ."""
    lc, lr = len(run_tokens(ex, "clean")), len(run_tokens(ex, "corrupt"))
    return lc if lc == lr else (lc, lr)


def make_bucket(index: np.ndarray, exs: Sequence[Example], noise, device, cls) -> Any:
    """The engine's bucket (``cls``) for examples of one (clean, corrupt) run length."""

    def t(rows: list) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.long, device=device)

    plain = all(e.plain for e in exs)
    aligned = all(len(e.clean) == len(e.corrupt) and not e.continuation for e in exs)
    common = set.intersection(*(set(e.roles_of(b)) for e in exs for b in ("clean", "corrupt")))
    roles = {
        base: {r: t([e.roles_of(base)[r][-1] for e in exs]) for r in sorted(common)}
        for base in ("clean", "corrupt")
    }
    prompt_len = {
        "clean": t([len(e.clean) for e in exs]),
        "corrupt": t([len(e.corrupt) for e in exs]),
    }
    if plain:
        answer, wrong, read = t([e.answer for e in exs]), t([e.wrong for e in exs]), None
    else:
        K = max(len(s) for e in exs for s in e.answer_set)
        answer, wrong = (
            _members(exs, "answer_set", K, device),
            _members(exs, "wrong_set", K, device),
        )
        read = {}
        for base in ("clean", "corrupt"):
            run_len = len(run_tokens(exs[0], base))
            start = t([e.roles_of(base)[e.read][-1] for e in exs])
            steps = torch.arange(K, device=device)[None, :]
            read[base] = (start[:, None] + steps).clamp(max=run_len - 1)
    return cls(
        index,
        t([run_tokens(e, "clean") for e in exs]),
        t([run_tokens(e, "corrupt") for e in exs]),
        answer,
        wrong,
        noise,
        roles=roles,
        prompt_len=prompt_len,
        read=read,
        aligned=aligned,
        plain=plain,
    )


def _members(exs: Sequence[Example], attr: str, K: int, device) -> torch.Tensor:
    """[n, M, K] member tokens, -1 padded (M: the largest set)."""
    sets = [getattr(e, attr) for e in exs]
    M = max(len(s) for s in sets)
    out = torch.full((len(exs), M, K), -1, dtype=torch.long)
    for i, members in enumerate(sets):
        for j, seq in enumerate(members):
            seq = seq[:K]
            out[i, j, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out.to(device)


def _where(b, base: str, pos: int | Role, lo: int, hi: int) -> torch.Tensor:
    """Positions [hi - lo] of ``pos`` in the ``base`` runs of rows lo:hi of bucket ``b``."""
    if isinstance(pos, Role):
        return b.roles[base][pos.name][lo:hi]
    if pos >= 0:
        return torch.full((hi - lo,), pos, dtype=torch.long, device=b.clean.device)
    return b.prompt_len[base][lo:hi] + pos


def patch_rows(
    p: Patch,
    cache: dict,
    act: torch.Tensor,
    base: str,
    b,
    lo: int,
    hi: int,
    recorded: dict,
    current: torch.Tensor | None,
) -> torch.Tensor:
    """``act`` (rows lo:hi of a ``base`` run, [n, pos, ...] or a pattern [n, head, q, k])
    with ``p``'s cells replaced, each position resolved per row in the target run and in
    the source run. ``current`` is this pass's value of ``p.minus`` (for resid_mid)."""
    pattern = heads_first(p.hook)
    a = act.transpose(1, 2) if pattern else act  # [n, pos, ...]
    n, length = a.shape[0], a.shape[1]
    rows = torch.arange(n, device=a.device)
    src, src_base = _source(p, base, b, lo, hi, cache, recorded, pattern)
    cur = None if current is None else current
    same = src is None or (src.shape[1] == length and (not pattern or src.shape[-1] == length))

    def need_same() -> None:
        if not same:
            raise InputError(
                _ALL_POSITIONS.format(
                    hook=p.hook,
                    source=f"this patch reads the {src_base} run ({src.shape[1]} tokens) "
                    f"into a {base} run of {length}",
                )
            )

    if p.complement:  # everything but the cells, position-aligned
        need_same()
        keep = torch.zeros(n, length, *a.shape[2:], dtype=torch.bool, device=a.device)
        for pos, ch in p.cells:
            ci = slice(None) if ch is None else ch
            if pos is None:
                keep[:, :, ci] = True
            else:
                keep[rows, _where(b, base, pos, lo, hi), ci] = True
        value = torch.zeros_like(a) if src is None else src.expand_as(a)
        if cur is not None:
            value = value - cur
        out = torch.where(keep, a, value)
        return out.transpose(1, 2) if pattern else out
    out = a.clone()
    for pos, ch in sorted(p.cells, key=lambda c: (c[0] is None, str(c))):
        ci = slice(None) if ch is None else ch
        if pos is None:
            need_same()
            value = 0.0 if src is None else src.expand_as(a)[:, :, ci]
            if cur is not None:
                value = value - cur[:, :, ci]
            out[:, :, ci] = value
            continue
        t = _where(b, base, pos, lo, hi)
        if src is None:
            value = torch.zeros_like(out[rows, t, ci])
        elif p.source == "mean" and isinstance(pos, Role):
            value = _role_mean(cache, p.read_hook, pos, b, pattern)[ci]
        else:
            s = _where(b, src_base, pos, lo, hi)
            if pattern and src.shape[-1] != length:
                raise InputError(
                    f"{p.hook}: an attention-pattern row cannot move between prompts of "
                    f"different lengths ({src.shape[-1]} and {length} keys); patch the "
                    "head's q/k/v or its output at the role instead"
                )
            value = src.expand(n, *src.shape[1:])[rows, s, ci]
        if cur is not None:
            value = value - cur[rows, t, ci]
        out[rows, t, ci] = value
    return out.transpose(1, 2) if pattern else out


def _source(p: Patch, base: str, b, lo: int, hi: int, cache: dict, recorded: dict, pattern):
    """(source values [n or 1, pos, ...] or None for zero, the run its positions index)."""
    if p.source == "zero":
        return None, base
    if p.source == "mean":
        v = cache["mean"][p.read_hook]
        return (v.transpose(1, 2) if pattern else v), "corrupt"
    if p.source == "recorded":
        v = recorded[p.recording][b.key][lo:hi]
        return (v.transpose(1, 2) if pattern else v), base
    v = cache[p.source][p.read_hook][lo:hi]
    return (v.transpose(1, 2) if pattern else v), p.source


def _role_mean(cache: dict, hook: str, role: Role, b, pattern: bool) -> torch.Tensor:
    """Mean over the bucket's corrupt runs of the activation at each run's ``role`` position
    (one value per channel); memoized in ``cache``. ``cache["mean_base"]``, when present,
    replaces the corrupt activations the mean is taken from (see
    :mod:`causal_mi.engine.influence`)."""
    key = ("role-mean", hook, role.name)
    if key not in cache:
        v = cache.get("mean_base", cache["corrupt"])[hook]
        v = v.transpose(1, 2) if pattern else v
        s = b.roles["corrupt"][role.name]
        cache[key] = v[torch.arange(v.shape[0], device=v.device), s].mean(0)
    return cache[key]
