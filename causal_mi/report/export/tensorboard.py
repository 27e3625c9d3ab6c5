"""Steps as a TensorBoard event file: every scalar with ``add_scalar`` at its step, every
text (statuses, provenance) with ``add_text``, through ``torch.utils.tensorboard`` (which
needs the ``tensorboard`` package: the ``export`` extra).

Several exports into one log directory add event files that TensorBoard reads as one run, so
a checkpoint series exported one results.json at a time (``--step``) draws one curve per tag.
TensorBoard stores scalars as 32-bit floats."""

from __future__ import annotations

from pathlib import Path

from causal_mi.report.export.steps import Step


def write(steps: list[Step], logdir: Path) -> Path:
    """Write ``steps`` into one new event file under ``logdir``; return the file's path.

    >>> write(load_steps([Path("reports/induction")]), Path("runs/induction"))  # doctest: +SKIP
    """
    from torch.utils.tensorboard import SummaryWriter

    logdir.mkdir(parents=True, exist_ok=True)
    before = set(logdir.glob("events.out.tfevents.*"))
    writer = SummaryWriter(log_dir=str(logdir))
    try:
        for s in steps:
            for tag, value in s.scalars.items():
                writer.add_scalar(tag, value, global_step=s.step)
            for tag, text in s.texts.items():
                writer.add_text(tag, text, global_step=s.step)
    finally:
        writer.close()
    (new,) = set(logdir.glob("events.out.tfevents.*")) - before
    return new
