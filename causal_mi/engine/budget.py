"""Memory budgets (``--max-memory``): parsing sizes and fitting the hook engine's rows to one.

The incremental engine sizes its chunks itself (:mod:`causal_mi.effects.joins`); the hook
engine is bounded by rows per forward pass, so a byte budget becomes a row count here from a
per-row estimate of what one bridge pass holds at once.
"""

from __future__ import annotations

import re

_UNITS = {
    "": 2**20,
    "b": 1,
    "k": 2**10,
    "kb": 10**3,
    "kib": 2**10,
    "m": 2**20,
    "mb": 10**6,
    "mib": 2**20,
    "g": 2**30,
    "gb": 10**9,
    "gib": 2**30,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``512MiB``, ``2GB``, ``1.5GiB``, or a bare number of MiB."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(
            f"invalid memory size '{text}'; write a positive number with a unit, e.g. 512MiB, "
            "2GB, 1.5GiB (a bare number means MiB)"
        )
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < 1:
        raise ValueError(f"invalid memory size '{text}': less than one byte")
    return size


def row_bytes(cfg, length: int, itemsize: int = 4) -> int:
    """Rough peak bytes one row (one prompt) adds to a bridge forward pass: a few residual-
    stream tensors, q/k/v/z, the MLP's hidden layer, attention scores, and the logits of the
    last position."""
    d, H = cfg.d_model, cfg.n_heads
    d_mlp = 0 if cfg.attn_only else int(cfg.d_mlp or 4 * d)
    per_pos = 8 * d + 4 * H * cfg.d_head + 3 * d_mlp + 3 * H * length
    return itemsize * (length * per_pos + 3 * cfg.d_vocab)


def rows_for(cfg, length: int, budget: int, itemsize: int = 4) -> int:
    """Rows per pass that fit ``budget`` bytes (at least one)."""
    return max(1, budget // row_bytes(cfg, length, itemsize))


def rows_for_model(model, length: int, budget: int) -> int:
    """:func:`rows_for` a loaded model at its weights' precision."""
    itemsize = next(model.bridge.parameters()).dtype.itemsize
    return rows_for(model.bridge.cfg, length, budget, itemsize)
