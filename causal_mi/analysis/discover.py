"""Propose a hypothesis file from a model and a task, using the project's own measurements.

1. Sweep the effect of every head (and MLP) and keep the components whose interval lower
   bound clears ``min_effect``.
2. Name heads by role from their attention patterns (previous-token, induction).
3. For every pair of kept heads in different layers, measure the natural indirect effect
   through the receiver's q, k and v inputs, and declare the inputs that carry it.
4. Measure the proposed circuit and write claims a margin inside the measured intervals.

Each phase is announced through ``say`` (and forward passes through ``progress``). The
intermediate hypothesis files live in a temporary directory outside the user's, removed on
every exit (Ctrl-C included); an interrupted discovery keeps nothing and starts again. With no
component clearing ``min_effect`` it raises :class:`NothingToPropose` (exit 1), naming the
strongest components it measured.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from causal_mi.analysis.attention import role_scores
from causal_mi.effects.sweep import sweep
from causal_mi.engine.runner import Progress
from causal_mi.errors import EXIT_FAILED, CausalMIError
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.sites import Kind, Site
from causal_mi.tasks.base import Task


@dataclass(frozen=True)
class Proposal:
    yaml: str
    nodes: dict[str, Site]
    log: list[str]


def _down(x: float, step: float = 0.05) -> float:
    return math.floor(x / step) * step


def _up(x: float, step: float = 0.05) -> float:
    return math.ceil(x / step) * step


def _header(name: str, model_ref: str, task_yaml: str, metric: str, ablation: str) -> str:
    return (
        f"version: 1\nname: {name}\nmodel: {model_ref}\n{task_yaml}"
        f"metric: {metric}\nablation: {ablation}\n"
    )


class NothingToPropose(CausalMIError):
    """No component's effect interval clears ``min_effect``: there is no circuit to write."""

    exit_code = EXIT_FAILED


def _nothing(seen: list, min_effect: float) -> NothingToPropose:
    top = sorted(seen, key=lambda x: -abs(x[1].point))[:5]
    listed = "; ".join(f"{s} {e.point:+.3f} [{e.lower:+.3f}, {e.upper:+.3f}]" for s, e in top)
    return NothingToPropose(
        f"nothing to propose: no component's effect interval clears --min-effect {min_effect:g}"
        f" (lower bound >= {min_effect:g}). Strongest components measured: {listed}. Lower "
        "--min-effect, or check that the task separates clean from corrupt (G); no file was "
        "written"
    )


def _measure(text: str, work: Path, model_device: str, progress: Progress | None):
    """The measurement of an intermediate hypothesis, written into ``work`` (a temporary
    directory). No DoWhy cross-check: only the numbers are read."""
    from causal_mi import pipeline

    path = work / "proposal.yaml"
    path.write_text(text)
    prep = pipeline.prepare(path, device=model_device)
    return pipeline.evaluate(prep, progress=progress, dowhy=False).measurement


def propose(
    model: LoadedModel,
    task: Task,
    *,
    name: str,
    task_yaml: str,
    metric: str = "logit_diff",
    ablation: str = "resample",
    min_effect: float = 0.1,
    say: Callable[[str], None] = lambda _msg: None,
    progress: Progress | None = None,
) -> Proposal:
    """Measure and write a hypothesis for ``model`` on ``task`` (``task_yaml`` is the
    ``task:`` block to put in the file, indented YAML ending in a newline). ``say`` receives
    one line per phase; ``progress`` the forward passes of each phase."""
    work = Path(tempfile.mkdtemp(prefix="causal-mi-discover-"))
    try:
        return _propose(
            model, task, name, task_yaml, metric, ablation, min_effect, say, progress, work
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _propose(
    model, task, name, task_yaml, metric, ablation, min_effect, say, progress, work
) -> Proposal:
    log: list[str] = []
    d = model.dims
    phases = 4 if d.attn_only else 5
    step = iter(range(1, phases + 1))
    say(
        f"[{next(step)}/{phases}] effect of each of {d.n_layers * d.n_heads} heads on {len(task)}"
        " examples"
    )
    heads = sweep(
        model, task, quantity="effect", metric_name=metric, ablation=ablation, progress=progress
    )
    seen = list(heads.ranked())
    kept = [(s, e) for s, e in seen if e.lower >= min_effect]
    if not d.attn_only:
        say(f"[{next(step)}/{phases}] effect of each of {d.n_layers} MLPs")
        mlps = sweep(
            model,
            task,
            quantity="effect",
            kind="mlp",
            metric_name=metric,
            ablation=ablation,
            progress=progress,
        )
        seen += list(mlps.ranked())
        kept += [(s, e) for s, e in mlps.ranked() if e.lower >= min_effect]
    if not kept:
        raise _nothing(seen, min_effect)
    for s, e in kept:
        log.append(f"keep {s}: effect {e.point:+.3f} [{e.lower:+.3f}, {e.upper:+.3f}]")
    say(f"[{next(step)}/{phases}] attention roles of the {len(kept)} kept components")
    roles = role_scores(model, task)
    nodes: dict[str, Site] = {}
    for s, _ in sorted(kept, key=lambda x: x[0].order_key()):
        label = f"{'h' if s.kind is Kind.HEAD else 'mlp'}{s.layer}{s.head if s.head >= 0 else ''}"
        if s.kind is Kind.HEAD:
            prev, ind = roles["prev_token"][s.layer, s.head], roles["induction"][s.layer, s.head]
            if prev >= 0.5 and prev >= ind:
                label = "prev"
            elif ind >= 0.5:
                label = "ind"
            log.append(f"{s}: previous-token score {prev:.2f}, induction score {ind:.2f}")
        while label in nodes:
            label += "_"
        nodes[label] = s
    head = _header(name, model.ref, task_yaml, metric, ablation)
    node_yaml = "nodes:\n" + "".join(f"  {k}: {s}\n" for k, s in nodes.items())
    # Which inputs of later heads carry the earlier heads' effect?
    probes = [
        (a, b, c)
        for a in nodes
        for b in nodes
        for c in "qkv"
        if nodes[b].kind is Kind.HEAD and nodes[a].layer < nodes[b].layer
    ]
    claims = [f"indirect({a} -> {b}.{c} -> logits) >= -1000" for a, b, c in probes]
    claims += ["faithfulness >= -1000"] + [f"effect({k}) >= -1000" for k in nodes]
    others = [s for s, e in heads.ranked() if s not in nodes.values()]
    if others:
        claims.append(f"effect({others[0]}) >= -1000")
    say(f"[{next(step)}/{phases}] {len(probes)} indirect effects through q, k and v")
    m = _measure(
        head + node_yaml + "claims:\n" + "".join(f"  - {c}\n" for c in claims),
        work,
        model.device,
        progress,
    )
    edges = []
    for a, b, c in probes:
        e = _indirect(m, nodes[a], nodes[b], c)
        log.append(
            f"indirect({a} -> {b}.{c} -> logits) {e.point:+.3f} [{e.lower:+.3f}, {e.upper:+.3f}]"
        )
        if e.lower >= min_effect:
            edges.append(f"{a} -> {b}.{c}")
    # Edge-level faithfulness ablates every undeclared edge, so declare what the nodes need
    # besides the compositions found above: their inputs from embed, every earlier node into
    # an MLP node, and every node's direct path to the logits. Then measure that file.
    for k, site in nodes.items():
        edges.append(f"embed -> {k}")
        if site.kind is Kind.MLP:
            edges += [f"{a} -> {k}" for a, sa in nodes.items() if sa.order_key() < site.order_key()]
        edges.append(f"{k} -> logits")
    edge_yaml = "edges:\n" + "".join(f"  - {x}\n" for x in edges)
    say(f"[{next(step)}/{phases}] the proposed circuit ({len(nodes)} nodes, {len(edges)} edges)")
    m = _measure(
        head + node_yaml + edge_yaml + "claims:\n" + "".join(f"  - {c}\n" for c in claims),
        work,
        model.device,
        progress,
    )
    final = []
    f = m.estimates["faithfulness"]
    final.append(f"faithfulness >= {_down(f.lower - 0.05):.2f}")
    for k, s in nodes.items():
        e = m.estimate("effect", s)
        final.append(f"effect({k}) >= {_down(e.lower / 2):.2f}")
    for edge in edges:
        if "." in edge.split("->")[1]:
            a, rcv = (x.strip() for x in edge.split("->"))
            b, c = rcv.split(".")
            e = _indirect(m, nodes[a], nodes[b], c)
            final.append(f"indirect({a} -> {rcv} -> logits) >= {_down(e.lower / 2):.2f}")
    if others:
        e = m.estimate("effect", others[0])
        final.append(f"effect({others[0]}) <= {max(0.05, _up(e.upper + 0.05)):.2f}")
    text = (
        head.replace(
            f"name: {name}\n",
            f"name: {name}\ndescription: proposed by causal-mi discover from measured effects\n",
        )
        + node_yaml
        + edge_yaml
        + "claims:\n"
        + "".join(f"  - {c}\n" for c in final)
    )
    return Proposal(text, nodes, log)


def _indirect(m, sender: Site, head: Site, channel: str):
    """The measured indirect(sender -> head.channel -> logits)."""
    receiver = Site(Kind.HEAD_INPUT, head.layer, head.head, channel=channel)
    return m.estimate("indirect", sender, receiver, Site(Kind.LOGITS))
