"""Properties checked on the hand-built induction model, whose circuit is known: L0H2 is the
previous-token head and L1H1 the induction head reading it through its keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from causal_mi import pipeline
from causal_mi.cli import app
from causal_mi.properties.check import check_properties, consistency, parse_properties
from causal_mi.properties.variables import discretize, parse_variables, raw_values

TRUE = Path(__file__).parents[2] / "hypotheses" / "zoo" / "handmade-induction" / "true.yaml"
VARIABLES = {
    "prev": {"attention": "L0H2", "to": "previous", "above": 0.5},
    "ind": {"attention": "L1H1", "to": "induction", "above": 0.5},
    "ind_level": {"attention": "L1H1", "to": "induction", "levels": [0.2, 0.5, 0.9]},
    "other": {"attention": "L0H0", "to": "self", "above": -1.0},  # true in every run
    "correct": {"output": "correct"},
    "confident": {"output": "metric", "above": 0.0},
}


@pytest.fixture(scope="module")
def prep():
    return pipeline.prepare(TRUE)


@pytest.fixture(scope="module")
def variables(prep):
    vs, problems = parse_variables(VARIABLES, prep.hypothesis.nodes, prep.model.dims)
    assert problems == []
    return vs


def _check(prep, variables, formulas, **kw):
    props, problems = parse_properties(formulas, variables)
    assert problems == []
    res = check_properties(
        props,
        variables,
        prep.model,
        prep.task,
        ablation="resample",
        metric_name="logit_diff",
        **kw,
    )
    return {r["name"]: r for r in res}


def test_planted_circuit(prep, variables):
    r = _check(
        prep,
        variables,
        [
            "ind -> prev",  # induction needs the previous-token head: true
            "ind -> correct",  # the induction head gives the answer: true
            "ind_level >= 2 <-> ind",  # an integer variable agrees with its boolean
            "prev -> not ind",  # false on every clean run
            "correct -> other",  # true in every run observed, false under intervention
        ],
    )
    assert r["ind -> prev"]["status"] == "holds"
    assert r["ind -> correct"]["status"] == "holds"
    assert r["ind_level >= 2 <-> ind"]["status"] == "holds"
    bad = r["prev -> not ind"]
    assert bad["status"] == "fails" and bad["counterexample"]["kind"] == "observed"
    assert bad["counterexample"]["values"] == {"prev": 1, "ind": 1}
    assert bad["counterexample"]["run"] == "clean"
    spurious = r["correct -> other"]
    assert spurious["status"] == "fails"
    ce = spurious["counterexample"]
    assert ce["kind"] == "interventional" and ce["intervention"] == {"other": 0}
    assert "other=0 (ablated)" in spurious["detail"]


def test_truth_table_is_the_planted_mechanism(prep, variables):
    r = _check(prep, variables, ["ind -> prev"])["ind -> prev"]
    assert r["parents"] == ["prev"]
    table = {row["prev"]: row["ind"] for row in r["truth_table"]}
    assert table[1] > 0.95  # the head fires with its previous-token input clean
    assert table[0] < 0.05  # and stops when the previous-token head is ablated


def test_counterexample_is_a_real_example(prep, variables):
    """The named example really has the reported values (recomputed by hand)."""
    r = _check(prep, variables, ["prev -> not ind"])["prev -> not ind"]
    i = r["counterexample"]["example"]
    ex = prep.task.examples[i]
    toks = torch.tensor([ex.clean])
    _, cache = prep.model.bridge.run_with_cache(toks)
    v = next(x for x in variables if x.name == "ind")
    val = raw_values(
        v, cache["blocks.1.attn.hook_pattern"], toks, torch.tensor([ex.answer]), np.zeros(1)
    )
    assert discretize(v, val)[0] == 1
    assert r["counterexample"]["prompt"].split()[0] == prep.model.tokens.show([ex.clean[0]])[0]


def test_contradiction_and_tautology(variables):
    props, _ = parse_properties(
        ["prev -> ind", "prev and not ind", "ind or not ind", "correct"], variables
    )
    core, tautologies = consistency(props, variables)
    assert set(core) == {"prev -> ind", "prev and not ind"}
    assert tautologies == ["ind or not ind"]
    ok, _ = consistency(props[:1] + props[2:], variables)
    assert ok == []


def test_results_do_not_depend_on_rows_per_pass(prep, variables):
    a = _check(prep, variables, ["ind -> prev", "correct -> other"])
    b = _check(prep, variables, ["ind -> prev", "correct -> other"], max_rows=7)
    a, b = ({k: p.to_dict() for k, p in r.items()} for r in (a, b))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_verify_exit_code_junit_and_report(tmp_path):
    src = TRUE.read_text()
    text = src  # the shipped file states ind_fires -> prev_fires and ind_fires -> correct
    good = tmp_path / "good.yaml"
    good.write_text(text)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "  - name: exclusive\n    formula: not (prev_fires and ind_fires)\n")
    runner = CliRunner()
    r = runner.invoke(app, ["verify", str(good), "-o", str(tmp_path / "g"), "--no-ablation-check"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["verify", str(bad), "-o", str(tmp_path / "b"), "--no-ablation-check"])
    assert r.exit_code == 1, r.output
    assert "FAILS  property exclusive" in r.output
    junit = (tmp_path / "b" / "junit.xml").read_text()
    assert junit.count("<testcase") == 7 + 3 and junit.count("<failure") == 1
    doc = json.loads((tmp_path / "b" / "results.json").read_text())
    prop = next(p for p in doc["properties"] if p["name"] == "exclusive")
    assert prop["status"] == "fails" and prop["counterexample"]["values"] == {
        "prev_fires": 1,
        "ind_fires": 1,
    }
    # the file's verdict in results.json is the exit code's: a failing property fails it
    assert doc["claims_passed"] is True
    assert (doc["verdict"], doc["passed"]) == ("fail", False)


@pytest.mark.parametrize(
    "variables, properties, message",
    [
        ("{a: {attention: L0H7, to: self, above: 0.5}}", "[a]", ":2:28: head 7 out of range"),
        ("{a: {attention: L0H0, to: next, above: 0.5}}", "[a]", "unknown attention target"),
        ("{a: {attention: L0H0, to: self}}", "[a]", "give exactly one of 'above"),
        ("{a: {neuron: 'L0.mlp[1]', above: 0.5}}", "[a]", "needs exactly one of"),
        ("{a: {output: correct, above: 1}}", "[a]", "already a boolean"),
        ("{a: {output: correct}}", "[a -> b]", ":3:19: property: unknown variable 'b'"),
        ("{a: {output: correct}}", "['a and (a']", "expected ')'"),
        ("{a: {output: metric, levels: [1, 3]}}", "[a]", "a property must be a boolean"),
        (None, "[a]", "properties need variables"),
        ("{a: {attention: L0H0, to: self, pos: 99, above: 0.5}}", "[a]", "pos 99 is outside"),
        ("{a: {attention: L0H0, to: -40, above: 0.5}}", "[a]", "to -40 is outside"),
    ],
)
def test_bad_properties_exit_2(tmp_path, variables, properties, message):
    lines = [
        "version: 1",
        f"variables: {variables}" if variables else "name: t",
        f"properties: {properties}",
        "name: t" if variables else "description: x",
        "model: zoo:handmade-induction",
        "task: {generator: repeated_tokens, n: 20, seed: 0}",
    ]
    f = tmp_path / "h.yaml"
    f.write_text("\n".join(lines) + "\n")
    r = CliRunner().invoke(app, ["verify", str(f), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_unrealised_parent_state_is_not_a_counterexample(prep, variables):
    """Keeping a component clean sets its variable to 1 only where it is 1 on the clean run:
    a parent that never fires (position 0 has no previous token) gives no state-1 rows, so
    an implication from it cannot fail on a state the model never produced. Nor can it hold
    on its merits: its premise is never realised, so it is vacuous (it holds only where the
    file accepts that with ``allow_vacuous: true``)."""
    extra, problems = parse_variables(
        {"prev0": {"attention": "L0H2", "to": "previous", "pos": 0, "above": 0.5}},
        prep.hypothesis.nodes,
        prep.model.dims,
    )
    assert problems == []
    vs = [*variables, *extra]
    r = _check(prep, vs, ["prev0 -> not ind"])["prev0 -> not ind"]
    assert r["status"] == "vacuous" and r["counterexample"] is None, r["detail"]
    assert "premise is true in none of the 200 observed runs" in r["detail"]
    assert r["coverage"]["premise_observed"] == 0
    assert r["coverage"]["unrealised"] == [{"prev0": 1}]
    table = {row["prev0"]: row for row in r["truth_table"]}
    assert table[1]["n"] == 0 and table[0]["n"] == len(prep.task.examples)
    allowed = [{"name": "p", "formula": "prev0 -> not ind", "allow_vacuous": True}]
    r = _check(prep, vs, allowed)["p"]
    assert r["status"] == "holds" and "vacuously (allowed by the file)" in r["detail"]


def test_a_realised_premise_is_not_vacuous(prep, variables):
    r = _check(prep, variables, ["ind -> correct"])["ind -> correct"]
    assert r["status"] != "vacuous", r["detail"]
    assert r["coverage"]["premise_observed"] > 0


def test_variables_not_set_by_intervention_are_named(prep, variables):
    """An integer variable on an earlier component is measured, not intervened on, and the
    result says so."""
    r = _check(prep, variables, ["ind_level >= 2 -> correct"])["ind_level >= 2 -> correct"]
    assert r["parents"] == [] and r["not_intervened"] == ["ind_level"]
    assert "not set by intervention: ind_level" in r["detail"]


def test_metric_variable_reads_the_engines_metric(prep, variables):
    """``output: metric`` is the file's metric of each run (logit difference > 0 here): the
    induction head firing implies it, and the corrupt runs, where the head does not fire and
    the answer is not predicted, falsify ``confident``."""
    r = _check(prep, variables, ["ind -> confident", "confident"])
    assert r["ind -> confident"]["status"] == "holds"
    bad = r["confident"]["counterexample"]
    assert r["confident"]["status"] == "fails" and bad["run"] == "corrupt"
