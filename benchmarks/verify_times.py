"""The verify time of every shipped hypothesis file, this tree against another source tree.

Each file is verified as a fresh process into a fresh output directory (nothing saved from
an earlier run is read), once with this checkout's causal-mi and once with the tree given by
``--before`` (for example a ``git worktree`` of an older commit), the two interleaved and
their order alternating from file to file so that a change in the machine's load falls on
both. Each tree verifies its own copy of the file and its own zoo models. Then this tree
verifies the file once more into the same directory: the warm re-verify (its saved result
read back). Prints a Markdown table: seconds before / after / warm, the after run's graph
analysis (a stage the older tree may not have; its seconds are in results.json), the after
run less that stage against the before run (the same work), and both exit codes.

    git worktree add /tmp/before <commit>
    python benchmarks/verify_times.py --before /tmp/before
    python benchmarks/verify_times.py --before /tmp/before hypotheses/induction.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shipped() -> list[Path]:
    """The shipped files that run offline (a hub model cannot be loaded here)."""
    out = []
    for f in sorted((ROOT / "hypotheses").rglob("*.yaml")):
        text = f.read_text()
        if "model: hf:" not in text:
            out.append(f.relative_to(ROOT))
    return out


def verify(tree: Path, rel: Path, out: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cli = [sys.executable, "-m", "causal_mi.cli", "verify", str(tree / rel), "-o", str(out)]
    started = time.perf_counter()
    r = subprocess.run(cli, capture_output=True, text=True, cwd=tree, env=env)
    seconds = time.perf_counter() - started
    if r.returncode not in (0, 1):
        print(f"# {tree}: verify {rel} exited {r.returncode}: {r.stderr[-300:]}", flush=True)
    return seconds, r.returncode


def graph_seconds(results: Path) -> float | None:
    try:
        cm = json.loads(results.read_text()).get("causal_model") or {}
    except (OSError, json.JSONDecodeError):
        return None
    seconds = cm.get("seconds")
    return round(sum(seconds.values()), 1) if isinstance(seconds, dict) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--before", type=Path, required=True, help="the older source tree")
    args = ap.parse_args()
    before = args.before.resolve()
    files = args.files or shipped()
    print(
        "| file | before (s) | after (s) | after / before | after's graph analysis (s) "
        "| after less its graph analysis / before | warm re-verify (s) | exit before / after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0, 0.0]
    for i, rel in enumerate(files):
        if not (before / rel).is_file():
            print(f"| {rel} | (not in the older tree) | | | | | | |", flush=True)
            continue
        work = Path(tempfile.mkdtemp(prefix="verify-times-"))
        try:
            runs = {}
            for tree in [before, ROOT] if i % 2 == 0 else [ROOT, before]:
                runs[tree] = verify(tree, rel, work / tree.name)
            warm, _ = verify(ROOT, rel, work / ROOT.name)
            (b, bc), (a, ac) = runs[before], runs[ROOT]
            g = graph_seconds(work / ROOT.name / "results.json")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        less = a - (g or 0.0)
        totals = [totals[0] + b, totals[1] + a, totals[2] + warm, totals[3] + less]
        print(
            f"| {rel} | {b:.1f} | {a:.1f} | {a / b:.2f} | {g if g is not None else '-'} "
            f"| {less / b:.2f} | {warm:.2f} | {bc} / {ac} |",
            flush=True,
        )
    b, a, w, less = totals
    print(
        f"| **all** | {b:.0f} | {a:.0f} | {a / max(b, 1e-9):.2f} | {a - less:.0f} "
        f"| {less / max(b, 1e-9):.2f} | {w:.0f} | |"
    )


if __name__ == "__main__":
    main()
