"""The ``causal-mi`` command line. Heavy libraries load inside commands (``--help`` is fast).

Exit codes of ``verify`` (SPEC 6): 0 all claims hold, 1 a claim failed, 2 a file or model
could not be loaded (nothing measured), 3 internal error.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import typer

from causal_mi.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    CausalMIError,
    OptionError,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn mechanistic-interpretability claims into checked facts.",
)
zoo_app = typer.Typer(no_args_is_help=True, help="Ground-truth models with known circuits.")
app.add_typer(zoo_app, name="zoo")

FILES = typer.Argument(..., exists=False, help="Hypothesis files (YAML).")
OUT = typer.Option(Path("reports"), "--out", "-o", help="Directory for the outputs.")
DEVICE = typer.Option("cpu", "--device", help="cpu | cuda | auto")
ROWS = typer.Option(256, "--max-rows", help="Rows (examples x interventions) per forward pass.")
DEBUG = typer.Option(False, "--debug", help="Show tracebacks of internal errors.")
PRECISION = typer.Option(
    "fp32", "--precision", help="fp32 | bf16 | fp16: the weights' precision (reduced: for GPUs)."
)
MEMORY = typer.Option(
    None,
    "--max-memory",
    help="Working-memory budget for the forward passes, e.g. 512MiB or 2GB (a bare number "
    "means MiB); long sweeps are cut into chunks that fit.",
)
ABL_CHECK = typer.Option(
    True,
    "--ablation-check/--no-ablation-check",
    help="Also decide every claim under the other ablations and report verdicts that flip.",
)
CACHE = typer.Option(
    None,
    "--cache",
    help="Directory of saved forward-pass results (default: <out>/.cache). A rerun, resumed "
    "or unchanged, reads back every result it has and computes only the rest.",
)
NO_CACHE = typer.Option(False, "--no-cache", help="Save and reuse no forward-pass results.")
DOWHY = typer.Option(
    True,
    "--dowhy/--no-dowhy",
    help="Cross-check the indirect, direct and total claims with DoWhy (reported and "
    "flagged, never a verdict).",
)


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _device(name: str) -> str:
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise OptionError(f"unknown device '{name}'; valid: auto, cpu, cuda")
    return name


def _budget(text: str | None) -> int | None:
    if text is None:
        return None
    from causal_mi.engine.budget import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise OptionError(f"--max-memory: {exc}") from None


def _precision(name: str) -> str:
    if name not in ("fp32", "bf16", "fp16"):
        raise OptionError(f"unknown precision '{name}'; valid: fp32, bf16, fp16")
    return name


def _rows(prep, max_rows: int, budget: int | None) -> int:
    """``max_rows``, lowered to fit ``budget`` bytes for the file's longest prompt."""
    if budget is None:
        return max_rows
    from causal_mi.engine.budget import rows_for_model

    length = max(e.length for e in prep.task.examples)
    return min(max_rows, rows_for_model(prep.model, length, budget))


def _progress_bar():
    """A rich progress bar on a terminal, None otherwise."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} passes"),
        TimeRemainingColumn(),
        transient=True,
    )
    return bar


def _run(
    files: list[Path],
    out: Path,
    device: str,
    max_rows: int,
    debug: bool,
    verify: bool,
    ablation_check: bool = True,
    precision: str = "fp32",
    max_memory: str | None = None,
    dowhy: bool = True,
    cache: Path | None = None,
    use_cache: bool = True,
) -> int:
    from causal_mi import pipeline

    try:
        dev = _device(device)
        budget = _budget(max_memory)
        _precision(precision)
        prepared, errors = [], []
        for f in files:
            try:
                prepared.append(pipeline.prepare(f, device=dev, precision=precision))
            except CausalMIError as exc:
                errors.append(exc)
        if errors:
            for exc in errors:
                _err(f"causal-mi: {exc}")
            _err("nothing was measured: fix the errors above and run again")
            return EXIT_BAD_INPUT
        contexts = []
        bar = _progress_bar()
        for prep in prepared:
            name = prep.hypothesis.spec.name
            rows = _rows(prep, max_rows, budget)
            target = out if len(prepared) == 1 else out / prep.hypothesis.path.stem
            # saved forward passes: a rerun (resumed or unchanged) reads them back
            partial = (cache or target / ".cache") if use_cache else None
            if bar is not None:
                with bar:
                    tid = bar.add_task(f"measuring {name}", total=None)
                    ctx = pipeline.evaluate(
                        prep,
                        views=True,
                        max_rows=rows,
                        progress=lambda d, t, tid=tid: bar.update(tid, completed=d, total=t),
                        checkpoint_dir=partial,
                        ablation_check=ablation_check,
                        dowhy=dowhy,
                    )
            else:
                _err(f"causal-mi: measuring {name} ({prep.hypothesis.path})")
                ctx = pipeline.evaluate(
                    prep,
                    max_rows=rows,
                    views=True,
                    checkpoint_dir=partial,
                    ablation_check=ablation_check,
                    dowhy=dowhy,
                )
            pipeline.write_outputs(ctx, target, with_junit=verify and len(prepared) == 1)
            contexts.append(ctx)
            _summary(ctx, target)
        if verify and len(prepared) > 1:
            from causal_mi.report import junit

            junit.write(contexts, out / "junit.xml")
        if verify and not all(pipeline.passed(c) for c in contexts):
            return EXIT_FAILED
        return EXIT_OK
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err(
            "causal-mi: interrupted; no report was written for the unfinished file. Finished "
            "passes are kept in the cache (<out>/.cache unless --cache says otherwise): run the "
            "same command again to resume"
        )
        return 130
    except Exception as exc:  # the last line of defence: exit 3, never a bare traceback
        if debug:
            traceback.print_exc()
        _err(
            f"causal-mi: internal error: {type(exc).__name__}: {exc}\n"
            "this is a bug in causal-mi; rerun with --debug for the traceback and report it"
        )
        return EXIT_INTERNAL


def _summary(ctx, target: Path) -> None:
    v = ctx.verdict
    from causal_mi.report.statistics import claim_flags, estimate_cell, gap_line, status_word

    typer.echo(f"  {gap_line(ctx.measurement, v)}")
    for c in v.claims:
        mark = {"holds": "holds", "fails": "FAILS"}.get(c.status, c.status.upper())
        typer.echo(f"  {mark:5s}  {c.claim.claim.text:45s} {estimate_cell(c)}")
        extra = c.why if c.why and c.decidable else claim_flags(c)
        if extra:
            typer.echo(f"         ({extra})")
    for p in ctx.properties:
        mark = {"holds": "holds", "fails": "FAILS", "vacuous": "VACUOUS"}.get(
            p["status"], p["status"]
        )
        typer.echo(f"  {mark:5s}  property {p['name']}: {p['detail']}")
    for note in ctx.measurement.notes:
        typer.echo(f"  note: {note}")
    from causal_mi.pipeline import passed

    status = "PASS" if passed(ctx) else status_word(v) if not v.valid else "FAIL"
    props = ""
    if ctx.properties:
        ok = sum(p["status"] == "holds" for p in ctx.properties)
        props = f", {ok}/{len(ctx.properties)} properties hold"
    from causal_mi.report.statistics import claims_count

    typer.echo(f"{status}: {v.hypothesis.spec.name}: {claims_count(v)}{props}; report in {target}/")


@app.command()
def verify(
    files: list[Path] = FILES,
    out: Path = OUT,
    device: str = DEVICE,
    max_rows: int = ROWS,
    debug: bool = DEBUG,
    ablation_check: bool = ABL_CHECK,
    precision: str = PRECISION,
    max_memory: str = MEMORY,
    dowhy: bool = DOWHY,
    cache: Path = CACHE,
    no_cache: bool = NO_CACHE,
) -> None:
    """Measure, decide every claim, write report.md, results.json and junit.xml.

    Exit 0 if all claims hold, 1 if any fails, 2 on a bad file or model, 3 on internal error.
    """
    raise typer.Exit(
        _run(
            files,
            out,
            device,
            max_rows,
            debug,
            verify=True,
            ablation_check=ablation_check,
            precision=precision,
            max_memory=max_memory,
            dowhy=dowhy,
            cache=cache,
            use_cache=not no_cache,
        )
    )


@app.command()
def run(
    files: list[Path] = FILES,
    out: Path = OUT,
    device: str = DEVICE,
    max_rows: int = ROWS,
    debug: bool = DEBUG,
    ablation_check: bool = ABL_CHECK,
    precision: str = PRECISION,
    max_memory: str = MEMORY,
    dowhy: bool = DOWHY,
    cache: Path = CACHE,
    no_cache: bool = NO_CACHE,
) -> None:
    """Measure and write report.md and results.json (exit 0 whatever the verdicts)."""
    raise typer.Exit(
        _run(
            files,
            out,
            device,
            max_rows,
            debug,
            verify=False,
            ablation_check=ablation_check,
            precision=precision,
            max_memory=max_memory,
            dowhy=dowhy,
            cache=cache,
            use_cache=not no_cache,
        )
    )


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="A hypothesis file: its model, task and metric."),
    family: list[str] = typer.Option(
        ["head_out"],
        "--family",
        "-f",
        help="resid_pre | resid_mid | resid_post | attn_out | mlp_out | head_out | head_q | "
        "head_k | head_v | head_pattern | head_out_by_pos | neurons (repeatable)",
    ),
    direction: str = typer.Option(
        "restore", "--direction", help="restore: clean into corrupt | ablate: corrupt into clean"
    ),
    layer: int = typer.Option(0, "--layer", help="the MLP layer of the 'neurons' family"),
    method: str = typer.Option("auto", "--method", help="auto | incremental | hooks"),
    out: Path = OUT,
    device: str = DEVICE,
    precision: str = PRECISION,
    max_memory: str = MEMORY,
    debug: bool = DEBUG,
) -> None:
    """Patch every index of a site family (the get_act_patch_* family as one call); write
    sweep-<family>.csv (labelled table), .json (grid) and .svg (heatmap)."""
    from causal_mi.sweep_command import run_sweeps

    try:
        _precision(precision)
        code = run_sweeps(
            file,
            family,
            direction,
            layer,
            method,
            out,
            _device(device),
            precision,
            _budget(max_memory),
            _progress_bar(),
            typer.echo,
            _err,
        )
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        code = exc.exit_code
    except KeyboardInterrupt:
        _err("causal-mi: interrupted; sweeps finished before the interruption were written")
        code = 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err(
            f"causal-mi: internal error: {type(exc).__name__}: {exc}\n"
            "this is a bug in causal-mi; rerun with --debug for the traceback and report it"
        )
        code = EXIT_INTERNAL
    raise typer.Exit(code)


@app.command("plan")
def plan_command(
    file: Path = typer.Argument(..., help="A hypothesis file: its task is the pilot run."),
    device: str = DEVICE,
    max_rows: int = ROWS,
    power: float = typer.Option(0.8, "--power", help="Wanted power for each claim (0.5-0.99)."),
    debug: bool = DEBUG,
) -> None:
    """Pilot-run a file and say how many examples each claim needs to be decided at its
    threshold (and the gap gate to pass); writes nothing."""
    from causal_mi import pipeline
    from causal_mi.effects.measure import measure
    from causal_mi.verify.power import plan
    from causal_mi.verify.verdicts import decide_claims

    try:
        if not 0.5 <= power < 1:
            raise OptionError(f"--power must lie in [0.5, 1), got {power}")
        prep = pipeline.prepare(file, device=_device(device))
        hyp = prep.hypothesis
        m = measure(hyp, prep.model, prep.task, max_rows=max_rows)
        v = decide_claims(hyp, m)
        n0 = len(prep.task)
        gate, rows = plan(v, n0, power)
        typer.echo(f"pilot: {hyp.spec.name}, n = {n0}; G = {v.gap.point:.4f} (se {v.gap.se:.2g})")
        if gate is None:
            typer.echo("  gap gate: G <= 0 on the pilot; no n makes the file decidable")
        else:
            typer.echo(
                f"  gap gate: needs about {gate} examples ({'met' if gate <= n0 else 'not met'})"
            )
        for r in rows:
            typer.echo(f"  {r.text:45s} {r.point:+.3f} (se {r.se:.2g}): {r.note}")
        raise typer.Exit(EXIT_OK)
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        raise typer.Exit(exc.exit_code) from None


@app.command()
def init(
    path: Path = typer.Argument(Path("hypothesis.yaml")),
    model: str = typer.Option("zoo:induction-2l", help="zoo:<name> | hf:<id> | path:<dir>"),
) -> None:
    """Write a commented hypothesis file to start from."""
    from causal_mi.spec.template import TEMPLATE

    if path.exists():
        _err(f"causal-mi: {path} exists; choose another name")
        raise typer.Exit(EXIT_BAD_INPUT)
    path.write_text(TEMPLATE.format(model=model))
    typer.echo(f"wrote {path}; edit it, then: causal-mi verify {path} --out reports/")


@app.command()
def discover(
    model: str = typer.Option(..., "--model", help="zoo:<name> | hf:<id> | path:<dir>"),
    generator: str = typer.Option(None, "--generator", help="a built-in task generator"),
    task_file: Path = typer.Option(None, "--task-file", help="JSONL pairs file"),
    n: int = typer.Option(200, "--n"),
    seed: int = typer.Option(0, "--seed"),
    metric: str = typer.Option("logit_diff", "--metric"),
    ablation: str = typer.Option("resample", "--ablation"),
    min_effect: float = typer.Option(
        0.1, "--min-effect", help="keep components whose effect CI clears this"
    ),
    out: Path = typer.Option(..., "--out", help="hypothesis file to write"),
    device: str = DEVICE,
    debug: bool = DEBUG,
) -> None:
    """Propose a hypothesis file from measured effects (then verify it on fresh seeds)."""
    try:
        code = _discover(
            model, generator, task_file, n, seed, metric, ablation, min_effect, out, device
        )
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        code = exc.exit_code
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err(f"causal-mi: internal error: {type(exc).__name__}: {exc}")
        code = EXIT_INTERNAL
    raise typer.Exit(code)


def _discover(
    model_ref, generator, task_file, n, seed, metric, ablation, min_effect, out, device
) -> int:
    from causal_mi.analysis.discover import propose
    from causal_mi.models.loading import load_model
    from causal_mi.spec.schema import Hypothesis
    from causal_mi.tasks.registry import build_task

    if (generator is None) == (task_file is None):
        raise OptionError("give exactly one of --generator or --task-file")
    out = out.resolve()
    scheme, _, rest = model_ref.partition(":")
    if scheme in ("path", "hf") and Path(rest).exists():  # the file may live elsewhere
        model_ref = f"{scheme}:{Path(rest).resolve()}"
    if generator:
        task_yaml = f"task:\n  generator: {generator}\n  n: {n}\n  seed: {seed}\n"
    else:
        rel = Path(task_file).resolve()
        task_yaml = f"task:\n  file: {rel}\n  n: {n}\n  seed: {seed}\n"
    from pydantic import ValidationError

    try:
        spec = _discover_spec(
            Hypothesis, out, model_ref, generator, task_file, n, seed, metric, ablation
        )
    except ValidationError as exc:
        raise OptionError(f"invalid discover options: {exc.errors()[0]['msg']}") from None
    loaded = load_model(model_ref, base_dir=Path.cwd(), device=_device(device))
    task = build_task(spec, out, loaded.tokens)
    proposal = propose(
        loaded,
        task,
        name=out.stem,
        task_yaml=task_yaml,
        metric=metric,
        ablation=ablation,
        min_effect=min_effect,
        base_dir=out.parent,
    )
    for line in proposal.log:
        _err(f"  {line}")
    out.write_text(proposal.yaml)
    typer.echo(f"wrote {out}; verify it on other seeds: causal-mi verify {out}")
    return EXIT_OK


def _discover_spec(Hypothesis, out, model_ref, generator, task_file, n, seed, metric, ablation):
    return Hypothesis.model_validate(
        {
            "version": 1,
            "name": out.stem,
            "model": model_ref,
            "task": {
                "generator": generator,
                "n": n,
                "seed": seed,
                "file": str(Path(task_file).resolve()) if task_file else None,
            },
            "metric": metric,
            "ablation": ablation,
        }
    )


@zoo_app.command("list")
def zoo_list() -> None:
    """List the shipped zoo models."""
    from causal_mi.models.loading import zoo_names

    for name in zoo_names():
        typer.echo(name)


@zoo_app.command("validate")
def zoo_validate(
    root: Path = typer.Option(
        Path("hypotheses/zoo"), "--dir", help="folder of <model>/<file>.yaml"
    ),
    max_rows: int = ROWS,
    seeds: str = typer.Option(
        "", "--seeds", help="comma-separated task seeds (e.g. 0,1,2,3,4): each must agree"
    ),
) -> None:
    """Verify every zoo hypothesis: true*.yaml must pass, the others must fail (exit 1 if not)."""
    from causal_mi.zoo.validate import markdown_table, validate

    if not root.is_dir():
        _err(f"causal-mi: {root} is not a directory of <model>/<file>.yaml hypotheses")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()] or None
    except ValueError:
        _err(f"causal-mi: --seeds must be comma-separated integers, got '{seeds}'")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    rows = validate(root, max_rows=max_rows, seeds=seed_list)
    typer.echo(markdown_table(rows))
    raise typer.Exit(EXIT_OK if rows and all(r.ok for r in rows) else EXIT_FAILED)


@zoo_app.command("train")
def zoo_train(
    name: str = typer.Argument(..., help="zoo model name"),
    out: Path = typer.Option(None, "--out", help="directory (default: the package's)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Retrain a zoo model from its script (deterministic for a seed)."""
    from causal_mi.zoo.registry import TRAINERS

    if name not in TRAINERS:
        from causal_mi.errors import did_you_mean

        _err(f"causal-mi: no training script for '{name}'; {did_you_mean(name, TRAINERS)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    from causal_mi.models.loading import ZOO_DIR

    target = out or (ZOO_DIR / name)

    def progress(step: int, total: int, loss: float) -> None:
        _err(f"  step {step}/{total}  loss {loss:.4f}")

    metrics = TRAINERS[name](target, seed=seed, progress=progress)
    typer.echo(f"trained {name} into {target}")
    for k, v in metrics.items():
        typer.echo(f"  {k}: {v}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
