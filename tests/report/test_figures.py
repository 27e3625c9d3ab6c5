"""The report's figures: heatmaps carry a colour scale, axis names and their full title;
the hypothesis graph's labels never overlap; the head map agrees with the claims."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np

from causal_mi.report import graph, svg


def test_heatmap_has_scale_axes_and_full_title():
    title = "effect of ablating each head (resample ablation), fraction of G, n = 200 " * 2
    out = svg.heatmap(
        np.array([[0.5, -0.25], [0.0, 1.0]]),
        ["L0", "L1"],
        ["H0", "H1"],
        title=title,
        row_axis="layer",
        col_axis="head",
        fig_id="t",
    )
    lines = re.findall(r'font-weight="bold">([^<]*)</text>', out)
    assert len(lines) > 1 and " ".join(lines) == " ".join(title.split())  # wrapped, not cut
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', out).group(1))
    assert all(svg.text_width(line, 13) + 10 <= width for line in lines)
    assert 'class="colorbar"' in out and ">+1.00<" in out and ">-1.00<" in out
    assert ">layer</text>" in out and ">head</text>" in out
    assert "head H0: -0.25" not in out and "layer L0, head H1: -0.25" in out


def test_color_scale_is_diverging_and_sequential():
    assert svg.color(0.0, 1.0) == "rgb(255,255,255)"
    assert svg.color(1.0, 1.0) == "rgb(178,24,43)" and svg.color(-1.0, 1.0) == "rgb(33,102,172)"
    assert svg.color(-1.0, 1.0, vmin=0.0) == "rgb(255,255,255)"


def _dense():
    nodes = [graph.GraphNode("embed", "embed", "input", -1)]
    nodes += [graph.GraphNode(f"a{i}", f"a{i}", f"L0H{i} · effect +0.5", 0, 0.5) for i in range(4)]
    nodes += [graph.GraphNode(f"b{i}", f"b{i}", f"L1H{i} · effect -0.2", 1, -0.2) for i in range(4)]
    nodes.append(graph.GraphNode("logits", "logits", "output", 2))
    edges = [graph.GraphEdge("embed", n.id, "qkv max +0.44", 0.44) for n in nodes[1:9]]
    edges += [
        graph.GraphEdge(f"a{i}", f"b{j}", f"k +0.{i}{j}", 0.1 * i)
        for i in range(4)
        for j in range(4)
    ]
    edges += [graph.GraphEdge(f"b{i}", "logits", "+0.31", 0.31) for i in range(4)]
    edges.append(graph.GraphEdge("embed", "logits", "-0.01", 0.01, negative=True))
    return nodes, edges


def test_graph_labels_do_not_overlap_each_other_or_nodes():
    nodes, edges = _dense()
    lay = graph.fit(nodes, edges)
    assert len(lay.labels) == len(edges), "every edge has its one label"
    boxes = list(lay.labels.values()) + list(lay.nodes.values())
    for a, b in itertools.combinations(boxes, 2):
        assert not a.hits(b, pad=0.0), (a, b)
    for b in boxes:
        assert 0 <= b.x - b.w / 2 and b.x + b.w / 2 <= lay.width
        assert 0 <= b.y - b.h / 2 and b.y + b.h / 2 <= lay.height


def test_graph_checker_case_overlap_is_detected():
    """The overlap test above can fail: two boxes at one place hit."""
    a = graph._Box(10, 10, 20, 10)
    assert a.hits(graph._Box(15, 12, 20, 10)) and not a.hits(graph._Box(100, 10, 20, 10))


def test_edges_skipping_rows_pass_through_waypoints():
    nodes, edges = _dense()
    lay = graph.layout(nodes, edges)
    # embed -> b0 skips the a-row: three points; and never through an a-node's box
    i = next(k for k, e in enumerate(edges) if e.src == "embed" and e.dst == "b0")
    assert len(lay.paths[i]) == 3
    mid = graph._Box(*lay.paths[i][1], 1, 1)
    assert not any(mid.hits(lay.nodes[f"a{k}"], pad=0) for k in range(4))


def test_graphviz_plain_output_is_parsed():
    text = "graph 1 3 2\nnode n0 1.5 0.25 1.2 0.4 n0 solid box black lightgrey\nnode n1 0.5 1 1 1\n"
    assert graph.parse_plain(text) == {"n0": 1.5, "n1": 0.5}


def test_head_map_agrees_with_the_claims(report_dir):
    """The head heatmap uses the claims' examples: its cells equal the claims' estimates."""
    html = (report_dir / "report.html").read_text()
    data = json.loads((report_dir / "results.json").read_text())
    fig = html[html.index('id="fig-heads"') :]
    table = fig[fig.index("<table>") : fig.index("</table>")]
    rows = re.findall(r'<th scope="row">(L\d+)</th>(.*?)</tr>', table, re.S)
    cells = {
        f"{layer}H{j}": float(x)
        for layer, body in rows
        for j, x in enumerate(re.findall(r'class="num">([^<]+)<', body))
    }
    n = data["task"]["n"]
    assert f"n = {n}" in fig
    for site in ("L0H2", "L1H1", "L0H0", "L1H2"):
        assert abs(cells[site] - data["quantities"][f"effect({site})"]["point"]) < 6e-4, site


def test_head_view_keeps_the_circuit_heads_within_its_budget():
    from causal_mi.report.page import HEAD_VIEW_VALUES, head_view_heads

    assert len(head_view_heads(2, 4, 20, {})) == 8  # small: every head
    big = head_view_heads(12, 12, 120, {"9,6": "name_mover", "10,0": "backup"})
    assert (9, 6) in big and (10, 0) in big
    assert len(big) * 120 * 120 <= HEAD_VIEW_VALUES < (len(big) + 1) * 120 * 120


def test_a_graph_of_one_node_and_no_edges_is_drawn():
    """A node-level file (no edges): one box, nothing else."""
    out = graph.draw([graph.GraphNode("ind", "ind", "L1H1 · effect +1.00", 0, 1.0)], [])
    assert out.count('class="node"') == 1 and 'class="edge"' not in out
    assert graph.layout([], []).nodes == {}
