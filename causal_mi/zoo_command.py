"""``causal-mi zoo``: list, validate and retrain the ground-truth models."""

from __future__ import annotations

from pathlib import Path

import typer

from causal_mi.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

zoo_app = typer.Typer(no_args_is_help=True, help="Ground-truth models with known circuits.")
ROWS = typer.Option(256, "--max-rows", help="Rows (examples x interventions) per forward pass.")


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


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
