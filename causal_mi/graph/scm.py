"""The declared graph as a structural causal model (DoWhy ``gcm``) and its abstraction
accuracy: does the model fitted on *observational* runs predict the *interventions*?

``InvertibleStructuralCausalModel`` (a ``StructuralCausalModel`` whose noise can be
inferred, which counterfactuals need) over the node variables (:mod:`causal_mi.graph.nodes`),
mechanisms assigned automatically (:func:`assign_fast`, or DoWhy's
``gcm.auto.assign_causal_mechanisms`` with ``quality="good"``) and fitted with ``gcm.fit`` on
the clean and corrupt runs (no intervention is shown to it). Then, per clean example, Pearl's
three steps
(``gcm.counterfactual_samples``: noise inferred from the example's clean run, the
intervention applied, the effects propagated through the fitted mechanisms):

- ``effect(a)`` / ``total(a)``: ``do(a := a's value in the run with a ablated)``;
- ``indirect(a -> b -> logits)``: ``b`` is first predicted under ``a``'s ablation, then
  ``do(b := that value)`` with ``a`` clean;
- ``direct(a -> logits)``: ``do(a := ablated, mediators := their clean values)``.

Each prediction, a fraction of G like the measurement, is compared with the interventional
estimate: the *abstraction error*. Tolerance ``max(ABSTRACTION_FLOOR, 2 x the half-width of
the interventional interval)``. ``gcm.evaluate_causal_model`` reports how well each fitted
mechanism predicts its node (R2 by 3-fold cross-validation on 120 random observational
rows); a data-subset refuter refits on a
random 80% of the rows and reports how far the predictions move.

Interventions in DoWhy are functions of a node's value, applied row by row in order; a
per-example value is given by :class:`PerRow`, which hands out the examples' values in that
order (and checks that all were used).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from causal_mi.effects.measure import Measurement, claim_label, mediators_of
from causal_mi.effects.quantities import quantity_label
from causal_mi.graph.nodes import CLEAN, LOGITS, NodeData, do
from causal_mi.spec.resolve import ResolvedHypothesis
from causal_mi.spec.sites import Site, format_site
from causal_mi.stats.frames import object_labels

ABSTRACTION_FLOOR = 0.1  # fraction of G
TOLERANCE_RULE = "max(0.1, 2 x the half-width of the interventional interval), fraction of G"
SUBSET_FRACTION = 0.8
POLY_DEGREE = 3
EVAL_ROWS = 120  # rows evaluate_causal_model reads (its CRPS draws samples row by row:
# ~20 ms a row here; its own max_num_samples fails under pandas 3)
KFOLDS = 3  # cross-validation folds of evaluate_causal_model (in-process: n_jobs=1, since
# DoWhy's default process pool costs ~20 s of start-up per call here)


@dataclass(frozen=True)
class Prediction:
    """One effect predicted by the fitted SCM next to its interventional measurement."""

    label: str  # the measurement's label
    kind: str  # effect | indirect | direct
    predicted: float
    measured: float
    measured_ci: tuple[float, float]
    error: float  # predicted - measured
    tolerance: float
    subset_predicted: float  # the data-subset refuter's prediction
    informative: bool = True  # every node variable involved separates clean from corrupt

    @property
    def within(self) -> bool:
        return abs(self.error) <= self.tolerance


@dataclass(frozen=True)
class Abstraction:
    """The abstraction-accuracy table and DoWhy's evaluation of the fitted mechanisms."""

    predictions: tuple[Prediction, ...]
    mechanisms: dict[str, str]  # vertex -> DoWhy mechanism
    r2: dict[str, float]  # vertex -> cross-validated R2 (evaluate_causal_model)
    rows: int
    notes: tuple[str, ...] = ()

    @property
    def poorly_predicted(self) -> tuple[str, ...]:
        return tuple(p.label for p in self.predictions if not p.within)


class PerRow:
    """A DoWhy intervention setting row i to ``values[i]`` (rows are visited in order)."""

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values, dtype=float)
        self.used = 0

    def __call__(self, _: float) -> float:
        v = float(self.values[self.used])
        self.used += 1
        return v


@contextmanager
def quiet_gcm() -> Iterator[None]:
    """DoWhy's known noise, filtered by name: pandas 3's Pandas4Warning, sklearn/scipy
    convergence chatter, and gcm's progress logging."""
    import importlib

    log = logging.getLogger("dowhy")
    level = log.level
    with warnings.catch_warnings():
        for module, name in (
            ("pandas.errors", "Pandas4Warning"),
            ("sklearn.exceptions", "ConvergenceWarning"),
        ):
            category = getattr(importlib.import_module(module), name, None)
            if category is not None:
                warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"(scipy|sklearn)\.")
        log.setLevel(logging.ERROR)
        try:
            from dowhy import gcm

            gcm.config.disable_progress_bars()
            jobs, gcm.config.default_n_jobs = gcm.config.default_n_jobs, 1
            try:
                with object_labels():  # frames made inside: Python-string labels
                    yield
            finally:
                gcm.config.default_n_jobs = jobs
        finally:
            log.setLevel(level)


def _fit(data: NodeData, frame, quality: str = "fast"):
    import networkx as nx
    from dowhy import gcm

    g = nx.DiGraph()
    g.add_nodes_from(data.graph.names)
    g.add_edges_from(data.graph.edges)
    scm = gcm.InvertibleStructuralCausalModel(g)
    if quality == "good":
        gcm.auto.assign_causal_mechanisms(scm, frame, quality=gcm.auto.AssignmentQuality.GOOD)
    else:
        assign_fast(scm, frame)
    gcm.fit(scm, frame)
    return scm


def refit(scm, frame):
    """A copy of ``scm`` with the same mechanism choices, fitted on ``frame``."""
    from dowhy import gcm

    other = gcm.InvertibleStructuralCausalModel(scm.graph.copy())
    for node in scm.graph.nodes:
        other.set_causal_mechanism(node, scm.causal_mechanism(node).clone())
    gcm.fit(other, frame)
    return other


def assign_fast(scm, frame) -> None:
    """Automatic assignment at a fraction of ``AssignmentQuality.GOOD``'s cost: roots get
    DoWhy's empirical distribution; every other node an additive noise model whose regressor
    is linear where DoWhy's own test (``gcm.auto.has_linear_relationship``) finds the
    relation linear, and a degree-``POLY_DEGREE`` polynomial otherwise. (GOOD selects
    between linear and HistGradientBoosting by 5-fold cross-validation: ~25 s for six
    nodes on two cores, against well under a second here.)"""
    from dowhy import gcm

    for node in scm.graph.nodes:
        parents = list(scm.graph.predecessors(node))
        if not parents:
            scm.set_causal_mechanism(node, gcm.EmpiricalDistribution())
            continue
        X, y = frame[parents].to_numpy(), frame[node].to_numpy()
        if gcm.auto.has_linear_relationship(X, y):
            model = gcm.ml.create_linear_regressor()
        else:
            model = gcm.ml.create_polynom_regressor(degree=POLY_DEGREE)
        scm.set_causal_mechanism(node, gcm.AdditiveNoiseModel(model))


def _frame(data: NodeData, rows: np.ndarray):
    import pandas as pd

    obs = data.observational(rows)
    return pd.DataFrame({n: obs[:, j].astype(float) for j, n in enumerate(data.graph.names)})


def _counterfactual(scm, clean, interventions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from dowhy import gcm

    fns = {k: PerRow(v) for k, v in interventions.items()}
    out = gcm.counterfactual_samples(scm, fns, observed_data=clean)
    for f in fns.values():
        if f.used != len(clean):
            raise RuntimeError("DoWhy did not apply a per-row intervention row by row")
    return {c: out[c].to_numpy() for c in out.columns}


def _vertex(data: NodeData, site: Site) -> str | None:
    comp = site.component().without_pos()
    for name, s in data.graph.sites.items():
        if s.without_pos() == comp:
            return name
    return None


def _targets(hyp: ResolvedHypothesis, data: NodeData) -> list[tuple[str, str, list[str]]]:
    """(measurement label, kind, vertices) for each claim on graph vertices and each node's
    effect; kinds: effect (a), indirect (a, b), direct (a, mediators...)."""
    out: dict[str, tuple[str, str, list[str]]] = {}
    for rc in hyp.claims:
        q = rc.claim.quantity
        if q not in ("effect", "total", "indirect", "direct"):
            continue
        names = [_vertex(data, s) for s in rc.sites if format_site(s) != LOGITS]
        if any(n is None for n in names):
            continue
        label = claim_label(hyp, rc)
        if q == "direct":
            meds = [_vertex(data, s) for s in mediators_of(hyp, rc.sites[0])]
            names += [m for m in meds if m is not None and m not in names]
        out.setdefault(label, (label, "effect" if q == "total" else q, names))  # type: ignore[arg-type]
    for name, site in data.graph.sites.items():
        label = quantity_label("effect", (site,))
        out.setdefault(label, (label, "effect", [name]))
    return list(out.values())


def _predict(scm, data: NodeData, clean, kind: str, names: list[str], gap: float) -> float:
    y0 = clean[LOGITS].to_numpy()
    a = names[0]
    ablated = data.column(do(a), a)
    if kind == "effect":
        y1 = _counterfactual(scm, clean, {a: ablated})[LOGITS]
    elif kind == "indirect":
        b = names[1]
        b1 = _counterfactual(scm, clean, {a: ablated})[b]
        y1 = _counterfactual(scm, clean, {b: b1})[LOGITS]
    else:  # direct: mediators held at their clean values
        held = {m: clean[m].to_numpy() for m in names[1:]}
        y1 = _counterfactual(scm, clean, {a: ablated, **held})[LOGITS]
    return float((y0 - y1).mean() / gap)


def abstraction(
    hyp: ResolvedHypothesis, data: NodeData, m: Measurement, *, seed: int = 0
) -> Abstraction:
    """Fit the SCM on the observational runs and compare its predictions with ``m``."""
    import pandas as pd
    from dowhy import gcm

    n = data.runs[CLEAN].shape[0]
    everyone = np.arange(n)
    with quiet_gcm():
        gcm.util.general.set_random_seed(seed)
        frame = _frame(data, everyone)
        scm = _fit(data, frame)
        rng = np.random.default_rng(seed)
        subset = np.sort(rng.choice(n, size=max(2, int(SUBSET_FRACTION * n)), replace=False))
        scm_subset = refit(scm, _frame(data, subset))
        clean = pd.DataFrame({c: data.column(CLEAN, c) for c in data.graph.names})
        preds = []
        for label, kind, names in _targets(hyp, data):
            est = m.estimates.get(label)
            if est is None:
                continue
            p = _predict(scm, data, clean, kind, names, m.gap)
            ps = _predict(scm_subset, data, clean, kind, names, m.gap)
            tol = max(ABSTRACTION_FLOOR, (est.upper - est.lower))  # 2 x half-width
            preds.append(
                Prediction(
                    label,
                    kind,
                    p,
                    est.point,
                    (est.lower, est.upper),
                    p - est.point,
                    tol,
                    ps,
                    all(data.informative(x) for x in names),
                )
            )
        from dowhy.gcm.model_evaluation import EvaluateCausalModelConfig

        rows = rng.choice(len(frame), size=min(EVAL_ROWS, len(frame)), replace=False)
        evaluation = gcm.evaluate_causal_model(
            scm,
            frame.iloc[np.sort(rows)].reset_index(drop=True),
            config=EvaluateCausalModelConfig(mechanism_evaluation_kfolds=KFOLDS, n_jobs=1),
            compare_mechanism_baselines=False,
            evaluate_invertibility_assumptions=False,
            evaluate_overall_kl_divergence=False,
            evaluate_causal_structure=False,
        )
    r2 = {
        str(k): float(v.r2)
        for k, v in (evaluation.mechanism_performances or {}).items()
        if v.r2 is not None
    }
    mechanisms = {n: type(scm.causal_mechanism(n)).__name__ for n in data.graph.names}
    return Abstraction(tuple(preds), mechanisms, r2, len(frame))
