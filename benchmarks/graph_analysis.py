"""Cost of the graph analysis (causal_mi.graph) inside ``verify``, in one warm process.

Every lazy import is paid by a warm-up run first; then ``pipeline.evaluate`` (views on, as
``verify --out`` does) alternates without and with the analysis, twice each, and the
medians are printed. Usage::

    PYTHONPATH=. python benchmarks/graph_analysis.py hypotheses/zoo/handmade-mediation/true.yaml
"""

from __future__ import annotations

import statistics
import sys
import time

import causal_mi.graph.analysis as analysis
from causal_mi import pipeline


def main(path: str, repeats: int = 2) -> None:
    prep = pipeline.prepare(path)
    real = analysis.wanted
    pipeline.evaluate(prep, views=True)  # warm-up: every lazy import
    runs: dict[str, list[float]] = {"without": [], "with": [], "analysis": []}
    for _ in range(repeats):
        for mode in ("without", "with"):
            analysis.wanted = real if mode == "with" else (lambda hyp, full: False)
            t = time.perf_counter()
            ctx = pipeline.evaluate(prep, views=True)
            runs[mode].append(time.perf_counter() - t)
            if mode == "with":
                runs["analysis"].append(sum(ctx.causal_model.seconds.values()))
    analysis.wanted = real
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(path, {k: [round(x, 2) for x in v] for k, v in runs.items()})
    print(
        f"median verify without {med['without']:.2f} s, with {med['with']:.2f} s; "
        f"analysis {med['analysis']:.2f} s = {100 * med['analysis'] / med['with']:.0f}% of verify"
    )


if __name__ == "__main__":
    main(sys.argv[1])
