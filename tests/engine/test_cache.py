"""The run cache: a resumed, re-chunked or reordered run equals an uninterrupted one, and a
changed model, precision or example set never reuses saved values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from causal_mi.effects import quantities as Q
from causal_mi.engine.cache import RunCache, condition_key
from causal_mi.engine.metrics import metric
from causal_mi.engine.plan import Condition, Patch, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


class Stop(Exception):
    pass


def _task(model, n: int = 12, seed: int = 0) -> Task:
    gen = GENERATORS["repeated_tokens"]
    return Task("t", tuple(gen.make(model.tokens, n, seed, resolved_params(gen, {}))))


def _conditions(model) -> list[Condition]:
    conds = [
        Condition("clean", site_patches([parse_site(f"L{la}H{h}")], "corrupt"))
        for la in range(2)
        for h in range(4)
    ]
    conds.append(Condition("clean", site_patches([parse_site("L0.mlp")], "mean")))
    edge = Q.faithfulness_edges(
        ((parse_site("L0H1"), parse_site("L1H3.k")),), model.dims, "resample"
    )
    return conds + list(edge.conditions.values())


def _interrupted(model, task, conds, fn, cache_dir, *, rows: int, after: int) -> None:
    def stop(done, total):
        if done == after:
            raise Stop

    with pytest.raises(Stop):
        Engine(model, max_rows=rows, progress=stop, checkpoint_dir=cache_dir).run(task, conds, fn)


class Counting(Engine):
    """An engine that counts its forward passes (hook and functional)."""

    passes = 0

    def _forward(self, *args, **kwargs):
        Counting.passes += 1
        return super()._forward(*args, **kwargs)


def test_resume_with_other_rows_per_pass_equals_uninterrupted(mlp_model, tmp_path):
    # The reported bug: saved passes were addressed by chunk offsets, so resuming with other
    # rows per pass read the wrong examples' values (2 of 8 conditions off by up to 4.48).
    task, conds, fn = _task(mlp_model), _conditions(mlp_model), metric("logit_diff")
    want = Engine(mlp_model, max_rows=12).run(task, conds, fn)
    _interrupted(mlp_model, task, conds, fn, tmp_path, rows=12, after=3)
    got = Engine(mlp_model, max_rows=24, checkpoint_dir=tmp_path).run(task, conds, fn)
    np.testing.assert_allclose(got.values, want.values, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.clean, want.clean, atol=1e-5, rtol=0)
    got7 = Engine(mlp_model, max_rows=7, checkpoint_dir=tmp_path).run(task, conds, fn)
    np.testing.assert_allclose(got7.values, want.values, atol=1e-5, rtol=0)


def test_resume_with_same_rows_is_bit_for_bit_and_reuses_passes(mlp_model, tmp_path):
    task, conds, fn = _task(mlp_model), _conditions(mlp_model), metric("logit_diff")
    want = Engine(mlp_model, max_rows=12).run(task, conds, fn)
    _interrupted(mlp_model, task, conds, fn, tmp_path, rows=12, after=4)
    Counting.passes = 0
    got = Counting(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    assert np.array_equal(got.values, want.values)
    resumed = Counting.passes
    Counting.passes = 0
    again = Counting(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    assert np.array_equal(again.values, want.values)
    assert Counting.passes == 0  # a warm cache runs no forward pass at all
    assert resumed > 0  # the interrupted part was computed


def test_condition_order_and_labels_are_not_part_of_the_address(mlp_model, tmp_path):
    task, conds, fn = _task(mlp_model), _conditions(mlp_model), metric("logit_diff")
    first = Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    relabelled = [dataclasses.replace(c, label=f"other-{i}") for i, c in enumerate(conds)]
    order = list(reversed(range(len(conds))))
    Counting.passes = 0
    got = Counting(mlp_model, max_rows=5, checkpoint_dir=tmp_path).run(
        task, [relabelled[i] for i in order], fn
    )
    assert Counting.passes == 0
    assert np.array_equal(got.values, first.values[order])


def test_changed_model_precision_metric_or_examples_do_not_reuse(mlp_model, mlp_dir, tmp_path):
    from causal_mi.models.loading import load_model

    task, conds, fn = _task(mlp_model), _conditions(mlp_model), metric("logprob")

    def scopes() -> int:
        return len(list(tmp_path.iterdir()))

    Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, metric("kl"))
    fp32 = Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    assert scopes() == 2  # another metric, another scope
    bf16 = load_model(f"path:{mlp_dir}", precision="bf16")
    low = Engine(bf16, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    assert scopes() == 3
    assert not np.array_equal(low.values, fp32.values)  # computed in bf16, not read back
    other = dataclasses.replace(mlp_model, weights_sha256="f" * 64)
    Engine(other, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    assert scopes() == 4  # other weights never read these passes
    same_weights = dataclasses.replace(mlp_model, config_sha256="e" * 64)
    Engine(same_weights, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, fn)
    assert scopes() == 5  # the same weights under another config (eps, rotary base, ...)
    Counting.passes = 0
    shifted = _task(mlp_model, n=12, seed=1)  # other examples: nothing to read back
    Counting(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(shifted, conds, fn)
    assert Counting.passes > 0


def test_mean_sources_depend_on_the_whole_example_set(mlp_model, tmp_path):
    fn = metric("logit_diff")
    mean = [Condition("clean", site_patches([parse_site("L0.mlp")], "mean"))]
    task = _task(mlp_model, n=12)
    Engine(mlp_model, checkpoint_dir=tmp_path).run(task, mean, fn)
    half = Task("t", task.examples[:6])  # same examples, another mean
    want = Engine(mlp_model).run(half, mean, fn)
    got = Engine(mlp_model, checkpoint_dir=tmp_path).run(half, mean, fn)
    assert np.array_equal(got.values, want.values)
    # and the check has teeth: the mean over 12 prompts gives other numbers on these 6
    full = Engine(mlp_model).run(task, mean, fn)
    assert not np.allclose(full.values[:, :6], want.values)


def test_recordings_are_cached_per_example(mlp_model, tmp_path):
    task, fn = _task(mlp_model), metric("logit_diff")
    rec = Condition(
        "clean",
        site_patches([parse_site("L0H1")], "corrupt"),
        record=(("r", "blocks.1.attn.hook_z"),),
    )
    want = Engine(mlp_model, max_rows=12).run(task, [rec], fn).recorded["r"]
    Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, [rec], fn)
    got = Engine(mlp_model, max_rows=5, checkpoint_dir=tmp_path).run(task, [rec], fn).recorded["r"]
    for length, t in want.items():
        assert torch.equal(got[length], t)


def test_torn_or_foreign_files_are_ignored_and_writers_do_not_collide(tmp_path):
    a, b = RunCache(tmp_path).scope("s"), RunCache(tmp_path).scope("s")
    a.store(["c"], ["e1", "e2"], torch.tensor([[1.0, 2.0]]), [()], {})
    b.store(["c"], ["e2", "e3"], torch.tensor([[2.0, 3.0]]), [()], {})
    (tmp_path / "s" / "torn.safetensors").write_bytes(b"\x00garbage")
    c = RunCache(tmp_path).scope("s")
    assert c.files_read == 2
    values, _ = c.lookup(["c"], ["e3", "e1"], [()])
    assert values.tolist() == [[3.0, 1.0]]
    assert c.lookup(["c"], ["e4"], [()]) is None
    assert condition_key(Condition("clean")) != condition_key(Condition("corrupt"))


def test_a_recording_is_named_by_its_content():
    from causal_mi.engine.address import record_key

    hook = "blocks.1.attn.hook_z"
    a = Condition("clean", site_patches([parse_site("L0H1")], "corrupt"), label="stage one")
    same = Condition("clean", a.patches, record=(("x", hook),), label="another stage")
    other = Condition("clean", site_patches([parse_site("L0H2")], "corrupt"), label="stage one")
    assert record_key(a, hook) == record_key(same, hook)  # labels and recordings aside
    assert record_key(a, hook) != record_key(other, hook)  # another intervention
    assert record_key(a, hook) != record_key(a, "blocks.1.attn.hook_v")
    reads = [
        Condition("clean", (Patch.from_recording(hook, record_key(p, hook), {(None, 3)}),))
        for p in (a, other)
    ]
    assert condition_key(reads[0]) != condition_key(reads[1])
