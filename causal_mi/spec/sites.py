"""The site grammar: one place that parses and formats names of model components.

Grammar (SPEC 2)::

    embed | logits
    L<l>H<h>                 a head's output (its term in the residual stream)
    L<l>H<h>.q|k|v           a head's query / key / value input
    L<l>H<h>.pattern         a head's attention pattern (post-softmax, [query, key])
    L<l>.mlp                 an MLP's output;  L<l>.mlp.in  its input
    L<l>.mlp[<i>]            one MLP neuron (post-activation)
    L<l>.resid_pre|resid_mid|resid_post

A site may be restricted to positions (``{at: L1H3, pos: -1}``); negative positions count
from the end of the prompt. A position may also be a token role of the task
(``{at: L9H9, pos: END}``, ``pos: [S2, END]``): a :class:`Role`, resolved in each prompt
when the plan runs. For a pattern the positions are query positions (the rows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum


class Kind(StrEnum):
    EMBED = "embed"
    LOGITS = "logits"
    HEAD = "head"  # a head's output
    HEAD_INPUT = "head_input"  # q, k or v of a head
    PATTERN = "pattern"  # a head's attention pattern (computed from q and k, weights v)
    MLP = "mlp"  # MLP output
    MLP_IN = "mlp_in"
    NEURON = "neuron"
    RESID = "resid"


HEAD_INPUTS = ("q", "k", "v")
RESID_POINTS = ("resid_pre", "resid_mid", "resid_post")

# Stage of each kind inside a layer, in computation order (serial GPT-style block).
_STAGE = {
    ("resid", "resid_pre"): 0,
    Kind.HEAD_INPUT: 1,
    Kind.PATTERN: 2,
    Kind.HEAD: 3,
    ("resid", "resid_mid"): 4,
    Kind.MLP_IN: 5,
    Kind.NEURON: 6,
    Kind.MLP: 7,
    ("resid", "resid_post"): 8,
}

SITE_FORMS = (
    "embed, logits, L<l>H<h>, L<l>H<h>.q|k|v, L<l>H<h>.pattern, L<l>.mlp, L<l>.mlp.in, "
    "L<l>.mlp[<i>], L<l>.resid_pre|resid_mid|resid_post"
)
# What may follow a head (``L1H3.k``, ``ind.pattern``).
HEAD_SUFFIXES = (*HEAD_INPUTS, "pattern")

_HEAD_RE = re.compile(r"^L(\d+)H(\d+)(?:\.(q|k|v|pattern))?$")
_MLP_RE = re.compile(r"^L(\d+)\.mlp(?:\.(in)|\[(\d+)\])?$")
_RESID_RE = re.compile(r"^L(\d+)\.(resid_pre|resid_mid|resid_post)$")


class SiteSyntaxError(ValueError):
    """A string that is not a site name."""


@dataclass(frozen=True)
class Role:
    """A token role (``IO``, ``S2``, ``END``) used as a position: resolved per prompt at
    execution time, so it may sit at different positions in the clean and corrupt prompts.
    Roles sort after integer positions (so a mixed ``pos`` tuple orders deterministically)."""

    name: str

    def __str__(self) -> str:
        return self.name

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Role):
            return self.name < other.name
        if isinstance(other, int):
            return False
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Role):
            return self.name > other.name
        if isinstance(other, int):
            return True
        return NotImplemented

    def __le__(self, other: object) -> bool:
        return self == other or self.__lt__(other)

    def __ge__(self, other: object) -> bool:
        return self == other or self.__gt__(other)


Position = int | Role


@dataclass(frozen=True, order=True)
class Site:
    """A model component, canonical and hashable.

    ``layer`` is -1 for ``embed`` and ``n_layers`` is not known here, so ``logits`` sorts last
    through :meth:`order_key`. ``pos`` is ``None`` for all positions.
    """

    kind: Kind
    layer: int = -1
    head: int = -1
    index: int = -1  # neuron index
    channel: str = ""  # q/k/v for head inputs, resid point for resid sites
    pos: tuple[Position, ...] | None = None

    def __str__(self) -> str:
        return format_site(self)

    @property
    def is_input(self) -> bool:
        """True for sites that are a component's input (edge receivers)."""
        return self.kind in (Kind.HEAD_INPUT, Kind.MLP_IN, Kind.LOGITS)

    def order_key(self) -> tuple[float, int]:
        """(layer, stage) in the model's computation order; used for edge validation."""
        if self.kind is Kind.EMBED:
            return (-1, 0)
        if self.kind is Kind.LOGITS:
            return (float("inf"), 0)
        stage = (
            _STAGE[(self.kind.value, self.channel)]
            if self.kind is Kind.RESID
            else _STAGE[self.kind]
        )
        return (self.layer, stage)

    def at(self, pos: tuple[Position, ...] | None) -> Site:
        return replace(self, pos=pos)

    def without_pos(self) -> Site:
        return replace(self, pos=None)

    @property
    def roles(self) -> tuple[str, ...]:
        """Names of the roles among the site's positions."""
        return tuple(p.name for p in self.pos or () if isinstance(p, Role))

    def component(self) -> Site:
        """The component a site belongs to: a head input's or pattern's head, an MLP input's
        MLP."""
        if self.kind in (Kind.HEAD_INPUT, Kind.PATTERN):
            return replace(self, kind=Kind.HEAD, channel="")
        if self.kind is Kind.MLP_IN:
            return replace(self, kind=Kind.MLP)
        return self


def parse_site(text: str) -> Site:
    """Parse a site name; raises :class:`SiteSyntaxError` with the valid forms.

    >>> parse_site("L1H3.k")
    Site(kind=<Kind.HEAD_INPUT: 'head_input'>, layer=1, head=3, index=-1, channel='k', pos=None)
    """
    s = text.strip()
    if s == "embed":
        return Site(Kind.EMBED)
    if s == "logits":
        return Site(Kind.LOGITS)
    m = _HEAD_RE.match(s)
    if m:
        layer, head, ch = int(m.group(1)), int(m.group(2)), m.group(3)
        if ch == "pattern":
            return Site(Kind.PATTERN, layer, head)
        if ch:
            return Site(Kind.HEAD_INPUT, layer, head, channel=ch)
        return Site(Kind.HEAD, layer, head)
    m = _MLP_RE.match(s)
    if m:
        layer = int(m.group(1))
        if m.group(2):
            return Site(Kind.MLP_IN, layer)
        if m.group(3) is not None:
            return Site(Kind.NEURON, layer, index=int(m.group(3)))
        return Site(Kind.MLP, layer)
    m = _RESID_RE.match(s)
    if m:
        return Site(Kind.RESID, int(m.group(1)), channel=m.group(2))
    raise SiteSyntaxError(f"'{text}' is not a site name; valid forms: {SITE_FORMS}")


def looks_like_site(text: str) -> bool:
    """True when ``text`` has the shape of a site name (so it is not a user node name)."""
    try:
        parse_site(text)
    except SiteSyntaxError:
        return False
    return True


def format_site(site: Site) -> str:
    """Canonical text of a site, without positions (``str(parse_site(x)) == x``)."""
    k = site.kind
    if k is Kind.EMBED:
        base = "embed"
    elif k is Kind.LOGITS:
        base = "logits"
    elif k is Kind.HEAD:
        base = f"L{site.layer}H{site.head}"
    elif k is Kind.HEAD_INPUT:
        base = f"L{site.layer}H{site.head}.{site.channel}"
    elif k is Kind.PATTERN:
        base = f"L{site.layer}H{site.head}.pattern"
    elif k is Kind.MLP:
        base = f"L{site.layer}.mlp"
    elif k is Kind.MLP_IN:
        base = f"L{site.layer}.mlp.in"
    elif k is Kind.NEURON:
        base = f"L{site.layer}.mlp[{site.index}]"
    else:
        base = f"L{site.layer}.{site.channel}"
    if site.pos is not None:
        base += "@" + ",".join(str(p) for p in site.pos)
    return base


def with_input(site: Site, channel: str) -> Site:
    """The q/k/v input (or the pattern) of a head site (``ind`` + ``.k`` -> ``L1H3.k``)."""
    if site.kind is not Kind.HEAD:
        raise SiteSyntaxError(f"'.{channel}' applies only to heads, not to {format_site(site)}")
    if channel == "pattern":
        return replace(site, kind=Kind.PATTERN, channel="")
    return replace(site, kind=Kind.HEAD_INPUT, channel=channel)
