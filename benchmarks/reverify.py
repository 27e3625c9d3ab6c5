"""Re-verifying an unchanged file with a warm run cache, against the first (cold) run.

Each file is verified twice into the same output directory, as two fresh processes (start-up,
model loading and report writing included); the second reads every forward pass back from
``<out>/.cache``. The script checks that both runs wrote identical numbers (results.json
without its timing fields) and prints the times.

    python benchmarks/reverify.py                       # the shipped files
    python benchmarks/reverify.py hypotheses/induction.yaml --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    ROOT / "hypotheses" / "induction.yaml",
    ROOT / "hypotheses" / "zoo" / "occupation-bias" / "true.yaml",
    ROOT / "hypotheses" / "zoo" / "ioi-names" / "true.yaml",
]
TIMING = ("provenance", "seconds", "started")  # wall-clock fields, at any depth


def _verify(path: Path, out: Path) -> float:
    cli = [sys.executable, "-m", "causal_mi.cli", "verify", str(path), "-o", str(out)]
    started = time.perf_counter()
    r = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if r.returncode not in (0, 1):
        raise SystemExit(f"verify {path} exited {r.returncode}:\n{r.stderr}")
    return seconds


def _strip(x):
    """``x`` without its wall-clock fields (they differ between any two runs)."""
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in TIMING}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _numbers(out: Path) -> dict:
    return _strip(json.loads((out / "results.json").read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, default=FILES)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    print("| file | first run (s) | warm re-verify (s) | speed-up | identical numbers |")
    print("|---|---|---|---|---|")
    for f in args.files:
        cold, warm, same = [], [], True
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "out"
                cold.append(_verify(f, out))
                first = _numbers(out)
                warm.append(_verify(f, out))
                same &= _numbers(out) == first
                shutil.rmtree(out, ignore_errors=True)
        c, w = sorted(cold)[len(cold) // 2], sorted(warm)[len(warm) // 2]
        name = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
        print(f"| {name} | {c:.1f} | {w:.1f} | {c / w:.1f}x | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
