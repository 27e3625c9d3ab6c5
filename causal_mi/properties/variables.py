"""Discretized variables of component behaviour (SPEC 5), declared under ``variables:``::

    variables:
      prev_fires: {attention: prev, to: previous, above: 0.3}   # a head attends to a key
      ind_level:  {attention: L1H3, to: induction, levels: [0.2, 0.5]}   # integer 0, 1, 2
      neuron_on:  {activation: L0.mlp[12], above: 0.5}          # a neuron's activation
      correct:    {output: correct}                             # the answer is the top token
      confident:  {output: metric, above: 2.0}                  # the file's metric

``attention`` reads a head's attention weight (post-softmax) from the query position ``pos``
(default -1, the last, where the metric is read) to the key ``to``: ``previous`` (pos - 1),
``self``, ``first`` (position 0), ``induction`` (the position after the latest earlier
occurrence of the query's token; no such position gives weight 0), or an integer position.
``activation`` reads a neuron's post-activation at ``pos``. Positions may be token roles of
the task: ``{attention: L9H9, from: END, to: IO}`` reads the weight from the query at role
END to the key at role IO of each prompt (``from`` is ``pos`` by another name).
``above: t`` makes a boolean (value > t); ``levels: [t1, t2, ...]`` (increasing) an
integer counting the thresholds exceeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from causal_mi.models.adapter import LOGITS_OUT, layer_hook
from causal_mi.spec.sites import Kind, Site, SiteSyntaxError, format_site, parse_site

TARGETS = ("previous", "self", "first", "induction")
KINDS = ("attention", "activation", "output")
OUTPUTS = ("correct", "metric")


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # attention | activation | output
    site: Site | None  # the head or neuron read (None for outputs)
    target: str | int | None  # attention key (a TARGETS word, a position or a role)
    pos: int | str  # query position or role
    thresholds: tuple[float, ...]
    boolean: bool

    @property
    def top(self) -> int:
        """Largest value (1 for booleans)."""
        return len(self.thresholds)

    @property
    def layer(self) -> float:
        return float("inf") if self.site is None else self.site.layer

    @property
    def hook(self) -> str:
        if self.kind == "attention":
            return layer_hook(self.site.layer, "pattern")
        if self.kind == "activation":
            return layer_hook(self.site.layer, "mlp_post")
        return LOGITS_OUT

    def describe(self) -> str:
        rule = (
            f"> {self.thresholds[0]:g}"
            if self.boolean
            else "levels " + ", ".join(f"{t:g}" for t in self.thresholds)
        )
        if self.kind == "attention":
            return (
                f"attention of {format_site(self.site)} to {self.target} at pos {self.pos} {rule}"
            )
        if self.kind == "activation":
            return f"{format_site(self.site)} at pos {self.pos} {rule}"
        return "answer is the top token" if self.target == "correct" else f"metric {rule}"


def parse_variables(raw, nodes: dict[str, Site], dims) -> tuple[list[Variable], list]:
    """Variables from the file's ``variables:`` mapping; returns (variables, problems) where
    each problem is (key path inside ``variables``, message)."""
    out, problems = [], []
    if raw is None:
        return out, problems
    if not isinstance(raw, dict):
        return out, [((), "variables must be a mapping of names to definitions")]
    for name, spec in raw.items():
        try:
            out.append(_one(str(name), spec, nodes, dims))
        except _Bad as exc:
            problems.append(((name, *exc.key), str(exc)))
    return out, problems


class _Bad(ValueError):
    def __init__(self, message: str, *key: str):
        super().__init__(message)
        self.key = key


def _one(name: str, spec, nodes: dict[str, Site], dims) -> Variable:
    if not name.isidentifier() or name in ("and", "or", "not", "true", "false"):
        raise _Bad(f"variable name '{name}' must be an identifier (letters, digits, _)")
    if not isinstance(spec, dict):
        raise _Bad(
            f"variable '{name}' must be a mapping, e.g. {{attention: L1H3, to: previous, "
            "above: 0.3}"
        )
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise _Bad(f"variable '{name}' needs exactly one of: {', '.join(KINDS)}")
    kind = kinds[0]
    allowed = {
        "attention": {"attention", "to", "pos", "from", "above", "levels"},
        "activation": {"activation", "pos", "from", "above", "levels"},
        "output": {"output", "above", "levels"},
    }[kind]
    for key in spec:
        if key not in allowed:
            raise _Bad(
                f"unknown key '{key}' for an {kind} variable; valid: {', '.join(sorted(allowed))}",
                key,
            )
    if "pos" in spec and "from" in spec:
        raise _Bad("give the query position once: 'pos' or 'from', not both", "from")
    key = "from" if "from" in spec else "pos"
    pos = spec.get(key, -1)
    if not _position_ok(pos):
        raise _Bad(
            f"{key} must be an integer (negative counts from the end) or a token role of "
            "the task (END, IO, ...)",
            key,
        )
    site, target = None, None
    if kind == "output":
        target = spec["output"]
        if target not in OUTPUTS:
            raise _Bad(f"unknown output '{target}'; valid: {', '.join(OUTPUTS)}", "output")
    else:
        site = _site(spec[kind], kind, nodes, dims)
        if kind == "attention":
            target = spec.get("to")
            if target is None:
                raise _Bad(
                    f"an attention variable needs 'to': {', '.join(TARGETS)} or a position", "to"
                )
            if not (target in TARGETS or _position_ok(target)):
                raise _Bad(
                    f"unknown attention target '{target}'; valid: {', '.join(TARGETS)}, "
                    "an integer position or a token role of the task",
                    "to",
                )
    thresholds = _thresholds(spec, kind == "output" and target == "correct")
    return Variable(name, kind, site, target, pos, thresholds, "levels" not in spec)


def _position_ok(p) -> bool:
    """An integer position or a role name (an identifier)."""
    if isinstance(p, str):
        return p.isidentifier()
    return isinstance(p, int) and not isinstance(p, bool)


def is_role(p) -> bool:
    """Whether a variable's position or attention target is a token role."""
    return isinstance(p, str) and p not in TARGETS


def _site(text, kind: str, nodes: dict[str, Site], dims) -> Site:
    want = Kind.HEAD if kind == "attention" else Kind.NEURON
    form = "a head (LxHy or a node name)" if kind == "attention" else "a neuron (Lx.mlp[i])"
    site = nodes.get(str(text))
    if site is None:
        try:
            site = parse_site(str(text))
        except SiteSyntaxError:
            raise _Bad(f"'{text}' is not {form}", kind) from None
    if site.kind is not want or site.pos is not None:
        raise _Bad(f"'{text}' is not {form}", kind)
    if site.layer >= dims.n_layers:
        raise _Bad(
            f"layer {site.layer} out of range; the model has layers 0-{dims.n_layers - 1}", kind
        )
    if kind == "attention" and site.head >= dims.n_heads:
        raise _Bad(f"head {site.head} out of range; the model has heads 0-{dims.n_heads - 1}", kind)
    if kind == "activation" and (dims.attn_only or site.index >= dims.d_mlp):
        raise _Bad(f"neuron {site.index} out of range; layer MLPs have {dims.d_mlp} neurons", kind)
    return site


def _thresholds(spec: dict, none_needed: bool) -> tuple[float, ...]:
    if none_needed:
        if "above" in spec or "levels" in spec:
            raise _Bad("'output: correct' is already a boolean; drop above/levels", "output")
        return (0.5,)  # correct is computed as 0/1 and compared with 0.5
    if ("above" in spec) == ("levels" in spec):
        raise _Bad(
            "give exactly one of 'above: t' (a boolean) or 'levels: [t1, t2, ...]' (an integer)"
        )
    if "above" in spec:
        t = spec["above"]
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            raise _Bad("above must be a number", "above")
        return (float(t),)
    ts = spec["levels"]
    if (
        not isinstance(ts, list)
        or not ts
        or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in ts)
    ):
        raise _Bad("levels must be a non-empty list of numbers", "levels")
    if any(b <= a for a, b in zip(ts, ts[1:], strict=False)):
        raise _Bad("levels must be strictly increasing", "levels")
    return tuple(float(t) for t in ts)


def raw_values(
    v: Variable,
    recorded: torch.Tensor | None,
    tokens: torch.Tensor,
    answer: torch.Tensor,
    metric: np.ndarray,
    roles: dict[str, list[int]] | None = None,
) -> np.ndarray:
    """The continuous value of ``v`` per row before discretizing: ``recorded`` is the
    activation of ``v.hook`` for the rows, ``tokens`` [rows, pos] their input tokens,
    ``roles`` each role's position per row (for role positions). For ``output: correct`` the
    engine records the logits at the metric's positions only ([rows, K, vocab]); a
    classifier's ([rows, labels]) have no position axis."""
    R, P = tokens.shape
    if v.kind == "output":
        if v.target == "metric":
            return np.asarray(metric, dtype=float)
        top = (recorded if recorded.dim() == 2 else recorded[:, -1]).argmax(-1)
        return (top == answer).double().cpu().numpy()

    def at(p) -> torch.Tensor:  # [R] positions of an integer or a role
        if is_role(p):
            return torch.tensor((roles or {})[p], dtype=torch.long)
        return torch.full((R,), p if p >= 0 else P + p, dtype=torch.long)

    q = at(v.pos)
    inside = (q >= 0) & (q < P)
    qc = q.clamp(0, P - 1)
    rows = torch.arange(R)
    if v.kind == "activation":
        vals = recorded[rows, qc.to(recorded.device), v.site.index].double().cpu()
        return torch.where(inside, vals, torch.full_like(vals, float("nan"))).numpy()
    row = recorded[rows, v.site.head, qc.to(recorded.device), :].double().cpu()  # [R, keys]
    if v.target == "previous":
        keys = q - 1
    elif v.target == "self":
        keys = q
    elif v.target == "first":
        keys = torch.zeros(R, dtype=torch.long)
    elif v.target == "induction":
        keys = torch.tensor(
            [_induction_key(t.tolist(), int(qi)) for t, qi in zip(tokens.cpu(), qc, strict=True)]
        )
    else:
        keys = at(v.target)
    ok = (keys >= 0) & (keys <= q)
    vals = row[rows, keys.clamp(0, P - 1)]
    vals = torch.where(ok, vals, torch.zeros_like(vals))
    return torch.where(inside, vals, torch.full_like(vals, float("nan"))).numpy()


def _induction_key(tokens: list[int], q: int) -> int:
    """The position after the latest earlier occurrence of ``tokens[q]``, or -1."""
    for j in range(q - 1, -1, -1):
        if tokens[j] == tokens[q]:
            return j + 1
    return -1


def discretize(v: Variable, values: np.ndarray) -> np.ndarray:
    """Integer states: the number of thresholds each value exceeds (0/1 for booleans)."""
    vals = np.nan_to_num(np.asarray(values, dtype=float), nan=-np.inf)
    return (vals[:, None] > np.array(v.thresholds)[None, :]).sum(axis=1).astype(int)
