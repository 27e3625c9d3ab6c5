"""Resumable runs: every finished forward pass of the engine is saved, so an interrupted run
picks up where it stopped.

A checkpoint file belongs to one exact run: its name is a hash of the model's weights, the
examples, the conditions and the metric, so a changed input can never reuse stale values.
Values are stored with safetensors (no pickle) and the file is replaced atomically.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from causal_mi.engine.plan import Condition


def _condition_text(c: Condition) -> str:
    patches = [
        (p.hook, p.source, sorted(map(str, p.cells)), p.complement, p.read, p.minus)
        for p in c.patches
    ]
    edges = None
    if c.edges is not None:
        edges = (sorted(map(str, c.edges.keep)), c.edges.source, c.edges.complement)
    return repr((c.base, patches, sorted(c.record), edges))


def fingerprint(
    model_id: str,
    examples: Sequence,
    conditions: Sequence[Condition],
    metric_key: str,
    recorded_keys: Sequence[str],
) -> str:
    h = hashlib.sha256()
    for part in (model_id, metric_key, repr(sorted(recorded_keys))):
        h.update(part.encode())
    for e in examples:
        h.update(repr((e.clean, e.corrupt, e.answer, e.wrong)).encode())
    for c in conditions:
        h.update(_condition_text(c).encode())
    return h.hexdigest()[:32]


class Checkpoint:
    """Saved pass results of one run, keyed by strings such as ``"13/0/64"``."""

    def __init__(self, directory: Path, key: str):
        self.path = directory / f"{key}.safetensors"
        self.values: dict[str, torch.Tensor] = {}
        if self.path.is_file():
            from safetensors.torch import load_file

            try:
                self.values = load_file(str(self.path))
            except Exception:  # a torn or foreign file: start over rather than trust it
                self.values = {}

    @property
    def resumed(self) -> int:
        return sum(1 for k in self.values if k.startswith("pass/"))

    def get(self, key: str) -> torch.Tensor | None:
        return self.values.get(key)

    def put(self, entries: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        self.values.update({k: v.detach().contiguous().cpu() for k, v in entries.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        save_file(self.values, str(tmp))
        os.replace(tmp, self.path)
