"""Does a verdict depend on what "off" means? Re-decide every claim under each ablation.

A claim that holds with resample ablation but fails with mean ablation is a finding, not a
detail: the report names such claims instead of silently choosing one ablation (the file's
``ablation`` stays the one that decides the exit code).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from causal_mi.spec.schema import ABLATIONS


def declare_runs(hyp: Any, model: Any, runs: Any) -> None:
    """Declare the measurements :func:`ablation_check` reads (each other ablation's claims)."""
    from causal_mi.effects.measure import declare_runs as declare_measure

    for ablation in ABLATIONS:
        if ablation != hyp.spec.ablation:
            alt = dataclasses.replace(hyp, spec=hyp.spec.model_copy(update={"ablation": ablation}))
            declare_measure(alt, model, runs, stage=f"ablation check ({ablation})")


def ablation_check(
    hyp: Any, model: Any, task: Any, verdict: Any, *, max_rows: int = 256, cache: Any = None
) -> tuple[dict[str, dict[str, dict[str, float | bool]]], list[str]]:
    """Per claim and ablation: estimate, interval and decision; plus one note per claim whose
    verdict differs between ablations."""
    from causal_mi.effects.measure import measure
    from causal_mi.verify.verdicts import decide_claims

    table: dict[str, dict[str, dict[str, float | bool]]] = {}

    def record(ablation: str, v: Any) -> None:
        for c in v.claims:
            e = c.estimate
            table.setdefault(c.claim.claim.text, {})[ablation] = {
                "passed": c.passed,
                "point": e.point,
                "lower": e.lower,
                "upper": e.upper,
            }

    record(hyp.spec.ablation, verdict)
    for ablation in ABLATIONS:
        if ablation == hyp.spec.ablation:
            continue
        alt = dataclasses.replace(hyp, spec=hyp.spec.model_copy(update={"ablation": ablation}))
        record(
            ablation, decide_claims(alt, measure(alt, model, task, max_rows=max_rows, cache=cache))
        )
    notes = []
    for text, by in table.items():
        if len({r["passed"] for r in by.values()}) > 1:
            parts = ", ".join(
                f"{'holds' if r['passed'] else 'fails'} under {a} "
                f"({r['point']:+.3f} [{r['lower']:+.3f}, {r['upper']:+.3f}])"
                for a, r in by.items()
            )
            notes.append(
                f"the verdict of '{text}' depends on the ablation: {parts}; the exit "
                f"code uses the file's ablation ({hyp.spec.ablation})"
            )
    return table, notes
