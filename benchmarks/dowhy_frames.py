"""DoWhy's regression fits on frames with pandas 3's default (Arrow-backed) string labels
against frames built inside ``causal_mi.stats.frames.object_labels`` (Python-string labels,
what the cross-check and the SCM use), interleaved over repeats, in one process. Exits 1 if
the two give different estimates.

    python benchmarks/dowhy_frames.py                  # 200 rows, 20 fits per kind, 5 repeats
    python benchmarks/dowhy_frames.py --rows 400 --fits 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np


def main() -> int:
    from causal_mi.effects.crosscheck import MediationData, _fit, quiet_dowhy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200, help="examples (two frame rows each)")
    ap.add_argument("--fits", type=int, default=20, help="fits per kind and repeat")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rs = np.random.RandomState(0)
    n = args.rows
    m0, m1 = rs.randn(n), 1.0 + rs.randn(n)
    data = MediationData(0.5 * m0 + 0.1 * rs.randn(n), 2 * m1 + 1 + 0.1 * rs.randn(n), m0, m1)

    def fits(kind: str, objects: bool) -> tuple[float, float]:
        with quiet_dowhy() if objects else warnings.catch_warnings():
            if not objects:
                warnings.simplefilter("ignore")
            frame = data.frame()
            if kind == "total":
                frame = frame[["T", "Y"]]
            value, identified, _ = _fit(frame, kind)
            t0 = time.perf_counter()
            for _ in range(args.fits):
                _fit(frame, kind, identified)
            return (time.perf_counter() - t0) / args.fits, value

    print("| kind | default labels (ms per fit) | Python-string labels (ms per fit) | ratio |")
    print("|---|---|---|---|")
    same = True
    for kind in ("indirect", "total"):
        times: dict[bool, list[float]] = {False: [], True: []}
        values: dict[bool, float] = {}
        for rep in range(args.repeats):
            for objects in (rep % 2 == 0, rep % 2 != 0):  # alternate which goes first
                seconds, values[objects] = fits(kind, objects)
                times[objects].append(seconds)
        same &= values[False] == values[True]
        a, b = statistics.median(times[False]), statistics.median(times[True])
        print(f"| {kind} | {1e3 * a:.1f} | {1e3 * b:.1f} | {a / b:.2f}x |")
    print("estimates equal to the bit" if same else "ESTIMATES DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
