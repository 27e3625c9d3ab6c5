"""Where outputs go: checked before anything is loaded or measured, so a bad ``--out``
costs nothing and is named (exit 2), never found as an internal error after the work; and
written all at once (:func:`place`), so a folder never holds half of a run's outputs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from causal_mi.errors import OptionError


def check_writable(directory: Path, *, option: str = "--out") -> None:
    """Raise :class:`OptionError` (exit 2) unless outputs can be written under ``directory``:
    it, or the nearest folder above it that exists, is a writable directory. Checked before
    anything is loaded or measured, so a bad ``--out`` costs nothing."""
    target = directory.resolve()
    probe = target
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OptionError(
            f"{option} {directory}: cannot create the output directory: {probe} is a file, "
            "not a directory; choose another path"
        )
    reason = ""
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "permission denied"
    else:
        try:
            fd, name = tempfile.mkstemp(prefix=".causal-mi-probe-", dir=probe)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
    if reason:
        where = "" if probe == target else f" (it would be created inside {probe})"
        raise OptionError(
            f"{option} {directory}: the output directory is not writable{where}: {reason}; "
            "choose a directory you can write to"
        )


def place(files: dict[str, bytes], out_dir: Path) -> None:
    """Write ``files`` (name -> bytes) into ``out_dir`` atomically: all written beside it
    first, then each moved into place."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".causal-mi-", dir=out_dir.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            os.replace(f, out_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
