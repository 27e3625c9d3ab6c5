"""Each SPEC 3 quantity equals a brute-force computation with the hand-written forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causal_mi.effects import quantities as Q
from causal_mi.engine.metrics import metric
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params
from tests.engine import reference


@pytest.fixture(scope="module")
def setup(mlp_model):
    gen = GENERATORS["repeated_tokens"]
    task = Task("t", tuple(gen.make(mlp_model.tokens, 10, 5, resolved_params(gen, {}))))
    clean = torch.tensor([e.clean for e in task.examples])
    corrupt = torch.tensor([e.corrupt for e in task.examples])
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])
    rec_corrupt = reference.record(mlp_model.bridge, corrupt)
    rec_clean = reference.record(mlp_model.bridge, clean)

    def ld(tokens, patch=None):
        logits = reference.forward(mlp_model.bridge, tokens, patch)[:, -1]
        rows = torch.arange(len(tokens))
        return (logits[rows, ans] - logits[rows, wrong]).numpy()

    return mlp_model, task, clean, corrupt, rec_clean, rec_corrupt, ld


def _run(model, task, q: Q.Quantity) -> np.ndarray:
    """The quantity's per-example numerator, run the way the measurement pipeline runs it."""
    fn = metric("logit_diff")
    eng = Engine(model, max_rows=64)
    stage0 = {**(q.prerequisites or {}), **({} if q.stage else q.conditions)}
    r0 = eng.run(task, list(stage0.values()), fn)
    values = dict(zip(stage0, r0.values, strict=True))
    if q.stage:
        r1 = eng.run(task, list(q.conditions.values()), fn, recorded=r0.recorded)
        values.update(zip(q.conditions, r1.values, strict=True))
    return q.numerator(r0.clean, r0.corrupt, values)


def _setter(point, layer, head, value):
    def patch(p, lyr, v):
        if (p, lyr) != (point, layer):
            return v
        v = v.clone()
        if head is None:
            v[:] = value
        else:
            v[:, :, head] = value[:, :, head]
        return v

    return patch


def _chain(*patches):
    def patch(p, lyr, v):
        for f in patches:
            v = f(p, lyr, v)
        return v

    return patch


def test_effect_and_restore(setup):
    model, task, clean, corrupt, rc, rx, ld = setup
    base = ld(clean)
    abl = ld(clean, _setter("z", 1, 3, rx[("z", 1)]))
    np.testing.assert_allclose(
        _run(model, task, Q.effect(parse_site("L1H3"), "resample")), base - abl, atol=1e-4
    )
    res = ld(corrupt, _setter("z", 1, 3, rc[("z", 1)]))
    np.testing.assert_allclose(
        _run(model, task, Q.restore(parse_site("L1H3"))), res - ld(corrupt), atol=1e-4
    )


def test_faithfulness_and_complement(setup):
    model, task, clean, corrupt, rc, rx, ld = setup
    circuit = (parse_site("L0H1"), parse_site("L1H3"), parse_site("L1.mlp"))
    # circuit only: every other head and the L0 MLP take their corrupt values
    keep = {0: [1], 1: [3]}

    def outside(p, lyr, v):
        if p == "z":
            v = v.clone()
            for h in range(4):
                if h not in keep[lyr]:
                    v[:, :, h] = rx[("z", lyr)][:, :, h]
        if p == "mlp_out" and lyr == 0:
            return rx[("mlp_out", 0)].clone()
        return v

    got = _run(model, task, Q.faithfulness(circuit, model.dims, "resample"))
    np.testing.assert_allclose(got, ld(clean, outside) - ld(corrupt), atol=1e-4)
    inside = _chain(
        _setter("z", 0, 1, rx[("z", 0)]),
        _setter("z", 1, 3, rx[("z", 1)]),
        _setter("mlp_out", 1, None, rx[("mlp_out", 1)]),
    )
    got = _run(model, task, Q.complement(circuit, "resample"))
    np.testing.assert_allclose(got, ld(clean, inside) - ld(corrupt), atol=1e-4)


def test_minimality(setup):
    model, task, clean, corrupt, rc, rx, ld = setup
    circuit = (parse_site("L0H1"), parse_site("L1H3"))
    full = _run(model, task, Q.faithfulness(circuit, model.dims, "zero"))
    less = _run(model, task, Q.faithfulness(circuit[1:], model.dims, "zero"))
    got = _run(model, task, Q.minimality(circuit, circuit[0], model.dims, "zero", "m"))
    np.testing.assert_allclose(got, full - less, atol=1e-6)


def test_indirect_through_key_input(setup):
    model, task, clean, corrupt, rc, rx, ld = setup
    # b(a*): keys of L1H3 when L0H1 is ablated
    rec = {}

    def capture(p, lyr, v):
        v = _setter("z", 0, 1, rx[("z", 0)])(p, lyr, v)
        if (p, lyr) == ("k", 1):
            rec["k"] = v.clone()
        return v

    reference.forward(model.bridge, clean, capture)
    want = ld(clean) - ld(clean, _setter("k", 1, 3, rec["k"]))
    got = _run(model, task, Q.indirect(parse_site("L0H1"), parse_site("L1H3.k"), "resample", "i"))
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(want).max() > 1e-3


def test_direct_holds_mediators_clean(setup):
    model, task, clean, corrupt, rc, rx, ld = setup
    a, med = parse_site("L0H1"), parse_site("L1H3")
    patch = _chain(_setter("z", 0, 1, rx[("z", 0)]), _setter("z", 1, 3, rc[("z", 1)]))
    want = ld(clean) - ld(clean, patch)
    got = _run(model, task, Q.direct(a, (med,), "resample", "d"))
    np.testing.assert_allclose(got, want, atol=1e-4)
    # Not the same as the total effect: holding the mediator changes the answer.
    total = _run(model, task, Q.effect(a, "resample"))
    assert np.abs(total - got).max() > 1e-4


def test_edge_minimality_of_a_positioned_node_drops_its_edges():
    """minimality(n) with edges drops every edge touching n's component, whatever positions
    the node names (a positioned node once dropped nothing, so minimality read 0)."""
    from causal_mi.spec.resolve import ModelDims
    from causal_mi.spec.sites import Kind, Site

    dims = ModelDims(n_layers=2, n_heads=4, d_mlp=0, attn_only=True)
    edges = (
        (Site(Kind.EMBED), Site(Kind.HEAD_INPUT, 1, 3, channel="q")),
        (Site(Kind.HEAD, 0, 1), Site(Kind.HEAD_INPUT, 1, 3, channel="k")),
        (Site(Kind.HEAD, 1, 3), Site(Kind.LOGITS)),
    )
    whole = Q.minimality_edges(edges, Site(Kind.HEAD, 1, 3), dims, "resample", "m")
    at_last = Q.minimality_edges(edges, Site(Kind.HEAD, 1, 3, pos=(-1,)), dims, "resample", "m")
    assert len(whole.conditions) == 2  # the full circuit and the circuit without L1H3's edges
    assert set(at_last.conditions) == set(whole.conditions)


def test_quantities_are_data(mlp_model):
    """A quantity prints, and its digest is its content: labels are not identity, another
    site or ablation is another quantity; the numerator is data, not code."""
    import dataclasses
    import pickle

    dims = mlp_model.dims
    a, b = parse_site("L0H1"), parse_site("L1.mlp")
    q = Q.indirect(a, b, "resample", "one name")
    same = Q.indirect(a, b, "resample", "another name")
    assert q.digest() == same.digest()
    assert q.digest() != Q.indirect(a, b, "zero", "one name").digest()
    assert Q.effect(a, "mean").digest() != Q.restore(a).digest()
    f = Q.faithfulness((a, b), dims, "resample")
    assert str(f.numerator) == f"m({next(iter(f.conditions))}) - m(corrupt)"
    assert isinstance(q.numerator, Q.Numerator) and dataclasses.is_dataclass(q.numerator)
    assert pickle.loads(pickle.dumps(q.numerator)) == q.numerator  # no closure inside
    relabelled = dataclasses.replace(
        f, conditions={k: dataclasses.replace(c, label="x") for k, c in f.conditions.items()}
    )
    assert relabelled.digest() == f.digest()
    assert "Numerator(plus=" in repr(q)
