"""The graph as a structural causal model (DoWhy gcm): fitted on observational runs, it
predicts the interventions on the true graph of the hand-built model and fails to on a graph
with the wrong mediator."""

from __future__ import annotations

import numpy as np

from causal_mi.graph.scm import ABSTRACTION_FLOOR, PerRow
from tests.graph.conftest import MEDIATION

T_M2 = "indirect(L0H0 -> L1H1 -> logits)"  # through M2 (L1H1)
T_M1 = "indirect(L0H0 -> L1H0 -> logits)"


def _table(analysed, name):
    _, r = analysed(MEDIATION / name)
    return {p.label: p for p in r.abstraction.predictions}, r


def test_true_graph_predicts_every_intervention(analysed):
    table, r = _table(analysed, "true.yaml")
    assert {T_M1, T_M2, "direct(L0H0 -> logits)", "effect(L0H0)"} <= set(table)
    for p in table.values():
        assert abs(p.error) <= ABSTRACTION_FLOOR, p  # the stated tolerance, not a wider one
    assert r.abstraction.r2["logits"] > 0.99  # DoWhy's evaluation of the fitted mechanism


def test_wrong_mediator_is_mispredicted(analysed):
    table, r = _table(analysed, "false-wrong-mediator.yaml")
    assert abs(table[T_M2].error) > 2 * ABSTRACTION_FLOOR  # the mediator the file names
    assert abs(table[T_M1].error) > 2 * ABSTRACTION_FLOOR
    assert T_M2 in r.abstraction.poorly_predicted


def test_per_row_intervention_hands_out_values_in_order():
    f = PerRow(np.array([3.0, 1.0, 2.0]))
    assert list(map(f, np.zeros(3))) == [3.0, 1.0, 2.0] and f.used == 3
