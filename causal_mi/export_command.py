"""``causal-mi export RESULTS... --to tensorboard DIR | --to wandb``, and the ``--export``
option of ``verify`` / ``run``: finished runs' results.json as TensorBoard scalars or a W&B
run (offline unless ``WANDB_MODE`` says otherwise). Targets and packages are checked before
anything is read or measured (exit 2, naming the extra to install)."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import typer

from causal_mi.errors import EXIT_INTERNAL, EXIT_OK, CausalMIError, OptionError

EXPORT_HELP = (
    "Also export the results: tensorboard:DIR (TensorBoard scalars at step 0; several files "
    "write DIR/<file stem>) or wandb / wandb:DIR (a W&B run, offline unless WANDB_MODE is "
    "set). Repeatable. Needs the optional 'export' extra of causal-mi."
)


def targets(values: list[str] | None) -> list:
    """The ``--export`` values as checked targets (package installed, directory writable)."""
    from causal_mi.report.export import check, parse_target

    out = [parse_target(v, option="--export") for v in values or []]
    for t in out:
        check(t, option="--export")
    return out


def _where(target, path: Path) -> str:
    if target.kind == "tensorboard":
        return f"TensorBoard event file {path} (view: tensorboard --logdir {target.directory})"
    from causal_mi.report.export.wandb_run import mode

    if mode() == "offline":
        return f"W&B offline run {path} (nothing uploaded; to upload: wandb sync {path})"
    return f"W&B run {path} (mode {mode()})"


def _teardown(used: list) -> None:
    """Stop W&B's service process once the runs are written (no process outlives us)."""
    if any(t.kind == "wandb" for t in used):
        import wandb

        wandb.teardown()


def after_run(results: Path, chosen: list, *, sub: str | None, echo: Callable[[str], None]) -> None:
    """Export one file's fresh results.json to each target of ``verify --export``."""
    if not chosen:
        return
    from dataclasses import replace

    from causal_mi.report.export import export, load_steps

    steps = load_steps([results])
    try:
        for t in chosen:
            if t.kind == "tensorboard" and sub is not None:
                t = replace(t, directory=t.directory / sub)
            echo(f"  exported: {_where(t, export(steps, t))}")
    finally:
        _teardown(chosen)


def _target(results: list[Path], to: str) -> tuple[list[Path], object]:
    """``--to tensorboard DIR`` takes the last argument as DIR; the other forms are
    ``tensorboard:DIR``, ``wandb`` and ``wandb:DIR``."""
    from causal_mi.report.export import parse_target
    from causal_mi.report.export.targets import MSG_NO_DIR

    if to.strip().lower() != "tensorboard":
        return results, parse_target(to, option="--to")
    if len(results) < 2:
        raise OptionError(MSG_NO_DIR.format(option="--to"))
    logdir = results[-1]
    if logdir.is_file() or (logdir / "results.json").is_file():
        raise OptionError(
            f"--to tensorboard DIR: the last argument, {logdir}, is a results file or folder, "
            "not a log directory; give the TensorBoard log directory after the results files "
            "(or write --to tensorboard:DIR)"
        )
    return results[:-1], parse_target(f"tensorboard:{logdir}", option="--to")


def export_results(
    results: list[Path] = typer.Argument(
        ...,
        help="results.json files (or folders holding one) that run or verify wrote, one step "
        "each; with --to tensorboard, the TensorBoard log directory comes last.",
    ),
    to: str = typer.Option(
        ..., "--to", help="tensorboard DIR | tensorboard:DIR | wandb | wandb:DIR"
    ),
    step: list[int] = typer.Option(
        None,
        "--step",
        help="The step of each results file, in order (e.g. its training checkpoint); "
        "repeat once per file. Default: 0, 1, 2, ...",
    ),
    project: str = typer.Option(
        None, "--project", help="W&B project (default: $WANDB_PROJECT, else causal-mi)."
    ),
    name: str = typer.Option(
        None, "--name", help="W&B run name (default: the last file's hypothesis name)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Export finished runs (their results.json) to TensorBoard or Weights & Biases: each
    claim's estimate, interval, threshold and verdict, G with its interval, the properties,
    and provenance. One step per results file; W&B runs are offline unless WANDB_MODE is
    set. Measures nothing. Exit 0 when written, 2 on a bad file, target or missing package
    (the optional 'export' extra of causal-mi), 3 on an internal error."""
    from causal_mi.report.export import check, export, load_steps

    used = []
    try:
        files, target = _target(list(results), to)
        if target.kind == "tensorboard" and (project or name):
            raise OptionError("--project and --name apply to --to wandb, not to tensorboard")
        check(target, option="--to")
        steps = load_steps(files, list(step or []))
        used.append(target)
        path = export(steps, target, project=project, name=name)
        typer.echo(f"exported {len(steps)} step(s) to {_where(target, path)}")
        code = EXIT_OK
    except CausalMIError as exc:
        typer.echo(f"causal-mi: {exc}", err=True)
        code = exc.exit_code
    except Exception as exc:  # exit 3, never a bare traceback
        if debug:
            traceback.print_exc()
        typer.echo(
            f"causal-mi: internal error: {type(exc).__name__}: {exc}\n"
            "this is a bug in causal-mi; rerun with --debug for the traceback and report it",
            err=True,
        )
        code = EXIT_INTERNAL
    finally:
        _teardown(used)
    raise typer.Exit(code)
