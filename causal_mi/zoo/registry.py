"""Training scripts of the zoo models, by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def _induction(out: Path, seed: int = 0, progress: Callable | None = None) -> dict[str, Any]:
    from causal_mi.zoo import induction

    return induction.train(out, seed=seed, progress=progress)


def _handmade(out: Path, seed: int = 0, progress: Callable | None = None) -> dict[str, Any]:
    from causal_mi.zoo import handmade

    return handmade.build(out, seed=seed)


TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {
    "induction-2l": _induction,
    "handmade-induction": _handmade,
}
