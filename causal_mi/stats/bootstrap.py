"""Bootstrap confidence intervals for ratio quantities (every SPEC 3 quantity is a fraction
of G, so both numerator and denominator are resampled together)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A quantity's point estimate, interval, per-example values and bootstrap replicates.

    ``per_example[i] = numerator[i] / G`` so that their mean is the point estimate.
    """

    label: str
    point: float
    lower: float
    upper: float
    confidence: float
    per_example: np.ndarray
    samples: np.ndarray  # bootstrap replicates of the ratio

    def bound(self, op: str, alpha: float) -> float:
        """The one-sided decision bound at total two-sided level ``alpha``: the lower bound
        of the (1 - alpha) interval for ``>=`` claims, the upper bound for ``<=``."""
        q = alpha / 2 if op == ">=" else 1 - alpha / 2
        return float(np.quantile(self.samples, q))


def bootstrap_ratio(
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    label: str,
    confidence: float,
    n_boot: int,
    seed: int,
) -> Estimate:
    """Point estimate ``mean(num) / mean(den)`` and a percentile bootstrap interval.

    >>> e = bootstrap_ratio(np.ones(50), 2 * np.ones(50), label="x", confidence=0.95,
    ...                     n_boot=200, seed=0)
    >>> (e.point, e.lower, e.upper)
    (0.5, 0.5, 0.5)
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    n = num.shape[0]
    g = den.mean()
    point = float(num.mean() / g) if g != 0 else float("nan")
    rng = np.random.default_rng(seed)
    samples = np.empty(n_boot)
    for lo in range(0, n_boot, 1000):  # bounded memory: 1000 x n indices at a time
        hi = min(n_boot, lo + 1000)
        idx = rng.integers(0, n, size=(hi - lo, n))
        with np.errstate(divide="ignore", invalid="ignore"):
            samples[lo:hi] = num[idx].mean(axis=1) / den[idx].mean(axis=1)
    alpha = 1 - confidence
    lower, upper = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    per_example = num / g if g != 0 else np.full(n, np.nan)
    return Estimate(label, point, float(lower), float(upper), confidence, per_example, samples)
