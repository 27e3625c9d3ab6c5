"""A content-addressed cache of forward-pass results: resumed runs and re-verifies are exact.

A saved result is one *cell*: the metric value of one condition on one example (plus the
activations the condition records for that example). Its address is the content of what
determines the number and nothing else:

- the **scope** (one directory): the weights' hash and the hash of the config they are read
  under, their dtype, the device kind, the metric, the task's noise corruption, and
  causal-mi's code (a digest of its files, not only its version number) with the versions
  of the libraries that compute (:func:`causal_mi.reuse.fingerprint`);
- the **condition**: its base input, patches and edge plan, serialised canonically (its
  ``label`` and the keys it records under are not part of it, so equal conditions written
  under different labels share their cells; a recorded activation is a cell of its own,
  addressed by the condition, the hook and the example);
- the **example**: its tokens, answers and every other field that enters the run (not its
  ``source`` text).

Every stage of a verify shares one :class:`RunCache`, in memory at least, so a condition
needed twice runs once. Rows per pass, chunking and the order of conditions are not part of
any address, so a run resumed with other ``--max-rows`` / ``--max-memory`` settings or
another condition order reads back the cells it has and computes only the rest. Every
finished pass is one new file written under a unique temporary name and renamed into place
(``os.replace``): an append is O(1), a torn write is never read, and two processes sharing
a cache at most compute the same cell twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from causal_mi.engine.address import condition_key, digest, example_key  # noqa: F401
from causal_mi.engine.plan import Condition

_SUFFIX = ".safetensors"


def scope_key(model: Any, metric_key: str, noise: Any = None) -> str:
    """The address of everything a run's numbers share: weights and config, dtype, device
    kind, metric, noise corruption, causal-mi's code and the libraries' versions."""
    from causal_mi.reuse import fingerprint

    bridge = getattr(model, "bridge", None)
    dtype = str(getattr(getattr(bridge, "W_E", None), "dtype", getattr(model, "precision", "")))
    device = str(torch.device(getattr(model, "device", "cpu")).type)
    ident = getattr(model, "weights_sha256", "") or getattr(model, "source", "")
    config = getattr(model, "config_sha256", "")
    return digest([ident, config, dtype, device, metric_key, noise, fingerprint()])


class RunCache:
    """Every scope's saved cells, in memory and, with a ``directory``, on disk.

    One object is owned by whoever runs a verify (the pipeline) and handed to every engine
    it creates, so a condition that two stages need (a claim and the DoWhy cross-check, the
    ablation check's shared baselines) runs once. Without a directory nothing outlives it.

    >>> cache = RunCache(None)
    >>> s = cache.scope("abc")
    >>> s.store(["c1"], ["e1", "e2"], torch.ones(1, 2), [()], {})
    >>> s.lookup(["c1"], ["e2"], [()])[0]
    tensor([[1.]])
    """

    def __init__(self, directory: Path | None = None):
        self.directory = None if directory is None else Path(directory)
        self._scopes: dict[str, ScopeCache] = {}

    def scope(self, key: str) -> ScopeCache:
        if key not in self._scopes:
            path = None if self.directory is None else self.directory / key
            self._scopes[key] = ScopeCache(path)
        return self._scopes[key]


class ScopeCache:
    """Saved cells of one scope, read from and appended to ``path`` (None: memory only)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._values: dict[tuple[str, str], torch.Tensor] = {}  # (cond, example) -> scalar
        self._recs: dict[tuple[str, str, str], torch.Tensor] = {}  # (cond, hook, ex) -> row
        self.files_read = 0
        if path is not None and path.is_dir():
            for f in sorted(path.glob("*" + _SUFFIX)):
                self._read(f)

    def _read(self, f: Path) -> None:
        from safetensors import safe_open

        try:
            with safe_open(str(f), framework="pt") as fh:
                meta = json.loads(fh.metadata()["cells"])
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
        except Exception:  # a foreign or damaged file: ignore it, its cells are recomputed
            return
        self._index(meta, tensors)
        self.files_read += 1

    def _index(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        values = tensors["values"]
        for ci, c in enumerate(meta["conditions"]):
            for ei, e in enumerate(meta["examples"]):
                self._values[(c, e)] = values[ci, ei]
        for name, (ci, hook) in meta["records"].items():
            c = meta["conditions"][ci]
            for ei, e in enumerate(meta["examples"]):
                self._recs[(c, hook, e)] = tensors[name][ei]

    @property
    def cells(self) -> int:
        return len(self._values)

    def lookup(
        self,
        conditions: Sequence[str],
        examples: Sequence[str],
        records: Sequence[Sequence[tuple[str, str]]],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        """Values ``[len(conditions), len(examples)]`` and each record key's rows, or None
        unless every cell (and every recorded row) is saved. ``records[i]`` is condition
        i's ``(key, hook)`` recordings."""
        try:
            values = torch.stack(
                [torch.stack([self._values[(c, e)] for e in examples]) for c in conditions]
            )
            recs = {
                key: torch.stack([self._recs[(c, hook, e)] for e in examples])
                for c, rec in zip(conditions, records, strict=True)
                for key, hook in rec
            }
        except KeyError:
            return None
        return values, recs

    def store(
        self,
        conditions: Sequence[str],
        examples: Sequence[str],
        values: torch.Tensor,
        records: Sequence[Sequence[tuple[str, str]]],
        recorded: dict[str, torch.Tensor],
    ) -> None:
        """Save one pass: ``values [len(conditions), len(examples)]`` and the recordings
        ``recorded[key]`` (rows in example order) of each condition's ``(key, hook)``."""
        tensors = {"values": values.detach().contiguous().cpu()}
        names: dict[str, tuple[int, str]] = {}
        for ci, rec in enumerate(records):
            for key, hook in rec:
                name = f"rec{len(names)}"
                names[name] = (ci, hook)
                tensors[name] = recorded[key].detach().contiguous().cpu()
        meta = {"conditions": list(conditions), "examples": list(examples), "records": names}
        self._index(meta, tensors)
        if self.path is None:
            return
        from safetensors.torch import save_file

        self.path.mkdir(parents=True, exist_ok=True)
        stem = hashlib.sha256(json.dumps(meta).encode()).hexdigest()[:24]
        tmp = self.path / f".{stem}.{uuid.uuid4().hex}.tmp"
        save_file(tensors, str(tmp), metadata={"cells": json.dumps(meta)})
        os.replace(tmp, self.path / f"{stem}{_SUFFIX}")


def bucket_keys(conds: Sequence[Condition], ex_keys: Sequence[str]) -> list[str]:
    """Cache addresses of ``conds`` on a bucket of examples (``ex_keys``): the condition's
    content, plus the bucket's whole example set for conditions whose values depend on the
    other examples (a ``mean`` source, or values recorded under one)."""
    bucket = hashlib.sha256("".join(ex_keys).encode()).hexdigest()[:16]
    out = []
    for c in conds:
        key = condition_key(c)
        sources = {p.source for p in c.patches}
        if c.edges is not None:
            sources.add(c.edges.source)
        if "mean" in sources or "recorded" in sources:
            key = f"{key}@{bucket}"
        out.append(key)
    return out
