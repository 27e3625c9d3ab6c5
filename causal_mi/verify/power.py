"""How many examples a claim needs: sample sizes from a pilot run (issue: power and n).

A claim's standard error shrinks like ``1 / sqrt(n)``. With a pilot estimate ``theta`` and
standard error ``se`` at ``n0`` examples, a one-sided test at level ``a`` decides a claim
``theta >= t`` in its favour with power ``1 - b`` once
``theta - t >= (z_(1-a) + z_(1-b)) * se * sqrt(n0 / n)``, so

    n = n0 * ((z_(1-a) + z_(1-b)) * se / (theta - t)) ** 2

and likewise for ``<=`` (``t - theta``) and for an equivalence claim (the distance to the
nearer edge of ``[c - d, c + d]``). The gap gate needs G's lower bound above
``margin x G``, i.e. ``(1 - margin) G >= z_(1-a) * se_G * sqrt(n0 / n)``. The pilot's own
numbers are estimates, so the sizes are planning figures, not guarantees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import ndtri

from causal_mi.verify.verdicts import ClaimVerdict, Verdict


@dataclass(frozen=True)
class ClaimPlan:
    text: str
    point: float
    se: float
    distance: float  # from the threshold, on the passing side (negative: the failing side)
    n_needed: int | None  # None: the pilot estimate is on the failing side (or at it)
    note: str


def _n(n0: int, z: float, se: float, distance: float) -> int | None:
    if not (distance > 0 and math.isfinite(se)):
        return None
    return max(2, math.ceil(n0 * (z * se / distance) ** 2))


def plan_claim(c: ClaimVerdict, n0: int, power: float) -> ClaimPlan:
    claim, e = c.claim.claim, c.estimate
    z = ndtri(1 - c.decision.alpha_used) + ndtri(power)
    if claim.op == ">=":
        distance = e.point - claim.threshold
    elif claim.op == "<=":
        distance = claim.threshold - e.point
    else:
        distance = min(e.point - claim.low, claim.high - e.point)
    n = _n(n0, z, e.se, distance)
    if n is None:
        note = (
            "the pilot estimate is on the failing side of the threshold: no number of examples "
            "makes this claim hold if the pilot is right"
        )
    else:
        note = f"{n} examples for {power:.0%} power at one-sided level {c.decision.alpha_used:.3g}"
    return ClaimPlan(claim.text, e.point, e.se, distance, n, note)


def plan(verdict: Verdict, n0: int, power: float = 0.8) -> tuple[int | None, list[ClaimPlan]]:
    """(examples the gap gate needs, or None when G <= 0; each claim's plan)."""
    g = verdict.gap
    z = ndtri(1 - g.alpha)
    gate = _n(n0, z, g.se, (1 - g.margin) * g.point) if g.point > 0 else None
    return gate, [plan_claim(c, n0, power) for c in verdict.claims]
