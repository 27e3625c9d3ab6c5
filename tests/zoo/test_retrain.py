"""Retraining induction-2l from its script reproduces its circuit (slow: ~1-2 minutes)."""

from __future__ import annotations

import numpy as np
import pytest

from causal_mi.analysis.attention import role_scores
from causal_mi.models.loading import load_model
from causal_mi.tasks.base import Task
from causal_mi.tasks.generators import GENERATORS, resolved_params


@pytest.mark.slow
def test_retraining_reproduces_the_circuit(tmp_path):
    from causal_mi.zoo import induction

    metrics = induction.train(tmp_path / "induction-2l", seed=0)
    assert metrics["repeat_accuracy"] > 0.95
    fresh = load_model(f"path:{tmp_path / 'induction-2l'}")
    shipped = load_model("zoo:induction-2l")
    gen = GENERATORS["repeated_tokens"]
    task = Task("t", tuple(gen.make(shipped.tokens, 100, 3, resolved_params(gen, {}))))
    a, b = role_scores(fresh, task), role_scores(shipped, task)
    # the same previous-token heads, and every layer-1 head an induction head
    assert set(np.argsort(a["prev_token"][0])[-2:]) == set(np.argsort(b["prev_token"][0])[-2:])
    assert (a["induction"][1] > 0.5).all() and (b["induction"][1] > 0.5).all()
    np.testing.assert_allclose(a["prev_token"], b["prev_token"], atol=0.05)
