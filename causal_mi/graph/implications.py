"""The declared graph's testable implications, tested on the recorded runs.

Two kinds, both read from the graph (``embed`` the input, ``logits`` the outcome):

- **Conditional independences** (local Markov property, listed and checked with pgmpy's
  d-separation): for every pair ``u`` before ``v`` with no declared edge between them,
  ``v _||_ u | parents(v)``. Each one is the observable trace of the *absent edge*
  ``u -> v``, which is what a contradiction names. Tested on the observational rows (clean
  and corrupt inputs, evaluation half) by a partial-correlation test through statsmodels:
  OLS of ``v`` on the separating set with and without ``u``, the t-test of ``u``'s
  coefficient, and the squared partial correlation (the share of ``v``'s variance left
  after the set that ``u`` explains).
- **Null effects**: ablating ``a`` must leave every later vertex ``b`` that ``a`` has no
  directed path to unchanged. Tested on the interventional runs (the clean input with ``a``
  ablated): the root-mean-square change of ``b``'s variable, in units of its clean-corrupt
  separation (of G for the logits), against an equivalence margin.

Testability. A network is deterministic given its whole input, so an independence whose
separating set contains ``embed`` (the full input) cannot be told apart observationally:
given the input, every variable is constant. Such an implication is tested when pgmpy finds
another separating set without ``embed`` (``minimal_dseparator``), otherwise it is listed as
untestable from observation; its interventional counterpart is the null effect. The
observational tests take the input's variation beyond clean/corrupt (which prompt) as each
node's own noise: when two nodes read the same part of the prompt, that shared input shows
as a dependence no declared edge explains, and is reported as the absent edge.

Decision: an implication is *contradicted* when its Holm-adjusted p-value (statsmodels'
``multipletests``, as :mod:`causal_mi.stats.corrections` writes it out, over every tested
implication of the file) is below 1 - confidence *and*
the dependence is larger than its margin (CI: a squared partial correlation of at least
``MIN_SHARE``; null effect: a root-mean-square change above ``NULL_MARGIN``), so exact numerical
dependences (float rounding) never count and real ones always do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from causal_mi.graph.nodes import (
    CLEAN,
    EMBED,
    LOGITS,
    MIN_SEPARATION,
    NodeData,
    NodeGraph,
    do,
    held,
)

MIN_SHARE = 0.05  # squared partial correlation of u and v given the separating set
NULL_MARGIN = 0.05  # RMS change, of the node's clean-corrupt separation (of G for logits)
MIN_ROWS = 8


@dataclass(frozen=True)
class Implication:
    """One implication and its test. ``kind``: ``independence`` | ``null effect``;
    ``status``: ``holds`` | ``contradicted`` | ``untestable``."""

    kind: str
    text: str  # e.g. "logits _||_ M2 | T, M1, mix"
    edge: str  # the absent edge a contradiction points to, "u -> v"
    given: tuple[str, ...]
    statistic: float  # CI: share of variance; null effect: mean change
    p_value: float
    p_adjusted: float
    status: str
    note: str = ""


@dataclass(frozen=True)
class Implications:
    """Every implication of the declared graph with its test; ``alpha`` the family level."""

    items: tuple[Implication, ...]
    alpha: float
    correction: str = "holm"

    @property
    def contradicted(self) -> tuple[Implication, ...]:
        return tuple(i for i in self.items if i.status == "contradicted")

    @property
    def tested(self) -> int:
        return sum(i.status != "untestable" for i in self.items)

    @property
    def hold(self) -> bool:
        return not self.contradicted


def dag(graph: NodeGraph):
    """The graph as a pgmpy DAG."""
    from pgmpy.base import DAG

    g = DAG()
    g.add_nodes_from(graph.names)
    g.add_edges_from(graph.edges)
    return g


def independences(graph: NodeGraph) -> list[tuple[str, str, tuple[str, ...] | None]]:
    """``(u, v, separating set or None when untestable)`` for every absent edge u -> v."""
    g = dag(graph)
    adjacent = {frozenset(e) for e in graph.edges}
    out = []
    for i, u in enumerate(graph.names):
        for v in graph.names[i + 1 :]:
            if frozenset((u, v)) in adjacent:
                continue
            given = tuple(p for p in graph.names if p in graph.parents(v))
            assert not g.is_dconnected(u, v, observed=list(given)), (u, v, given)
            if EMBED in given and u != EMBED:
                sep = g.minimal_dseparator(u, v)
                given = None if sep is None or EMBED in sep else tuple(sorted(sep))
            out.append((u, v, given))
    return out


def basis(z: np.ndarray) -> np.ndarray:
    """A constant, the separating set's variables, their squares and pairwise products: the
    test adjusts for smooth nonlinear functions of the set (a ReLU of two parents), not only
    linear ones, so a nonlinear mechanism is not mistaken for a missing edge."""
    cols = [np.ones(len(z))]
    k = z.shape[1] if z.ndim == 2 else 0
    cols += [z[:, i] for i in range(k)]
    cols += [z[:, i] * z[:, j] for i in range(k) for j in range(i, k)]
    return np.column_stack(cols)


def _ci_test(y: np.ndarray, x: np.ndarray, z: np.ndarray) -> tuple[float, float, str]:
    """(squared partial correlation: the share of y's variance left after z that x
    explains, p-value of x's OLS coefficient, note)."""
    import statsmodels.api as sm

    if np.var(y) < 1e-12 or np.var(x) < 1e-12:
        return 0.0, 1.0, "constant variable"
    base = basis(z)
    r0 = sm.OLS(y, base).fit()
    rx = sm.OLS(x, base).fit()
    if np.var(rx.resid) < 1e-10 * np.var(x):
        return 0.0, 1.0, "determined by the separating set"
    tss = float(((y - y.mean()) ** 2).sum())
    if r0.ssr < 1e-10 * tss:
        return 0.0, 1.0, "determined by the separating set"
    r1 = sm.OLS(y, np.column_stack([base, x])).fit()
    share = max(0.0, float(r0.ssr - r1.ssr) / float(r0.ssr))
    p = float(r1.pvalues[-1])
    return share, p if np.isfinite(p) else 1.0, ""


def _null_test(change: np.ndarray) -> tuple[float, float]:
    """(root-mean-square change, one-sided p-value of a t-test that the mean absolute change
    exceeds 0). A deterministic network changes a node it does not depend on by exactly 0
    on every example, so a change of either sign counts, even one averaging out."""
    from scipy import stats

    size = np.abs(change)
    rms = float(np.sqrt((change**2).mean()))
    if np.allclose(size, size[0]):
        return rms, 0.0 if size[0] > 0 else 1.0
    return rms, float(stats.ttest_1samp(size, 0.0, alternative="greater").pvalue)


def _weak(data: NodeData, names: list[str]) -> str:
    seps = ", ".join(f"{n}: {data.separation.get(n, 0.0):.2f}" for n in names)
    return (
        f"the scalar of {', '.join(names)} does not separate clean from corrupt on held-out "
        f"examples (separation {seps}; at least {MIN_SEPARATION} needed), so it does not "
        "stand in for the node"
    )


def test_implications(data: NodeData, *, confidence: float, gap: float) -> Implications:
    """Every implication of ``data.graph`` tested on ``data``'s runs (see the module doc)."""
    from causal_mi.stats.corrections import multipletests

    graph = data.graph
    names = graph.names
    obs = data.observational()
    raw: list[dict] = []
    rows = data.evaluation
    for u, v, given in independences(graph):
        text = f"{v} _||_ {u}" + (f" | {', '.join(given)}" if given else "")
        item = {"kind": "independence", "edge": f"{u} -> {v}", "given": given or ()}
        if u == EMBED:  # tested by intervention: the input changes, the parents do not
            if not data.informative(v):
                raw.append(
                    item | {"text": text, "stat": float("nan"), "p": None, "note": _weak(data, [v])}
                )
                continue
            change = data.column(held(v), v, rows) - data.column(CLEAN, v, rows)
            if v == LOGITS:
                change = change / gap if gap else change * np.nan
            mean, p = _null_test(change) if len(change) else (float("nan"), 1.0)
            raw.append(
                item
                | {
                    "kind": "input independence",
                    "text": text,
                    "stat": mean,
                    "p": p,
                    "note": "corrupt input, declared parents patched "
                    "from the clean run; change of " + v,
                }
            )
            continue
        if given is None:
            raw.append(
                item
                | {
                    "text": f"{v} _||_ {u} | embed",
                    "stat": float("nan"),
                    "p": None,
                    "note": "every separating set contains embed: deterministic "
                    "given the input, tested as a null effect instead",
                }
            )
            continue
        if len(obs) < MIN_ROWS:
            raw.append(
                item | {"text": text, "stat": float("nan"), "p": None, "note": "too few examples"}
            )
            continue
        weak = [n for n in (u, v, *given) if not data.informative(n)]
        if weak:
            raw.append(
                item | {"text": text, "stat": float("nan"), "p": None, "note": _weak(data, weak)}
            )
            continue
        z = obs[:, [names.index(g) for g in given]]
        share, p, note = _ci_test(obs[:, names.index(v)], obs[:, names.index(u)], z)
        raw.append(item | {"text": text, "stat": share, "p": p, "note": note})
    for a in graph.components:
        reach = graph.descendants(a)
        after = names[names.index(a) + 1 :]
        for b in after:
            if (
                b in reach
                or graph.sites.get(b, None) is not None
                and (graph.sites[b].order_key() <= graph.sites[a].order_key())
            ):
                continue  # b has a declared path from a, or is computed no later than a
            if not data.informative(b):
                raw.append(
                    {
                        "kind": "null effect",
                        "edge": f"{a} -> {b}",
                        "given": (),
                        "text": f"do({a}) leaves {b} unchanged",
                        "stat": float("nan"),
                        "p": None,
                        "note": _weak(data, [b]),
                    }
                )
                continue
            change = data.column(do(a), b, rows) - data.column(CLEAN, b, rows)
            if b == LOGITS:
                change = change / gap if gap else change * np.nan
            mean, p = _null_test(change) if len(change) else (float("nan"), 1.0)
            raw.append(
                {
                    "kind": "null effect",
                    "edge": f"{a} -> {b}",
                    "given": (),
                    "text": f"do({a}) leaves {b} unchanged",
                    "stat": mean,
                    "p": p,
                    "note": "" if np.isfinite(mean) else "G is zero",
                }
            )
    alpha = 1 - confidence
    tested = [i for i, r in enumerate(raw) if r["p"] is not None and np.isfinite(r["stat"])]
    adjusted = np.ones(len(raw))
    if tested:
        adjusted[tested] = multipletests(np.array([raw[i]["p"] for i in tested]), alpha, "holm")[1]
    items = []
    for i, r in enumerate(raw):
        if i not in tested:
            status = "untestable"
        else:
            big = (
                r["stat"] >= MIN_SHARE
                if r["kind"] == "independence"
                else (abs(r["stat"]) > NULL_MARGIN)
            )
            status = "contradicted" if big and adjusted[i] < alpha else "holds"
        items.append(
            Implication(
                r["kind"],
                r["text"],
                r["edge"],
                tuple(r["given"]),
                float(r["stat"]),
                float(r["p"]) if r["p"] is not None else float("nan"),
                float(adjusted[i]),
                status,
                r["note"],
            )
        )
    return Implications(tuple(items), alpha)
