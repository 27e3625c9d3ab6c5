"""Attribution patching (and integrated gradients) vs exact patching, per zoo model.

For each zoo model's true hypothesis: the task's prompts of the most common length, every
head's restore effect measured exactly (one patched pass per head, stacked) and estimated by
gradients; Spearman rank correlation, top-3 overlap and max abs error (metric units).

    .venv/bin/python benchmarks/attribution_vs_exact.py
"""

from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "hypotheses" / "zoo"


def main() -> None:
    from causal_mi import pipeline
    from causal_mi.effects.attribution import attribute_heads, compare
    from causal_mi.effects.patching import act_patch
    from causal_mi.tasks.base import Task

    print("| model | n | method | spearman | top-3 overlap | max abs error | seconds |")
    print("|---|---|---|---|---|---|---|")
    for model_dir in sorted(p for p in ROOT.iterdir() if p.is_dir()):
        prep = pipeline.prepare(model_dir / "true.yaml")
        lengths = [e.length for e in prep.task.examples]
        common = max(set(lengths), key=lengths.count)
        task = Task("t", tuple(e for e in prep.task.examples if e.length == common))
        t = time.perf_counter()
        exact = act_patch(prep.model, task, "head_out", metric_name=prep.hypothesis.spec.metric)
        t_exact = time.perf_counter() - t
        ex = exact.grid - exact.corrupt
        print(f"| {model_dir.name} | {len(task)} | exact patching | 1 | 1 | 0 | {t_exact:.2f} |")
        for steps in (1, 16):
            t = time.perf_counter()
            est = attribute_heads(
                prep.model, task, metric_name=prep.hypothesis.spec.metric, steps=steps
            ).grid
            secs = time.perf_counter() - t
            c = compare(est, ex)
            name = "attribution" if steps == 1 else f"integrated gradients ({steps})"
            print(
                f"| {model_dir.name} | {len(task)} | {name} | {c['spearman']:.2f} | "
                f"{c['top_k_overlap']:.2f} | {c['max_abs_error']:.2f} | {secs:.2f} |"
            )


if __name__ == "__main__":
    main()
