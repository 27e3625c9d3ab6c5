"""The frozen result of checking one property (SPEC 5): what the reports, the CLI, the JUnit
and pytest outputs read, and what ``causal_mi.verify_file`` returns in ``.properties``.

Fields are attributes; the object is also a read-only mapping over :meth:`to_dict` (the
``results.json`` form), so ``p["status"]`` keeps working for code written against the
earlier dict results. Nothing downstream can change it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("holds", "fails", "vacuous", "not checked")
FAILING = ("fails", "vacuous")  # statuses that fail the file (verify exits 1)


@dataclass(frozen=True)
class PropertyResult(Mapping):
    """One property's verdict. ``status``: ``holds`` | ``fails`` | ``vacuous`` (its premise,
    or a parent combination it needs, never realised) | ``not checked``. ``contradictory``:
    it fails because it contradicts the file's other properties (its unsat core is in
    ``detail``). ``counterexample`` names the prompt(s) and intervention of a failure;
    ``truth_table`` and ``coverage`` say what was seen."""

    name: str
    text: str
    status: str
    detail: str
    variables: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    counterexample: Mapping[str, Any] | None = None
    truth_table: Any = None
    not_intervened: tuple[str, ...] | None = None
    coverage: Mapping[str, Any] | None = None
    contradictory: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown property status {self.status!r}; valid: {STATUSES}")

    @property
    def failed(self) -> bool:
        """Whether this property fails the file."""
        return self.status in FAILING

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (results.json's ``properties`` entries)."""
        out: dict[str, Any] = {
            "name": self.name,
            "text": self.text,
            "variables": list(self.variables),
            "parents": list(self.parents),
            "counterexample": self.counterexample,
            "status": self.status,
            "detail": self.detail,
        }
        if self.truth_table is not None:
            out["truth_table"] = self.truth_table
        if self.not_intervened is not None:
            out["not_intervened"] = list(self.not_intervened)
        if self.coverage is not None:
            out["coverage"] = self.coverage
        if self.contradictory:
            out["contradictory"] = True
        return out

    # read-only mapping over the JSON form
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
