"""Linearity check of the mediation quantities with DoWhy (SPEC 3's "DoWhy cross-check").

This is a check of linearity and additivity, not an independent estimate (see "Why this
scalar" below); the graph's own structural causal model, fitted by DoWhy on observational
runs and compared with the interventions, is :mod:`causal_mi.graph.scm`.

causal-mi measures ``indirect``, ``direct`` and ``total`` by interventions. This module hands
the same interventional runs to DoWhy as a data frame, lets DoWhy re-estimate the effect with
an explicit graph ``T -> M -> Y, T -> Y`` (linear models: ``mediation.two_stage_regression``
for the natural indirect / direct effect, ``backdoor.linear_regression`` for the total
effect), compares the two estimates in fractions of G and runs two refuters (a placebo
treatment and data subsets). A disagreement is reported, never a verdict.

The data frame has two rows per example:

- ``T``: the treatment, the claim's sender ``a`` ablated (1) or not (0);
- ``Y``: the metric in that run (T=0: the clean run; T=1: the clean run with ``a`` ablated);
- ``M``: one scalar for the mediator(s): the metric of a clean run in which only the
  mediators take their values from the row's run (T=0: their clean values, so M = Y; T=1:
  their values under ``a``'s ablation, the run that defines the natural indirect effect).

Why this scalar. A mediator is an activation tensor; DoWhy's estimator takes one scalar
column. Mapping the mediator through the model's own downstream computation, everything
else clean, keeps exactly the part of it that reaches the outcome (including through later
layers and other positions) and puts it in the outcome's units, and it works for any site
(heads, head inputs, MLPs, neurons, residual points, positions) and any metric. With it,
DoWhy's first stage reproduces the interventional indirect effect, so the cross-check tests
the linear model's other assumptions: that the outcome moves one-for-one with the mediator
in the ablated runs as in the clean ones (no treatment x mediator interaction, no
per-example confounding of the slope) and, for the direct effect, that the indirect and
direct effects add up to the total: a test of linearity and additivity, not an independent
measurement. A mediator's direct logit attribution was tried and rejected: it misses the
mediator's effect through later layers, and its regression slope is confounded by
components that co-vary across examples (on ``zoo:occupation-bias`` it gave an indirect
effect of 0.61 where the interventions measure 0.38).

Tolerance: ``max(0.05, 2 x the half-width of the interventional interval)``, in fractions of
G. Differences inside the interventional estimate's own uncertainty, or below 0.05 of G
(the granularity claims are written at), are not evidence of a problem.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from causal_mi.effects.measure import Measurement, claim_label, mediators_of
from causal_mi.engine.address import record_key
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import ABLATION_SOURCE, Condition, Patch, cells_of, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.models.adapter import hook_point
from causal_mi.models.loading import LoadedModel
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.spec.sites import Site, format_site
from causal_mi.stats.bootstrap import Estimate
from causal_mi.stats.frames import object_labels
from causal_mi.tasks.base import Task

KINDS = ("indirect", "direct", "total")
TOLERANCE_FLOOR = 0.05  # fraction of G
TOLERANCE_CI_FACTOR = 2.0  # times the interventional interval's half-width
TOLERANCE_RULE = "max(0.05, 2 x the half-width of the interventional interval), fraction of G"
SIMULATIONS = 20  # per refuter (DoWhy fits take ~30 ms each)
SUBSET_FRACTION = 0.8
SIGNIFICANCE = 0.05
RANK_NOTE = (
    "M does not vary beyond T (it is constant within the treated and the untreated rows), "
    "so DoWhy's regression design is rank-deficient and its coefficients are not unique"
)
NO_CLAIMS = "the file has no indirect, direct or total claims"
MEDIATOR_SUMMARY = (
    "M = the metric of a clean run with only the mediator(s) set to their value in the "
    "row's run (T=0: clean, so M = Y; T=1: under the treatment's ablation)"
)
# Warnings DoWhy's regressions raise, by class: pandas 3 deprecations on every fit, and
# statsmodels' rank-deficiency warning (reported as RANK_NOTE on the quantity instead).
_DOWHY_WARNINGS = (
    ("pandas.errors", "Pandas4Warning"),
    ("statsmodels.tools.sm_exceptions", "SingularMatrixWarning"),
)
# Floating-point warnings of the residual diagnostics DoWhy has statsmodels compute after each
# fit (skew, Jarque-Bera, log-likelihood); they fire on exact fits and feed no estimate.
_DIAGNOSTIC_MODULES = r"(statsmodels|scipy\.stats)\."
_ESTIMAND = {
    "indirect": ("NIE", "nonparametric-nie", "mediation.two_stage_regression"),
    "direct": ("NDE", "nonparametric-nde", "mediation.two_stage_regression"),
    "total": ("ATE", "nonparametric-ate", "backdoor.linear_regression"),
}


@dataclass(frozen=True)
class Refutation:
    """One DoWhy refuter's result; ``new_effect`` in fractions of G. ``passed``: DoWhy's
    significance test found nothing (p > 0.05), None when it could not test."""

    name: str
    new_effect: float
    p_value: float | None
    passed: bool | None


@dataclass(frozen=True)
class QuantityCheck:
    """DoWhy's estimate of one quantity next to the interventional one (fractions of G)."""

    label: str  # the quantity's label in the measurement, e.g. "indirect(L0H1 -> L0.mlp -> logits)"
    kind: str  # indirect | direct | total
    estimand: str  # NIE | NDE | ATE
    method: str  # DoWhy's estimator
    treatment: str
    mediators: tuple[str, ...]
    dowhy: float
    interventional: float
    interventional_ci: tuple[float, float]
    difference: float
    tolerance: float
    agrees: bool
    refutations: tuple[Refutation, ...]
    rows: int
    note: str = ""


@dataclass(frozen=True)
class CrossCheck:
    """Every quantity's check, or why none ran."""

    ran: bool
    reason: str = ""
    checks: tuple[QuantityCheck, ...] = ()
    notes: tuple[str, ...] = ()
    seed: int = 0
    simulations: int = SIMULATIONS

    @property
    def disagreements(self) -> list[str]:
        return [c.label for c in self.checks if not c.agrees]

    @classmethod
    def skipped(cls, reason: str) -> CrossCheck:
        return cls(False, reason)


@dataclass(frozen=True)
class MediationData:
    """Per-example values of the cross-check's frame, in metric units: outcome and mediator
    summary with the treatment off (``y0``, ``m0``) and on (``y1``, ``m1``). ``m0``/``m1``
    are None when there is no mediator (total effects)."""

    y0: np.ndarray
    y1: np.ndarray
    m0: np.ndarray | None = None
    m1: np.ndarray | None = None

    def frame(self):
        """Two rows per example (T=0 then T=1) as a pandas DataFrame with T, [M,] Y."""
        import pandas as pd

        n = len(self.y0)
        cols: dict[str, Any] = {"T": np.r_[np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]}
        if self.m0 is not None and self.m1 is not None:
            cols["M"] = np.r_[self.m0, self.m1].astype(np.float64)
        cols["Y"] = np.r_[self.y0, self.y1].astype(np.float64)
        return pd.DataFrame(cols)


@dataclass(frozen=True)
class Target:
    """A mediation quantity to cross-check: its label, kind, sender and mediators."""

    label: str
    kind: str
    treatment: Site
    mediators: tuple[Site, ...]


@contextmanager
def quiet_dowhy() -> Iterator[None]:
    """Silence the warnings DoWhy's estimators are known to raise, by class name (and the
    residual diagnostics' floating-point warnings, by module); others still surface. Frames
    made inside keep Python-string labels (:func:`causal_mi.stats.frames.object_labels`)."""
    import importlib
    import logging

    log = logging.getLogger("dowhy")  # "assuming a normal distribution" on every refuter
    level = log.level
    with warnings.catch_warnings():
        for module, name in _DOWHY_WARNINGS:
            category = getattr(importlib.import_module(module), name, None)
            if category is not None:
                warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=_DIAGNOSTIC_MODULES)
        # statsmodels' regression summary runs a normality test that warns below 20 rows
        warnings.filterwarnings("ignore", message=r"`kurtosistest` p-value may be inaccurate")
        log.setLevel(logging.ERROR)
        try:
            with object_labels():
                yield
        finally:
            log.setLevel(level)


# DoWhy on one data set ---------------------------------------------------------------------
def _fit(frame, kind: str, identified=None) -> tuple[float, Any, Any]:
    """DoWhy's effect of T (0 -> 1) on Y in metric units, the identified estimand, the
    estimate. ``identified`` is reused when given (same graph, other data)."""
    import networkx as nx
    from dowhy import CausalModel
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator

    _, estimand_type, method = _ESTIMAND[kind]
    mediated = "M" in frame.columns
    edges = [("T", "M"), ("M", "Y"), ("T", "Y")] if mediated else [("T", "Y")]
    model = CausalModel(data=frame, treatment="T", outcome="Y", graph=nx.DiGraph(edges))
    if identified is None:
        identified = model.identify_effect(estimand_type=estimand_type)
    params = {}
    if method.startswith("mediation."):
        params = {
            "first_stage_model": LinearRegressionEstimator,
            "second_stage_model": LinearRegressionEstimator,
        }
    estimate = model.estimate_effect(identified, method_name=method, method_params=params)
    return float(estimate.value), identified, estimate


def _refute(frame, kind: str, identified, estimate, gap: float, seed: int, sims: int):
    """Placebo treatment (T permuted across rows) and data subsets (80% of the rows).

    DoWhy 0.14's placebo refuter hands the two-stage estimator's inner regressions the real
    treatment, so it returns the original estimate unchanged; the placebo here permutes T
    itself and re-estimates through DoWhy, then applies DoWhy's significance test (is 0
    inside the placebo estimates' distribution?). The subset refuter is DoWhy's own."""
    from dowhy.causal_refuter import test_significance
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset

    rs = np.random.RandomState(seed)
    t = frame["T"].to_numpy()
    placebo = [
        _fit(frame.assign(T=t[rs.permutation(len(t))]), kind, identified)[0] for _ in range(sims)
    ]
    p_placebo = test_significance(SimpleNamespace(value=0.0), placebo)["p_value"]
    subset = refute_data_subset(
        frame,
        identified,
        estimate,
        subset_fraction=SUBSET_FRACTION,
        num_simulations=sims,
        random_state=np.random.RandomState(seed),
    )
    return (
        _refutation("placebo treatment", float(np.mean(placebo)), p_placebo, gap),
        _refutation(
            "data subset", float(subset.new_effect), subset.refutation_result["p_value"], gap
        ),
    )


def _refutation(name: str, value: float, p: Any, gap: float) -> Refutation:
    p = float(p) if p is not None and math.isfinite(float(p)) else None
    return Refutation(name, -value / gap, p, None if p is None else p > SIGNIFICANCE)


def tolerance(est: Estimate) -> float:
    """How far DoWhy may be from the interventional estimate before it is flagged."""
    half = (est.upper - est.lower) / 2
    if not math.isfinite(half):
        return TOLERANCE_FLOOR
    return max(TOLERANCE_FLOOR, TOLERANCE_CI_FACTOR * half)


def check_quantity(
    data: MediationData,
    kind: str,
    gap: float,
    interventional: Estimate,
    *,
    label: str = "",
    treatment: str = "",
    mediators: tuple[str, ...] = (),
    seed: int = 0,
    simulations: int = SIMULATIONS,
    note: str = "",
) -> QuantityCheck:
    """DoWhy's estimate of ``kind`` from ``data``, converted to a fraction of G (an ablation
    lowers the metric, so the fraction is ``-effect / G``), compared with ``interventional``.

    >>> y0 = np.linspace(1, 2, 20)
    >>> d = MediationData(y0, y0 - 1.0)
    >>> e = Estimate("total(a)", 1.0, 0.98, 1.02, 0.95, np.ones(20), np.ones(10))
    >>> c = check_quantity(d, "total", 1.0, e, simulations=5)
    >>> (round(c.dowhy, 6), c.agrees)
    (1.0, True)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown mediation quantity {kind!r}; valid: {', '.join(KINDS)}")
    if kind != "total" and data.m0 is None:
        kind_used, note = "total", note or f"no mediator: {kind} equals total here"
    else:
        kind_used = kind
    if data.m0 is not None and data.m1 is not None:
        t = np.r_[np.zeros(len(data.m0)), np.ones(len(data.m1))]
        design = np.c_[np.ones(len(t)), t, np.r_[data.m0, data.m1]]
        if np.linalg.matrix_rank(design) < 3:
            note = "; ".join(x for x in (note, RANK_NOTE) if x)
    with quiet_dowhy():
        frame = data.frame()  # inside: its labels as Python strings (stats/frames.py)
        value, identified, estimate = _fit(frame, kind_used)
        refutations = _refute(frame, kind_used, identified, estimate, gap, seed, simulations)
    dowhy = -value / gap
    tol = tolerance(interventional)
    diff = abs(dowhy - interventional.point)
    estimand, _, method = _ESTIMAND[kind_used]
    return QuantityCheck(
        label=label,
        kind=kind,
        estimand=estimand,
        method=method,
        treatment=treatment,
        mediators=mediators,
        dowhy=dowhy,
        interventional=interventional.point,
        interventional_ci=(interventional.lower, interventional.upper),
        difference=diff,
        tolerance=tol,
        agrees=bool(diff <= tol),
        refutations=refutations,
        rows=len(frame),
        note=note,
    )


# Data from the engine ----------------------------------------------------------------------
def targets(hyp: ResolvedHypothesis) -> list[Target]:
    """The file's indirect / direct / total claims, one target per distinct quantity."""
    out: dict[str, Target] = {}
    for rc in hyp.claims:
        kind = rc.claim.quantity
        if kind not in KINDS:
            continue
        a = rc.sites[0]
        if kind == "indirect":
            meds: tuple[Site, ...] = (rc.sites[1],)
        elif kind == "direct":
            meds = mediators_of(hyp, a)
        else:
            meds = ()
        label = claim_label(hyp, rc)
        out.setdefault(label, Target(label, kind, a, meds))
    return list(out.values())


def _ablate_key(a: Site) -> str:
    return f"xcheck|ablate|{format_site(a)}|{a.pos}"


def _stages(tgts: list[Target], ablation: str) -> tuple[dict, dict]:
    """One condition per sender with it ablated (recording its mediators' hooks), then one
    clean condition per mediator set with those hooks set to the recordings."""
    src = ABLATION_SOURCE[ablation]
    hooks: dict[Site, set[str]] = {}
    for t in tgts:
        hooks.setdefault(t.treatment, set()).update(hook_point(m).name for m in t.mediators)
    stage0 = {}
    for a, hs in hooks.items():
        key = _ablate_key(a)
        ablated = Condition("clean", site_patches([a], src), label=key)
        record = tuple((record_key(ablated, h), h) for h in sorted(hs))
        stage0[key] = replace(ablated, record=record)
    stage1 = {}
    for t in tgts:
        if t.mediators:
            stage1[_mediator_key(t)] = _mediator_condition(t, src)
    return stage0, stage1


def declare_runs(hyp: ResolvedHypothesis, runs) -> None:
    """Declare what :func:`crosscheck` reads; gated: it runs only on a decidable file."""
    tgts = targets(hyp)
    if tgts:
        stage0, stage1 = _stages(tgts, hyp.spec.ablation)
        runs.declare("DoWhy cross-check", [*stage0.values(), *stage1.values()], gated=True)


def collect(
    tgts: list[Target],
    model: LoadedModel,
    task: Task,
    *,
    ablation: str,
    metric_name: str,
    max_rows: int = 256,
    cache=None,
) -> dict[str, MediationData]:
    """Run the interventions behind every target's frame: one pass per sender with it
    ablated (recording its mediators' hooks), then one clean pass per mediator set with
    those hooks set to the recordings."""
    stage0, stage1 = _stages(tgts, ablation)
    engine = Engine(model, max_rows=max_rows, cache=cache)
    fn = metric(metric_name)
    r0 = engine.run(task, list(stage0.values()), fn)
    values = dict(zip(stage0, r0.values, strict=True))
    if stage1:
        r1 = engine.run(task, list(stage1.values()), fn, recorded=r0.recorded)
        values.update(zip(stage1, r1.values, strict=True))
    out = {}
    for t in tgts:
        y1 = values[_ablate_key(t.treatment)]
        if t.mediators:
            out[t.label] = MediationData(r0.clean, y1, r0.clean, values[_mediator_key(t)])
        else:
            out[t.label] = MediationData(r0.clean, y1)
    return out


def _mediator_key(t: Target) -> str:
    return "xcheck|mediators|" + _ablate_key(t.treatment) + "|" + "|".join(map(str, t.mediators))


def _mediator_condition(t: Target, src: str) -> Condition:
    """Clean input; every mediator's cells set to its value recorded under the ablation."""
    cells: dict[str, set] = {}
    for m in t.mediators:
        cells.setdefault(hook_point(m).name, set()).update(cells_of(m))
    ablated = Condition("clean", site_patches([t.treatment], src))
    patches = tuple(
        Patch.from_recording(h, record_key(ablated, h), c) for h, c in sorted(cells.items())
    )
    return Condition("clean", patches, label=_mediator_key(t))


def _note(t: Target, hyp: ResolvedHypothesis) -> str:
    if len(t.mediators) > 1:
        names = ", ".join(hyp.name_of(m) for m in t.mediators)
        return (
            f"{len(t.mediators)} mediators ({names}): DoWhy's two-stage regression takes one "
            "mediator, so they enter as one scalar (the metric with all of them set to their "
            f"values under the ablation of {hyp.name_of(t.treatment)}); DoWhy cannot split "
            "the effect among them"
        )
    if t.kind == "direct" and not t.mediators:
        return "no declared mediators: the direct effect is the total effect (linear regression)"
    return ""


def crosscheck(
    hyp: ResolvedHypothesis,
    model: LoadedModel,
    task: Task,
    measurement: Measurement,
    *,
    max_rows: int = 256,
    simulations: int = SIMULATIONS,
    cache=None,
) -> CrossCheck:
    """Cross-check every indirect / direct / total claim of ``hyp`` with DoWhy.

    Seeded by the task seed (placebo permutations, data subsets); the interventional
    estimates come from ``measurement``. Example::

        m = measure(hyp, model, task)
        cc = crosscheck(hyp, model, task, m)
        cc.disagreements  # labels whose estimates differ beyond tolerance
    """
    tgts = targets(hyp)
    if not tgts:
        return CrossCheck.skipped(NO_CLAIMS)
    gate = measurement.gap_estimate
    if gate is not None and not gate.decidable:
        return CrossCheck.skipped(f"not decidable: {gate.reason}")
    gap = measurement.gap
    if not math.isfinite(gap) or abs(gap) < 1e-9:
        return CrossCheck.skipped("not decidable: G is zero, no fraction of G is defined")
    spec = hyp.spec
    data = collect(
        tgts,
        model,
        task,
        ablation=spec.ablation,
        metric_name=spec.metric,
        max_rows=max_rows,
        cache=cache,
    )
    seed = spec.task.seed
    checks = []
    for t in tgts:
        checks.append(
            check_quantity(
                data[t.label],
                t.kind,
                gap,
                measurement.estimates[t.label],
                label=t.label,
                treatment=format_site(t.treatment),
                mediators=tuple(format_site(m) for m in t.mediators),
                seed=seed,
                simulations=simulations,
                note=_note(t, hyp),
            )
        )
    notes = []
    bad = [c.label for c in checks if not c.agrees]
    if bad:
        notes.append(
            "DoWhy's linear estimate differs from the interventional one beyond tolerance for "
            + ", ".join(bad)
            + ": the mediation is not linear-additive there (an interaction between the "
            "direct and mediated paths, or a mediator whose effect varies across examples); "
            "the interventional estimate is the measurement, verdicts are unchanged"
        )
    return CrossCheck(
        True, checks=tuple(checks), notes=tuple(notes), seed=seed, simulations=simulations
    )


__all__ = [
    "CrossCheck",
    "MediationData",
    "QuantityCheck",
    "Refutation",
    "check_quantity",
    "collect",
    "crosscheck",
    "targets",
    "tolerance",
]
