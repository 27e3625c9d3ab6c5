"""Calibration of causal-mi's intervals, placebo claims and gap gate on zoo models.

For each model a large pool of task rows is generated (4,000 rows by default, from the
zoo's own task generators, far more than a file uses) and measured once: every quantity of
the model's true hypothesis gets its per-example numerator and denominator on the whole
pool, and the pool's ratio of means is the *reference value*. Then ``--draws`` tasks of the
shipped size (n = 200) are drawn from the pool without replacement, and for each draw:

- **coverage**: does the file's 95% interval (BCa, as ``verify`` computes it) cover the
  reference value? Target: 93-97% per quantity kind;
- **placebo claims**: ``q >= reference`` and ``q <= reference`` are claims whose true value
  sits exactly at the threshold; each should pass at its one-sided level (0.025) or less;
- **near-null corruption**: the corrupt run is replaced by the clean run of another pool
  row with the same answer tokens (an exchangeable corruption, true G = 0): the gap gate
  must make the file undecidable in at least 99% of draws.

Per-example values are deterministic functions of each row (resample ablation reads the
row's own corrupt run), so drawing rows from the measured pool is drawing tasks, without
new forward passes. Sampling without replacement from 20x the task size makes intervals
slightly conservative (finite-population factor sqrt(1 - 200/4000) = 0.97).

    python benchmarks/calibration.py                 # the table in benchmarks/RESULTS.md
    python benchmarks/calibration.py --draws 50      # a quicker look
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {
    "induction-2l": ROOT / "hypotheses" / "induction.yaml",
    "occupation-bias": ROOT / "hypotheses" / "zoo" / "occupation-bias" / "true.yaml",
    "ioi-names": ROOT / "hypotheses" / "zoo" / "ioi-names" / "true.yaml",
    "boolean-logic": ROOT / "hypotheses" / "zoo" / "boolean-logic" / "true.yaml",
}
WRITERS = {
    "occupation-bias": "causal_mi.zoo.bias",
    "ioi-names": "causal_mi.zoo.ioi",
    "boolean-logic": "causal_mi.zoo.boolean",
}


def _pool(name: str, path: Path, pool: int, tmp: Path):
    """The model's true hypothesis, prepared on a pool of ``pool`` rows."""
    import importlib

    from causal_mi import pipeline
    from causal_mi.tasks.registry import build_task

    prep = pipeline.prepare(path)
    spec = prep.hypothesis.spec
    if spec.task.generator is not None:
        task_spec = spec.task.model_copy(update={"n": pool, "seed": 12345})
    else:
        rows = tmp / f"{name}-pool.jsonl"
        importlib.import_module(WRITERS[name]).write_pairs(rows, pool, 12345)
        task_spec = spec.task.model_copy(update={"file": str(rows), "n": pool, "seed": 0})
    spec = spec.model_copy(update={"task": task_spec})
    hyp = dataclasses.replace(prep.hypothesis, spec=spec)
    task = build_task(spec, hyp.path, prep.model.tokens)
    return dataclasses.replace(prep, hypothesis=hyp, task=task)


def _null_denominator(prep, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """m(clean_i) - m(clean_j), j a random other row with the same answer and wrong token."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, e in enumerate(prep.task.examples):
        groups[(e.answer, e.wrong)].append(i)
    partner = np.arange(len(clean))
    for idx in groups.values():
        if len(idx) > 1:
            partner[idx] = rng.permutation(idx)
    return clean - clean[partner]


def calibrate(name: str, path: Path, pool: int, draws: int, n: int, tmp: Path) -> dict:
    from causal_mi.effects.measure import measure
    from causal_mi.stats.bootstrap import bootstrap_ratio, gap_estimate

    started = time.time()
    prep = _pool(name, path, pool, tmp)
    m = measure(prep.hypothesis, prep.model, prep.task)
    measured = time.time() - started
    den = m.clean - m.corrupt
    nums = {label: e.per_example * m.gap for label, e in m.estimates.items()}
    ref = {label: num.mean() / den.mean() for label, num in nums.items()}
    rng = np.random.default_rng(0)
    null_den = _null_denominator(prep, m.clean, rng)
    cover: dict[str, list[bool]] = defaultdict(list)
    placebo: dict[str, list[bool]] = defaultdict(list)
    undecidable = []
    for d in range(draws):
        idx = rng.choice(len(den), size=n, replace=False)
        for label, num in nums.items():
            e = bootstrap_ratio(
                num[idx], den[idx], label=label, confidence=0.95, n_boot=2000, seed=d
            )
            kind = label.split("(")[0].split("[")[0]
            cover[kind].append(bool(e.lower <= ref[label] <= e.upper))
            placebo[">="].append(bool(e.bound(">=", 0.025) >= ref[label]))
            placebo["<="].append(bool(e.bound("<=", 0.025) <= ref[label]))
        g = gap_estimate(
            null_den[idx], alpha=0.025, confidence=0.95, n_boot=2000, seed=d, margin=0.5
        )
        undecidable.append(not g.decidable)
    return {
        "model": name,
        "pool": pool,
        "quantities": len(nums),
        "coverage": {k: (float(np.mean(v)), len(v)) for k, v in sorted(cover.items())},
        "placebo": {k: float(np.mean(v)) for k, v in placebo.items()},
        "undecidable": float(np.mean(undecidable)),
        "seconds_measure": measured,
        "seconds_total": time.time() - started,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--pool", type=int, default=4000)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = calibrate(name, MODELS[name], args.pool, args.draws, args.n, Path(tmp))
            rows.append(r)
            print(
                f"{name}: {r['quantities']} quantities, measured the pool in "
                f"{r['seconds_measure']:.0f} s, total {r['seconds_total']:.0f} s",
                file=sys.stderr,
            )
    print(f"\n{args.draws} draws of n = {args.n} from pools of {args.pool} rows per model\n")
    print("| model | quantity kind | coverage of the 95% interval | intervals |")
    print("|---|---|---|---|")
    for r in rows:
        for kind, (cov, count) in r["coverage"].items():
            print(f"| {r['model']} | {kind} | {cov:.3f} | {count} |")
    print(
        "\n| model | placebo `q >= true` passes | placebo `q <= true` passes | "
        "near-null corruption undecidable |"
    )
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['placebo']['>=']:.4f} | {r['placebo']['<=']:.4f} | "
            f"{r['undecidable']:.3f} |"
        )


if __name__ == "__main__":
    main()
