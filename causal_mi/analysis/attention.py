"""Attention-pattern scores that name head roles: previous-token and induction heads.

Scores are read from the clean prompts of a task with the bridge's ``hook_pattern``
([batch, head, query, key]).
"""

from __future__ import annotations

import numpy as np
import torch

from causal_mi.models.adapter import layer_hook
from causal_mi.models.loading import LoadedModel
from causal_mi.tasks.base import Task


def patterns(model: LoadedModel, tokens: torch.Tensor) -> dict[int, torch.Tensor]:
    """Attention pattern of every layer on ``tokens``: {layer: [batch, head, q, k]}."""
    out: dict[int, torch.Tensor] = {}
    hooks = []
    for layer in range(model.dims.n_layers):

        def grab(act, hook, layer=layer):
            out[layer] = act.detach().clone()

        hooks.append((layer_hook(layer, "pattern"), grab))
    with torch.no_grad(), model.bridge.hooks(fwd_hooks=hooks):
        model.bridge(tokens)
    return out


def role_scores(model: LoadedModel, task: Task) -> dict[str, np.ndarray]:
    """``prev_token[layer, head]``: mean attention from position i to i - 1;
    ``induction[layer, head]``: mean attention from a repeated token to the token right after
    its earlier occurrence. Computed on clean prompts of the most common length."""
    lengths = [e.length for e in task.examples]
    length = max(set(lengths), key=lengths.count)
    exs = [e for e in task.examples if e.length == length]
    tokens = torch.tensor([e.clean for e in exs], device=model.device)
    pats = patterns(model, tokens)
    n_l, n_h = model.dims.n_layers, model.dims.n_heads
    prev = np.zeros((n_l, n_h))
    ind = np.zeros((n_l, n_h))
    # (query, key) pairs for induction: token at q occurred earlier at j < q - 1 -> key j + 1
    pairs = []
    for b, e in enumerate(exs):
        first: dict[int, int] = {}
        for q, t in enumerate(e.clean):
            if t in first and first[t] + 1 < q:
                pairs.append((b, q, first[t] + 1))
            first.setdefault(t, q)
    for layer, p in pats.items():
        p = p.double().cpu()
        idx = torch.arange(1, length)
        prev[layer] = p[:, :, idx, idx - 1].mean(dim=(0, 2)).numpy()
        if pairs:
            bb, qq, kk = (torch.tensor(x) for x in zip(*pairs, strict=True))
            ind[layer] = p[bb, :, qq, kk].mean(dim=0).numpy()
    return {"prev_token": prev, "induction": ind}
