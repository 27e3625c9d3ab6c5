"""Extra measurements the HTML report draws (measured here, before rendering; the report
only renders them): the effect of every head, the layer x position
restore map, and the attention of every head on an example prompt (the head view).

The head map uses the claims' examples (all of them, up to ``HEAD_EXAMPLES``) so its cells
agree with the claims table; the layer x position map needs prompts of one length and uses
at most ``RESID_EXAMPLES`` of them. Each figure states the n it uses.

Both maps are declared into the verify's run plan (:func:`declare_runs`) and executed with
every other stage's runs: a head's cell and a claim on that head are one condition, run
once, so the map and the claims table show the same number. :func:`compute` then reads
them from the run cache (no forward pass of its own beyond the head view's one prompt,
which records attention and intervenes on nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.spec.sites import Kind, Site
from causal_mi.tasks.base import Task

HEAD_EXAMPLES = 512
RESID_EXAMPLES = 32
#: the head view carries every head's pattern when the model has at most this many heads
HEAD_VIEW_MAX_HEADS = 256


@dataclass(frozen=True)
class Views:
    head_effect: np.ndarray  # [layer, head], point estimates, fractions of G
    head_examples: int
    resid_restore: np.ndarray  # [layer, pos]
    resid_tokens: list[str]
    resid_examples: int
    patterns: dict[str, np.ndarray] = field(default_factory=dict)  # node -> [q, k]
    pattern_tokens: list[str] = field(default_factory=list)
    # the head view: every head's attention on the first clean prompt, [layer, head, q, k]
    all_patterns: np.ndarray | None = None
    task_examples: int = 0  # the examples the claims use


def _head_map(hyp: ResolvedHypothesis, model: LoadedModel):
    """The head map's quantities (the effect of every head under the file's ablation)."""
    from causal_mi.effects import quantities as Q

    d = model.dims
    sites = [Site(Kind.HEAD, la, h) for la in range(d.n_layers) for h in range(d.n_heads)]
    return [Q.effect(s, hyp.spec.ablation) for s in sites]


def declare_runs(hyp: ResolvedHypothesis, model: LoadedModel, task: Task, runs) -> None:
    """Declare the head map's and the layer x position map's runs into ``runs`` (a
    :class:`~causal_mi.engine.runplan.RunPlan`)."""
    from causal_mi.effects.sweep import resid_examples
    from causal_mi.engine.joins import sweep_conditions

    n = len(task)
    heads = None if n <= HEAD_EXAMPLES else range(HEAD_EXAMPLES)
    if hyp.spec.ablation == "resample":  # one patch per head from the paired run
        length = task.examples[0].length  # (a head's patch covers every position)
        conds = sweep_conditions("head_out", model, length, "ablate")[0]
        runs.declare(
            "views: head map", conds, examples=heads, family="head_out", direction="ablate"
        )
    else:
        conds = [c for q in _head_map(hyp, model) for c in q.conditions.values()]
        runs.declare("views: head map", conds, examples=heads)
    chosen = resid_examples(task, RESID_EXAMPLES)
    if chosen:
        length = task.examples[chosen[0]].length
        conds = sweep_conditions("resid_pre", model, length, "restore")[0]
        runs.declare(
            "views: layer x position map",
            conds,
            examples=chosen,
            family="resid_pre",
            direction="restore",
        )


def compute(
    hyp: ResolvedHypothesis,
    model: LoadedModel,
    task: Task,
    *,
    max_rows: int = 256,
    engine=None,
) -> Views:
    """The views; ``engine``: the verify's engine, whose run cache holds the maps' runs
    (:func:`declare_runs`); without it they are measured here."""
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
        engine=engine,
    )
    resid, tokens = resid_sweep(
        model,
        task,
        metric_name=spec.metric,
        max_examples=RESID_EXAMPLES,
        max_rows=max_rows,
        engine=engine,
    )
    first = task.examples[0]
    pats = patterns(model, torch.tensor([first.clean], device=model.device))
    shown = {}
    for name, site in hyp.nodes.items():
        if site.kind in (Kind.HEAD, Kind.HEAD_INPUT, Kind.PATTERN):
            shown[f"{name} ({site.component()})"] = (
                pats[site.layer][0, site.head].float().cpu().numpy()
            )
    every = None
    if model.dims.n_layers * model.dims.n_heads <= HEAD_VIEW_MAX_HEADS:
        every = np.stack(
            [pats[layer][0].float().cpu().numpy() for layer in range(model.dims.n_layers)]
        )
    lengths = [e.length for e in task.examples]
    common = max(set(lengths), key=lengths.count)
    return Views(
        heads.grid,
        len(sub),
        resid,
        tokens,
        min(sum(n == common for n in lengths), RESID_EXAMPLES),
        shown,
        model.tokens.show(list(first.clean)),
        every,
        len(task),
    )
