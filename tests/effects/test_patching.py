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
