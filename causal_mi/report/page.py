"""The HTML report's content as plain data: every number formatted, every figure drawn.

``build(ctx)`` turns a :class:`ReportContext` into the mapping the jinja2 template renders;
the template only lays it out (no arithmetic in the page, no script that measures). Figures
are SVG strings (``markupsafe.Markup``) from :mod:`causal_mi.report.svg` and
:mod:`causal_mi.report.graph`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from markupsafe import Markup

from causal_mi.effects.quantities import quantity_label
from causal_mi.report import graph, svg
from causal_mi.report.context import ReportContext
from causal_mi.report.wording import PROPERTY_RUNS_HELP
from causal_mi.spec.sites import Kind, Site, format_site

#: attention heatmaps show at most this many (final) positions; the head view shows all
ATTENTION_POSITIONS = 40
#: attention values the head view may carry (about 5 bytes each in the page)
HEAD_VIEW_VALUES = 250_000


def _f(x: float | None, fmt: str = "{:+.3f}") -> str:
    return "n/a" if x is None or not math.isfinite(x) else fmt.format(x)


def _ci(e) -> dict[str, str]:
    return {"point": _f(e.point), "interval": f"[{_f(e.lower)}, {_f(e.upper)}]"}


def _claims(ctx: ReportContext) -> list[dict[str, Any]]:
    from causal_mi.report.statistics import claim_flags, estimate_cell

    rows = []
    for c in ctx.verdict.claims:
        rows.append(
            {
                "text": c.claim.claim.text,
                "estimate": estimate_cell(c),
                "bound": " / ".join(_f(b) for b in c.decision.bounds),
                "level": f"{1 - c.decision.alpha_used:.4g}",
                "rule": c.why or c.rule,
                "status": c.status,
                "passed": c.passed,
                "flag": claim_flags(c),
                "location": str(c.claim.location),
            }
        )
    return rows


def _forest(ctx: ReportContext) -> Markup:
    rows = [
        svg.ForestRow(
            c.claim.claim.text,
            c.estimate.point,
            c.estimate.lower,
            c.estimate.upper,
            c.claim.claim.op,
            c.claim.claim.threshold,
            c.passed,
            tolerance=getattr(c.claim.claim, "tolerance", 0.0),
            status=c.status,
        )
        for c in ctx.verdict.claims
    ]
    return Markup(svg.forest(rows)) if rows else Markup("")


def _rank(site: Site) -> tuple[float, int]:
    return site.order_key()


def _graph(ctx: ReportContext) -> tuple[Markup, list[dict[str, str]]]:
    """The hypothesis graph and its edges as table rows (every channel's number)."""
    v, m = ctx.verdict, ctx.measurement
    hyp = v.hypothesis
    names: dict[Site, str] = {}
    nodes: dict[str, graph.GraphNode] = {
        "embed": graph.GraphNode("embed", "embed", "input", -1),
        "logits": graph.GraphNode("logits", "logits", "output", 10**6),
    }
    ranks = sorted({_rank(s.component().without_pos()) for s in hyp.nodes.values()})
    for e in hyp.edges:
        for s in (e.sender, e.receiver):
            if s.kind not in (Kind.EMBED, Kind.LOGITS):
                ranks.append(_rank(s.component().without_pos()))
    ranks = sorted(set(ranks))

    def add(site: Site, title: str | None = None) -> str:
        comp = site.component().without_pos()
        if comp in names:
            return names[comp]
        node_id = title or format_site(comp)
        est = m.estimate("effect", site) or m.estimate("effect", comp)
        detail = format_site(site) + (f" · effect {est.point:+.2f}" if est else "")
        nodes[node_id] = graph.GraphNode(
            node_id, node_id, detail, ranks.index(_rank(comp)), est.point if est else None
        )
        names[comp] = node_id
        return node_id

    for name, site in hyp.nodes.items():
        add(site, name)
    merged: dict[tuple[str, str], list[tuple[str, Any, str]]] = {}
    for e in hyp.edges:
        a = "embed" if e.sender.kind is Kind.EMBED else add(e.sender)
        b = "logits" if e.receiver.kind is Kind.LOGITS else add(e.receiver)
        label = quantity_label("edge", (e.sender, e.receiver))
        channel = e.receiver.channel if e.receiver.kind is Kind.HEAD_INPUT else ""
        merged.setdefault((a, b), []).append((channel, m.estimates.get(label), label))
    edges, rows = [], []
    for (a, b), parts in merged.items():
        measured = [(ch, est) for ch, est, _ in parts if est is not None]
        channels = "".join(ch for ch, _, _ in parts)
        if measured:
            ch, top = max(measured, key=lambda x: abs(x[1].point))
            value = top.point
            label = (f"{channels} " if channels else "") + f"{value:+.2f}"
            if len(measured) > 1:  # one label: the channels and the strongest one's effect
                label = f"{channels} max {value:+.2f}"
        else:
            value, label = None, channels
        tip = f"{a} -> {b}: " + "; ".join(
            f"{lab}: {_f(est.point)} [{_f(est.lower)}, {_f(est.upper)}]" if est else lab
            for _, est, lab in parts
        )
        edges.append(
            graph.GraphEdge(
                a,
                b,
                label,
                None if value is None else abs(value),
                tip,
                negative=value is not None and value < 0,
            )
        )
        for _ch, est, lab in parts:
            rows.append(
                {
                    "edge": lab,
                    "point": _f(est.point) if est else "not measured",
                    "interval": f"[{_f(est.lower)}, {_f(est.upper)}]" if est else "",
                }
            )
    # every node of the file; embed and logits only where an edge touches them
    ends = {x for e in edges for x in (e.src, e.dst)}
    shown = [n for k, n in nodes.items() if k not in ("embed", "logits") or k in ends]
    if not shown:
        return Markup('<p class="note">The file declares no nodes and no edges.</p>'), rows
    return Markup(graph.draw(shown, edges)), rows


def _table(grid: np.ndarray, rows: list[str], cols: list[str], fmt: str) -> dict[str, Any]:
    return {
        "cols": cols,
        "rows": [
            (r, [fmt.format(x) if math.isfinite(x) else "n/a" for x in grid[i]])
            for i, r in enumerate(rows)
        ],
    }


def _heatmaps(ctx: ReportContext) -> list[dict[str, Any]]:
    vw = ctx.views
    n_layers, n_heads = vw.head_effect.shape
    layers = [f"L{i}" for i in range(n_layers)]
    heads = [f"H{j}" for j in range(n_heads)]
    n_all = vw.task_examples or len(ctx.task)
    same = "the claims' examples" if vw.head_examples == n_all else f"of the {n_all} examples"
    figs = [
        {
            "id": "heads",
            "title": f"effect of ablating each head ({ctx.verdict.hypothesis.spec.ablation} "
            f"ablation), fraction of G, n = {vw.head_examples} ({same})",
            "svg": svg.heatmap(
                vw.head_effect,
                layers,
                heads,
                title=f"effect of each head, n = {vw.head_examples}",
                row_axis="layer",
                col_axis="head",
                fig_id="hm-heads",
                cell=44,
            ),
            "table": _table(vw.head_effect, layers, heads, "{:+.3f}"),
        },
        {
            "id": "resid",
            "title": "restore(resid_pre) by layer x position: the clean residual stream patched "
            f"into the corrupt run at one layer and position, fraction of G, n = "
            f"{vw.resid_examples} (prompts of the most common length; positions labelled by "
            "the first prompt's tokens)",
            "svg": svg.heatmap(
                vw.resid_restore,
                layers,
                [f"{i}:{t}" for i, t in enumerate(vw.resid_tokens)],
                title=f"restore(resid_pre) by layer x position, n = {vw.resid_examples}",
                row_axis="layer",
                col_axis="position: token",
                fig_id="hm-resid",
                cell=24,
            ),
            "table": _table(
                vw.resid_restore,
                layers,
                [f"{i}:{t}" for i, t in enumerate(vw.resid_tokens)],
                "{:+.3f}",
            ),
        },
    ]
    toks = [f"{i}:{t}" for i, t in enumerate(vw.pattern_tokens)]
    first = max(0, len(toks) - ATTENTION_POSITIONS)
    toks = toks[first:]
    cropped = (
        f"; the last {len(toks)} of {len(vw.pattern_tokens)} positions (the head view shows "
        "them all)"
        if first
        else ""
    )
    for k, (name, full) in enumerate(vw.patterns.items()):
        pat = full[first:, first:]
        figs.append(
            {
                "id": f"attn-{k}",
                "title": f"attention of {name} on example 1 (clean prompt): row = query "
                f"position, column = key position, each full row sums to 1{cropped}",
                "svg": svg.heatmap(
                    pat,
                    toks,
                    toks,
                    title=f"attention of {name}, example 1",
                    row_axis="query",
                    col_axis="key",
                    scale_label="attention",
                    cell=16,
                    vmax=1.0,
                    sequential=True,
                    fmt="{:.2f}",
                    fig_id=f"hm-attn-{k}",
                ),
                "table": _table(pat, toks, toks, "{:.2f}"),
            }
        )
    for f in figs:
        f["svg"] = Markup(f["svg"])
    return figs


def _head_view(ctx: ReportContext) -> dict[str, Any] | None:
    """Data of the interactive head view: tokens and every head's attention (2 decimals)."""
    vw = ctx.views
    if vw is None or vw.all_patterns is None:
        return None
    hyp = ctx.verdict.hypothesis
    circuit = {}
    for name, s in hyp.nodes.items():
        if s.kind in (Kind.HEAD, Kind.HEAD_INPUT, Kind.PATTERN):
            circuit.setdefault(f"{s.layer},{s.head}", name)
    first = next(iter(circuit), "0,0").split(",")
    n_layers, n_heads, t, _ = vw.all_patterns.shape
    keep = head_view_heads(n_layers, n_heads, t, circuit)
    rounded = np.round(vw.all_patterns.astype(float), 2)
    return {
        "tokens": vw.pattern_tokens,
        "layers": int(n_layers),
        "heads": int(n_heads),
        "patterns": [
            [rounded[a, b].tolist() if (a, b) in keep else None for b in range(n_heads)]
            for a in range(n_layers)
        ],
        "circuit": circuit,
        "start": [int(first[0]), int(first[1])],
    }


def head_view_heads(
    n_layers: int, n_heads: int, length: int, circuit: dict[str, str]
) -> set[tuple[int, int]]:
    """The heads whose patterns the page carries: all of them while their values fit
    ``HEAD_VIEW_VALUES`` (the report stays well under 5 MB), otherwise the circuit's heads
    and then the rest in layer order up to the budget."""
    every = [(a, b) for a in range(n_layers) for b in range(n_heads)]
    per = length * length
    if len(every) * per <= HEAD_VIEW_VALUES:
        return set(every)
    first = [tuple(int(x) for x in key.split(",")) for key in circuit]
    order = first + [h for h in every if h not in first]
    return set(order[: max(1, HEAD_VIEW_VALUES // per)])


def _properties(ctx: ReportContext) -> list[dict[str, Any]]:
    n = len(ctx.task)
    out = []
    for p in ctx.properties:
        table = p.get("truth_table") or []
        cols = list(table[0]) if table else []
        parents = p.get("parents", [])
        rows = []
        for r in table:
            cells = []
            for c in cols:
                x = r[c]
                if c == "n":
                    cells.append(f"{x} of {n} ({100 * x / n:.0f}%)" if n else str(x))
                elif c in parents:
                    cells.append("on" if x else "off (ablated)")
                else:
                    cells.append("n/a" if x is None else f"{x:.2f}")
            rows.append({"cells": cells, "empty": r.get("n", 1) == 0})
        realised = sum(1 for r in table if r.get("n", 0) > 0)
        out.append(
            {
                "text": p.text,
                "status": p.status,
                "detail": p.detail,
                "cols": ["covered examples" if c == "n" else c for c in cols],
                "rows": rows,
                "coverage": (
                    f"{realised} of {len(table)} parent combinations realised on at least one "
                    "example"
                    if table
                    else ""
                ),
                "counterexample": p.get("counterexample"),
            }
        )
    return out


def _dowhy(ctx: ReportContext) -> dict[str, Any] | None:
    from causal_mi.effects.crosscheck import MEDIATOR_SUMMARY, NO_CLAIMS, TOLERANCE_RULE

    cc = ctx.dowhy
    if cc is None or (not cc.ran and cc.reason == NO_CLAIMS):
        return None
    if not cc.ran:
        return {"ran": False, "reason": cc.reason}
    rows = []
    for c in cc.checks:
        lo, hi = c.interventional_ci
        rows.append(
            {
                "label": c.label,
                "estimand": c.estimand,
                "dowhy": _f(c.dowhy),
                "interventional": f"{_f(c.interventional)} [{_f(lo)}, {_f(hi)}]",
                "difference": f"{c.difference:.3f}",
                "tolerance": f"{c.tolerance:.3f}",
                "refuters": [
                    f"{_f(r.new_effect)} (p {'n/a' if r.p_value is None else f'{r.p_value:.2f}'})"
                    for r in c.refutations
                ],
                "agrees": c.agrees,
            }
        )
    notes = [f"{c.label}: {c.note}" for c in cc.checks if c.note] + list(cc.notes)
    return {
        "ran": True,
        "mediator": MEDIATOR_SUMMARY,
        "tolerance": TOLERANCE_RULE,
        "rows": rows,
        "notes": notes,
    }


def build(ctx: ReportContext) -> dict[str, Any]:
    """Everything the template shows, formatted."""
    from causal_mi.pipeline import passed
    from causal_mi.properties.result import FAILING
    from causal_mi.report.statistics import claims_count, gap_line, interval_line, status_word

    v, m = ctx.verdict, ctx.measurement
    hyp, spec = v.hypothesis, v.hypothesis.spec
    props_ok = sum(p.status == "holds" for p in ctx.properties)
    failing = [c.claim.claim.text for c in v.claims if not c.passed and v.valid]
    failing += [f"property {p.text} ({p.status})" for p in ctx.properties if p.status in FAILING]
    graph_svg, edge_rows = _graph(ctx)
    p = ctx.provenance
    abls = list(next(iter(ctx.ablations.values()))) if ctx.ablations else []
    return {
        "name": spec.name,
        "description": spec.description or "",
        "passed": passed(ctx),
        # the file's status: claims and properties (status_word alone speaks of the claims)
        "status": "PASS" if passed(ctx) else ("FAIL" if v.valid else status_word(v)),
        "claims_count": claims_count(v),
        "gap": gap_line(m, v),
        "props_ok": props_ok,
        "props_total": len(ctx.properties),
        "failing": failing,
        "undecidable": not v.valid,
        "facts": [
            ("model", ctx.model_info.ref),
            ("task", f"{ctx.task.name}, n = {len(ctx.task)}, seed {spec.task.seed}"),
            ("metric", spec.metric),
            ("ablation", spec.ablation),
            ("m(clean)", f"{m.clean.mean():.4f}"),
            ("m(corrupt)", f"{m.corrupt.mean():.4f}"),
        ],
        "method": interval_line(m, v) + f" Correction: {v.correction}.",
        "forest": _forest(ctx),
        "claims": _claims(ctx),
        "graph": graph_svg,
        "edges": edge_rows,
        "quantities": [(label, _ci(e)) for label, e in sorted(m.estimates.items())],
        "ablation_names": abls,
        "ablations": [
            (
                text,
                [
                    ("holds" if r["passed"] else "fails", r["passed"], _f(r["point"]))
                    for r in by.values()
                ],
            )
            for text, by in ctx.ablations.items()
        ],
        "dowhy": _dowhy(ctx),
        "heatmaps": _heatmaps(ctx) if ctx.views is not None else [],
        "head_view": _head_view(ctx),
        "properties": _properties(ctx),
        "property_runs_help": PROPERTY_RUNS_HELP,
        "notes": m.notes + ctx.notes,
        "provenance": [
            (str(k), str(val))
            for k, val in [
                ("hypothesis", hyp.path),
                ("model", ctx.model_info.source),
                ("weights sha256", ctx.model_info.weights_sha256),
                ("seed", p["seed"]),
                ("started", p["started"]),
                ("seconds", p["seconds"]),
                ("python", p["python"]),
                *p["versions"].items(),
            ]
        ],
    }
