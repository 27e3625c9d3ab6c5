"""The statistical statements every output makes, worded once: the file's status, G and the
gap gate, how intervals were computed, and which error rate each verdict controls."""

from __future__ import annotations

from causal_mi.effects.measure import Measurement
from causal_mi.verify.verdicts import ClaimVerdict, Verdict

INTERVAL_NAME = {"bca": "BCa bootstrap", "percentile": "percentile bootstrap"}


def status_word(v: Verdict) -> str:
    """``PASS`` | ``FAIL`` | ``NOT DECIDABLE``."""
    return {"pass": "PASS", "fail": "FAIL"}.get(v.status, "NOT DECIDABLE")


def claims_count(v: Verdict) -> str:
    """``3/4 claims hold`` (each at its own level: what the file verdict uses), with the
    corrected count when the correction changes it."""
    k = len(v.claims)
    if not v.valid:
        return f"0/{k} claims decided (not decidable)"
    alone = sum(c.decision.passed_alone for c in v.claims)
    corrected = sum(c.passed for c in v.claims)
    text = f"{alone}/{k} claims hold"
    if corrected != alone:
        text += f", {corrected}/{k} under the {v.correction} correction"
    return text


def gap_line(m: Measurement, v: Verdict) -> str:
    g = v.gap
    text = (
        f"G = m(clean) - m(corrupt) = {g.point:.4f} [{g.lower:.4f}, {g.upper:.4f}] "
        f"(se {g.se:.2g}); gap gate: "
    )
    if g.decidable:
        return text + (
            f"passed (one-sided lower bound {g.bound:.4f} at level {g.alpha:g} >= "
            f"{g.margin:g} x G), so every quantity is a fraction of G"
        )
    return text + f"FAILED: {g.reason}. No fraction of G is decided: the file is not decidable"


def interval_line(m: Measurement, v: Verdict) -> str:
    methods = sorted({e.method for e in m.estimates.values()})
    used = " / ".join(INTERVAL_NAME[x] for x in methods) or INTERVAL_NAME[m.interval]
    fallback = ""
    if m.interval == "bca" and "percentile" in methods:
        fallback = " (percentile where BCa's bias correction or acceleration is undefined)"
    return (
        f"Intervals: {used}{fallback} over examples, numerator and G resampled together, "
        f"{m.n_boot} replicates (enough for the most extreme corrected level), bootstrap seed "
        f"{m.bootstrap_seed}. Levels: {v.levels}."
    )


def estimate_cell(c: ClaimVerdict) -> str:
    """The estimate of a claim as every table shows it, or why there is none."""
    e = c.estimate
    if not c.decidable:
        return "not decidable"
    if not e.defined:
        return f"{e.point:+.3f}, interval undefined"
    return f"{e.point:+.3f} [{e.lower:+.3f}, {e.upper:+.3f}]"


def claim_flags(c: ClaimVerdict) -> str:
    """Short remarks on a decided claim (a bound within a hair of its threshold)."""
    if c.decidable and c.estimate.defined and c.near_threshold:
        return (
            f"within a hair of the threshold: the bound is within {2:g} Monte Carlo errors "
            f"({c.decision.mc_error:.2g}) of it; more replicates or examples would settle it"
        )
    return ""
