"""Content addresses of plan data: what identifies a condition, an example and a recording.

A condition's address is its base input, patches and edge plan, serialised canonically; its
``label`` and the names it records under are not part of it. A recording (one hook's values
under one condition) is named by the address of the condition that makes it and the hook
(:func:`record_key`), and a later condition reads it through a ``recorded`` source naming it,
so that name is content too: equal recordings made by different stages are one, and a
condition reading a recording of another intervention has another address, however the
stage that declared it numbers its work. The run cache (:mod:`causal_mi.engine.cache`)
stores cells under these addresses.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from functools import lru_cache
from typing import Any

from causal_mi.engine.plan import Condition


def canonical(obj: Any) -> Any:
    """A JSON-able form of plan data that does not depend on set order or hash seeds."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [type(obj).__name__] + [
            [f.name, canonical(getattr(obj, f.name))] for f in dataclasses.fields(obj)
        ]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (frozenset, set)):
        return ["set", sorted((canonical(x) for x in obj), key=json.dumps)]
    if isinstance(obj, (tuple, list)):
        return [canonical(x) for x in obj]
    if isinstance(obj, dict):
        return ["dict", sorted(([str(k), canonical(v)] for k, v in obj.items()), key=json.dumps)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def digest(obj: Any) -> str:
    text = json.dumps(canonical(obj), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def record_key(producer: Condition, hook: str) -> str:
    """The name of ``hook``'s values recorded under ``producer``: its content address
    (the producer's own recordings and label aside) and the hook."""
    return f"rec:{condition_key(producer)}|{hook}"


@lru_cache(maxsize=1 << 17)
def condition_key(c: Condition) -> str:
    """The content address of a condition: its base, patches and edge plan. Its label is
    not part of it, nor what it records (recording changes no value; recorded rows are
    cells of their own, addressed by this key and the hook). Memoized: conditions are
    frozen, and a verify asks for the same ones many times (a sweep's ~10^4 on ioi-names)."""
    return digest(dataclasses.replace(c, label="", record=()))


@lru_cache(maxsize=1 << 16)
def example_key(e: Any) -> str:
    """The content address of an example: every field but ``source`` (memoized: examples
    are frozen, and every engine run of a verify asks for the same ones)."""
    fields = {f.name: getattr(e, f.name) for f in dataclasses.fields(e) if f.name != "source"}
    return digest(fields)
