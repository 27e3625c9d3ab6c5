"""Steps as a Weights & Biases run, offline unless the user explicitly says otherwise.

The mode is ``$WANDB_MODE`` when the user set it (``online`` to upload as the export runs)
and ``offline`` otherwise: the run is written under ``<dir>/wandb/offline-run-*`` and nothing
leaves the machine until the user runs ``wandb sync`` on it. Each step's scalars are logged
at its step (W&B wants increasing steps: they are logged in order); the last step's texts
(claim and property statuses) go to the run summary; the config is the last step's
description (hypothesis, model with its weights' SHA-256, task seed, package versions) plus
``steps``: for each step its results file, model and weights hash. No code, git state,
requirements, console output or system metrics are collected, and in offline mode W&B's
service starts with its error reporting off (``WANDB_ERROR_REPORTING=false`` unless the user
set it), so no crash report leaves the machine either."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from causal_mi.report.export.steps import Step

DEFAULT_PROJECT = "causal-mi"


def mode() -> str:
    """``$WANDB_MODE`` when set, else ``offline``."""
    return os.environ.get("WANDB_MODE", "").strip() or "offline"


@contextmanager
def _no_error_reports() -> Iterator[None]:
    """Offline: W&B's service (started by ``wandb.init``) reports no errors over the network,
    unless the user set ``WANDB_ERROR_REPORTING``; the environment is restored after."""
    key = "WANDB_ERROR_REPORTING"
    if mode() != "offline" or key in os.environ:
        yield
        return
    os.environ[key] = "false"
    try:
        yield
    finally:
        os.environ.pop(key, None)


MSG_START = (
    "W&B could not start a run (mode {mode}): {error}. For an offline run instead, unset "
    "WANDB_MODE: the run is written locally and 'wandb sync' uploads it later"
)


@contextmanager
def _user_errors() -> Iterator[None]:
    """W&B's usage errors (online without an API key, a bad project name) are the user's
    to fix: an :class:`OptionError` (exit 2) that says how, not an internal error."""
    import wandb

    try:
        yield
    except wandb.errors.Error as exc:
        from causal_mi.errors import OptionError

        error = str(exc).strip().rstrip(".")
        raise OptionError(MSG_START.format(mode=mode(), error=error)) from None


def write(
    steps: list[Step],
    *,
    project: str | None = None,
    name: str | None = None,
    directory: Path | None = None,
) -> Path:
    """Log ``steps`` as one W&B run; return its local run directory (the one to
    ``wandb sync``). ``project``: ``--project``, else ``$WANDB_PROJECT``, else
    ``causal-mi``; ``name``: the run's display name (default: the last step's hypothesis
    name); ``directory``: where ``wandb/`` is created (default: ``$WANDB_DIR`` or the
    working directory)."""
    import wandb

    ordered = sorted(steps, key=lambda s: s.step)
    last = ordered[-1]
    config = dict(last.config)
    config["steps"] = [
        {
            "step": s.step,
            "results": s.source,
            "model": s.config["model"]["ref"],
            "weights_sha256": s.config["model"]["weights_sha256"],
            "started": s.config["provenance"]["started"],
        }
        for s in ordered
    ]
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    settings = wandb.Settings(
        console="off",
        silent=True,
        save_code=False,
        disable_git=True,
        x_save_requirements=False,
        x_disable_stats=True,
        x_disable_meta=True,
        x_disable_machine_info=True,
    )
    with _no_error_reports(), _user_errors():
        run = wandb.init(
            project=project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            name=name or config["hypothesis"]["name"],
            dir=str(directory) if directory is not None else None,
            mode=mode(),
            config=config,
            settings=settings,
            reinit="create_new",  # never finishes a run the caller has open
        )
    try:
        for s in ordered:
            run.log(dict(s.scalars), step=s.step)
        run.summary.update({k: v for k, v in last.texts.items() if k != "provenance"})
        where = Path(run.settings.sync_dir)
    finally:
        run.finish()
    return where
