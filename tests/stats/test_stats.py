"""Bootstrap intervals and multiple-comparison decisions against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from causal_mi.stats.bootstrap import bootstrap_ratio
from causal_mi.stats.corrections import decide


def _est(values, seed=0, n_boot=4000):
    v = np.asarray(values, dtype=float)
    return bootstrap_ratio(v, np.ones_like(v), label="q", confidence=0.95, n_boot=n_boot, seed=seed)


def test_interval_covers_known_mean_at_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 200
    for t in range(trials):
        e = _est(rng.normal(0.5, 1.0, size=100), seed=t, n_boot=1000)
        hits += e.lower <= 0.5 <= e.upper
    assert 0.90 <= hits / trials <= 0.99


def test_ratio_resamples_numerator_and_denominator_together():
    num = np.array([1.0, 2.0, 3.0, 4.0])
    den = np.array([2.0, 4.0, 6.0, 8.0])  # ratio exactly 0.5 in every resample
    e = bootstrap_ratio(num, den, label="r", confidence=0.95, n_boot=500, seed=1)
    assert (e.point, e.lower, e.upper) == (0.5, 0.5, 0.5)
    assert e.per_example.mean() == pytest.approx(e.point)


def test_deterministic_for_a_seed():
    v = np.random.default_rng(3).normal(size=50)
    assert _est(v, seed=7).lower == _est(v, seed=7).lower
    assert _est(v, seed=7).lower != _est(v, seed=8).lower


def test_single_claim_uses_plain_interval():
    e = _est(np.random.default_rng(1).normal(1.0, 0.5, size=200))
    (d,) = decide([(e, ">=", 0.8)], alpha=0.05, method="none")
    assert d.bound == pytest.approx(e.lower)
    assert d.passed == (e.lower >= 0.8)


def test_lower_bound_rule_fails_when_point_passes_but_interval_does_not():
    # mean ~0.85 but wide: the point clears 0.8, the lower bound does not
    e = _est(np.random.default_rng(2).normal(0.85, 2.0, size=60))
    assert e.point >= 0.8 > e.lower
    (d,) = decide([(e, ">=", 0.8)], alpha=0.05)
    assert not d.passed


def test_upper_bound_rule():
    e = _est(np.random.default_rng(4).normal(0.0, 0.05, size=200))
    (ok,) = decide([(e, "<=", 0.05)], alpha=0.05)
    (bad,) = decide([(e, "<=", 0.0)], alpha=0.05)
    assert ok.passed and not bad.passed


def test_holm_is_stricter_than_uncorrected_and_looser_than_bonferroni():
    rng = np.random.default_rng(5)
    ests = [_est(rng.normal(m, 1.0, size=100), seed=i) for i, m in enumerate([0.6, 0.45, 0.4])]
    items = [(e, ">=", 0.1) for e in ests]
    plain = decide(items, 0.05, "none")
    holm = decide(items, 0.05, "holm")
    bonf = decide(items, 0.05, "bonferroni")
    for p, h, b in zip(plain, holm, bonf, strict=True):
        assert b.passed <= h.passed <= p.passed  # bool order: a pass implies the looser pass
    # Holm's first-ranked claim is tested at alpha / k, like Bonferroni
    first = min(holm, key=lambda d: d.p_value)
    assert first.alpha == pytest.approx(0.05 / 3)
    assert sorted(d.alpha for d in holm) == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])


def test_holm_stops_after_first_failure():
    rng = np.random.default_rng(6)
    strong = _est(rng.normal(1.0, 0.2, size=100))
    weak = _est(rng.normal(0.0, 1.0, size=100))
    also_strong = _est(rng.normal(1.0, 0.2, size=100), seed=1)
    ds = decide([(strong, ">=", 0.5), (weak, ">=", 0.5), (also_strong, ">=", 0.5)], 0.05)
    assert [d.passed for d in ds] == [True, False, True]
