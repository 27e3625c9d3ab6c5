"""``causal-mi plan FILE``: a pilot run and the examples each claim needs (verify/power.py);
``--runs``: the run plan of a verify (engine/runplan.py), printed without running it."""

from __future__ import annotations

from pathlib import Path

import typer

from causal_mi.errors import EXIT_OK, OptionError


def run_plan(file: Path, device: str, max_rows: int, power: float) -> int:
    """Measure ``file`` as a pilot, print each claim's sample size; returns the exit code."""
    from causal_mi import pipeline
    from causal_mi.effects.measure import measure
    from causal_mi.verify.power import plan
    from causal_mi.verify.verdicts import decide_claims

    if not 0.5 <= power < 1:
        raise OptionError(f"--power must lie in [0.5, 1), got {power}")
    prep = pipeline.prepare(file, device=device)
    hyp = prep.hypothesis
    m = measure(hyp, prep.model, prep.task, max_rows=max_rows)
    v = decide_claims(hyp, m)
    n0 = len(prep.task)
    gate, rows = plan(v, n0, power)
    typer.echo(f"pilot: {hyp.spec.name}, n = {n0}; G = {v.gap.point:.4f} (se {v.gap.se:.2g})")
    if gate is None:
        typer.echo("  gap gate: G <= 0 on the pilot; no n makes the file decidable")
    else:
        met = "met" if gate <= n0 else "not met"
        typer.echo(f"  gap gate: needs about {gate} examples ({met})")
    for r in rows:
        typer.echo(f"  {r.text:45s} {r.point:+.3f} (se {r.se:.2g}): {r.note}")
    return EXIT_OK


def show_runs(file: Path, device: str) -> int:
    """Print what ``causal-mi verify FILE`` would run (its defaults: the ablation check and
    DoWhy on): each stage's conditions, the distinct ones, the phases and the digest."""
    from causal_mi import pipeline

    prep = pipeline.prepare(file, device=device)
    runs = pipeline.declare(prep, ablation_check=True, dowhy=True, views=True)
    typer.echo(runs.describe())
    n = len(prep.task)
    typer.echo(f"  on {n} examples: {runs.cells(n)} cells, plus the clean and corrupt runs")
    return EXIT_OK
