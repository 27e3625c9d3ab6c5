"""The zoo model ioi-names: it solves IOI on fresh prompts, and its circuit is the one mapped.

The circuit facts are stated here on their own (from MODEL.md), not read from the training
module.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from causal_mi.effects.sweep import sweep
from causal_mi.models.loading import load_model
from causal_mi.tasks.base import Example, Task
from causal_mi.zoo import ioi

PAIRS = Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "ioi-names" / "pairs.jsonl"

# Heads that read the subject name (S2) at the last position: L0H3 (through L0.mlp there),
# L1H1, L1H3, L2H2, L2H3 (subject-suppression heads), and L0H1, which mixes the S2 name into
# L0.mlp at S2.
S2_HEADS = {(0, 1), (0, 3), (1, 1), (1, 3), (2, 2), (2, 3)}


@pytest.fixture(scope="module")
def model():
    return load_model("zoo:ioi-names")


def _task(model, n: int, seed: int) -> Task:
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        ex = ioi.sample_sentence(rng)
        tok = model.tokens
        examples.append(
            Example(
                tuple(tok.prompt(ex["clean"])),
                tuple(tok.prompt(ex["corrupt"])),
                tok.pieces(ex["io"])[0],
                tok.pieces(ex["s"])[0],
                f"fresh #{i}",
            )
        )
    return Task("ioi-fresh", tuple(examples))


def _last_logits(model, prompts: list[tuple[int, ...]]) -> torch.Tensor:
    """Last-position logits of each prompt, run in batches of equal length."""
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    rows = {}
    with torch.no_grad():
        for idx in by_len.values():
            logits = model.bridge(torch.tensor([prompts[i] for i in idx]))[:, -1]
            rows.update(zip(idx, logits, strict=True))
    return torch.stack([rows[i] for i in range(len(prompts))])


def test_accuracy_on_fresh_prompts(model):
    task = _task(model, 300, seed=98765)
    logits = _last_logits(model, [ex.clean for ex in task.examples])
    answer = torch.tensor([ex.answer for ex in task.examples])
    wrong = torch.tensor([ex.wrong for ex in task.examples])
    assert (logits.argmax(-1) == answer).float().mean() > 0.98
    rows = torch.arange(len(task))
    assert (logits[rows, answer] - logits[rows, wrong]).mean() > 5.0


def test_abc_prompt_has_no_preference(model):
    """The ABC corruption removes the repeated name: the two first names tie on average."""
    task = _task(model, 200, seed=4321)
    logits = _last_logits(model, [ex.corrupt for ex in task.examples])
    rows = torch.arange(len(task))
    answer = torch.tensor([ex.answer for ex in task.examples])
    wrong = torch.tensor([ex.wrong for ex in task.examples])
    assert abs(float((logits[rows, answer] - logits[rows, wrong]).mean())) < 0.5


def test_heads_that_read_the_subject_carry_the_effect(model):
    s = sweep(model, _task(model, 80, seed=2024), quantity="effect")
    top = {(site.layer, site.head) for site, _ in s.ranked()[: len(S2_HEADS)]}
    assert top == S2_HEADS
    rest = [est.point for site, est in s.ranked()[len(S2_HEADS) :]]
    assert max(rest) < 0.1


def test_shipped_pairs_file_is_reproducible(tmp_path):
    path = tmp_path / "pairs.jsonl"
    ioi.write_pairs(path, 400, seed=0)
    assert path.read_text() == PAIRS.read_text()
    for line in PAIRS.read_text().splitlines()[:50]:
        rec = json.loads(line)
        clean, corrupt = rec["clean"].split(), rec["corrupt"].split()
        assert len(clean) == len(corrupt)
        assert sum(a != b for a, b in zip(clean, corrupt, strict=True)) == 1
        assert clean.count(rec["wrong"]) == 2 and clean.count(rec["answer"]) == 1
        assert corrupt.count(rec["wrong"]) == 1 and corrupt.count(rec["answer"]) == 1
