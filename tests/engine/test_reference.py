"""The engine's patched metric equals a hand-written forward pass with the patch applied by
hand, for every site kind, ablation and position choice (SPEC 3, 4)."""

from __future__ import annotations

import pytest
import torch

from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import ABLATION_SOURCE, Condition, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params
from tests.engine import reference

# site text -> (reference patch point, channel index or None)
SITES = {
    "L0H1": ("z", 1),
    "L1H3": ("z", 3),
    "L1H2.q": ("q", 2),
    "L1H0.k": ("k", 0),
    "L0H3.v": ("v", 3),
    "L0H1.pattern": ("pattern", 1),
    "L1H2.pattern": ("pattern", 2),
    "L0.mlp": ("mlp_out", None),
    "L1.mlp.in": ("mlp_in", None),
    "L0.mlp[7]": ("post", 7),
    "L1.resid_pre": ("resid_pre", None),
    "L0.resid_mid": ("resid_mid", None),
    "L0.resid_post": ("resid_post", None),
    "embed": ("resid_pre", None),  # token + position embeddings enter layer 0
}


def _task(model, n: int = 12, seed: int = 3) -> Task:
    gen = GENERATORS["repeated_tokens"]
    return Task("t", tuple(gen.make(model.tokens, n, seed, resolved_params(gen, {}))))


def _tokens(task: Task, base: str) -> torch.Tensor:
    return torch.tensor([getattr(e, base) for e in task.examples])


def _expected(model, task, site_text, ablation, pos):
    """logit_diff of every example with the site replaced by hand."""
    bridge = model.bridge
    point, ch = SITES[site_text]
    layer = 0 if site_text == "embed" else parse_site(site_text).layer
    clean, corrupt = _tokens(task, "clean"), _tokens(task, "corrupt")
    source_run = reference.record(bridge, corrupt)[(point, layer)]
    if ablation == "mean":
        source_run = source_run.mean(0, keepdim=True).expand_as(source_run)
    elif ablation == "zero":
        source_run = torch.zeros_like(source_run)

    def patch(p, lyr, value):
        if (p, lyr) != (point, layer):
            return value
        value = value.clone()
        idx = slice(None) if pos is None else pos
        if ch is None:
            value[:, idx] = source_run[:, idx]
        elif p == "pattern":  # [b, head, query, key]: positions are query rows
            value[:, ch, idx] = source_run[:, ch, idx]
        else:
            value[:, idx, ch] = source_run[:, idx, ch]
        return value

    logits = reference.forward(bridge, clean, patch)[:, -1]
    rows = torch.arange(len(task))
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])
    return (logits[rows, ans] - logits[rows, wrong]).numpy()


def test_reference_matches_bridge_unpatched(mlp_model, attn_model):
    for model in (mlp_model, attn_model):
        task = _task(model)
        toks = _tokens(task, "clean")
        with torch.no_grad():
            got = model.bridge(toks).double()
        assert torch.allclose(got, reference.forward(model.bridge, toks), atol=1e-4)


@pytest.mark.parametrize("ablation", ["resample", "mean", "zero"])
@pytest.mark.parametrize("pos", [None, -1, 3])
@pytest.mark.parametrize("site_text", list(SITES))
def test_patched_metric_matches_hand_patched_reference(mlp_model, site_text, ablation, pos):
    task = _task(mlp_model)
    site = parse_site(site_text)
    if pos is not None:
        site = site.at((pos,))
    cond = Condition("clean", site_patches([site], ABLATION_SOURCE[ablation]))
    got = Engine(mlp_model).run(task, [cond], metric("logit_diff")).values[0]
    want = _expected(mlp_model, task, site_text, ablation, pos)
    assert got == pytest.approx(want, abs=1e-5)
    # The patch must matter, or the comparison proves nothing. (A patch at an earlier
    # position of a last-layer output cannot reach the last position, by causality.)
    if pos is None or (pos == -1 and ablation != "resample"):
        unpatched = Engine(mlp_model).run(task, [Condition("clean")], metric("logit_diff"))
        assert abs(got - unpatched.values[0]).max() > 1e-3


def test_wrong_patch_is_detected(mlp_model):
    """The comparison can fail: patching head 1 is not patching head 2."""
    task = _task(mlp_model)
    cond = Condition("clean", site_patches([parse_site("L0H2")], "corrupt"))
    got = Engine(mlp_model).run(task, [cond], metric("logit_diff")).values[0]
    want = _expected(mlp_model, task, "L0H1", "resample", None)
    assert abs(got - want).max() > 1e-3


def test_pattern_patch_on_attention_that_ignores_it_is_an_error(mlp_model, monkeypatch):
    """Attention computed inside a wrapped HF module fires hook_pattern after the fact, so an
    edit would be discarded; the engine refuses rather than measure nothing."""
    from causal_mi.errors import InputError

    task = _task(mlp_model)
    attn = mlp_model.bridge.blocks[1].attn.original_component
    monkeypatch.setattr(attn, "accepts_pattern_fn", False, raising=False)
    cond = Condition("clean", site_patches([parse_site("L1H2.pattern")], "zero"))
    with pytest.raises(InputError, match="ignores edits to the attention pattern"):
        Engine(mlp_model).run(task, [cond], metric("logit_diff"))
    # reading a pattern (recording it) is fine
    rec = Condition("clean", record=(("p", "blocks.1.attn.hook_pattern"),))
    r = Engine(mlp_model).run(task, [rec], metric("logit_diff"))
    assert r.recorded["p"][task.examples[0].length].shape[1] == 4
