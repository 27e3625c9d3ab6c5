"""The verdict of the claim ``implications hold`` (SPEC 2 v1.1): a claim verdict of its own
kind, shaped like :class:`causal_mi.verify.verdicts.ClaimVerdict` (``claim``, ``estimate``,
``decision``, ``passed``, ``rule``) so every report renders it unchanged.

The claim passes when no implication of the declared graph is contradicted (see
:mod:`causal_mi.graph.implications`: Holm over the file's implications, with margins). Its
estimate is the number of contradicted implications (an exact count, so its interval is a
point); its p-value the smallest Holm-adjusted p-value among the tested implications.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.graph.implications import Implications
from causal_mi.spec.claims import IMPLICATIONS
from causal_mi.spec.resolve import ResolvedClaim, ResolvedHypothesis
from causal_mi.stats.bootstrap import Estimate, GapEstimate
from causal_mi.stats.corrections import Decision
from causal_mi.verify.verdicts import ClaimVerdict

NOT_ANALYSED = "the graph's implications were not analysed in this run"


def is_implication(rc: ResolvedClaim) -> bool:
    return rc.claim.quantity == IMPLICATIONS


@dataclass(frozen=True)
class ImplicationVerdict(ClaimVerdict):
    """``implications hold`` decided on the tested implications (None: not analysed); a
    claim verdict whose estimate is an exact count (no interval, no Monte Carlo error)."""

    result: Implications | None = None

    @property
    def why(self) -> str:
        if not self.decidable:
            return f"not decidable: {self.gate_reason}"
        return NOT_ANALYSED if self.result is None else ""

    @property
    def near_threshold(self) -> bool:
        return False

    @property
    def detectable_margin(self) -> float:
        return float("nan")

    @property
    def rule(self) -> str:
        r = self.result
        if r is None:
            return NOT_ANALYSED
        bad = "; ".join(f"{i.text} (absent edge {i.edge})" for i in r.contradicted)
        return (
            f"no implication of the declared graph contradicted at family level "
            f"{1 - r.alpha:.4g} ({r.correction}, {r.tested} tested of {len(r.items)}): "
            + (f"contradicted: {bad}" if bad else "none contradicted")
        )


def implication_verdict(
    rc: ResolvedClaim, result: Implications | None, alpha: float, gate: GapEstimate | None = None
) -> ImplicationVerdict:
    n = float("nan") if result is None else float(len(result.contradicted))
    tested = (
        [] if result is None else [i.p_adjusted for i in result.items if i.status != "untestable"]
    )
    p = min(tested) if tested else float("nan")
    est = Estimate("implications", n, n, n, 1 - alpha, np.zeros(0), np.full(1, n))
    passed = result is not None and result.hold
    decision = Decision(passed, passed, (n,), alpha, p, p, float("nan"))
    ok = gate is None or gate.decidable
    return ImplicationVerdict(rc, est, decision, ok, "" if ok else gate.reason, result)


def decide_implications(
    hyp: ResolvedHypothesis, decided: tuple, result: Implications | None, gate
) -> tuple:
    """``decided`` (the other claims' verdicts, in file order) with the implication claims'
    verdicts put back in their places."""
    alpha = (1 - hyp.spec.confidence) / 2
    others = iter(decided)
    return tuple(
        implication_verdict(rc, result, alpha, gate) if is_implication(rc) else next(others)
        for rc in hyp.claims
    )
