"""Exports of finished runs to experiment trackers: TensorBoard event files and Weights &
Biases runs (offline unless the user says otherwise), read from ``results.json`` so a saved
run is exported without measuring again. Optional: ``pip install 'causal-mi[export]'``.

>>> from causal_mi.report.export import export, load_steps, parse_target
>>> export(load_steps([Path("reports/ckpt-1000")], [1000]),
...        parse_target("tensorboard:runs/induction"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from causal_mi.errors import OptionError
from causal_mi.report.export.steps import Step, from_results, load_steps
from causal_mi.report.export.targets import MSG_NO_DIR, Target, check, parse_target, require

__all__ = ["Step", "Target", "check", "export", "from_results", "load_steps", "parse_target"]


def export(
    steps: list[Step], target: Target, *, project: str | None = None, name: str | None = None
) -> Path:
    """Write ``steps`` to ``target``; return the event file (TensorBoard) or the local run
    directory (W&B). Raises :class:`~causal_mi.errors.OptionError` when the optional
    package is missing."""
    require(target.kind)
    if target.kind == "tensorboard":
        from causal_mi.report.export import tensorboard

        if target.directory is None:
            raise OptionError(MSG_NO_DIR.format(option="tensorboard"))
        return tensorboard.write(steps, target.directory)
    from causal_mi.report.export import wandb_run

    return wandb_run.write(steps, project=project, name=name, directory=target.directory)
