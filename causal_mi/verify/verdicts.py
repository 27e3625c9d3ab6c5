"""Verdicts (SPEC 3, v1.1): the gap gate, per-claim decisions under the file's correction,
and the file's verdict as an intersection-union test.

Levels, stated as what they are: each claim is a one-sided test at level
``alpha = (1 - confidence) / 2`` (the bound of the two-sided ``confidence`` interval; an
equivalence claim is two such tests). Per-claim verdicts are corrected (Holm by default),
which controls the family-wise error rate of the claim table at ``alpha``. The file's
verdict, the exit code, rejects "some claim is false" when every claim's own test rejects:
an intersection-union test at level ``alpha``, which needs no correction. Neither is decided
when the gap gate fails: the file is then *not decidable*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.effects.measure import Measurement
from causal_mi.spec.resolve import ResolvedClaim, ResolvedHypothesis
from causal_mi.stats.bootstrap import Estimate, GapEstimate
from causal_mi.stats.corrections import ERROR_RATE, ClaimTest, Decision, decide

NEAR = 2.0  # a bound within this many Monte Carlo errors of its threshold is "within a hair"
POWER_Z = 0.8416  # z of 80% power, for the detectable margin


@dataclass(frozen=True)
class ClaimVerdict:
    claim: ResolvedClaim
    estimate: Estimate
    decision: Decision
    decidable: bool = True  # False when the gap gate failed
    gate_reason: str = ""

    @property
    def passed(self) -> bool:
        return self.decidable and self.decision.passed

    @property
    def status(self) -> str:
        """``holds`` | ``fails`` | ``not decidable`` (gap gate) | ``undefined`` (no interval)."""
        if not self.decidable:
            return "not decidable"
        if not self.estimate.defined:
            return "undefined"
        return "holds" if self.passed else "fails"

    @property
    def why(self) -> str:
        """The reason a claim has no verdict on its merits (empty when it has one)."""
        if not self.decidable:
            return f"not decidable: {self.gate_reason}"
        if not self.estimate.defined:
            return f"interval undefined: {self.estimate.why}"
        return ""

    @property
    def near_threshold(self) -> bool:
        """The decision bound lies within ``NEAR`` Monte Carlo errors of the threshold: a
        new bootstrap seed could flip it."""
        c, d = self.claim.claim, self.decision
        targets = (c.low, c.high) if c.op == "~=" else (c.threshold,)
        gaps = [abs(b - t) for b, t in zip(d.bounds, targets, strict=True)]
        return bool(np.isfinite(d.mc_error)) and min(gaps) <= NEAR * d.mc_error

    @property
    def detectable_margin(self) -> float:
        """The distance from the threshold a true value must have for this claim to be
        decided with 80% power at the task's n: ``(z_alpha + z_0.8) x se``."""
        from scipy.special import ndtri

        return float((ndtri(1 - self.decision.alpha_used) + POWER_Z) * self.estimate.se)

    @property
    def rule(self) -> str:
        c, d = self.claim.claim, self.decision
        level = f"one-sided level {d.alpha_used:.3g}"
        if c.op == "~=":
            lo, hi = d.bounds
            return (
                f"whole interval inside [{c.low:g}, {c.high:g}] (two one-sided tests at "
                f"{level}): [{lo:.4f}, {hi:.4f}]"
            )
        side = "lower" if c.op == ">=" else "upper"
        return (
            f"{side} bound at {level} {c.op} {c.threshold:g}: {d.bound:.4f} {c.op} {c.threshold:g}"
        )


@dataclass(frozen=True)
class Verdict:
    hypothesis: ResolvedHypothesis
    claims: tuple[ClaimVerdict, ...]
    correction: str
    gap: GapEstimate
    alpha: float  # each claim's one-sided level

    @property
    def valid(self) -> bool:
        """The gap gate passed: fractions of G are decided."""
        return self.gap.decidable

    @property
    def passed(self) -> bool:
        """The file's verdict: an intersection-union test at level ``alpha`` (every claim's
        own one-sided test rejects), only when the gap gate passed."""
        return self.valid and all(c.decision.passed_alone for c in self.claims)

    @property
    def status(self) -> str:
        if not self.valid:
            return "not decidable"
        return "pass" if self.passed else "fail"

    @property
    def levels(self) -> str:
        """One sentence stating every level and error rate, for every output."""
        a = self.alpha
        return (
            f"each claim: one-sided test at level {a:g} (the bound of the two-sided "
            f"{1 - 2 * a:g} interval); per-claim verdicts: {ERROR_RATE[self.correction]} "
            f"at {a:g}; file verdict and exit code: intersection-union test at level {a:g} "
            "(every claim must hold alone; no correction needed)"
        )


def decide_claims(hyp: ResolvedHypothesis, m: Measurement) -> Verdict:
    """Apply the gap gate, the decision rule and the file's multiple-comparison correction."""
    alpha = (1 - hyp.spec.confidence) / 2
    tests = [
        ClaimTest(m.estimates[label], rc.claim.op, rc.claim.threshold, rc.claim.tolerance)
        for rc, label in zip(hyp.claims, m.claim_labels, strict=True)
    ]
    method = hyp.spec.correction if len(tests) > 1 else "none"
    decisions = decide(tests, alpha, method)
    gate = m.gap_estimate
    claims = tuple(
        ClaimVerdict(rc, t.estimate, d, gate.decidable, gate.reason)
        for rc, t, d in zip(hyp.claims, tests, decisions, strict=True)
    )
    return Verdict(hyp, claims, method, gate, alpha)
