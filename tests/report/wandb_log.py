"""A reader of W&B's transaction log (``run-<id>.wandb``), for the export tests.

wandb 0.31 writes an offline run only as this log (no ``files/wandb-summary.json`` or
``config.yaml`` until it is synced) and ships no Python reader of it any more
(``wandb.sdk.internal.datastore`` is gone). The file is a LevelDB-style log: a 7-byte header
(``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each with a CRC-32 of its
type and data (as wandb's former Python writer computed it), a length and a type (full,
first, middle, last). Each record is a ``wandb.proto.wandb_internal_pb2.Record``, decoded
with wandb's own protobuf schema. Every chunk's checksum is verified, so a changed byte is an
error, not a silently different value.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class CorruptLog(ValueError):
    """The file is not an intact W&B transaction log."""


def records(path: Path) -> list[bytes]:
    """The serialized records of a ``.wandb`` file, every chunk's checksum verified."""
    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise CorruptLog(f"{path}: no W&B log header")
    out, pending, pos = [], b"", len(HEADER)
    while pos < len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if crc == 0 and length == 0 and kind == 0:  # zero padding at the end
            break
        chunk = data[pos + 7 : pos + 7 + length]
        if len(chunk) != length or zlib.crc32(bytes([kind]) + chunk) != crc:
            raise CorruptLog(f"{path}: checksum mismatch in the chunk at byte {pos}")
        pos += 7 + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
        else:
            raise CorruptLog(f"{path}: unknown chunk type {kind} at byte {pos}")
    return out


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


@dataclass
class Run:
    """What a run's log holds: history (step -> key -> value), summary, config, run info."""

    history: dict[int, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    project: str = ""
    name: str = ""
    kinds: list[str] = field(default_factory=list)


def read_run(run_dir: Path) -> Run:
    """Decode the one ``run-*.wandb`` file of an (offline) run directory."""
    from wandb.proto import wandb_internal_pb2 as pb

    (log,) = sorted(run_dir.glob("run-*.wandb"))
    run = Run()
    for raw in records(log):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        run.kinds.append(kind)
        if kind == "history":
            items = {_key(i): json.loads(i.value_json) for i in rec.history.item}
            step = rec.history.step.num
            run.history.setdefault(step, {}).update(items)
        elif kind == "summary":
            for i in rec.summary.update:
                run.summary[_key(i)] = json.loads(i.value_json)
        elif kind == "config":
            for i in rec.config.update:
                run.config[_key(i)] = json.loads(i.value_json)
        elif kind == "run":
            run.project, run.name = rec.run.project, rec.run.display_name
            for i in rec.run.config.update:
                run.config[_key(i)] = json.loads(i.value_json)
    return run
