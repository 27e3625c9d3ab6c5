"""``causal-mi verify`` / ``run`` over files: validate every file, then measure, decide and
write each one, reusing a saved result where a file's inputs are unchanged
(:mod:`causal_mi.reuse`). Exit codes and error handling are :mod:`causal_mi.cli`'s."""

from __future__ import annotations

import pickle  # noqa: S403  (the contexts this command pickled itself, signed in reuse)
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from causal_mi.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, CausalMIError


def progress_bar():
    """A rich progress bar on a terminal, None otherwise."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} passes"),
        TimeRemainingColumn(),
        transient=True,
    )


def rows_for(prep: Any, max_rows: int, budget: int | None) -> int:
    """``max_rows``, lowered to fit ``budget`` bytes for the file's longest prompt."""
    if budget is None:
        return max_rows
    from causal_mi.engine.budget import rows_for_model

    length = max(e.length for e in prep.task.examples)
    return min(max_rows, rows_for_model(prep.model, length, budget, len(prep.task)))


def summary(ctx: Any) -> tuple[list[str], str]:
    """What the terminal shows of a verified file: the lines, and the closing status line
    (to which the caller adds where the report is)."""
    from causal_mi.report.statistics import (
        claim_flags,
        claims_count,
        estimate_cell,
        gap_line,
        status_word,
    )

    v = ctx.verdict
    lines = [f"  {gap_line(ctx.measurement, v)}"]
    for c in v.claims:
        mark = {"holds": "holds", "fails": "FAILS"}.get(c.status, c.status.upper())
        lines.append(f"  {mark:5s}  {c.claim.claim.text:45s} {estimate_cell(c)}")
        extra = c.why if c.why and c.decidable else claim_flags(c)
        if extra:
            lines.append(f"         ({extra})")
    for p in ctx.properties:
        mark = {"holds": "holds", "fails": "FAILS", "vacuous": "VACUOUS"}.get(p.status, p.status)
        lines.append(f"  {mark:5s}  property {p.name}: {p.detail}")
    if any("interventional runs" in p.detail for p in ctx.properties):
        from causal_mi.report.wording import PROPERTY_RUNS_HELP

        text = textwrap.fill(PROPERTY_RUNS_HELP, 96, initial_indent="  (", subsequent_indent="   ")
        lines.append(text + ")")
    lines += [f"  note: {note}" for note in ctx.measurement.notes]
    status = "PASS" if ctx.passed else status_word(v) if not v.valid else "FAIL"
    props = ""
    if ctx.properties:
        ok = sum(p.status == "holds" for p in ctx.properties)
        props = f", {ok}/{len(ctx.properties)} properties hold"
    return lines, f"{status}: {v.hypothesis.spec.name}: {claims_count(v)}{props}"


def _decided(ctx: Any, fmt: str) -> dict[str, Any]:
    """Everything the command shows and writes of a decided file, rendered once (what a
    re-verify of the unchanged file reads back instead of measuring)."""
    from causal_mi import pipeline

    lines, status = summary(ctx)
    notes: list[str] = []
    if fmt == "github":
        from causal_mi.report.github import verify_annotations

        notes = list(verify_annotations(ctx))
    return {
        "name": ctx.verdict.hypothesis.spec.name,
        "files": pipeline.render(ctx),
        "lines": lines,
        "status": status,
        "github": notes,
        "passed": ctx.passed,
        "context": pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL),  # read when needed
    }


def run_files(
    files: list[Path],
    out: Path,
    *,
    dev: str,
    max_rows: int,
    budget: int | None,
    verify: bool,
    ablation_check: bool,
    precision: str,
    dowhy: bool,
    fmt: str,
    cache: Path | None,
    use_cache: bool,
    chosen: Any,
    err: Callable[[str], None],
) -> int:
    """Validate every file (nothing is measured unless all load), then measure or read
    back each one and write its outputs; returns the exit code."""
    from causal_mi import reuse
    from causal_mi.export_command import after_run
    from causal_mi.report.destination import place

    options = {
        "device": dev.split(":")[0],
        "precision": precision,
        "ablation_check": ablation_check,
        "dowhy": dowhy,
        "views": True,
        "format": fmt,
    }
    entries, errors = [], []
    for f in files:
        target = out if len(files) == 1 else out / Path(f).stem
        try:
            where = (cache or target / ".cache") if use_cache else None
            entry = reuse.find(f, where, options)
            if entry.result is None:
                from causal_mi import pipeline

                entry.prep = pipeline.prepare(
                    f, device=dev, precision=precision, hypothesis=entry.hypothesis
                )
            entries.append((entry, target, where))
        except CausalMIError as exc:
            errors.append(exc)
    if errors:
        for exc in errors:
            err(f"causal-mi: {exc}")
        err("nothing was measured: fix the errors above and run again")
        return EXIT_BAD_INPUT
    decided = []
    bar = progress_bar()
    for entry, target, where in entries:
        if entry.result is not None:
            done = entry.result
            err(
                f"causal-mi: {done['name']}: file, task and model unchanged since their last "
                f"verify; its result is read from {where} (--no-cache measures again)"
            )
        else:
            ctx = _measure(
                entry.prep,
                where,
                bar,
                err,
                rows_for(entry.prep, max_rows, budget),
                ablation_check=ablation_check,
                dowhy=dowhy,
            )
            done = _decided(ctx, fmt)
            entry.save(done)
        wanted = ("report.md", "report.html", "results.json")
        if verify and len(entries) == 1:
            wanted += ("junit.xml",)
        place({k: v for k, v in done["files"].items() if k in wanted}, target)
        for line in done["lines"]:
            typer.echo(line)
        typer.echo(f"{done['status']}; report in {target}/")
        sub = entry.path.stem if len(entries) > 1 else None
        after_run(target / "results.json", chosen, sub=sub, echo=typer.echo)
        for line in done["github"]:
            typer.echo(line)
        decided.append(done)
    if verify and len(entries) > 1:
        from causal_mi.report import junit

        junit.write([pickle.loads(d["context"]) for d in decided], out / "junit.xml")
    if verify and not all(d["passed"] for d in decided):
        return EXIT_FAILED
    return EXIT_OK


def _measure(prep: Any, where: Path | None, bar: Any, err: Callable, rows: int, **kw) -> Any:
    from causal_mi import pipeline

    name = prep.hypothesis.spec.name
    if bar is None:
        err(f"causal-mi: measuring {name} ({prep.hypothesis.path})")
        return pipeline.evaluate(prep, views=True, max_rows=rows, checkpoint_dir=where, **kw)
    with bar:
        tid = bar.add_task(f"measuring {name}", total=None)
        return pipeline.evaluate(
            prep,
            views=True,
            max_rows=rows,
            progress=lambda d, t: bar.update(tid, completed=d, total=t),
            checkpoint_dir=where,
            **kw,
        )
