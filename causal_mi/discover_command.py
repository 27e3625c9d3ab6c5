"""``causal-mi discover``: from command-line options to a proposed hypothesis file.

Options are checked (one task source, a valid task and metric) before the model loads; the
work itself is :func:`causal_mi.analysis.discover.propose`. Only ``--out`` is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from causal_mi.errors import EXIT_OK, OptionError


def run_discover(
    model_ref: str,
    generator: str | None,
    task_file: Path | None,
    n: int,
    seed: int,
    metric: str,
    ablation: str,
    min_effect: float,
    out: Path,
    device: str,
    bar,
    echo: Callable[[str], None],
    err: Callable[[str], None],
) -> int:
    """Load the model, build the task, propose, write ``out``; phases go to ``err``, the
    proposal's log too, the final line to ``echo``. Raises :class:`CausalMIError`."""
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
        spec = _spec(Hypothesis, out, model_ref, generator, task_file, n, seed, metric, ablation)
    except ValidationError as exc:
        raise OptionError(f"invalid discover options: {exc.errors()[0]['msg']}") from None
    loaded = load_model(model_ref, base_dir=Path.cwd(), device=device)
    task = build_task(spec, out, loaded.tokens)
    kwargs = dict(
        name=out.stem,
        task_yaml=task_yaml,
        metric=metric,
        ablation=ablation,
        min_effect=min_effect,
        say=lambda line: err(f"causal-mi: discover {line}"),
    )
    if bar is None:
        proposal = propose(loaded, task, **kwargs)
    else:
        with bar:
            tid = bar.add_task("forward passes", total=None)
            proposal = propose(
                loaded,
                task,
                progress=lambda d, t: bar.update(tid, completed=d, total=t),
                **kwargs,
            )
    for line in proposal.log:
        err(f"  {line}")
    out.write_text(proposal.yaml)
    echo(f"wrote {out}; verify it on other seeds: causal-mi verify {out}")
    return EXIT_OK


def _spec(Hypothesis, out, model_ref, generator, task_file, n, seed, metric, ablation):
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
