"""Loaded models: frozen, their derived caches their own, and a pool that never serves a
model whose files changed."""

from __future__ import annotations

import dataclasses
import os

import pytest

from causal_mi.models.pool import ModelPool, signature


class _Loaded:
    def __init__(self, source):
        self.source = str(source)


def test_pool_reloads_when_the_files_change_and_stays_bounded(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"a")
    loads = []

    def load():
        loads.append(1)
        return _Loaded(d)

    pool = ModelPool(capacity=2)
    first = pool.get(("k",), load)
    assert pool.get(("k",), load) is first and len(loads) == 1  # reused
    (d / "model.safetensors").write_bytes(b"bb")  # retrained in place
    os.utime(d / "model.safetensors", ns=(1, 1))
    assert pool.get(("k",), load) is not first and len(loads) == 2  # never stale
    for k in ("x", "y", "z"):
        pool.get((k,), load)
    assert len(pool) == 2  # least recently used dropped
    assert signature("hf-hub/id") == ()


def test_loaded_model_is_frozen_and_copies_derive_their_own(mlp_model):
    from causal_mi.models.weights import weights_for

    with pytest.raises(dataclasses.FrozenInstanceError):
        mlp_model.device = "cuda"
    w = weights_for(mlp_model)
    assert weights_for(mlp_model) is w and mlp_model.derived.weights is w
    other = dataclasses.replace(mlp_model, weights_sha256="f" * 64)
    assert other.derived is not mlp_model.derived and other.derived.weights is None
    assert not any(k.startswith("_") for k in vars(mlp_model))  # nothing attached at run time
