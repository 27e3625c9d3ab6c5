"""Per-claim decisions under a multiple-comparison correction (SPEC 3, v1.1 levels).

Each claim is a one-sided test at level ``alpha`` (the file's ``1 - confidence`` over two:
the bound of the two-sided interval). Its p-value is inverted from the bootstrap bound
(:meth:`Estimate.p_value`); an equivalence claim ``q ~= c +- d`` is two one-sided tests
(TOST) and takes the larger p-value. The correction follows statsmodels' ``multipletests``
(written out in :func:`multipletests`, held equal to statsmodels by the tests):

- ``holm`` (default): family-wise error rate ``alpha`` over the per-claim verdicts;
- ``bonferroni``: the same, more conservative;
- ``bh``: Benjamini-Hochberg, false discovery rate ``alpha`` among the claims that hold;
- ``none``: each claim at ``alpha`` alone.

The file's verdict (the exit code) is a different test: "every claim holds" is an
intersection-union test, which rejects at level ``alpha`` when every claim's own test does,
with no correction (Berger 1982). Both are reported, each with the error rate it controls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.stats.bootstrap import Estimate

METHODS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh", "none": None}
ERROR_RATE = {
    "holm": "family-wise error rate (Holm step-down)",
    "bonferroni": "family-wise error rate (Bonferroni)",
    "bh": "false discovery rate (Benjamini-Hochberg)",
    "none": "per-claim error rate (no correction)",
}


@dataclass(frozen=True)
class ClaimTest:
    """One claim as a test: ``op`` is ``>=``, ``<=`` or ``~=`` (then ``[low, high]``)."""

    estimate: Estimate
    op: str
    threshold: float
    tolerance: float = 0.0

    @property
    def low(self) -> float:
        return self.threshold - self.tolerance

    @property
    def high(self) -> float:
        return self.threshold + self.tolerance

    def p_value(self) -> float:
        e = self.estimate
        if self.op == "~=":
            return max(e.p_value(">=", self.low), e.p_value("<=", self.high))
        return e.p_value(self.op, self.threshold)

    def bounds(self, alpha: float) -> tuple[float, ...]:
        """The decision bound(s) at one-sided level ``alpha``: one, or (lower, upper)."""
        e = self.estimate
        if self.op == "~=":
            return (e.bound(">=", alpha), e.bound("<=", alpha))
        return (e.bound(self.op, alpha),)

    def clears(self, alpha: float) -> bool:
        b = self.bounds(alpha)
        if any(np.isnan(x) for x in b):
            return False
        if self.op == "~=":
            return b[0] >= self.low and b[1] <= self.high
        return b[0] >= self.threshold if self.op == ">=" else b[0] <= self.threshold


@dataclass(frozen=True)
class Decision:
    passed: bool  # the claim's verdict under the correction
    passed_alone: bool  # at level alpha, uncorrected (what the intersection-union test uses)
    bounds: tuple[float, ...]  # the decision bound(s) at ``alpha_used``
    alpha_used: float  # the one-sided level the bound is shown at
    p_value: float
    p_adjusted: float
    mc_error: float  # Monte Carlo standard error of the (closest) bound

    @property
    def bound(self) -> float:
        return self.bounds[0]


def adjust(p: list[float], alpha: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p-values) for ``method`` (see :data:`METHODS`)."""
    if method not in METHODS:
        raise ValueError(f"unknown correction '{method}'; valid: {', '.join(METHODS)}")
    arr = np.asarray(p, dtype=float)
    if METHODS[method] is None or arr.size <= 1:
        return arr <= alpha, arr
    return multipletests(arr, alpha, METHODS[method])


def multipletests(p: np.ndarray, alpha: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p-values) by ``holm`` (step-down), ``bonferroni`` or ``fdr_bh``
    (Benjamini-Hochberg step-up), with statsmodels' ``multipletests`` conventions (adjusted
    values capped at 1, monotone in the sorted p-values). Written out here rather than
    called: the statsmodels module imports scipy.stats (0.5 s of a verify that needs nothing
    else from it); ``tests/stats/test_stats.py`` holds the two equal on random sets, ties
    included."""
    p = np.asarray(p, dtype=float)
    k = p.size
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "bonferroni":
        reject_s, adjusted_s = ps <= alpha / k, np.minimum(ps * k, 1.0)
    elif method == "holm":
        factors = np.arange(k, 0, -1)
        passed = ps <= alpha / factors
        first_fail = int(np.argmin(passed)) if not passed.all() else k
        reject_s = np.arange(k) < first_fail
        adjusted_s = np.minimum(np.maximum.accumulate(ps * factors), 1.0)
    elif method == "fdr_bh":
        ranks = np.arange(1, k + 1) / k
        below = np.nonzero(ps <= ranks * alpha)[0]
        reject_s = np.arange(k) <= (below.max() if below.size else -1)
        adjusted_s = np.minimum(np.minimum.accumulate((ps / ranks)[::-1])[::-1], 1.0)
    else:
        raise ValueError(f"unknown method {method!r}; valid: holm, bonferroni, fdr_bh")
    reject, adjusted = np.empty(k, dtype=bool), np.empty(k)
    reject[order], adjusted[order] = reject_s, adjusted_s
    return reject, adjusted


def levels_used(p: np.ndarray, alpha: float, method: str) -> np.ndarray:
    """The one-sided level each claim's bound is shown at: Holm's ``alpha / (k - rank)``,
    Bonferroni's ``alpha / k``, BH's ``alpha * (rank + 1) / k``; ``alpha`` uncorrected."""
    k = p.size
    order = np.argsort(p, kind="stable")
    out = np.full(k, alpha)
    for rank, i in enumerate(order):
        if method == "holm":
            out[i] = alpha / (k - rank)
        elif method == "bonferroni":
            out[i] = alpha / k
        elif method == "bh":
            out[i] = alpha * (rank + 1) / k
    return out


def decide(tests: list[ClaimTest], alpha: float, method: str = "holm") -> list[Decision]:
    """Decide every claim at one-sided level ``alpha`` under ``method``."""
    if not tests:
        return []
    p = np.array([t.p_value() for t in tests])
    reject, adjusted = adjust(list(p), alpha, method)
    used = levels_used(p, alpha, method)
    out = []
    for t, ok, padj, a, pv in zip(tests, reject, adjusted, used, p, strict=True):
        bounds = t.bounds(a)
        e = t.estimate
        if t.op == "~=":
            mc = min(e.mc_error(">=", a), e.mc_error("<=", a))
        else:
            mc = e.mc_error(t.op, a)
        alone = t.clears(alpha) and e.defined
        out.append(Decision(bool(ok) and e.defined, alone, bounds, float(a), pv, float(padj), mc))
    return out


def replicates_needed(alpha: float, k: int, minimum: int) -> int:
    """Bootstrap replicates for the most extreme corrected level ``alpha / k``: at least
    ``20 / (alpha / k)`` (20 replicates beyond the bound), and at least ``minimum``."""
    return max(int(minimum), int(np.ceil(20 * max(k, 1) / alpha)))
