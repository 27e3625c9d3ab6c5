"""The ``causal-mi`` command line. Heavy libraries load inside commands (``--help`` is fast).

Exit codes of ``verify`` (SPEC 6): 0 all claims hold, 1 a claim failed, 2 a file or model
could not be loaded (nothing measured), 3 internal error.
"""

from __future__ import annotations

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
from causal_mi.export_command import EXPORT_HELP, export_results, targets
from causal_mi.report.destination import check_writable
from causal_mi.verify_command import progress_bar
from causal_mi.zoo_command import zoo_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn mechanistic-interpretability claims into checked facts.",
)
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
FORMAT = typer.Option(
    "text",
    "--format",
    help="text | github: github also prints workflow annotations (an error on the line of "
    "each failing claim) for GitHub Actions.",
)
CACHE = typer.Option(
    None,
    "--cache",
    help="Directory of saved forward-pass results (default: <out>/.cache). A rerun, resumed "
    "or changed, reads back every result it has and computes only the rest; a file whose "
    "hypothesis, task file and model files are all unchanged is decided from its saved result.",
)
NO_CACHE = typer.Option(
    False, "--no-cache", help="Save and reuse no forward-pass results and no decided results."
)
EXPORT = typer.Option(None, "--export", help=EXPORT_HELP)
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


def _format(name: str) -> str:
    if name not in ("text", "github"):
        raise OptionError(f"unknown format '{name}'; valid: text, github")
    return name


def _precision(name: str) -> str:
    if name not in ("fp32", "bf16", "fp16"):
        raise OptionError(f"unknown precision '{name}'; valid: fp32, bf16, fp16")
    return name


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
    fmt: str = "text",
    cache: Path | None = None,
    use_cache: bool = True,
    exports: list[str] | None = None,
) -> int:
    try:
        _format(fmt)
        dev = _device(device)
        budget = _budget(max_memory)
        _precision(precision)
        check_writable(out)  # outputs go to out/ (and a temporary folder beside it)
        check_writable(out.resolve().parent)
        if cache is not None and use_cache:
            check_writable(cache, option="--cache")
        chosen = targets(exports)  # the export packages and directories, before the work
        from causal_mi.verify_command import run_files

        return run_files(
            files,
            out,
            dev=dev,
            max_rows=max_rows,
            budget=budget,
            verify=verify,
            ablation_check=ablation_check,
            precision=precision,
            dowhy=dowhy,
            fmt=fmt,
            cache=cache,
            use_cache=use_cache,
            chosen=chosen,
            err=_err,
        )
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
    fmt: str = FORMAT,
    cache: Path = CACHE,
    no_cache: bool = NO_CACHE,
    export: list[str] = EXPORT,
) -> None:
    """Measure, decide every claim; write report.html, report.md, results.json and junit.xml
    into --out (several files: one folder per file, one junit.xml) and keep the forward
    passes in <out>/.cache (see --cache, --no-cache).

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
            fmt=fmt,
            cache=cache,
            use_cache=not no_cache,
            exports=export,
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
    fmt: str = FORMAT,
    cache: Path = CACHE,
    no_cache: bool = NO_CACHE,
    export: list[str] = EXPORT,
) -> None:
    """Measure; write report.html, report.md and results.json into --out (several files: one
    folder per file) and keep the forward passes in <out>/.cache (see --cache, --no-cache).
    Exit 0 whatever the verdicts."""
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
            fmt=fmt,
            cache=cache,
            use_cache=not no_cache,
            exports=export,
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
        check_writable(out)
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
            progress_bar(),
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
    runs: bool = typer.Option(
        False,
        "--runs",
        help="Print the run plan of a verify instead (every stage's conditions, each "
        "distinct one once, in phases, and its digest); runs nothing.",
    ),
) -> None:
    """Pilot-run a file and say how many examples each claim needs to be decided at its
    threshold (and the gap gate to pass); writes nothing."""
    from causal_mi.plan_command import run_plan, show_runs

    try:
        if runs:
            raise typer.Exit(show_runs(file, _device(device)))
        raise typer.Exit(run_plan(file, _device(device), max_rows, power))
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        raise typer.Exit(exc.exit_code) from None


@app.command()
def init(
    path: Path = typer.Argument(Path("hypothesis.yaml")),
    model: str = typer.Option("zoo:induction-2l", help="zoo:<name> | hf:<id> | path:<dir>"),
) -> None:
    """Write a commented hypothesis file to start from."""
    from causal_mi.spec.template import TEMPLATE, encoder_template

    if path.exists():
        _err(f"causal-mi: {path} exists; choose another name")
        raise typer.Exit(EXIT_BAD_INPUT)
    from causal_mi.models.arch import head_groups_comment
    from causal_mi.models.loading import local_config

    config = local_config(model) or {}
    text = encoder_template(model, config) or TEMPLATE.format(model=model)
    heads = head_groups_comment(config)  # the model's heads and kv groups
    path.write_text(text.replace("\nnodes:", "\n" + heads + "nodes:", 1) if heads else text)
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
    """Propose a hypothesis file from measured effects (then verify it on fresh seeds).

    Writes only the --out file; intermediate files live in a temporary folder that is removed
    on every exit. Exit 1 (and no file) when no component clears --min-effect. Ctrl-C stops
    it cleanly; nothing is kept, so a rerun starts again.
    """
    try:
        check_writable(out.resolve().parent, option="--out")
        if out.is_dir():
            raise OptionError(f"--out {out}: is a directory; give the hypothesis file to write")
        from causal_mi.discover_command import run_discover

        code = run_discover(
            model,
            generator,
            task_file,
            n,
            seed,
            metric,
            ablation,
            min_effect,
            out,
            _device(device),
            progress_bar(),
            typer.echo,
            _err,
        )
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        code = exc.exit_code
    except KeyboardInterrupt:
        _err(
            "causal-mi: discover interrupted; nothing was written and its temporary files "
            "were removed (discover keeps no partial results: run it again to start over)"
        )
        code = 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        _err(f"causal-mi: internal error: {type(exc).__name__}: {exc}")
        code = EXIT_INTERNAL
    raise typer.Exit(code)


@app.command("diff")
def diff_command(
    old: Path = typer.Argument(..., help="results.json of the earlier run (or its folder)"),
    new: Path = typer.Argument(..., help="results.json of the later run (or its folder)"),
    fmt: str = typer.Option("text", "--format", help="text | github | json"),
) -> None:
    """Compare two runs' results.json: claims whose verdict changed, properties whose status
    changed, estimates that moved beyond their intervals (each outside the other's). Writes
    nothing. Exit 0 when nothing changed, 1 when something did, 2 on a bad file."""
    from causal_mi import diff

    try:
        if fmt not in ("text", "github", "json"):
            raise OptionError(f"unknown format '{fmt}'; valid: text, github, json")
        a, b = diff.load(old), diff.load(new)
        changes = diff.compare(a, b)
        typer.echo(diff.render(changes, a, b, fmt))
        code = EXIT_FAILED if changes else EXIT_OK
    except CausalMIError as exc:
        _err(f"causal-mi: {exc}")
        code = exc.exit_code
    raise typer.Exit(code)


app.command("export")(export_results)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
