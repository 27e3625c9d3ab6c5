"""The published circuits in hypotheses/literature/ on shapes: each file validates against
its architecture's config (GPT-2 small's from transformers' own GPT2Config, no weights; the
zoo model for the two-layer file), and its generator's rows carry every role it names, for
a tokenizer the test builds. The hub models themselves are not needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from causal_mi.errors import InputError
from causal_mi.spec.loader import load_hypothesis
from causal_mi.spec.resolve import ModelDims, check_dims
from causal_mi.spec.sites import format_site

LITERATURE = Path(__file__).parents[2] / "hypotheses" / "literature"
FILES = sorted(LITERATURE.glob("*.yaml"))


def dims_for(model: str) -> ModelDims:
    """The model's shape from its configuration alone."""
    if model == "hf:gpt2":
        from transformers import GPT2Config

        c = GPT2Config()  # GPT-2 small: 12 layers, 12 heads, d_model 768
        return ModelDims(c.n_layer, c.n_head, c.n_inner or 4 * c.n_embd, False)
    if model.startswith("zoo:"):
        from causal_mi.models.loading import load_model

        return load_model(model).dims
    raise AssertionError(f"no config for {model}")


def problems_of(path: Path, view) -> list:
    from causal_mi.properties.load import check_positions, load_properties
    from causal_mi.tasks.checks import position_problems
    from causal_mi.tasks.registry import build_task

    hyp = load_hypothesis(path)
    dims = dims_for(hyp.spec.model)
    problems = check_dims(hyp, dims)
    variables, _ = load_properties(hyp, dims)
    task = build_task(hyp.spec, hyp.path, view)
    problems += position_problems(hyp, task)
    try:
        check_positions(hyp, variables, task)
    except InputError as exc:
        problems += exc.problems
    return problems


def test_the_three_circuits_ship():
    names = {p.name for p in FILES}
    assert {"ioi-gpt2-small.yaml", "greater-than-gpt2-small.yaml", "induction-2l.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_file_validates_on_its_shape(path, words_view):
    assert problems_of(path, words_view) == []
    text = path.read_text()
    assert "arXiv" in text or "et al." in text, "the file cites its source"


def test_ioi_heads_by_class():
    hyp = load_hypothesis(LITERATURE / "ioi-gpt2-small.yaml")
    at = {name: format_site(s.without_pos()) for name, s in hyp.nodes.items()}
    roles = {name: s.roles for name, s in hyp.nodes.items()}
    classes = {
        ("END",): ["L9H9", "L9H6", "L10H0", "L10H7", "L11H10", "L7H3", "L7H9", "L8H6", "L8H10"],
        ("S2",): ["L5H5", "L6H9", "L0H1", "L3H0"],
        ("S1_next",): ["L2H2", "L4H11"],
    }
    for role, heads in classes.items():
        for h in heads:
            names = [n for n, s in at.items() if s == h]
            assert names and roles[names[0]] == role, (h, role)
    backup = {"L10H10", "L10H6", "L10H2", "L10H1", "L11H2", "L9H7", "L9H0", "L11H9"}
    assert backup <= set(at.values())


@pytest.mark.parametrize(
    ("edit", "needle"),
    [(("L9H9, pos: END", "L9H9, pos: S3"), "unknown role 'S3'"), (("L9H9", "L12H9"), "layer 12")],
    ids=["role", "layer"],
)
def test_a_broken_literature_file_is_caught(tmp_path, words_view, edit, needle):
    path = tmp_path / "ioi.yaml"
    shutil.copy(LITERATURE / "ioi-gpt2-small.yaml", path)
    path.write_text(path.read_text().replace(*edit, 1))
    problems = problems_of(path, words_view)
    assert any(needle in p.message for p in problems), problems
