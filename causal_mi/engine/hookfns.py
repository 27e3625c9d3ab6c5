"""The hook functions a pass installs on the bridge: where values are read and written.

Each is a pure function of its inputs, so the runner composes them per pass; none keeps state
beyond the list a capture appends to.
"""

from __future__ import annotations

import torch

from causal_mi.engine.plan import Patch
from causal_mi.models.adapter import heads_first


def _per_query_head(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A key/value activation [rows, pos, kv_head, d_head] expanded to the query heads of
    ``like`` (unchanged where the head counts already agree)."""
    if value.dim() == 4 and like.dim() == 4 and value.shape[2] != like.shape[2]:
        return value.repeat_interleave(like.shape[2] // value.shape[2], dim=2)
    return value


def _last_position(act: torch.Tensor, hook) -> torch.Tensor:
    return act[:, -1:, :]


def _positions(read: torch.Tensor):
    """A hook keeping, per row, the positions ``read`` [rows, K] of the unembedding's input."""

    def fn(act: torch.Tensor, hook) -> torch.Tensor:
        idx = read.to(act.device)[:, :, None].expand(-1, -1, act.shape[-1])
        return act.gather(1, idx)

    return fn


def _capture(into: list[torch.Tensor]):
    """A hook that appends a copy of the activation to ``into`` and changes nothing."""

    def fn(act: torch.Tensor, hook) -> None:
        into.append(act.detach().clone())

    return fn


def _mask(p: Patch, shape: torch.Size, length: int, device) -> torch.Tensor:
    """Boolean mask broadcastable to ``shape`` ([rows, pos, ...], or [rows, head, query, key]
    for attention patterns) selecting the patched cells."""
    per_channel = len(shape) == 4 or any(c is not None for _, c in p.cells)
    pattern = heads_first(p.hook)
    n_ch = shape[1 if pattern else 2] if per_channel else 1
    m = torch.zeros(length, n_ch, dtype=torch.bool, device=device)
    for pos, ch in p.cells:
        pi = slice(None) if pos is None else (pos if pos >= 0 else length + pos)
        ci = slice(None) if ch is None else ch
        m[pi, ci] = True
    if p.complement:
        m = ~m
    # [pos, ch] -> [1, pos, ch, 1...] for 4-D (head) activations, [1, ch, pos, 1] for
    # patterns (the mask selects query rows; every key of a row goes with it), [1, pos, ch]
    # for neurons, [1, pos, 1] for plain vectors.
    if pattern:
        return m.T[None, :, :, None]
    if len(shape) == 4:
        return m[None, :, :, None]
    return m[None]
