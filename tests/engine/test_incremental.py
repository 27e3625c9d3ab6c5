"""The incremental engine: every sweep equals the hook engine (whose passes the hand-written
reference checks), chunking and bucketing change nothing, and the reused keys and values of
earlier positions are really read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causal_mi.effects.patching import act_patch
from causal_mi.engine import incremental as inc
from causal_mi.engine import joins
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params

FAMILIES = [f for f in joins.FAMILIES_FAST if f != "head_pattern"]


def _task(model, n=6, seq_len=5, seed=0):
    gen = GENERATORS["repeated_tokens"]
    params = resolved_params(gen, {"seq_len": seq_len, "repeat": 3})
    return Task("t", tuple(gen.make(model.tokens, n, seed, params)))


@pytest.fixture(scope="module")
def mlp_task(mlp_model):
    return _task(mlp_model)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction", ["restore", "ablate"])
def test_incremental_equals_hooks_mlp(mlp_model, mlp_task, family, direction):
    metric = "kl" if direction == "ablate" else "logit_diff"
    want = act_patch(
        mlp_model,
        mlp_task,
        family,
        direction=direction,
        metric_name=metric,
        layer=1,
        method="hooks",
    )
    got = act_patch(
        mlp_model,
        mlp_task,
        family,
        direction=direction,
        metric_name=metric,
        layer=1,
        method="incremental",
    )
    assert got.flops > 0 and want.flops == 0  # really two different engines
    assert got.index == want.index
    np.testing.assert_allclose(got.per_example, want.per_example, atol=1e-4)
    assert got.clean == pytest.approx(want.clean, abs=1e-5)
    assert got.corrupt == pytest.approx(want.corrupt, abs=1e-5)
    assert np.abs(got.per_example - got.corrupt).max() > 1e-3 or direction == "ablate"


@pytest.mark.parametrize(
    "family", ["resid_pre", "resid_post", "attn_out", "head_out", "head_k", "head_out_by_pos"]
)
@pytest.mark.parametrize("metric", ["logprob", "prob"])
def test_incremental_equals_hooks_attn_only(attn_model, family, metric):
    task = _task(attn_model, seed=3)
    want = act_patch(attn_model, task, family, metric_name=metric, method="hooks")
    got = act_patch(attn_model, task, family, metric_name=metric, method="incremental")
    np.testing.assert_allclose(got.per_example, want.per_example, atol=1e-5)


def test_incremental_on_hf_gpt2(gpt2_dir):
    from causal_mi.models.loading import load_model

    model = load_model(f"path:{gpt2_dir}")
    task = _task(model, seed=1)
    for family in ("resid_pre", "head_v", "neurons"):
        want = act_patch(model, task, family, method="hooks", layer=0)
        got = act_patch(model, task, family, method="incremental", layer=0)
        np.testing.assert_allclose(got.per_example, want.per_example, atol=1e-4)


@pytest.mark.parametrize("family", ["resid_pre", "head_out_by_pos", "mlp_out", "head_q"])
def test_chunking_changes_nothing(mlp_model, mlp_task, family):
    """One run per chunk (a budget of one byte) equals everything in one chunk, within the
    engine's documented batch tolerance (1e-5 of a logit: another chunking sums float32
    matrix products in another order; measured up to 2e-6 here)."""
    one = act_patch(mlp_model, mlp_task, family, max_memory=1)
    many = act_patch(mlp_model, mlp_task, family, max_memory=2**30)
    np.testing.assert_allclose(one.per_example, many.per_example, atol=1e-5)


def _sweep_parts(model, task, family):
    m = inc.incremental_model(model)
    ex = task.examples
    base = torch.tensor([e.corrupt for e in ex])
    src = torch.tensor([e.clean for e in ex])
    runs = joins.runs_for(family, m, base.shape[1], 0)
    keep_b, keep_s, post = joins._keep(family, runs)
    b, s = inc.record_pair(m, base, src, keep_b, keep_s, post)
    return m, runs, b, s


def _resume(m, runs, b, s, family, p0):
    order = sorted(range(len(runs)), key=lambda i: (runs[i].stage, i))
    part = [runs[i] for i in order]
    out = inc.resume(m, b, [r.stage for r in part], p0, joins._builder(family, m, b, s, part, p0))
    back = torch.empty_like(out)
    back[order] = out
    return back


def test_causal_reuse_equals_full_recompute(mlp_model, mlp_task):
    """Runs that change position >= 3 only, recomputed from position 3 (reusing the recorded
    keys and values of positions 0-2) or from position 0, give the same logits."""
    m, runs, b, s = _sweep_parts(mlp_model, mlp_task, "resid_pre")
    late = [r for r in runs if r.p0 >= 3]
    full = _resume(m, late, b, s, "resid_pre", 0)
    reused = _resume(m, late, b, s, "resid_pre", 3)
    torch.testing.assert_close(reused, full, atol=1e-5, rtol=0)


def test_reused_keys_are_read(mlp_model, mlp_task):
    """The check above can fail: with the recorded keys of earlier positions spoiled, the
    reusing run changes (so it does read them) while the full recompute cannot."""
    m, runs, b, s = _sweep_parts(mlp_model, mlp_task, "resid_pre")
    late = [r for r in runs if r.p0 >= 3]
    good = _resume(m, late, b, s, "resid_pre", 3)
    b.k = [k * 0 for k in b.k]
    spoiled = _resume(m, late, b, s, "resid_pre", 3)
    assert (spoiled - good).abs().max() > 1e-3
    torch.testing.assert_close(_resume(m, late, b, s, "resid_pre", 0), good, atol=1e-5, rtol=0)


def test_joining_late_is_wrong(mlp_model, mlp_task):
    """A run joined one stage later than its patch (skipping a sub-layer) gives other logits:
    the stage arithmetic matters and the equality tests would catch a slip."""
    m, runs, b, s = _sweep_parts(mlp_model, mlp_task, "head_out")
    right = _resume(m, runs[:1], b, s, "head_out", 0)
    r = runs[0]
    shifted = [joins.Run(r.coords, r.stage + 1, r.p0, r.layer, r.pos, r.unit)]
    wrong = _resume(m, shifted, b, s, "head_out", 0)
    assert (wrong - right).abs().max() > 1e-4


def test_record_matches_bridge_logits(mlp_model, mlp_task):
    m = inc.incremental_model(mlp_model)
    tokens = torch.tensor([e.clean for e in mlp_task.examples])
    with torch.no_grad():
        want = mlp_model.bridge(tokens)[:, -1]
    rec = inc.record(m, tokens)
    torch.testing.assert_close(rec.logits, want, atol=1e-4, rtol=0)
    assert len(rec.streams) == 2 * m.n_layers + 1


def test_buckets_partition_runs(mlp_model):
    m = inc.incremental_model(mlp_model)
    runs = joins.runs_for("head_out_by_pos", m, 9, 0)
    for device in ("cpu", "cuda"):
        buckets = joins._buckets(m, runs, 8, 9, device)
        flat = sorted(i for b in buckets for i in b)
        assert flat == list(range(len(runs)))
        for b in buckets:  # one bucket = a contiguous range of start positions
            starts = sorted({runs[i].p0 for i in b})
            assert starts == list(range(starts[0], starts[-1] + 1))


def test_flop_count_by_hand(mlp_model):
    """A run from stage 0 and position 0 costs one forward pass with the last layer's
    queries, MLP and the unembedding at the last position only."""
    m = inc.incremental_model(mlp_model)
    d, hd, P, V, f = m.d_model, m.n_heads * m.d_head, 7, m.vocab, m.d_mlp
    layer = 2 * d * hd * 3 * P + 2 * hd * d * P + 4 * hd * P * P + 4 * d * f * P
    last = 2 * d * hd * (2 * P + 1) + 2 * hd * d + 4 * hd * P + 4 * d * f
    want = (m.n_layers - 1) * layer + last + 2 * d * V
    assert m.run_flops(0, 0, P) == want


def test_unsupported_architecture(mlp_model, mlp_task, monkeypatch):
    import dataclasses

    from causal_mi.models import weights

    def refuse(model):
        raise weights.UnsupportedArchitecture("path patching ... does not support: gated MLP")

    monkeypatch.setattr(weights, "weights_for", refuse)
    model = dataclasses.replace(mlp_model)  # its own derived cache: capabilities decided anew
    with pytest.raises(ValueError, match="incremental engine cannot run this sweep: .*gated"):
        act_patch(model, mlp_task, "resid_pre", method="incremental")
    auto = act_patch(model, mlp_task, "resid_pre")  # falls back to the hook engine
    assert auto.flops == 0
    with pytest.raises(ValueError, match="valid: auto, incremental, hooks"):
        act_patch(model, mlp_task, "resid_pre", method="fast")


@pytest.mark.parametrize("direction", ["restore", "ablate"])
@pytest.mark.parametrize("family", ["resid_pre", "head_out", "neurons"])
def test_noise_corruption_equals_hooks(mlp_model, mlp_task, family, direction):
    """Causal tracing (corrupt = clean + seeded embedding noise) on both engines."""
    import dataclasses

    from causal_mi.tasks.base import Noise

    noised = Task(
        "noised",
        tuple(
            dataclasses.replace(e, corrupt=e.clean, noise=Noise((1, 2), 3.0, 0, i))
            for i, e in enumerate(mlp_task.examples)
        ),
    )
    want = act_patch(mlp_model, noised, family, direction=direction, layer=1, method="hooks")
    got = act_patch(mlp_model, noised, family, direction=direction, layer=1)
    assert got.flops > 0  # the incremental engine ran
    np.testing.assert_allclose(got.per_example, want.per_example, atol=1e-4)
    assert abs(got.clean - got.corrupt) > 1e-2  # the noise corrupts


@pytest.mark.parametrize("family", ["head_q", "head_k", "head_out", "resid_pre"])
def test_bf16_unchanged_patch_is_exactly_a_no_op(mlp_dir, mlp_task, family):
    """Patching activations with themselves (clean into clean) must leave the clean metric
    unchanged in reduced precision too: the engine computes the old and the new value of a
    patched head with the same kernel, so an unchanged head cancels exactly."""
    import dataclasses

    from causal_mi.models.loading import load_model

    model = load_model(f"path:{mlp_dir}", precision="bf16")
    same = Task("same", tuple(dataclasses.replace(e, corrupt=e.clean) for e in mlp_task.examples))
    s = act_patch(model, same, family)
    assert s.flops > 0
    np.testing.assert_array_equal(
        s.per_example, np.broadcast_to(s.clean_values, s.per_example.shape)
    )
