"""Path patching: the engine's own forward pass and edge-level interventions against the
bridge, the hook engine and a hand-written reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causal_mi.effects import quantities as Q
from causal_mi.engine.functional import EdgeMasks, forward, n_senders
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, EdgePlan, sender_index, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.models.weights import extract
from causal_mi.spec.sites import Kind, Site, parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params
from tests.engine import reference


def _task(model, n=10, seed=2) -> Task:
    gen = GENERATORS["repeated_tokens"]
    return Task("t", tuple(gen.make(model.tokens, n, seed, resolved_params(gen, {}))))


@pytest.fixture(scope="module")
def gpt2_model(gpt2_dir):
    from causal_mi.models.loading import load_model

    return load_model(f"path:{gpt2_dir}")


@pytest.mark.parametrize("which", ["mlp_model", "attn_model", "gpt2_model"])
def test_functional_forward_equals_bridge(which, request):
    model = request.getfixturevalue(which)
    toks = torch.tensor([e.clean for e in _task(model).examples])
    w = extract(model.bridge)
    with torch.no_grad():
        want = model.bridge(toks)[:, -1]
        got = forward(w, toks).logits
    assert torch.allclose(got, want, atol=1e-4)


def test_every_edge_ablated_is_the_corrupt_run(mlp_model):
    task = _task(mlp_model)
    w = extract(mlp_model.bridge)
    clean = torch.tensor([e.clean for e in task.examples])
    corrupt = torch.tensor([e.corrupt for e in task.examples])
    with torch.no_grad():
        c = forward(w, corrupt)
        masks = EdgeMasks.none(w, len(task))
        for t in (masks.head_in, masks.mlp_in, masks.logits):
            t[:] = True
        got = forward(w, clean, masks, c.senders).logits
    assert torch.allclose(got, c.logits, atol=1e-5)


def _all_edges_from(sender: Site, dims) -> frozenset:
    """Every (sender, receiver) edge of the model graph leaving ``sender``."""
    s = sender_index(sender, dims)
    rcv = [("logits",)]
    for layer in range(dims.n_layers):
        if layer > sender.layer:
            rcv += [(c, layer, h) for c in "qkv" for h in range(dims.n_heads)]
        if not dims.attn_only and layer >= sender.layer:
            rcv.append(("mlp", layer))
    return frozenset((s, r) for r in rcv)


@pytest.mark.parametrize("site", ["L0H1", "L0.mlp", "L1H2"])
def test_ablating_every_out_edge_equals_node_ablation(mlp_model, site):
    task = _task(mlp_model)
    sender = parse_site(site)
    fn = metric("logit_diff")
    edges = Condition(
        "clean",
        edges=EdgePlan(_all_edges_from(sender, mlp_model.dims), "corrupt", complement=False),
    )
    node = Condition("clean", site_patches([sender], "corrupt"))
    r = Engine(mlp_model).run(task, [edges, node], fn)
    np.testing.assert_allclose(r.values[0], r.values[1], atol=1e-4)
    assert np.abs(r.values[1] - r.clean).max() > 1e-3


def test_single_path_patch_matches_hand_reference(mlp_model):
    """Swap L0H1's term only in L1H3's key input; everything else clean."""
    task = _task(mlp_model)
    b = mlp_model.bridge
    clean = torch.tensor([e.clean for e in task.examples])
    corrupt = torch.tensor([e.corrupt for e in task.examples])
    sd = {k: v.double() for k, v in b.state_dict().items()}
    rc, rx = reference.record(b, clean), reference.record(b, corrupt)
    d_head = b.cfg.d_head
    w_o = sd["blocks.0.attn.o.weight"][:, 1 * d_head : 2 * d_head]  # [d_model, d_head]
    delta = (rc[("z", 0)][:, :, 1] - rx[("z", 0)][:, :, 1]) @ w_o.T  # head 1's term change
    x = rc[("resid_pre", 1)] - delta
    x = x - x.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + b.cfg.eps).sqrt()
    x = x * sd["blocks.1.ln1.weight"] + sd["blocks.1.ln1.bias"]
    k3 = x @ sd["blocks.1.attn.k.weight"][3 * d_head : 4 * d_head].T
    k3 = k3 + sd["blocks.1.attn.k.bias"][3 * d_head : 4 * d_head]

    def patch(p, layer, v):
        if (p, layer) == ("k", 1):
            v = v.clone()
            v[:, :, 3] = k3
        return v

    logits = reference.forward(b, clean, patch)[:, -1]
    rows = torch.arange(len(task))
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])
    want = (logits[rows, ans] - logits[rows, wrong]).numpy()
    edge = (sender_index(parse_site("L0H1"), mlp_model.dims), ("k", 1, 3))
    cond = Condition("clean", edges=EdgePlan(frozenset({edge}), "corrupt", complement=False))
    got = Engine(mlp_model).run(task, [cond], metric("logit_diff")).values[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.abs(want - rc_metric(b, clean, ans, wrong)).max() > 1e-4


def rc_metric(b, clean, ans, wrong):
    logits = reference.forward(b, clean)[:, -1]
    rows = torch.arange(len(clean))
    return (logits[rows, ans] - logits[rows, wrong]).numpy()


@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
def test_edge_faithfulness_extremes(mlp_model, ablation):
    """Keeping every edge reproduces the clean run; keeping none, the fully ablated one."""
    task = _task(mlp_model)
    dims = mlp_model.dims
    fn = metric("logit_diff")
    every = [Site(Kind.EMBED)] + [Site(Kind.HEAD, la, h) for la in range(2) for h in range(4)]
    every += [Site(Kind.MLP, la) for la in range(2)]
    keep = frozenset(e for s in every for e in _all_edges_from_any(s, dims))
    full = Condition("clean", edges=EdgePlan(keep, {"resample": "corrupt"}.get(ablation, ablation)))
    none = Condition(
        "clean", edges=EdgePlan(frozenset(), {"resample": "corrupt"}.get(ablation, ablation))
    )
    r = Engine(mlp_model).run(task, [full, none], fn)
    np.testing.assert_allclose(r.values[0], r.clean, atol=1e-4)
    if ablation == "resample":
        np.testing.assert_allclose(r.values[1], r.corrupt, atol=1e-4)


def _all_edges_from_any(sender: Site, dims) -> frozenset:
    if sender.kind is Kind.EMBED:
        s = 0
        rcv = [("logits",)] + [
            (c, la, h) for la in range(dims.n_layers) for c in "qkv" for h in range(dims.n_heads)
        ]
        rcv += [("mlp", la) for la in range(dims.n_layers)]
        return frozenset((s, r) for r in rcv)
    return _all_edges_from(sender, dims)


def test_edge_faithfulness_distinguishes_key_from_query_wiring():
    """On the hand-built model the two wirings have the same nodes but not the same edges."""
    from causal_mi.models.loading import load_model

    model = load_model("zoo:handmade-induction")
    task = _task(model, n=20)
    embed, prev, ind = Site(Kind.EMBED), parse_site("L0H2"), parse_site("L1H1")
    base = [(embed, parse_site(f"L0H2.{c}")) for c in "qkv"]
    base += [(embed, parse_site("L1H1.q")), (embed, parse_site("L1H1.v")), (ind, Site(Kind.LOGITS))]
    k_wired = Q.faithfulness_edges(
        tuple(base + [(prev, parse_site("L1H1.k"))]), model.dims, "resample"
    )
    q_wired = Q.faithfulness_edges(
        tuple(base + [(prev, parse_site("L1H1.q"))]), model.dims, "resample"
    )
    conds = [*k_wired.conditions.values(), *q_wired.conditions.values()]
    r = Engine(model).run(task, conds, metric("logit_diff"))
    g = (r.clean - r.corrupt).mean()
    assert (r.values[0] - r.corrupt).mean() / g == pytest.approx(1.0, abs=1e-6)
    assert (r.values[1] - r.corrupt).mean() / g < 0.2
    assert n_senders(extract(model.bridge)) == 1 + 2 * 3
