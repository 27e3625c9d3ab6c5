"""Claim grammar: ``QUANTITY OP NUMBER`` or ``QUANTITY ~= CENTRE +- TOLERANCE``, parsed by a
small hand-written parser (never eval).

Quantities (SPEC 3)::

    faithfulness | complement
    effect(X) | restore(X) | minimality(X) | total(X)
    indirect(A -> B -> logits) | direct(A -> logits)

``X``, ``A``, ``B`` are node names or site names; resolution happens in the loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPS = (">=", "<=", "~=")
NULLARY = ("faithfulness", "complement")
UNARY = ("effect", "restore", "minimality", "total")
PATHS = {"indirect": 3, "direct": 2}
QUANTITIES = NULLARY + UNARY + tuple(PATHS)

CLAIM_FORMS = (
    "faithfulness >= 0.8, complement <= 0.2, effect(ind) >= 0.5, restore(L1H3) >= 0.3, "
    "minimality(prev) >= 0.05, total(prev) >= 0.3, indirect(prev -> ind.k -> logits) >= 0.3, "
    "direct(prev -> logits) <= 0.1, effect(L0H0) ~= 0 +- 0.05"
)

_CLAIM_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z_]\w*)\s*(?:\((?P<args>[^()]*)\))?\s*(?P<op>>=|<=|~=|==|=|>|<|=>|=<)?\s*"
    r"(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?\s*"
    r"(?:(?P<pm>\+-|\+/-|±)\s*(?P<tol>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?)?\s*$"
)
_EQUIV_FORM = (
    "write it as 'QUANTITY ~= CENTRE +- TOLERANCE', for example 'effect(L0H0) ~= 0 +- 0.05'"
)


class ClaimSyntaxError(ValueError):
    """A claim that does not follow the grammar."""


@dataclass(frozen=True)
class Claim:
    """A parsed claim; ``args`` are the raw names (resolved to sites by the loader)."""

    quantity: str
    args: tuple[str, ...]
    op: str
    threshold: float  # the threshold, or the centre of an equivalence claim
    text: str
    tolerance: float = 0.0  # the half-width of an equivalence claim (``~=``)

    @property
    def low(self) -> float:
        return self.threshold - self.tolerance

    @property
    def high(self) -> float:
        return self.threshold + self.tolerance

    @property
    def label(self) -> str:
        """The quantity as written canonically, e.g. ``indirect(prev -> ind.k -> logits)``."""
        if not self.args:
            return self.quantity
        sep = " -> " if self.quantity in PATHS else ", "
        return f"{self.quantity}({sep.join(self.args)})"

    def holds(self, lower: float, upper: float) -> bool:
        """The decision rule: ``>=`` needs the lower bound, ``<=`` the upper bound, ``~=`` the
        whole interval inside ``[centre - tolerance, centre + tolerance]``."""
        if self.op == "~=":
            return self.low <= lower and upper <= self.high
        return lower >= self.threshold if self.op == ">=" else upper <= self.threshold


def parse_claim(text: str) -> Claim:
    """Parse one claim; errors say what was expected and show valid claims.

    >>> parse_claim("indirect(prev -> ind.k -> logits) >= 0.3").args
    ('prev', 'ind.k', 'logits')
    """
    m = _CLAIM_RE.match(text)
    if not m:
        raise ClaimSyntaxError(
            f"malformed claim '{text}': expected QUANTITY >= NUMBER, QUANTITY <= NUMBER or "
            f"QUANTITY ~= CENTRE +- TOLERANCE, for example: {CLAIM_FORMS}"
        )
    name, args_text, op, num = m.group("name"), m.group("args"), m.group("op"), m.group("num")
    pm, tol = m.group("pm"), m.group("tol")
    if name not in QUANTITIES:
        from causal_mi.errors import did_you_mean

        raise ClaimSyntaxError(f"unknown quantity '{name}'; {did_you_mean(name, QUANTITIES)}")
    if op is None or num is None:
        raise ClaimSyntaxError(
            f"claim '{text}' has no comparison: write '{name}{'(...)' if args_text else ''} >= t' "
            f"or '<= t' with a number t"
        )
    if op in ("==", "="):
        raise ClaimSyntaxError(
            f"comparison '{op}' in '{text}' is not supported: an estimate never equals a "
            f"number exactly; to state that it is close to one, {_EQUIV_FORM}"
        )
    if op not in OPS:
        raise ClaimSyntaxError(
            f"comparison '{op}' in '{text}' is not supported; use one of: {', '.join(OPS)} "
            "(a claim is decided on a confidence bound: >= and <= are one-sided, ~= is an "
            "equivalence claim)"
        )
    if op == "~=" and (pm is None or tol is None):
        raise ClaimSyntaxError(f"equivalence claim '{text}' has no tolerance: {_EQUIV_FORM}")
    if op != "~=" and pm is not None:
        raise ClaimSyntaxError(
            f"'+-' in '{text}' belongs to equivalence claims ('~='): {_EQUIV_FORM}"
        )
    tolerance = float(tol) if op == "~=" else 0.0
    if tolerance <= 0 and op == "~=":
        raise ClaimSyntaxError(
            f"the tolerance of '{text}' must be a positive number (the half-width of the "
            "interval the estimate must lie in)"
        )
    args: tuple[str, ...] = ()
    if name in NULLARY:
        if args_text is not None:
            raise ClaimSyntaxError(f"'{name}' takes no argument: write '{name} {op} {num}'")
    elif name in UNARY:
        if args_text is None or not args_text.strip() or "," in args_text or "->" in args_text:
            raise ClaimSyntaxError(f"'{name}' takes one node or site: for example '{name}(L1H3)'")
        args = (args_text.strip(),)
    else:
        want = PATHS[name]
        parts = tuple(p.strip() for p in (args_text or "").split("->"))
        if len(parts) != want or not all(parts):
            shape = "A -> B -> logits" if want == 3 else "A -> logits"
            raise ClaimSyntaxError(f"'{name}' takes a path '{shape}', got '{args_text}'")
        args = parts
    return Claim(name, args, op, float(num), text.strip(), tolerance)
