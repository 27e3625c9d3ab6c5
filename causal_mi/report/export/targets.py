"""Export targets named on the command line (``tensorboard:DIR``, ``wandb``, ``wandb:DIR``),
parsed and checked before anything is read or measured: an unknown target, a missing
optional package or a log directory that cannot be written is an input error (exit 2)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from causal_mi.errors import OptionError

KINDS = ("tensorboard", "wandb")
EXTRA = "pip install 'causal-mi[export]'"
MSG_MISSING = (
    "{label} export needs the Python package '{package}', which is not installed; install "
    "the export extra: " + EXTRA
)
MSG_UNKNOWN = (
    "{option} {value!r}: unknown export target; valid: tensorboard:DIR (a TensorBoard log "
    "directory), wandb (an offline Weights & Biases run under $WANDB_DIR or ./wandb), "
    "wandb:DIR"
)
MSG_NO_DIR = (
    "{option} tensorboard needs a log directory: write tensorboard:DIR (or, with causal-mi "
    "export, give DIR after the results files: --to tensorboard DIR)"
)
_PACKAGES = {"tensorboard": ("TensorBoard", "tensorboard"), "wandb": ("W&B", "wandb")}


@dataclass(frozen=True)
class Target:
    """Where an export goes: ``kind`` tensorboard | wandb; ``directory`` the TensorBoard log
    directory, or the folder W&B writes its ``wandb/`` runs under (None: W&B's default)."""

    kind: str
    directory: Path | None = None

    def __str__(self) -> str:
        return self.kind + (f":{self.directory}" if self.directory is not None else "")


def parse_target(value: str, *, option: str = "--export") -> Target:
    """``tensorboard:DIR`` | ``wandb`` | ``wandb:DIR`` as a :class:`Target`.

    >>> parse_target("tensorboard:runs/induction")
    Target(kind='tensorboard', directory=PosixPath('runs/induction'))
    """
    kind, sep, rest = value.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise OptionError(MSG_UNKNOWN.format(option=option, value=value))
    if kind == "tensorboard" and not rest.strip():
        raise OptionError(MSG_NO_DIR.format(option=option))
    return Target(kind, Path(rest) if rest.strip() else None)


def require(kind: str) -> None:
    """Raise :class:`OptionError` (exit 2) naming the extra to install when the optional
    package of ``kind`` cannot be imported."""
    label, package = _PACKAGES[kind]
    try:
        importlib.import_module(package)
    except ImportError:
        raise OptionError(MSG_MISSING.format(label=label, package=package)) from None


def check(target: Target, *, option: str = "--export") -> None:
    """Everything that can be checked before the work: the package, the directory."""
    from causal_mi.report.destination import check_writable

    require(target.kind)
    if target.directory is not None:
        check_writable(target.directory, option=f"{option} {target.kind}:")
