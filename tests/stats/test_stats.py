"""Bootstrap intervals, the gap gate and multiple-comparison decisions against known answers
and against the reference implementations (scipy.stats.bootstrap, statsmodels)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from causal_mi.stats.bootstrap import bootstrap_ratio, gap_estimate
from causal_mi.stats.corrections import ClaimTest, adjust, decide, replicates_needed


def _est(values, seed=0, n_boot=4000, method="bca"):
    v = np.asarray(values, dtype=float)
    return bootstrap_ratio(
        v, np.ones_like(v), label="q", confidence=0.95, n_boot=n_boot, seed=seed, method=method
    )


def _tests(ests, op=">=", t=0.1):
    return [ClaimTest(e, op, t) for e in ests]


@pytest.mark.parametrize("method", ["bca", "percentile"])
def test_interval_covers_known_mean_at_nominal_rate(method):
    rng = np.random.default_rng(0)
    hits = 0
    trials = 300
    for t in range(trials):
        e = _est(rng.exponential(1.0, size=60), seed=t, n_boot=1000, method=method)
        hits += e.lower <= 1.0 <= e.upper
    # 95% nominal; 300 trials give a binomial sd of 1.3 points
    assert 0.91 <= hits / trials <= 0.985


def test_bca_bounds_equal_scipy_reference():
    rng = np.random.default_rng(11)
    num = rng.exponential(1.0, size=80) + 0.3
    den = num * 0.5 + rng.normal(1.0, 0.3, size=80)
    ours = bootstrap_ratio(num, den, label="r", confidence=0.9, n_boot=40_000, seed=3)
    ref = stats.bootstrap(
        (num, den),
        lambda a, b, axis=-1: a.mean(axis=axis) / b.mean(axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=0.9,
        n_resamples=40_000,
        method="BCa",
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert ours.method == "bca"
    width = ref.high - ref.low
    # different resamples: the bounds agree to Monte Carlo error (~1% of the width here)
    assert ours.lower == pytest.approx(ref.low, abs=0.03 * width)
    assert ours.upper == pytest.approx(ref.high, abs=0.03 * width)
    # and the check has teeth: the percentile interval of this skewed ratio differs more
    pct = bootstrap_ratio(
        num, den, label="r", confidence=0.9, n_boot=40_000, seed=3, method="percentile"
    )
    assert abs(pct.lower - ref.low) + abs(pct.upper - ref.high) > abs(ours.lower - ref.low) + abs(
        ours.upper - ref.high
    )


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


def test_p_value_is_consistent_with_the_bound():
    rng = np.random.default_rng(9)
    for method in ("bca", "percentile"):
        e = _est(rng.gamma(2.0, size=70), seed=1, n_boot=5000, method=method)
        for op in (">=", "<="):
            for t in np.linspace(e.point - 1.0, e.point + 1.0, 41):
                for alpha in (0.001, 0.01, 0.025, 0.1):
                    b = e.bound(op, alpha)
                    clears = b >= t if op == ">=" else b <= t
                    p = e.p_value(op, t)
                    if abs(p - alpha) > 2 / 5000:  # away from the 1/B resolution
                        assert clears == (p < alpha), (method, op, t, alpha, p, b)


def test_monte_carlo_error_shrinks_with_replicates():
    v = np.random.default_rng(12).normal(0.5, 1.0, size=200)
    small = _est(v, n_boot=500).mc_error(">=", 0.0025)
    large = _est(v, n_boot=20_000).mc_error(">=", 0.0025)
    assert 0 < large < small / 3  # 1/sqrt(B): a 40x increase gives ~6x less error


def test_undefined_replicates_are_counted_and_make_the_interval_undefined():
    den = np.array([1.0, -1.0] * 5)  # G = 0 in the task and in many resamples
    e = bootstrap_ratio(np.ones(10), den, label="r", confidence=0.95, n_boot=1000, seed=0)
    assert not e.defined and np.isnan(e.lower) and "undefined" in e.why
    den = np.array([1.0] * 24 + [-1.0] * 6)  # G = 0.6: a resample hits 0 with p ~ 2e-4
    e = bootstrap_ratio(np.ones(30), den, label="r", confidence=0.95, n_boot=20_000, seed=0)
    assert 0 < e.undefined < 200 and e.defined and np.isfinite(e.lower)


def test_gap_gate():
    rng = np.random.default_rng(0)
    near_null = rng.normal(0.05, 1.0, size=200)  # G = 0.05, se 0.07 (the reported case)
    g = gap_estimate(near_null, alpha=0.025, confidence=0.95, n_boot=2000, seed=0, margin=0.5)
    assert not g.decidable and "does not change the behaviour" in g.reason
    strong = rng.normal(2.0, 1.0, size=200)
    g = gap_estimate(strong, alpha=0.025, confidence=0.95, n_boot=2000, seed=0, margin=0.5)
    assert g.decidable and g.lower > 0
    negative = rng.normal(-1.0, 0.1, size=50)
    g = gap_estimate(negative, alpha=0.025, confidence=0.95, n_boot=2000, seed=0, margin=0.5)
    assert not g.decidable and "<= 0" in g.reason
    # the margin matters: G ~ 3 se passes a bare "interval excludes 0" and fails the margin
    mid = rng.normal(0.21, 1.0, size=200)
    g0 = gap_estimate(mid, alpha=0.025, confidence=0.95, n_boot=2000, seed=0, margin=0.0)
    g5 = gap_estimate(mid, alpha=0.025, confidence=0.95, n_boot=2000, seed=0, margin=0.5)
    assert g0.decidable and not g5.decidable


def test_near_null_gap_is_undecidable_in_nearly_every_draw():
    rng = np.random.default_rng(1)
    decided = sum(
        gap_estimate(
            rng.normal(0.0, 1.0, size=200),
            alpha=0.025,
            confidence=0.95,
            n_boot=500,
            seed=s,
            margin=0.5,
        ).decidable
        for s in range(300)
    )
    assert decided <= 3  # >= 99% undecidable


def test_single_claim_uses_plain_interval():
    e = _est(np.random.default_rng(1).normal(1.0, 0.5, size=200))
    (d,) = decide([ClaimTest(e, ">=", 0.8)], alpha=0.025, method="none")
    assert d.bound == pytest.approx(e.lower)
    assert d.passed == (e.lower >= 0.8) == d.passed_alone


def test_lower_bound_rule_fails_when_point_passes_but_interval_does_not():
    e = _est(np.random.default_rng(2).normal(0.85, 2.0, size=60))
    assert e.point >= 0.8 > e.lower
    (d,) = decide([ClaimTest(e, ">=", 0.8)], alpha=0.025)
    assert not d.passed


def test_upper_bound_rule():
    e = _est(np.random.default_rng(4).normal(0.0, 0.05, size=200))
    (ok,) = decide([ClaimTest(e, "<=", 0.05)], alpha=0.025)
    (bad,) = decide([ClaimTest(e, "<=", 0.0)], alpha=0.025)
    assert ok.passed and not bad.passed


def test_equivalence_claim_is_two_one_sided_tests():
    null = _est(np.random.default_rng(5).normal(0.0, 0.05, size=200))
    real = _est(np.random.default_rng(6).normal(0.3, 0.05, size=200))
    wide = _est(np.random.default_rng(7).normal(0.0, 1.0, size=200))  # "<= 0.05" is weak
    (n,) = decide([ClaimTest(null, "~=", 0.0, 0.05)], 0.025)
    (r,) = decide([ClaimTest(real, "~=", 0.0, 0.05)], 0.025)
    (w,) = decide([ClaimTest(wide, "~=", 0.0, 0.05)], 0.025)
    assert n.passed and not r.passed and not w.passed
    assert n.bounds[0] >= -0.05 and n.bounds[1] <= 0.05


def test_corrections_differ_on_a_constructed_p_value_set():
    # p-values 0.003, 0.011, 0.018, 0.024 at alpha 0.025 (k = 4): uncorrected, all four
    # pass; Bonferroni (0.00625 each) and Holm (0.00625, 0.0083, ...) the first only; BH
    # (0.00625, 0.0125, 0.01875, 0.025) all four, since the largest p is below alpha.
    p = [0.003, 0.011, 0.018, 0.024]
    got = {m: list(adjust(p, 0.025, m)[0]) for m in ("none", "bonferroni", "holm", "bh")}
    assert got["none"] == [True, True, True, True]
    assert got["bonferroni"] == [True, False, False, False]
    assert got["holm"] == [True, False, False, False]
    assert got["bh"] == [True, True, True, True]
    # Holm passes what Bonferroni does not: 0.004 < 0.025/3 after 0.001 < 0.025/4 ...
    p = [0.001, 0.0075, 0.011, 0.2]
    assert list(adjust(p, 0.025, "holm")[0]) == [True, True, True, False]
    assert list(adjust(p, 0.025, "bonferroni")[0]) == [True, False, False, False]


def test_decide_applies_the_correction_to_bootstrap_p_values():
    base = np.random.default_rng(13).normal(size=150)
    base = (base - base.mean()) / base.std()  # se of the mean ~ 0.082: p ~ 1e-4, 0.007, 0.01
    ests = [_est(base + m, seed=i) for i, m in enumerate([0.6, 0.2, 0.19])]
    tests = [ClaimTest(e, ">=", 0.0) for e in ests]
    p = [t.p_value() for t in tests]
    for method in ("none", "bonferroni", "holm", "bh"):
        want = adjust(p, 0.025, method)[0]
        assert [d.passed for d in decide(tests, 0.025, method)] == list(want)
    # the constructed set is one where the corrections disagree
    assert [d.passed for d in decide(tests, 0.025, "none")] != [
        d.passed for d in decide(tests, 0.025, "bonferroni")
    ]


def test_corrections_agree_with_statsmodels_on_random_sets():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(8)
    names = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh"}
    for n in range(60):  # statsmodels' Holm runs gc.collect() per call: keep the count small
        p = rng.uniform(0, 0.1, size=int(rng.integers(2, 12)))
        if n % 3 == 0:  # ties
            p = np.round(p, 2)
        for ours, theirs in names.items():
            reject, adjusted = adjust(list(p), 0.025, ours)
            ref = multipletests(p, alpha=0.025, method=theirs)
            assert list(reject) == list(ref[0]) and np.allclose(adjusted, ref[1], atol=1e-15)
    # the failing case: Holm is not Bonferroni (a set where they differ is told apart)
    p = np.array([0.001, 0.012, 0.02])
    assert list(adjust(list(p), 0.025, "holm")[0]) != list(adjust(list(p), 0.025, "bonferroni")[0])


def test_holm_levels_and_replicates_for_the_most_extreme_level():
    rng = np.random.default_rng(5)
    ests = [_est(rng.normal(m, 1.0, size=100), seed=i) for i, m in enumerate([0.6, 0.45, 0.4])]
    holm = decide(_tests(ests), 0.025, "holm")
    assert sorted(d.alpha_used for d in holm) == pytest.approx([0.025 / 3, 0.025 / 2, 0.025])
    assert replicates_needed(0.025, 14, 2000) >= 20 / (0.025 / 14)
    assert replicates_needed(0.025, 1, 2000) == 2000
