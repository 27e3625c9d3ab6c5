"""Bootstrap intervals for ratio quantities (every SPEC 3 quantity is a fraction of G).

Numerator and denominator are resampled together (paired: one set of example indices per
replicate), so the interval accounts for the uncertainty of G. The default interval is the
bias-corrected and accelerated (BCa) bootstrap of Efron (1987), the method
``scipy.stats.bootstrap`` uses by default (the tests hold these bounds to scipy's); the
plain percentile interval is selectable. BCa needs a bias correction ``z0`` and an
acceleration ``a`` (from the jackknife); where either is undefined (every replicate on one
side of the estimate, a constant statistic) the percentile interval is used and the estimate
says so.

One-sided bounds at any level come from the same replicates, so the claims of one file,
decided at different corrected levels, share one set of resamples; the Monte Carlo error of
each bound (how much it would move under a new bootstrap seed) is reported with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

METHODS = ("bca", "percentile")
UNDEFINED_SHARE = 0.01  # more replicates than this with a zero denominator: no interval


@dataclass(frozen=True)
class Estimate:
    """A quantity's point estimate, interval, per-example values and bootstrap replicates.

    ``per_example[i] = numerator[i] / G`` so that their mean is the point estimate.
    ``lower`` / ``upper`` bound the two-sided ``confidence`` interval; ``why`` says why they
    are NaN when they are (never silently). ``undefined`` counts replicates whose resampled
    G was zero (left out of the interval)."""

    label: str
    point: float
    lower: float
    upper: float
    confidence: float
    per_example: np.ndarray
    samples: np.ndarray  # bootstrap replicates of the ratio in replicate order (NaN: undefined)
    method: str = "percentile"  # the method actually used
    z0: float = 0.0
    accel: float = 0.0
    undefined: int = 0
    n_boot: int = 0
    seed: int = 0
    why: str = ""
    # how a mean-ablation source's sampling entered the interval: "" (no mean source),
    # "resampled" (first-order influence, engine.influence) or "held fixed: <why>"
    mean_source: str = ""

    @property
    def finite(self) -> np.ndarray:
        """The defined replicates, sorted."""
        s = self.samples
        return np.sort(s[np.isfinite(s)])

    @property
    def defined(self) -> bool:
        return not self.why and bool(np.isfinite(self.samples).any())

    @property
    def se(self) -> float:
        """The bootstrap standard error."""
        s = self.samples[np.isfinite(self.samples)]
        return float(np.std(s, ddof=1)) if s.size > 1 else float("nan")

    def _level(self, alpha: float, upper: bool) -> float:
        """The quantile of the replicates that is the one-sided bound at level ``alpha``."""
        z = ndtri(1 - alpha if upper else alpha)
        if self.method == "percentile":
            return float(ndtr(z))
        u = self.z0 + z
        return float(ndtr(self.z0 + u / (1 - self.accel * u)))

    def bound(self, op: str, alpha: float) -> float:
        """The one-sided bound at level ``alpha``: the lower bound for ``>=`` claims (with
        probability 1 - alpha the quantity is at least this), the upper bound for ``<=``.

        >>> e = bootstrap_ratio(np.arange(10.0), np.ones(10), label="x", confidence=0.95,
        ...                     n_boot=2000, seed=0)
        >>> e.bound(">=", 0.025) < e.point < e.bound("<=", 0.025)
        True
        """
        if not self.defined:
            return float("nan")
        q = self._level(alpha, op == "<=")
        return float(np.quantile(self.finite, q, method="inverted_cdf"))

    def p_value(self, op: str, threshold: float) -> float:
        """One-sided p-value of the claim ``op threshold`` (null: the claim is false),
        inverted from :meth:`bound`: ``bound(op, alpha)`` clears the threshold exactly when
        the p-value is below ``alpha`` (up to the resolution 1/B of the replicates)."""
        if not self.defined:
            return 1.0
        s = self.finite
        B = s.size
        if op == ">=":
            frac = np.count_nonzero(s < threshold) / B
        else:
            frac = np.count_nonzero(s <= threshold) / B
        frac = min(max(frac, 0.5 / B), 1 - 0.5 / B)
        w = ndtri(frac) - self.z0
        if self.method == "percentile":
            z = w + self.z0
        else:
            z = w / (1 + self.accel * w) - self.z0
        return float(ndtr(z) if op == ">=" else ndtr(-z))

    def mc_error(self, op: str, alpha: float) -> float:
        """Monte Carlo standard error of :meth:`bound`: half the distance between the order
        statistics ``B q +- 1.96 sqrt(B q (1 - q))`` of the replicates, over 1.96 (how far
        the bound moves under another bootstrap seed; it shrinks like 1 / sqrt(B))."""
        if not self.defined:
            return float("nan")
        s = self.finite
        B = s.size
        q = self._level(alpha, op == "<=")
        half = 1.96 * np.sqrt(B * q * (1 - q))
        lo = int(np.clip(np.floor(B * q - half), 0, B - 1))
        hi = int(np.clip(np.ceil(B * q + half), 0, B - 1))
        return float((s[hi] - s[lo]) / (2 * 1.96))


def resample_indices(n: int, n_boot: int, seed: int):
    """Yield blocks of bootstrap index rows ``[rows, n]`` (bounded memory): the same for
    every quantity of a file, so replicates are paired across quantities."""
    if n * n_boot <= _KEEP_INDICES:  # drawn once for the file's quantities, kept read-only
        yield from _kept_indices(n, n_boot, seed)
    else:
        yield from _draw(n, n_boot, seed)


_KEEP_INDICES = 4_000_000  # index cells (32 MB) kept for reuse by the next quantity


def _draw(n: int, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    for lo in range(0, n_boot, 1000):
        yield rng.integers(0, n, size=(min(n_boot, lo + 1000) - lo, n))


@lru_cache(maxsize=4)
def _kept_indices(n: int, n_boot: int, seed: int) -> tuple[np.ndarray, ...]:
    blocks = tuple(_draw(n, n_boot, seed))
    for block in blocks:
        block.setflags(write=False)
    return blocks


def _jackknife_accel(num: np.ndarray, den: np.ndarray) -> float:
    """The BCa acceleration from leave-one-out ratios of means (NaN when undefined)."""
    n = num.shape[0]
    if n < 3:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        jk = (num.sum() - num) / (den.sum() - den)
    if not np.all(np.isfinite(jk)):
        return float("nan")
    d = jk.mean() - jk
    denom = 6 * np.sum(d**2) ** 1.5
    return float(np.sum(d**3) / denom) if denom > 0 else float("nan")


def bootstrap_ratio(
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    label: str,
    confidence: float,
    n_boot: int,
    seed: int,
    method: str = "bca",
    resampled: np.ndarray | None = None,
    mean_source: str = "",
) -> Estimate:
    """Point estimate ``mean(num) / mean(den)`` and a bootstrap interval (BCa by default).

    ``resampled``, when given, is the numerator the replicates (and BCa's jackknife) resample
    instead of ``numerator``: the numerator plus each example's influence through a mean
    source (same mean; see :mod:`causal_mi.engine.influence`). The point estimate and
    per-example values stay those of ``numerator``.

    >>> e = bootstrap_ratio(np.ones(50), 2 * np.ones(50), label="x", confidence=0.95,
    ...                     n_boot=200, seed=0)
    >>> (e.point, e.lower, e.upper, e.method)
    (0.5, 0.5, 0.5, 'percentile')
    """
    if method not in METHODS:
        raise ValueError(f"unknown bootstrap method '{method}'; valid: {', '.join(METHODS)}")
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    n = num.shape[0]
    g = den.mean()
    defined_point = g != 0 and np.isfinite(g)
    point = float(num.mean() / g) if defined_point else float("nan")
    per_example = num / g if defined_point else np.full(n, np.nan)
    rnum = num if resampled is None else np.asarray(resampled, dtype=np.float64)
    samples = np.empty(n_boot)
    pos = 0
    for idx in resample_indices(n, n_boot, seed):
        with np.errstate(divide="ignore", invalid="ignore"):
            samples[pos : pos + len(idx)] = rnum[idx].mean(axis=1) / den[idx].mean(axis=1)
        pos += len(idx)
    samples[~np.isfinite(samples)] = np.nan
    finite = np.sort(samples[np.isfinite(samples)])
    undefined = n_boot - finite.size
    why = ""
    if not defined_point:
        why = "G = 0 on the task: the ratio is undefined"
    elif undefined > UNDEFINED_SHARE * n_boot:
        why = (
            f"{undefined} of {n_boot} bootstrap replicates resample G to 0, so the ratio's "
            "interval is undefined (the corruption barely changes the metric)"
        )
    used, z0, accel = "percentile", 0.0, 0.0
    if method == "bca" and not why and finite.size:
        frac = (np.count_nonzero(finite < point) + np.count_nonzero(finite <= point)) / (
            2 * finite.size
        )
        z0 = float(ndtri(frac))
        accel = _jackknife_accel(rnum, den)
        if np.isfinite(z0) and np.isfinite(accel):
            used = "bca"
        else:
            z0, accel = 0.0, 0.0
    est = Estimate(
        label,
        point,
        float("nan"),
        float("nan"),
        confidence,
        per_example,
        samples if not why else np.full(n_boot, np.nan),
        used,
        z0,
        accel,
        undefined,
        n_boot,
        seed,
        why,
        mean_source,
    )
    alpha = (1 - confidence) / 2
    lower, upper = est.bound(">=", alpha), est.bound("<=", alpha)
    return Estimate(**{**est.__dict__, "lower": lower, "upper": upper})


@dataclass(frozen=True)
class GapEstimate:
    """G = m(clean) - m(corrupt) with its interval and the gap gate's decision.

    Fractions of G are decided only when G is told apart from 0 with margin: its one-sided
    lower bound at the claims' level must be at least ``margin`` times its estimate (with
    the default 0.5, the denominator is known to within a factor of 2 at that level, which
    needs G >= about 4 standard errors at the 0.025 level)."""

    point: float
    lower: float
    upper: float
    se: float
    bound: float  # the one-sided lower bound the gate compares
    alpha: float  # the one-sided level of that bound
    margin: float
    decidable: bool
    reason: str


def gap_estimate(
    denominator: np.ndarray, *, alpha: float, confidence: float, n_boot: int, seed: int, margin
) -> GapEstimate:
    """Bootstrap G (same resamples as the ratios) and apply the gap gate."""
    den = np.asarray(denominator, dtype=np.float64)
    e = bootstrap_ratio(
        den, np.ones_like(den), label="G", confidence=confidence, n_boot=n_boot, seed=seed
    )
    bound = e.bound(">=", alpha)
    g = e.point
    if not np.isfinite(g) or g <= 0:
        ok, reason = (
            False,
            (
                f"G = {g:.4g} <= 0: the corrupt prompts do not lower the metric (check the answer "
                "and wrong tokens, or the corruption), so no fraction of G is defined"
            ),
        )
    elif not bound >= margin * g:
        ok, reason = (
            False,
            (
                f"the corruption does not change the behaviour distinguishably: G = {g:.4g}, "
                f"standard error {e.se:.2g}, one-sided lower bound {bound:.4g} at level {alpha:g} "
                f"< {margin:g} x G; fractions of G would be decided on noise"
            ),
        )
    else:
        ok, reason = True, ""
    return GapEstimate(g, e.lower, e.upper, e.se, bound, alpha, margin, ok, reason)
