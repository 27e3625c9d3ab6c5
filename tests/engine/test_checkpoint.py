"""An interrupted run resumes from its saved passes and gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from causal_mi.effects import quantities as Q
from causal_mi.effects.metrics import metric
from causal_mi.engine.plan import Condition, site_patches
from causal_mi.engine.runner import Engine
from causal_mi.spec.sites import parse_site
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


class Stop(Exception):
    pass


def _setup(model):
    gen = GENERATORS["repeated_tokens"]
    task = Task("t", tuple(gen.make(model.tokens, 12, 0, resolved_params(gen, {}))))
    conds = [
        Condition("clean", site_patches([parse_site(f"L{la}H{h}")], "corrupt"))
        for la in range(2)
        for h in range(4)
    ]
    edge = Q.faithfulness_edges(
        ((parse_site("L0H1"), parse_site("L1H3.k")),), model.dims, "resample"
    )
    return task, conds + list(edge.conditions.values())


def test_interrupted_run_resumes(mlp_model, tmp_path):
    task, conds = _setup(mlp_model)
    fn = metric("logit_diff")
    want = Engine(mlp_model, max_rows=12).run(task, conds, fn).values
    seen = []

    def stop_after_three(done, total):
        seen.append(done)
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        Engine(mlp_model, max_rows=12, progress=stop_after_three, checkpoint_dir=tmp_path).run(
            task, conds, fn
        )
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    calls = []
    eng = Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path)
    original = eng._patched

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    eng._patched = counting
    got = eng.run(task, conds, fn).values
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert len(calls) < 8  # passes saved before the interruption were not recomputed


def test_changed_input_does_not_reuse_checkpoint(mlp_model, tmp_path):
    task, conds = _setup(mlp_model)
    Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, metric("kl"))
    Engine(mlp_model, max_rows=12, checkpoint_dir=tmp_path).run(task, conds, metric("logit_diff"))
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
