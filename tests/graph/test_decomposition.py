"""Mediation decomposition: the four-way identity holds exactly on every zoo file with
mediation claims, and on handmade-mediation every term equals the value computed from the
construction's formulas (no model), so the interaction term is non-zero exactly where the
construction has one (M1 feeds the ReLU together with the treatment; M2 does not)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from causal_mi.zoo import mediation as Z
from tests.graph.conftest import MEDIATION, ZOO


def _relu(x):
    return np.maximum(0.0, x)


def _reference(rows):
    """Y(t, m1, m2) from the construction: t + m1 + m2 + 2 relu(t + m1 - 1.2), with the
    treatment's (L0H0) and the mediators' ablated values taken from the corrupt prompt."""

    def vals(prompt):
        x, u, v, _ = prompt.split()
        return Z.value(x), Z.value(u), Z.value(v)

    clean = np.array([vals(r["clean"]) for r in rows])
    corrupt = np.array([vals(r["corrupt"]) for r in rows])
    f, u, v = clean.T
    f2, u2, v2 = corrupt.T

    def y(t, m1, m2):
        return t + m1 + m2 + Z.Y_GAIN * _relu(t + m1 - Z.THRESHOLD)

    return f, u, v, f2, u2, v2, y


def test_terms_match_the_construction(analysed):
    rows = [json.loads(x) for x in (MEDIATION / "pairs.jsonl").read_text().splitlines()]
    f, u, v, f2, u2, v2, y = _reference(rows)
    gap = (y(f, f + u, f + v) - y(f2, f2 + u2, f2 + v2)).mean()
    _, r = analysed(MEDIATION / "true.yaml")
    decs = {d.mediators: d for d in r.decompositions}
    # mediator M1 alone: M2 (and the ReLU) follow the treatment as usual
    y00 = y(f, f + u, f + v)
    y11 = y(f2, f2 + u, f2 + v)
    y10 = y(f2, f + u, f2 + v)  # M1 held clean
    y01 = y(f, f2 + u, f + v)  # M1 as under the ablation
    y1s = y(f2, f2 + u2, f2 + v)  # M1 ablated itself (the reference level)
    y0s = y(f, f2 + u2, f + v)
    want = {
        "CDE": y0s - y1s,
        "INTref": (y00 - y10) - (y0s - y1s),
        "INTmed": y10 + y01 - y00 - y11,
        "PIE": y00 - y01,
    }
    d = decs[("M1",)]
    for term, num in want.items():
        assert d.terms[term].point == pytest.approx(num.mean() / gap, abs=1e-4), term
    assert abs(d.terms["INTmed"].point) > 0.1 and abs(d.terms["INTref"].point) > 0.1
    for meds in (("M2",), ("M1", "M2", "mix")):  # additive in the treatment: no interaction
        for term in ("INTref", "INTmed"):
            assert abs(decs[meds].terms[term].point) < 1e-5, (meds, term)


def test_path_specific_effects_match_the_construction(analysed):
    rows = [json.loads(x) for x in (MEDIATION / "pairs.jsonl").read_text().splitlines()]
    f, u, v, f2, u2, v2, y = _reference(rows)
    gap = (y(f, f + u, f + v) - y(f2, f2 + u2, f2 + v2)).mean()
    _, r = analysed(MEDIATION / "true.yaml")
    paths = {p.chain: p.estimate.point for p in r.paths}
    # T -> M2 -> logits: only m2 sees the ablated treatment
    assert paths[("T", "M2", "logits")] == pytest.approx((f - f2).mean() / gap, abs=1e-4)
    # T -> logits: only the direct read of t
    assert paths[("T", "logits")] == pytest.approx((f - f2).mean() / gap, abs=1e-4)
    # T -> mix -> logits: the ReLU sees the ablated t, m1 clean
    relu = Z.Y_GAIN * (_relu(2 * f + u - 1.2) - _relu(f2 + f + u - 1.2))
    assert paths[("T", "mix", "logits")] == pytest.approx(relu.mean() / gap, abs=1e-4)


@pytest.mark.parametrize(
    "path",
    [MEDIATION / "true.yaml", ZOO / "handmade-induction" / "true.yaml"],
    ids=lambda p: p.parent.name,
)
def test_identity_is_exact(analysed, path):
    m, r = analysed(path)
    assert r.decompositions
    for d in r.decompositions:
        assert d.identity_error <= 1e-6
        total = sum(d.terms[t].point for t in d.terms)
        assert total == pytest.approx(d.total.point, abs=1e-6)
        # the total is the measured effect of the treatment (same condition, same examples)
        assert d.total.point == pytest.approx(
            m.estimates[f"effect({_site(d, path)})"].point, abs=1e-5
        )


def _site(d, path):
    from causal_mi.spec.loader import load_hypothesis

    return str(load_hypothesis(path).nodes[d.treatment])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["boolean-logic", "induction-2l", "ioi-names", "occupation-bias"])
def test_identity_is_exact_on_the_trained_zoo(analysed, name):
    _, r = analysed(ZOO / name / "true.yaml")
    for d in r.decompositions:
        assert d.identity_holds, (d.treatment, d.mediators, d.identity_error)


def test_a_recording_is_addressed_by_what_recorded_it(tmp_path):
    """Two files whose decompositions read recordings of different treatments through the
    same mediators share a persistent run cache: the second must equal a run without one
    (recordings named by position in the file, not by content, would be read across)."""
    import shutil

    from causal_mi import pipeline
    from causal_mi.engine.cache import RunCache
    from causal_mi.graph.decomposition import decompose

    shutil.copy(MEDIATION / "pairs.jsonl", tmp_path / "pairs.jsonl")
    text = (MEDIATION / "true.yaml").read_text().replace("n: 200", "n: 24")
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text.replace("T: L0H0", "T: L0H1"))

    def run(name: str, cache: RunCache):
        prep = pipeline.prepare(tmp_path / name)
        decs, paths, _, _ = decompose(prep.hypothesis, prep.model, prep.task, cache=cache)
        terms = [{k: e.point for k, e in d.terms.items()} for d in decs]
        return terms, [p.estimate.point for p in paths]

    shared = RunCache(tmp_path / "cache")
    run("a.yaml", shared)
    assert run("b.yaml", RunCache(tmp_path / "cache")) == run("b.yaml", RunCache(None))
