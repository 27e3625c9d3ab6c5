"""Loaded models reused across the files of a run, never served stale.

Loading a model is the slowest step of a small verify, and one run often verifies several
files on one model, so loaded models are kept in a :class:`ModelPool`: bounded (least
recently used out), keyed by the reference, the directory it resolves against, device and
precision, and checked on every hit against the files it was loaded from (name, size and
modification time of each weight file), so a model retrained in place is loaded again.
Callers may own a pool (``pipeline.prepare(..., models=pool)``); without one the process
shares :data:`SHARED`.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".json")


def signature(source: str) -> tuple:
    """What identifies the files a model was loaded from: (name, size, mtime) of each weight
    and config file of its directory; empty for a hub id (its snapshot does not change)."""
    d = Path(source)
    if not d.is_dir():
        return ()
    out = []
    for f in sorted(d.iterdir()):
        if f.is_file() and f.suffix in WEIGHT_SUFFIXES:
            st = f.stat()
            out.append((f.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


class ModelPool:
    """At most ``capacity`` loaded models, least recently used dropped first."""

    def __init__(self, capacity: int = 4):
        self.capacity = max(1, int(capacity))
        self._models: OrderedDict[tuple, tuple[tuple, Any]] = OrderedDict()

    def get(self, key: tuple, load) -> Any:
        """The model under ``key``, loading it with ``load()`` when absent or when the files
        it came from changed since."""
        hit = self._models.get(key)
        if hit is not None and hit[0] == signature(hit[1].source):
            self._models.move_to_end(key)
            return hit[1]
        model = load()
        self._models[key] = (signature(model.source), model)
        self._models.move_to_end(key)
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)
        return model

    def __len__(self) -> int:
        return len(self._models)


SHARED = ModelPool()
