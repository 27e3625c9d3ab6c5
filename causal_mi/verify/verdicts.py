"""Verdicts: each claim decided on its (corrected) confidence bound (SPEC 3)."""

from __future__ import annotations

from dataclasses import dataclass

from causal_mi.effects.measure import Measurement
from causal_mi.spec.resolve import ResolvedClaim, ResolvedHypothesis
from causal_mi.stats.bootstrap import Estimate
from causal_mi.stats.corrections import Decision, decide


@dataclass(frozen=True)
class ClaimVerdict:
    claim: ResolvedClaim
    estimate: Estimate
    decision: Decision

    @property
    def passed(self) -> bool:
        return self.decision.passed

    @property
    def rule(self) -> str:
        c = self.claim.claim
        side = "lower" if c.op == ">=" else "upper"
        level = 1 - self.decision.alpha
        return (
            f"{side} bound of the {level:.4g} bootstrap interval {c.op} {c.threshold:g}: "
            f"{self.decision.bound:.4f} {c.op} {c.threshold:g}"
        )


@dataclass(frozen=True)
class Verdict:
    hypothesis: ResolvedHypothesis
    claims: tuple[ClaimVerdict, ...]
    correction: str
    valid: bool  # False when G is zero or negative: no fraction of G is meaningful

    @property
    def passed(self) -> bool:
        return self.valid and all(c.passed for c in self.claims)


def decide_claims(hyp: ResolvedHypothesis, m: Measurement, implications=None) -> Verdict:
    """Apply the decision rule and the file's multiple-comparison correction;
    ``implications`` (causal_mi.graph) decides the ``implications hold`` claims."""
    from causal_mi.graph.verdict import decide_implications, is_implication

    alpha = 1 - hyp.spec.confidence
    pairs = [p for p in zip(hyp.claims, m.claim_labels, strict=True) if not is_implication(p[0])]
    items = [(m.estimates[label], rc.claim.op, rc.claim.threshold) for rc, label in pairs]
    method = hyp.spec.correction if len(items) > 1 else "none"
    decisions = decide(items, alpha, method) if items else []
    valid = m.gap > 0
    claims = tuple(
        ClaimVerdict(rc, est, d if valid else Decision(False, d.bound, d.alpha, d.p_value))
        for (rc, _), (est, _, _), d in zip(pairs, items, decisions, strict=True)
    )
    claims = decide_implications(hyp, claims, implications, valid)
    return Verdict(hyp, claims, method, valid)
