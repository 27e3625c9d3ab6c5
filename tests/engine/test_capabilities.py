"""The executors a model can use are decided up front, with the sentence naming what is
missing, and the callers follow that decision."""

from __future__ import annotations

import json

from causal_mi.engine.capabilities import Capabilities, capabilities


def test_gpt_style_model_runs_on_every_executor(mlp_model):
    can = capabilities(mlp_model)
    assert (can.path, can.incremental, can.encoder) == (None, None, False)
    assert capabilities(mlp_model) is can  # decided once per model
    assert "path patching (edge level): available" in can.describe()


def test_a_missing_feature_is_named_and_sends_edges_to_node_level(tmp_path, mlp_model):
    """A model whose weights the own forward pass cannot read: path patching and sweeps say
    why, and the measurement falls back to node level with that sentence as its note."""
    import dataclasses

    from causal_mi.effects.measure import edge_level
    from causal_mi.engine.executors import IncrementalExecutor, PathExecutor
    from causal_mi.engine.runner import Engine
    from causal_mi.tasks.base import Task

    other = dataclasses.replace(mlp_model)
    why = "the engine's own forward pass does not implement a planted feature"
    other.derived.capabilities = Capabilities("planted", why, why)

    from causal_mi.spec.loader import load_hypothesis

    f = tmp_path / "h.yaml"
    f.write_text(
        "version: 1\nname: x\nmodel: zoo:handmade-induction\n"
        "task: {generator: repeated_tokens, n: 8, seed: 0}\n"
        "nodes: {a: L0H1, b: L1H1}\nedges: [embed -> a, a -> b.k, b -> logits]\n"
        "claims: [faithfulness >= 0]\n"
    )
    hyp = load_hypothesis(f)
    edges, note = edge_level(hyp, other)
    assert edges is None and note.endswith(why)
    assert edge_level(hyp, mlp_model)[0] is not None  # the same file on a capable model
    task = Task("t", ())
    assert IncrementalExecutor(Engine(other)).unavailable(task, []) == why
    assert PathExecutor(Engine(other)).unavailable(task, []) == why
    json.dumps(dataclasses.asdict(other.derived.capabilities))  # plain data
