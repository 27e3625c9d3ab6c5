"""The zoo model ``boolean-logic``: it computes (a AND b) OR c, and its circuit is the one
MODEL.md describes (stated here on its own, not read from the training script)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from causal_mi.effects.sweep import sweep
from causal_mi.models.loading import load_model
from causal_mi.tasks.base import Task
from causal_mi.tasks.pairs import read_pairs, tokenize_pairs

PAIRS = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "boolean-logic" / "pairs.jsonl"
PREV_HEAD = (0, 2)  # binds each value to the variable named before it
AB_HEAD = (1, 2)  # reads the values of a and b at the last position
F_NEURON = 34  # L1.mlp[34] fires exactly when the answer is F


@pytest.fixture(scope="module")
def model():
    return load_model("zoo:boolean-logic")


@pytest.fixture(scope="module")
def task(model):
    records, problems = read_pairs(PAIRS)
    assert not problems
    examples, problems = tokenize_pairs(PAIRS, records[:100], model.tokens)
    assert not problems
    return Task("boolean-logic", tuple(examples))


def _fresh_prompts(n: int, seed: int) -> list[tuple[str, bool]]:
    """Prompts written here from scratch: a, b, c and 0-3 distractors, random order."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        names = ["a", "b", "c", *rng.sample("defgh", rng.randint(0, 3))]
        rng.shuffle(names)
        values = {v: rng.random() < 0.5 for v in names}
        text = " ".join(f"{v} {'T' if values[v] else 'F'}" for v in names) + " ="
        out.append((text, (values["a"] and values["b"]) or values["c"]))
    return out


def _last(model, text: str, hook: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    store = {}
    hooks = [(hook, lambda act, hook: store.setdefault("act", act[0, -1].clone()))] if hook else []
    with torch.no_grad(), model.bridge.hooks(fwd_hooks=hooks):
        logits = model.bridge(torch.tensor([model.tokens.prompt(text)]))[0, -1]
    return logits, store.get("act")


def test_accuracy_on_fresh_prompts(model):
    t_id, f_id = model.tokens.pieces("T")[0], model.tokens.pieces("F")[0]
    by_length: dict[int, tuple[list, list]] = {}
    for text, answer in _fresh_prompts(400, seed=12345):
        ids = model.tokens.prompt(text)
        group = by_length.setdefault(len(ids), ([], []))
        group[0].append(ids)
        group[1].append(t_id if answer else f_id)
    hits = 0
    with torch.no_grad():
        for ids, answers in by_length.values():
            pred = model.bridge(torch.tensor(ids))[:, -1].argmax(-1)
            hits += int((pred == torch.tensor(answers)).sum())
    assert len(by_length) == 4  # 0-3 distractors
    assert hits / 400 >= 0.99


def test_prev_and_ab_heads_have_the_largest_effects(model, task):
    s = sweep(model, task, quantity="effect", n_boot=200)
    top_two = {(site.layer, site.head) for site, _ in s.ranked()[:2]}
    assert top_two == {PREV_HEAD, AB_HEAD}
    assert s.grid[PREV_HEAD] > 0.7
    mlps = sweep(model, task, quantity="effect", kind="mlp", n_boot=200)
    assert (mlps.grid > 0.4).all()  # both MLPs are needed


def test_f_neuron_fires_exactly_on_false(model):
    for text, answer in _fresh_prompts(64, seed=7):
        _, post = _last(model, text, "blocks.1.mlp.hook_post")
        assert (float(post[F_NEURON]) > 1.0) == (not answer), text
