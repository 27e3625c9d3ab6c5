"""The hand-constructed model: its planted heads are exactly the ones the tools rank highest.

The planted circuit is stated here on its own, not read from the module that builds it.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from causal_mi.analysis.attention import role_scores
from causal_mi.effects.sweep import sweep
from causal_mi.models.loading import ZOO_DIR, load_model
from causal_mi.spec.sites import Kind, Site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params

PREV_TOKEN_HEAD = (0, 2)
INDUCTION_HEAD = (1, 1)


@pytest.fixture(scope="module")
def model():
    return load_model("zoo:handmade-induction")


@pytest.fixture(scope="module")
def task(model):
    gen = GENERATORS["repeated_tokens"]
    return Task("t", tuple(gen.make(model.tokens, 60, 11, resolved_params(gen, {}))))


def test_shipped_weights_are_the_construction(tmp_path):
    from causal_mi.zoo.handmade import build

    build(tmp_path)
    shipped = load_file(str(ZOO_DIR / "handmade-induction" / "model.safetensors"))
    rebuilt = load_file(str(tmp_path / "model.safetensors"))
    assert shipped.keys() == rebuilt.keys()
    for k in shipped:
        assert torch.equal(shipped[k], rebuilt[k]), k


def test_effect_sweep_ranks_planted_heads_first(model, task):
    s = sweep(model, task, quantity="effect")
    top_two = {(site.layer, site.head) for site, _ in s.ranked()[:2]}
    assert top_two == {PREV_TOKEN_HEAD, INDUCTION_HEAD}
    others = [e for site, e in s.ranked()[2:]]
    assert max(abs(e.point) for e in others) < 1e-6
    table = s.table()
    assert len(table) == model.dims.n_layers * model.dims.n_heads
    assert s.grid.shape == (2, 3)


def test_restore_sweep_finds_the_induction_head(model, task):
    s = sweep(model, task, quantity="restore")
    best, est = s.ranked()[0]
    assert (best.layer, best.head) == INDUCTION_HEAD
    assert est.point == pytest.approx(1.0, abs=1e-6)


def test_attention_roles(model, task):
    r = role_scores(model, task)
    assert divmod(int(r["prev_token"][:1].argmax()), 3) == PREV_TOKEN_HEAD
    assert r["prev_token"][PREV_TOKEN_HEAD] > 0.99
    assert (1, int(r["induction"][1].argmax())) == INDUCTION_HEAD
    assert r["induction"][INDUCTION_HEAD] > 0.99


def test_heads_outside_the_circuit_do_nothing(model, task):
    s = sweep(model, task, quantity="effect", ablation="zero")
    for site, est in zip(s.sites, s.estimates, strict=True):
        if (site.layer, site.head) not in (PREV_TOKEN_HEAD, INDUCTION_HEAD):
            assert est.point == pytest.approx(0.0, abs=1e-6), site
    assert Site(Kind.HEAD, *INDUCTION_HEAD) in s.sites
