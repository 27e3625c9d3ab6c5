"""Extra measurements the HTML report draws: head and layer x position heatmaps, attention
patterns of circuit heads. Computed on a bounded number of examples so large models stay
affordable; the report says how many."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.spec.sites import Kind
from causal_mi.tasks.base import Task

HEAD_EXAMPLES = 64
RESID_EXAMPLES = 32


@dataclass(frozen=True)
class Views:
    head_effect: np.ndarray  # [layer, head]
    head_examples: int
    resid_restore: np.ndarray  # [layer, pos]
    resid_tokens: list[str]
    resid_examples: int
    patterns: dict[str, np.ndarray] = field(default_factory=dict)  # node -> [q, k]
    pattern_tokens: list[str] = field(default_factory=list)


def compute(
    hyp: ResolvedHypothesis, model: LoadedModel, task: Task, *, max_rows: int = 256
) -> Views:
    import torch

    from causal_mi.analysis.attention import patterns
    from causal_mi.effects.sweep import resid_sweep, sweep

    spec = hyp.spec
    sub = Task(task.name, task.examples[:HEAD_EXAMPLES])
    heads = sweep(
        model,
        sub,
        quantity="effect",
        metric_name=spec.metric,
        ablation=spec.ablation,
        n_boot=200,
        seed=spec.task.seed,
        max_rows=max_rows,
    )
    resid, tokens = resid_sweep(
        model, task, metric_name=spec.metric, max_examples=RESID_EXAMPLES, max_rows=max_rows
    )
    first = task.examples[0]
    pats = patterns(model, torch.tensor([first.clean], device=model.device))
    shown = {}
    for name, site in hyp.nodes.items():
        if site.kind in (Kind.HEAD, Kind.HEAD_INPUT):
            shown[f"{name} ({site.component()})"] = pats[site.layer][0, site.head].cpu().numpy()
    return Views(
        heads.grid,
        len(sub),
        resid,
        tokens,
        min(len(task), RESID_EXAMPLES),
        shown,
        model.tokens.show(list(first.clean)),
    )
