"""Multiple-comparison correction for many-claim files (Holm by default, SPEC 3).

Each claim is a one-sided test decided on a bootstrap bound. Holm's step-down procedure
orders claims by their bootstrap p-value and tests the claim of rank r (0-based, of k) at
level alpha / (k - r); once one claim fails, every later-ranked claim fails too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.stats.bootstrap import Estimate


@dataclass(frozen=True)
class Decision:
    passed: bool
    bound: float  # the decision bound actually used
    alpha: float  # the (two-sided) level it was computed at
    p_value: float


def p_value(est: Estimate, op: str, threshold: float) -> float:
    """Bootstrap p-value consistent with the interval rule: ``bound(op, alpha) clears t``
    exactly when ``p <= alpha`` (up to quantile interpolation)."""
    s = est.samples
    if np.isnan(est.point):
        return 1.0
    frac = np.mean(s < threshold) if op == ">=" else np.mean(s > threshold)
    return float(min(1.0, 2 * frac))


def _clears(bound: float, op: str, threshold: float) -> bool:
    if np.isnan(bound):
        return False
    return bound >= threshold if op == ">=" else bound <= threshold


def decide(
    items: list[tuple[Estimate, str, float]], alpha: float, method: str = "holm"
) -> list[Decision]:
    """Decide every claim ``(estimate, op, threshold)`` at family-wise level ``alpha``."""
    k = len(items)
    ps = [p_value(e, op, t) for e, op, t in items]
    out: list[Decision | None] = [None] * k
    if method == "holm":
        order = sorted(range(k), key=lambda i: (ps[i], i))
        still = True
        for rank, i in enumerate(order):
            est, op, t = items[i]
            a = alpha / (k - rank)
            b = est.bound(op, a)
            ok = still and _clears(b, op, t)
            still = ok
            out[i] = Decision(ok, b, a, ps[i])
    else:
        a = alpha / k if method == "bonferroni" and k else alpha
        for i, (est, op, t) in enumerate(items):
            b = est.bound(op, a)
            out[i] = Decision(_clears(b, op, t), b, a, ps[i])
    return [d for d in out if d is not None]
