"""``results.json``: every number, per-example values included, under a versioned schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from causal_mi.errors import InputError, Location, Problem
from causal_mi.report import causal_model
from causal_mi.report.context import ReportContext

SCHEMA = "causal-mi/results/v2"


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 10)


def to_dict(ctx: ReportContext) -> dict[str, Any]:
    v, m, hyp = ctx.verdict, ctx.measurement, ctx.verdict.hypothesis
    spec = hyp.spec
    return {
        "schema": SCHEMA,
        "hypothesis": {
            "file": str(hyp.path),
            "name": spec.name,
            "description": spec.description,
            "nodes": {k: str(s) for k, s in hyp.nodes.items()},
            "edges": [str(e) for e in hyp.edges],
        },
        "model": ctx.model_info.to_dict(),
        "task": {
            "name": ctx.task.name,
            "n": len(ctx.task),
            "seed": spec.task.seed,
            "generator": spec.task.generator,
            "file": spec.task.file,
            "examples": [e.source for e in ctx.task.examples],
        },
        "settings": {
            "metric": spec.metric,
            "ablation": spec.ablation,
            "confidence": spec.confidence,
            "correction": v.correction,
            "bootstrap": spec.bootstrap,
            "bootstrap_replicates": m.n_boot,
            "bootstrap_seed": m.bootstrap_seed,
            "interval": m.interval,
            "claim_level": v.alpha,
            "levels": v.levels,
            "gap_margin": spec.gap_margin,
        },
        "baseline": {
            "clean_mean": _num(m.clean.mean()),
            "corrupt_mean": _num(m.corrupt.mean()),
            "G": _num(m.gap),
            "G_interval": [_num(m.gap_estimate.lower), _num(m.gap_estimate.upper)],
            "G_se": _num(m.gap_estimate.se),
            "gap_gate": {
                "decidable": v.gap.decidable,
                "lower_bound": _num(v.gap.bound),
                "level": v.gap.alpha,
                "margin": v.gap.margin,
                "rule": "decidable when the one-sided lower bound of G at the claims' level "
                "is >= margin x G",
                "reason": v.gap.reason,
            },
            "clean": [_num(x) for x in m.clean],
            "corrupt": [_num(x) for x in m.corrupt],
        },
        "quantities": {
            label: {
                "point": _num(e.point),
                "lower": _num(e.lower),
                "upper": _num(e.upper),
                "confidence": e.confidence,
                "se": _num(e.se),
                "interval_method": e.method,
                "undefined_replicates": e.undefined,
                "undefined_reason": e.why,
                "mean_ablation_mean": e.mean_source or None,
                "per_example": [_num(x) for x in e.per_example],
            }
            for label, e in m.estimates.items()
        },
        "claims": [
            {
                "text": c.claim.claim.text,
                "quantity": c.estimate.label,
                "op": c.claim.claim.op,
                "threshold": c.claim.claim.threshold,
                "tolerance": c.claim.claim.tolerance,
                "point": _num(c.estimate.point),
                "lower": _num(c.estimate.lower),
                "upper": _num(c.estimate.upper),
                "status": c.status,
                "why": c.why,
                "decision_bound": _num(c.decision.bound),
                "decision_bounds": [_num(b) for b in c.decision.bounds],
                "decision_level": c.decision.alpha_used,
                "decision_bound_mc_error": _num(c.decision.mc_error),
                "near_threshold": c.near_threshold,
                "detectable_margin": _num(c.detectable_margin),
                "p_value": _num(c.decision.p_value),
                "p_adjusted": _num(c.decision.p_adjusted),
                "holds_alone": c.decision.passed_alone and c.decidable,
                "passed": c.passed,
                "rule": c.rule,
                "location": str(c.claim.location),
            }
            for c in v.claims
        ],
        "properties": [p.to_dict() for p in ctx.properties],
        "ablation_check": ctx.ablations,
        "dowhy": dowhy_section(ctx),
        "causal_model": causal_model.to_json(ctx),
        "notes": m.notes + ctx.notes,
        "runs": ctx.runs,  # the run plan: digest, distinct conditions, phases, stages
        # the file's verdict, as verify's exit code: every claim holds and no property fails
        "verdict": v.status if not v.valid else ("pass" if ctx.passed else "fail"),
        "verdict_reason": v.gap.reason,
        "passed": ctx.passed,
        "claims_passed": v.passed,
        "provenance": ctx.provenance,
    }


def dowhy_section(ctx: ReportContext) -> dict[str, Any]:
    """The DoWhy cross-check (SPEC 3), every number a fraction of G.

    ``{"ran": false, "reason": ...}`` when it did not run. Otherwise ``mediator_summary``
    (what the scalar mediator column M is), ``tolerance_rule``, ``refuter_simulations``,
    ``subset_fraction``, ``seed``, ``disagreements`` (labels beyond tolerance), ``notes`` and
    ``quantities``, one per indirect / direct / total claim: ``quantity`` (its label in
    ``quantities``), ``kind``, ``estimand`` (NIE / NDE / ATE), ``method`` (DoWhy's
    estimator), ``treatment``, ``mediators``, ``dowhy`` (DoWhy's estimate),
    ``interventional`` with ``interventional_lower`` / ``interventional_upper`` (causal-mi's
    estimate and interval), ``abs_difference``, ``tolerance``, ``agrees``, ``rows`` (data
    frame rows: two per example), ``note`` (e.g. several mediators entering as one scalar)
    and ``refuters``: ``name``, ``new_effect``, ``p_value`` (DoWhy's test), ``passed``
    (p > 0.05; null when untestable). A disagreement never changes ``passed`` above."""
    cc = ctx.dowhy
    if cc is None:
        return {"ran": False, "reason": "not requested"}
    if not cc.ran:
        return {"ran": False, "reason": cc.reason}
    from causal_mi.effects import crosscheck as X

    return {
        "ran": True,
        "mediator_summary": X.MEDIATOR_SUMMARY,
        "tolerance_rule": X.TOLERANCE_RULE,
        "refuter_simulations": cc.simulations,
        "subset_fraction": X.SUBSET_FRACTION,
        "seed": cc.seed,
        "quantities": [
            {
                "quantity": c.label,
                "kind": c.kind,
                "estimand": c.estimand,
                "method": c.method,
                "treatment": c.treatment,
                "mediators": list(c.mediators),
                "dowhy": _num(c.dowhy),
                "interventional": _num(c.interventional),
                "interventional_lower": _num(c.interventional_ci[0]),
                "interventional_upper": _num(c.interventional_ci[1]),
                "abs_difference": _num(c.difference),
                "tolerance": _num(c.tolerance),
                "agrees": c.agrees,
                "rows": c.rows,
                "note": c.note,
                "refuters": [
                    {
                        "name": r.name,
                        "new_effect": _num(r.new_effect),
                        "p_value": _num(r.p_value),
                        "passed": r.passed,
                    }
                    for r in c.refutations
                ],
            }
            for c in cc.checks
        ],
        "disagreements": cc.disagreements,
        "notes": list(cc.notes),
    }


def write(ctx: ReportContext, path: Path) -> None:
    path.write_text(json.dumps(to_dict(ctx), indent=1) + "\n")


def read(path: Path) -> dict[str, Any]:
    """A results.json that ``run`` or ``verify`` wrote (or a folder holding one), any schema
    version of the family; :class:`InputError` (exit 2) naming the file otherwise. Read by
    ``diff`` and ``export``, so both work on saved runs without measuring again."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    where = Location(str(path))
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            [
                Problem(
                    where,
                    "no such file; give a results.json that run or verify wrote (or its folder)",
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([Problem(where, f"not a results.json: {exc}")]) from None
    family = SCHEMA.rsplit("/", 1)[0] + "/"  # any version: claims, quantities, properties
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith(family):
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise InputError(
            [Problem(where, f"schema is {got!r}; expected {family}v1 or later ({SCHEMA!r})")]
        )
    return data
