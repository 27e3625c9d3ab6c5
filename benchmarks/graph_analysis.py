"""Cost of the graph analysis inside verify, in one warm process (imports paid first)."""

import sys, time, statistics
from causal_mi import pipeline
import causal_mi.graph.analysis as A

f = sys.argv[1]
prep = pipeline.prepare(f)
real = A.wanted
pipeline.evaluate(prep, views=True)  # warm-up: every lazy import
res = {"with": [], "without": [], "analysis": []}
for i in range(2):
    for mode in ("without", "with"):
        A.wanted = real if mode == "with" else (lambda hyp, full: False)
        import causal_mi.pipeline as P

        t = time.perf_counter()
        ctx = P.evaluate(prep, views=True)
        dt = time.perf_counter() - t
        res[mode].append(dt)
        if mode == "with":
            res["analysis"].append(sum(ctx.causal_model.seconds.values()))
med = {k: statistics.median(v) for k, v in res.items()}
print(f, {k: [round(x, 2) for x in v] for k, v in res.items()})
print(
    f"median verify without {med['without']:.2f} s, with {med['with']:.2f} s, analysis {med['analysis']:.2f} s = {100 * med['analysis'] / med['with']:.0f}% of verify"
)
