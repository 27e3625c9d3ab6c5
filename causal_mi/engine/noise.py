"""Gaussian-noise corruption of the embeddings (causal tracing): per-example draws that do
not depend on batching, and the hook that adds them (see :class:`causal_mi.tasks.base.Noise`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from causal_mi.engine.plan import Condition
from causal_mi.tasks.base import Noise


def noise_seed(seed: int, index: int) -> int:
    """The generator seed of example ``index``'s noise under the task's noise ``seed``."""
    entropy = [seed % 2**64, index]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


def embedding_noise(examples, length: int, W_E: torch.Tensor) -> torch.Tensor | None:
    """The examples' noise draws stacked, [n, length, d_model] on ``W_E``'s device and dtype
    (zeros for examples without noise), or None when none has noise."""
    if all(e.noise is None for e in examples):
        return None
    d_model = W_E.shape[1]
    std = float(W_E.double().std())
    draws = [
        noise_draw(e.noise, length, d_model, std)
        if e.noise is not None
        else torch.zeros(length, d_model, dtype=torch.float64)
        for e in examples
    ]
    return torch.stack(draws).to(device=W_E.device, dtype=W_E.dtype)


def noise_draw(noise: Noise, length: int, d_model: int, std: float) -> torch.Tensor:
    """One example's noise, [length, d_model] float64: N(0, (scale * std)^2) at its positions
    and 0 elsewhere (``std``: the std of the embedding matrix's entries).

    Drawn on the CPU from its own generator, the whole [length, d_model] block at once and
    then masked, so the value at a position does not depend on the other noised positions,
    the device, or which examples share a pass."""
    g = torch.Generator().manual_seed(noise_seed(noise.seed, noise.index))
    draw = torch.randn(length, d_model, generator=g, dtype=torch.float64)
    keep = torch.zeros(length, 1, dtype=torch.float64)
    keep[[p % length for p in noise.positions]] = 1.0
    return draw * keep * (noise.scale * std)


def rows_noise(b, conds: Sequence[Condition], e_lo: int, e_hi: int) -> torch.Tensor | None:
    """Noise for the stacked rows of ``conds`` on examples ``e_lo:e_hi``: the examples'
    draws for corrupt-based conditions, zeros for clean-based ones (None: no noise)."""
    if b.noise is None or all(c.base != "corrupt" for c in conds):
        return None
    part = b.noise[e_lo:e_hi]
    return torch.cat([part if c.base == "corrupt" else torch.zeros_like(part) for c in conds])


def _add(noise: torch.Tensor):
    """A hook adding ``noise`` (same shape as the activation) to it."""

    def fn(act: torch.Tensor, hook) -> torch.Tensor:
        return act + noise

    return fn
