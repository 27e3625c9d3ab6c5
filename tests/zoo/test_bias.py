"""The zoo model ``occupation-bias``: it learned the data's bias, and the bias is mediated by
the layer-0 heads that move the occupation and the layer-0 MLP.

The generator's probabilities are stated here on their own, not read from the training module.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from causal_mi.effects.sweep import sweep
from causal_mi.models.loading import load_model
from causal_mi.tasks.base import Task
from causal_mi.tasks.pairs import read_pairs, tokenize_pairs

# p(she | occupation) in the training data.
DATA_P_SHE = {
    "nurse": 0.90,
    "secretary": 0.82,
    "dancer": 0.74,
    "teacher": 0.66,
    "cashier": 0.58,
    "doctor": 0.42,
    "lawyer": 0.34,
    "farmer": 0.26,
    "mechanic": 0.18,
    "carpenter": 0.10,
}
TEMPLATES = (
    "the {} said that",
    "yesterday the old {} told me that",
    "at work the {} thinks that",
    "this morning the young {} told us that",
)
PAIRS = (
    Path(__file__).resolve().parents[2] / "hypotheses" / "zoo" / "occupation-bias" / "pairs.jsonl"
)


@pytest.fixture(scope="module")
def model():
    return load_model("zoo:occupation-bias")


@pytest.fixture(scope="module")
def task(model):
    records, problems = read_pairs(PAIRS)
    assert not problems
    examples, problems = tokenize_pairs(PAIRS, records[:120], model.tokens)
    assert not problems
    return Task("pairs", tuple(examples))


def _model_p_she(model) -> dict[str, float]:
    """p(she) / (p(she) + p(he)) at the last position, averaged over ``TEMPLATES``."""
    she, he = (model.tokens.pieces(w)[0] for w in ("she", "he"))
    out = {}
    with torch.no_grad():
        for occupation in DATA_P_SHE:
            ps = []
            for t in TEMPLATES:
                ids = torch.tensor([model.tokens.prompt(t.format(occupation))])
                probs = model.bridge(ids)[0, -1].softmax(-1)
                ps.append(float(probs[she] / (probs[she] + probs[he])))
            out[occupation] = sum(ps) / len(ps)
    return out


def _ranks(xs: list[float]) -> list[int]:
    order = sorted(range(len(xs)), key=xs.__getitem__)
    return [order.index(i) for i in range(len(xs))]


def test_learned_bias_tracks_the_data(model):
    learned = _model_p_she(model)
    occupations = list(DATA_P_SHE)
    data = [DATA_P_SHE[o] for o in occupations]
    got = [learned[o] for o in occupations]
    # Spearman rank correlation (no ties): 1 - 6 sum d^2 / (n (n^2 - 1))
    n = len(data)
    d2 = sum((a - b) ** 2 for a, b in zip(_ranks(data), _ranks(got), strict=True))
    assert 1 - 6 * d2 / (n * (n * n - 1)) > 0.9
    # calibrated, not just ordered: every occupation within 0.08 of the data
    assert max(abs(a - b) for a, b in zip(data, got, strict=True)) < 0.08


def test_layer0_carries_the_bias(model, task):
    heads = sweep(model, task, quantity="effect", n_boot=200)
    best, est = heads.ranked()[0]
    assert (best.layer, best.head) == (0, 1)  # the head that moves the occupation
    assert est.lower > 0.4
    mlps = sweep(model, task, quantity="effect", kind="mlp", n_boot=200)
    l0, l1 = mlps.estimates
    assert l0.lower > 0.5  # the layer-0 MLP mediates most of the occupation's effect
    assert l1.upper < 0.2
