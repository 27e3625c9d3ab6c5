"""The graph's implications: listed by d-separation, tested on the recorded runs.

Evidence: a linear SCM with a planted structure (data drawn here, no network), networkx's own
d-separation for the listed separating sets, and the hand-built model handmade-mediation,
whose true graph follows from its weights (causal_mi/zoo/mediation.py)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from causal_mi.graph import implications as I
from causal_mi.graph.nodes import CLEAN, CORRUPT, NodeData, NodeGraph, do, held
from tests.graph.conftest import MEDIATION, ZOO


def _graph(edges: list[tuple[str, str]], names: tuple[str, ...]) -> NodeGraph:
    from causal_mi.spec.sites import Kind, Site

    sites = {n: Site(Kind.HEAD, i, 0) for i, n in enumerate(names[1:-1])}
    return NodeGraph(names, sites, tuple(edges))


def _planted(n: int = 400, seed: int = 0) -> NodeData:
    """embed -> A -> {B, C} -> logits, and a planted A -> logits edge the declared graph
    leaves out: clean rows have embed = 1, corrupt rows 0; A, B, C carry their own noise."""
    rng = np.random.default_rng(seed)
    names = ("embed", "A", "B", "C", "logits")
    runs = {}
    for key, x in ((CLEAN, 1.0), (CORRUPT, 0.0)):
        a = x + rng.normal(0, 0.5, n)
        b = a + rng.normal(0, 0.5, n)
        c = a + rng.normal(0, 0.5, n)
        y = b + c + 0.8 * a + rng.normal(0, 0.1, n)
        runs[key] = np.column_stack([np.full(n, x), a, b, c, y])
    edges = [("embed", "A"), ("A", "B"), ("A", "C"), ("B", "logits"), ("C", "logits")]
    graph = _graph(edges, names)
    for name in names[1:]:  # interventions change nothing here (no test reads them)
        runs[do(name)] = runs[CLEAN].copy()
        runs[held(name)] = runs[CLEAN].copy()
    sep = {"A": 1.0, "B": 1.0, "C": 1.0}
    return NodeData(graph, runs, np.arange(n), sep, 0)


def test_listed_separating_sets_are_d_separators():
    g = _graph(
        [("embed", "A"), ("A", "B"), ("embed", "C"), ("B", "logits"), ("C", "logits")],
        ("embed", "A", "B", "C", "logits"),
    )
    dg = nx.DiGraph(list(g.edges))
    listed = I.independences(g)
    assert {(u, v) for u, v, _ in listed} == {
        ("embed", "B"),
        ("embed", "logits"),
        ("A", "C"),
        ("A", "logits"),
        ("B", "C"),
    }
    for u, v, given in listed:
        if given is not None:
            assert nx.is_d_separator(dg, {u}, {v}, set(given))


def test_planted_missing_edge_is_contradicted_and_named():
    result = I.test_implications(_planted(), confidence=0.95, gap=1.0)
    ci = {i.edge: i for i in result.items if i.kind == "independence"}
    assert ci["A -> logits"].status == "contradicted"
    assert ci["A -> logits"].given == ("B", "C")
    assert ci["B -> C"].status == "holds"
    assert not result.hold


def test_planted_true_graph_holds():
    data = _planted()
    true = _graph(
        [*data.graph.edges, ("A", "logits")], data.graph.names
    )  # the edge the data were drawn with
    result = I.test_implications(
        NodeData(true, data.runs, data.evaluation, data.separation, 0), confidence=0.95, gap=1.0
    )
    assert [(i.edge, i.status) for i in result.items if i.kind == "independence"] == [
        ("B -> C", "holds")
    ]
    assert result.hold


def test_implications_of_the_true_mediation_graph_hold(evaluated):
    r = evaluated(MEDIATION / "true.yaml").causal_model
    assert r.implications.hold
    assert r.implications.tested >= 4  # not vacuous
    kinds = {i.kind for i in r.implications.items if i.status == "holds"}
    assert kinds == {"independence", "input independence", "null effect"}


def test_dropped_carrying_edge_is_named(evaluated):
    ctx = evaluated(MEDIATION / "false-missing-edge.yaml")
    bad = {(i.kind, i.edge) for i in ctx.causal_model.implications.contradicted}
    assert ("independence", "M2 -> logits") in bad  # logits _||_ M2 | T, M1, mix
    assert ("null effect", "M2 -> logits") in bad  # do(M2) moves the logits
    claim = [c for c in ctx.verdict.claims if c.claim.claim.text == "implications hold"][0]
    assert not claim.passed and "M2 -> logits" in claim.rule


def test_wrong_mediator_is_named(evaluated):
    ctx = evaluated(MEDIATION / "false-wrong-mediator.yaml")
    bad = {i.edge for i in ctx.causal_model.implications.contradicted}
    assert "M1 -> mix" in bad


def test_handmade_induction_true_graph_has_no_contradiction(evaluated, analysed):
    path = ZOO / "handmade-induction" / "true.yaml"
    assert evaluated(path).causal_model is None  # no such claim: verdict-only runs skip it
    _, full = analysed(path)
    assert full.implications.hold and full.implications.tested >= 1


@pytest.mark.parametrize("text", ["implications hold", "  implications   hold "])
def test_claim_parses(text):
    from causal_mi.spec.claims import IMPLICATIONS, parse_claim

    c = parse_claim(text)
    assert (c.quantity, c.args) == (IMPLICATIONS, ())


def test_claim_without_edges_is_an_input_error(tmp_path):
    from causal_mi.errors import InputError
    from causal_mi.spec.loader import load_hypothesis

    f = tmp_path / "h.yaml"
    f.write_text(
        "version: 1\nname: x\nmodel: zoo:handmade-mediation\n"
        "task: {file: pairs.jsonl, n: 4}\nmetric: logit_diff\nnodes: {T: L0H0}\n"
        "claims:\n  - implications hold\n"
    )
    (tmp_path / "pairs.jsonl").write_text((MEDIATION / "pairs.jsonl").read_text())
    with pytest.raises(InputError, match=r"h.yaml:8:5: 'implications hold' needs a graph"):
        load_hypothesis(f)
