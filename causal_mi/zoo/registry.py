"""Training (or construction) scripts of the zoo models, by name."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

# zoo name -> (module under causal_mi.zoo, function(out_dir, seed=..., progress=...) -> dict)
_SCRIPTS = {
    "induction-2l": ("induction", "train"),
    "handmade-induction": ("handmade", "build"),
    "boolean-logic": ("boolean", "train"),
    "occupation-bias": ("bias", "train"),
    "ioi-names": ("ioi", "train"),
    "handmade-mediation": ("mediation", "build"),
}


def _lazy(module: str, func: str) -> Callable[..., dict[str, Any]]:
    def run(out: Path, seed: int = 0, progress: Callable | None = None) -> dict[str, Any]:
        fn = getattr(import_module(f"causal_mi.zoo.{module}"), func)
        return fn(out, seed=seed, progress=progress)

    return run


TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {
    name: _lazy(module, func) for name, (module, func) in _SCRIPTS.items()
}
