"""Load a hypothesis file: YAML -> schema -> resolved sites, reporting every error at once.

Schema errors do not stop the other checks: the invalid parts are set aside (see
:func:`_salvage`) and names, edges, claims and the task are still checked, so a user sees
every problem of a file in one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from causal_mi.errors import InputError, Location, Problem, did_you_mean
from causal_mi.spec.resolve import ResolvedHypothesis, resolve
from causal_mi.spec.schema import (
    ABLATIONS,
    CORRECTIONS,
    METRICS,
    Hypothesis,
    NodeAt,
    NoiseSpec,
    TaskSpec,
)
from causal_mi.spec.yaml_source import load_yaml, locate, to_plain

_CHOICES = {"metric": METRICS, "ablation": ABLATIONS, "correction": CORRECTIONS}

_NOT_A_MAPPING = (
    "a hypothesis file must be a YAML mapping with keys version, name, model, task, "
    "nodes, edges, claims"
)
_TASK_ONE_OF = (
    "task needs exactly one of 'generator' (a built-in generator) or "
    "'file' (a JSONL file of {clean, corrupt, answer, wrong})"
)
_LIST_ITEM = {
    "edges": "each edge must be a string 'sender -> receiver' (for example 'prev -> ind.k')",
    "claims": "each claim must be a string 'QUANTITY >= NUMBER' (for example 'effect(ind) >= 0.5')",
}
_SHAPES = {
    "task": "task must be a mapping: {generator: repeated_tokens, n: 200} or {file: pairs.jsonl}",
    "nodes": "nodes must be a mapping of your names to sites, for example {prev: L0H1, ind: L1H3}",
    "edges": "edges must be a list of 'sender -> receiver' strings, for example ['prev -> ind.k']",
    "claims": "claims must be a list of strings, for example ['effect(ind) >= 0.5']",
}
_REQUIRED = "a hypothesis file needs version, name, model and task"
_NOISE = "{positions: [1, 2, 3], scale: 3.0, seed: 0}"
# task.noise keys -> what a valid value is (for wrong types and ranges)
_NOISE_RULES = {
    "positions": (
        "task.noise.positions must be a token position or a list of them (integers, "
        "negative counting from the end, or token roles of the task), for example [1, 2, 3] "
        "or subject"
    ),
    "scale": (
        "task.noise.scale must be a number > 0: the noise's standard deviation in units of "
        "the std of the embedding matrix's entries (Meng et al. use 3)"
    ),
    "seed": "task.noise.seed must be an integer (the noise is drawn from it per example)",
}
# Stand-ins for required values that failed validation, so the other checks can still run.
_PLACEHOLDERS: dict[str, Any] = {"version": 1, "name": "?", "model": "path:."}


def _fields(model: type) -> list[str]:
    return list(model.model_fields)  # type: ignore[attr-defined]


def _keys_for(loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the mapping at ``loc`` (for unknown-key hints)."""
    if loc[:2] == ("task", "noise"):
        return _fields(NoiseSpec)
    if loc[:1] == ("task",):
        return _fields(TaskSpec)
    if loc[:1] == ("nodes",):
        return _fields(NodeAt)
    return _fields(Hypothesis)


def _message(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    dotted = ".".join(str(p) for p in loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = "top level" if len(loc) == 1 else ".".join(str(p) for p in loc[:-1])
        return f"unknown key '{key}' at {where}; {did_you_mean(key, _keys_for(loc))}"
    if loc[:2] == ("task", "noise"):
        return _noise_message(err, loc, kind)
    if kind == "missing":
        if loc[:1] == ("nodes",):
            return f"node '{loc[1]}' needs 'at: <site>', for example {{at: L1H3, pos: -1}}"
        if len(loc) == 1:
            return f"missing required key '{dotted}'; {_REQUIRED}"
        return f"missing required key '{dotted}'"
    if loc and loc[0] in _CHOICES and len(loc) == 1:
        value = str(err.get("input"))
        return f"unknown {loc[0]} '{value}'; {did_you_mean(value, _CHOICES[loc[0]])}"
    if loc == ("version",):
        return f"unsupported version {err.get('input')!r}; this causal-mi reads version: 1"
    if len(loc) == 1 and loc[0] in _SHAPES and kind.endswith("_type"):
        return f"{_SHAPES[loc[0]]}; got {err.get('input')!r}"
    if loc[:1] == ("nodes",) and loc[2:] == ("pos",):
        return (
            f"node '{loc[1]}': pos must be a position (an integer; negative counts from "
            f"the end), a token role of the task (END, IO, ...) or a list of them, got "
            f"{err.get('input')!r}"
        )
    if loc and loc[0] == "nodes" and len(loc) == 2:
        return (
            f"node '{loc[1]}' must be a site name (for example L1H3) or a mapping "
            f"{{at: L1H3, pos: -1}}, got {err.get('input')!r}"
        )
    if len(loc) == 2 and loc[0] in _LIST_ITEM:
        return (
            f"{_LIST_ITEM[loc[0]]}, got {err.get('input')!r}; "
            "quote an item that contains ': ' or starts with '{' or '['"
        )
    msg = err["msg"].removeprefix("Value error, ")
    return f"{dotted}: {msg} (got {err.get('input')!r})"


def _noise_message(err: dict[str, Any], loc: tuple[Any, ...], kind: str) -> str:
    """Messages for ``task.noise`` (Gaussian-noise corruption)."""
    if kind == "missing":
        return f"task.noise needs '{loc[2]}', for example noise: {_NOISE}"
    if len(loc) == 2:
        return f"task.noise must be a mapping like {_NOISE}, got {err.get('input')!r}"
    return f"{_NOISE_RULES.get(str(loc[2]), str(loc[2]))}; got {err.get('input')!r}"


def _node_errors(errors: list[dict[str, Any]], root: Any) -> list[dict[str, Any]]:
    """Collapse the per-member errors of the ``str | NodeAt`` union into what the user meant:
    a mapping's own errors (``nodes.ind.pso``) for a mapping, one error per node otherwise."""
    nodes = root.get("nodes") if isinstance(root, dict) else None
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = tuple(err["loc"])
        if loc[:3] == ("task", "noise", "positions"):
            out.append({**err, "loc": loc[:3]})  # int | list[int]: one mistake
            continue
        if not (loc and loc[0] == "nodes" and len(loc) > 2):
            out.append(err)
            continue
        is_map = isinstance(nodes, dict) and isinstance(nodes.get(loc[1]), dict)
        if is_map and loc[2] == "str":
            continue  # a mapping was meant as {at: ..., pos: ...}; its own errors say why
        if is_map and loc[2] == "NodeAt" and len(loc) > 3:
            # ('nodes', n, 'NodeAt', 'pos', 'list[int]') -> ('nodes', n, 'pos'): the union
            # members of pos are one mistake
            rest = loc[3:4] if loc[3] == "pos" else loc[3:]
            out.append({**err, "loc": (*loc[:2], *rest)})
        else:
            out.append({**err, "loc": loc[:2]})
    return out


def _schema_problems(errors: list[dict[str, Any]], root: Any, file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for err in errors:
        loc = tuple(err["loc"])
        if loc in seen:
            continue
        seen.add(loc)
        key = err["type"] == "extra_forbidden"
        problems.append(Problem(locate(root, loc, file, key=key), _message(err)))
    return problems


@dataclass
class _Salvaged:
    """What is left of a file after setting its invalid parts aside."""

    data: dict[str, Any] | None
    broken_nodes: set[str] = field(default_factory=set)
    skip: set[tuple[str, int]] = field(default_factory=set)
    task_ok: bool = True


def _salvage(plain: dict[str, Any], errors: list[dict[str, Any]]) -> _Salvaged:
    """A copy of ``plain`` without the parts that failed validation (defaults or stand-ins in
    their place). Nodes that were dropped are remembered so references to them are not
    reported again as unknown names."""
    data = dict(plain)
    out = _Salvaged(data)
    for err in errors:
        loc = tuple(err["loc"])
        top = loc[0] if loc else None
        if top in ("nodes", "task") and len(loc) >= 2 and isinstance(data.get(top), dict):
            data[top] = {k: v for k, v in data[top].items() if k != loc[1]}
            if top == "nodes":
                out.broken_nodes.add(str(loc[1]))
            elif loc[1] in ("generator", "file"):
                out.task_ok = False
        elif top in ("edges", "claims") and len(loc) == 2 and isinstance(data.get(top), list):
            data[top] = [v if i != loc[1] else "" for i, v in enumerate(data[top])]
            out.skip.add((top, int(loc[1])))
        elif top in _PLACEHOLDERS:
            data[top] = _PLACEHOLDERS[top]
        elif top == "task":
            data["task"] = {"generator": "?"}
            out.task_ok = False
        elif top == "nodes" or top is None:
            return _Salvaged(None)  # without the nodes every reference would be an error
        else:
            data.pop(top, None)  # an unknown key, or a key with a default
    return out


def _validate(root: Any, file: str) -> tuple[Hypothesis | None, list[Problem], _Salvaged]:
    """Schema-check ``root``; returns the hypothesis (or a salvaged one), the problems found
    and what was set aside."""
    from pydantic import ValidationError

    plain = to_plain(root)
    problems: list[Problem] = []
    salvaged = _Salvaged(plain)
    try:
        hyp: Hypothesis | None = Hypothesis.model_validate(plain)
    except ValidationError as exc:
        errors = _node_errors(list(exc.errors()), root)
        problems = _schema_problems(errors, root, file)
        salvaged = _salvage(plain, errors)
        hyp = None
        if salvaged.data is not None:
            try:
                hyp = Hypothesis.model_validate(salvaged.data)
            except ValidationError:
                hyp = None
    if (
        hyp is not None
        and salvaged.task_ok
        and (hyp.task.generator is None) == (hyp.task.file is None)
    ):
        problems.append(Problem(locate(root, ("task",), file), _TASK_ONE_OF))
        salvaged.task_ok = False
    return hyp, problems, salvaged


def _load_root(path: Path) -> Any:
    root = load_yaml(path)
    if not isinstance(root, dict):
        raise InputError(Problem(Location(str(path), 1, 1), _NOT_A_MAPPING))
    return root


def parse_hypothesis(path: Path) -> tuple[Hypothesis, Any]:
    """Schema-validated :class:`Hypothesis` and the raw YAML tree (for locations)."""
    root = _load_root(path)
    hyp, problems, _ = _validate(root, str(path))
    if problems or hyp is None:
        raise InputError(problems)
    return hyp, root


def _sorted(problems: list[Problem], file: str) -> list[Problem]:
    """The hypothesis file's problems in line order, then those in other files (task files)."""
    return sorted(
        problems,
        key=lambda p: (p.location.file != file, p.location.file, p.location.line, p.location.col),
    )


def load_hypothesis(path: str | Path) -> ResolvedHypothesis:
    """Parse, validate and resolve a hypothesis file; raises :class:`InputError` listing all
    problems with ``file:line:col``.

    >>> hyp = load_hypothesis("hypotheses/induction.yaml")  # doctest: +SKIP
    >>> hyp.nodes["ind"]  # doctest: +SKIP
    """
    from causal_mi.tasks.registry import task_problems

    path = Path(path)
    file = str(path)
    root = _load_root(path)
    hyp, problems, salvaged = _validate(root, file)
    resolved = None
    if hyp is not None:
        if salvaged.task_ok:
            problems += task_problems(hyp, root, path)
        resolved, more = resolve(
            hyp, root, path, broken_nodes=salvaged.broken_nodes, skip=salvaged.skip
        )
        problems += more
    if problems:
        raise InputError(_sorted(problems, file))
    assert resolved is not None
    return resolved
