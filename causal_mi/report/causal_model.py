"""The graph-as-causal-model section of results.json and report.md (causal_mi.graph):
node variables, implications with the absent edge each contradiction names, the SCM's
abstraction-accuracy table, and the mediation decompositions."""

from __future__ import annotations

import math
from typing import Any

from causal_mi.report.context import ReportContext


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _est(e) -> dict[str, Any]:
    return {"point": _num(e.point), "lower": _num(e.lower), "upper": _num(e.upper)}


def to_json(ctx: ReportContext) -> dict[str, Any]:
    """``{"ran": false, "reason": ...}`` or the whole analysis: ``vertices``, ``edges``,
    ``separation`` (held-out clean - corrupt mean of each node variable), ``implications``
    (``kind``, ``text``, ``absent_edge``, ``given``, ``statistic``, ``p_value``,
    ``p_holm``, ``status``, ``note``), ``abstraction`` (``predictions``: predicted and
    measured fractions of G, ``error``, ``tolerance``, ``within``, ``subset_predicted``;
    ``mechanisms``, ``r2``), ``decompositions`` (four-way terms with intervals and the
    identity error), ``paths`` (path-specific effects), ``seconds``, ``conditions``."""
    r = getattr(ctx, "causal_model", None)
    if r is None:
        return {"ran": False, "reason": "not requested"}
    if not r.ran:
        return {"ran": False, "reason": r.reason}
    imp, ab = r.implications, r.abstraction
    from causal_mi.graph import implications as I
    from causal_mi.graph import scm as S

    out: dict[str, Any] = {
        "ran": True,
        "vertices": list(r.graph.names),
        "edges": [f"{u} -> {v}" for u, v in r.graph.edges],
        "separation": {k: _num(v) for k, v in r.separation.items()},
        "implications": {
            "hold": imp.hold,
            "correction": imp.correction,
            "alpha": imp.alpha,
            "min_partial_r2": I.MIN_SHARE,
            "null_margin": I.NULL_MARGIN,
            "items": [
                {
                    "kind": i.kind,
                    "text": i.text,
                    "absent_edge": i.edge,
                    "given": list(i.given),
                    "statistic": _num(i.statistic),
                    "p_value": _num(i.p_value),
                    "p_holm": _num(i.p_adjusted),
                    "status": i.status,
                    "note": i.note,
                }
                for i in imp.items
            ],
        },
        "abstraction": None,
        "decompositions": [
            {
                "treatment": d.treatment,
                "mediators": list(d.mediators),
                "total": _est(d.total),
                "terms": {k: _est(v) for k, v in d.terms.items()},
                "pnde": _est(d.pnde),
                "tnie": _est(d.tnie),
                "identity_error": d.identity_error,
                "identity_holds": d.identity_holds,
            }
            for d in r.decompositions
        ],
        "paths": [{"chain": list(p.chain), **_est(p.estimate)} for p in r.paths],
        "seconds": r.seconds,
        "conditions": r.conditions,
        "notes": list(r.notes),
    }
    if ab is not None:
        out["abstraction"] = {
            "tolerance_rule": S.TOLERANCE_RULE,
            "rows": ab.rows,
            "mechanisms": ab.mechanisms,
            "r2": {k: _num(v) for k, v in ab.r2.items()},
            "poorly_predicted": list(ab.poorly_predicted),
            "predictions": [
                {
                    "quantity": p.label,
                    "kind": p.kind,
                    "predicted": _num(p.predicted),
                    "measured": _num(p.measured),
                    "measured_lower": _num(p.measured_ci[0]),
                    "measured_upper": _num(p.measured_ci[1]),
                    "error": _num(p.error),
                    "tolerance": _num(p.tolerance),
                    "within": p.within,
                    "subset_predicted": _num(p.subset_predicted),
                    "variables_informative": p.informative,
                }
                for p in ab.predictions
            ],
        }
    return out


def _f(x: float) -> str:
    return "n/a" if x != x else f"{x:+.3f}"


def _bar(d) -> str:
    """The decomposition as a text stacked bar: one character per 0.05 of G per term
    (``-`` for a negative term)."""
    marks = {"CDE": "D", "INTref": "r", "INTmed": "m", "PIE": "I"}
    return "".join(
        (marks[k] if v.point >= 0 else "-") * int(round(abs(v.point) / 0.05))
        for k, v in d.terms.items()
    )


def to_markdown(ctx: ReportContext) -> list[str]:
    """report.md lines (empty when the analysis did not run)."""
    r = getattr(ctx, "causal_model", None)
    if r is None or not r.ran:
        return []
    lines = ["", "## The graph as a causal model", ""]
    graph = r.graph
    lines.append(
        "Node variables (each node's activation projected on its held-out clean-corrupt "
        "direction; separation on the evaluation half, 1 = as on the fit half): "
        + ", ".join(f"{n} {r.separation.get(n, 0):.2f}" for n in graph.components)
    )
    imp = r.implications
    lines += [
        "",
        f"**Implications**: {'hold' if imp.hold else 'CONTRADICTED'} "
        f"({imp.tested} tested of {len(imp.items)}, Holm at {imp.alpha:g})",
        "",
        "| implication | absent edge | statistic | p (Holm) | status |",
        "|---|---|---|---|---|",
    ]
    for i in imp.items:
        status = "**contradicted**" if i.status == "contradicted" else i.status
        lines.append(
            f"| `{i.text.replace('|', '/')}` | `{i.edge}` | {_f(i.statistic)} "
            f"| {_f(i.p_adjusted)} | {status} |"
        )
    ab = r.abstraction
    if ab is not None:
        lines += [
            "",
            "**Abstraction accuracy** (SCM fitted with DoWhy gcm on the observational runs; "
            "fractions of G)",
            "",
            "| quantity | SCM | measured | error | tolerance | refit on 80% |",
            "|---|---|---|---|---|---|",
        ]
        for p in ab.predictions:
            err = _f(p.error) if p.within else f"**{_f(p.error)}**"
            if not p.informative:
                err += " (a node variable does not separate clean from corrupt)"
            lines.append(
                f"| `{p.label}` | {_f(p.predicted)} | {_f(p.measured)} | {err} | "
                f"{p.tolerance:.3f} | {_f(p.subset_predicted)} |"
            )
    if r.decompositions:
        lines += [
            "",
            "**Mediation decomposition** (four-way; TE = CDE + INTref + INTmed + PIE; bar: "
            "D = CDE, r = INTref, m = INTmed, I = PIE, - a negative term; one mark per 0.05 of G)",
            "",
            "| treatment | mediators | TE | CDE | INTref | INTmed | PIE | identity | bar |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for d in r.decompositions:
            t = d.terms
            lines.append(
                f"| {d.treatment} | {', '.join(d.mediators)} | {_f(d.total.point)} | "
                + " | ".join(
                    f"{_f(t[k].point)} [{_f(t[k].lower)}, {_f(t[k].upper)}]"
                    for k in ("CDE", "INTref", "INTmed", "PIE")
                )
                + f" | {'exact' if d.identity_holds else 'FAILS'} ({d.identity_error:.1e}) "
                f"| `{_bar(d)}` |"
            )
    if r.paths:
        lines += ["", "Path-specific effects along the declared chains:", ""]
        lines += [
            f"- `{' -> '.join(p.chain)}`: {_f(p.estimate.point)} "
            f"[{_f(p.estimate.lower)}, {_f(p.estimate.upper)}]"
            for p in r.paths
        ]
    return lines
