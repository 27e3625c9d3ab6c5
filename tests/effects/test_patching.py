"""Sweeps equal transformer_lens' get_act_patch_* results on the same model and data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from causal_mi.effects.patching import act_patch
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params

TL = {
    "resid_pre": "get_act_patch_resid_pre",
    "mlp_out": "get_act_patch_mlp_out",
    "attn_out": "get_act_patch_attn_out",
    "head_out": "get_act_patch_attn_head_out_all_pos",
    "head_q": "get_act_patch_attn_head_q_all_pos",
    "head_k": "get_act_patch_attn_head_k_all_pos",
    "head_v": "get_act_patch_attn_head_v_all_pos",
    "head_out_by_pos": "get_act_patch_attn_head_out_by_pos",
}


@pytest.fixture(scope="module")
def data(mlp_model):
    gen = GENERATORS["repeated_tokens"]
    task = Task("t", tuple(gen.make(mlp_model.tokens, 8, 4, resolved_params(gen, {}))))
    t = {k: torch.tensor([getattr(e, k) for e in task.examples]) for k in ("clean", "corrupt")}
    ans = torch.tensor([e.answer for e in task.examples])
    wrong = torch.tensor([e.wrong for e in task.examples])

    def tl_metric(logits):
        last = logits[:, -1]
        rows = torch.arange(len(last))
        return (last[rows, ans] - last[rows, wrong]).mean()

    return task, t, tl_metric


@pytest.mark.parametrize("family", list(TL))
def test_sweep_equals_transformer_lens(mlp_model, data, family):
    from transformer_lens import patching

    task, t, tl_metric = data
    bridge = mlp_model.bridge
    with torch.no_grad():
        _, cache = bridge.run_with_cache(t["clean"])
        want = getattr(patching, TL[family])(bridge, t["corrupt"], cache, tl_metric)
    got = act_patch(mlp_model, task, family, max_rows=64)
    np.testing.assert_allclose(got.grid, want.numpy(), atol=1e-4)
    assert np.abs(got.grid - got.corrupt).max() > 1e-3  # the patches do something


def test_neuron_sweep_and_table(mlp_model, data):
    task, _, _ = data
    s = act_patch(mlp_model, task, "neurons", layer=1, direction="ablate")
    assert s.grid.shape == (64,)
    df = s.table()
    assert list(df.columns) == ["neuron", "metric", "fraction_of_G"]
    assert len(df) == 64
    # ablate direction: patching nothing-changing neurons leaves the clean metric
    assert np.isclose(np.median(df["metric"]), s.clean, atol=0.5)


def test_sweep_rejects_mixed_lengths(mlp_model, data):
    task, _, _ = data
    gen = GENERATORS["repeated_tokens"]
    other = gen.make(mlp_model.tokens, 2, 1, resolved_params(gen, {"seq_len": 5, "repeat": 2}))
    with pytest.raises(ValueError, match="one token length"):
        act_patch(mlp_model, Task("m", task.examples + tuple(other)), "head_out")


@pytest.mark.parametrize("method", ["hooks", "auto"])
def test_head_pattern_sweep_equals_transformer_lens(mlp_model, data, method):
    """``head_pattern`` (each head's attention pattern, all positions, patched from the clean
    run into the corrupt one with the values recomputed) equals TL's pattern sweep."""
    from transformer_lens import patching

    task, t, tl_metric = data
    bridge = mlp_model.bridge
    bridge.eval()
    with torch.no_grad():
        _, cache = bridge.run_with_cache(t["clean"])
        want = patching.get_act_patch_attn_head_pattern_all_pos(
            bridge, t["corrupt"], cache, tl_metric
        )
    got = act_patch(mlp_model, task, "head_pattern", max_rows=64, method=method)
    assert got.grid.shape == (2, 4)
    assert got.index == [(la, h) for la in range(2) for h in range(4)]
    np.testing.assert_allclose(got.grid, want.numpy(), atol=1e-4)
    assert np.abs(got.grid - got.corrupt).max() > 1e-3  # the patches do something


def test_sweep_on_a_noise_task_patches_the_noised_run(mlp_model, data):
    """A task corrupted by embedding noise: restoring layer 0's residual stream at the noised
    position gives the clean run back, at a position without noise it changes nothing (both
    engines)."""
    import dataclasses

    from causal_mi.tasks.base import Noise

    task, _, _ = data
    noised = Task(
        "noised",
        tuple(
            dataclasses.replace(e, corrupt=e.clean, noise=Noise((2,), 3.0, 0, i))
            for i, e in enumerate(task.examples)
        ),
    )
    s = act_patch(mlp_model, noised, "resid_pre", max_rows=64)
    assert abs(s.clean - s.corrupt) > 1e-3
    per_pos = s.per_example.reshape(2, -1, len(task))
    np.testing.assert_allclose(per_pos[0, 3], s.corrupt_values, atol=1e-5)
    np.testing.assert_allclose(per_pos[0, 2], s.clean_values, atol=1e-5)
    hooks = act_patch(mlp_model, noised, "resid_pre", method="hooks")
    assert s.flops > 0 and hooks.flops == 0
    np.testing.assert_allclose(s.per_example, hooks.per_example, atol=1e-4)
