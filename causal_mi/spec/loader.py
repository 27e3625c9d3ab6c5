"""Load a hypothesis file: YAML -> schema -> resolved sites, reporting every error at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_mi.errors import InputError, Location, Problem, did_you_mean
from causal_mi.spec.resolve import ResolvedHypothesis, resolve
from causal_mi.spec.schema import ABLATIONS, CORRECTIONS, METRICS, Hypothesis, NodeAt, TaskSpec
from causal_mi.spec.yaml_source import load_yaml, locate, to_plain

_CHOICES = {"metric": METRICS, "ablation": ABLATIONS, "correction": CORRECTIONS}


def _fields(model: type) -> list[str]:
    return list(model.model_fields)  # type: ignore[attr-defined]


def _keys_for(loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the mapping at ``loc`` (for unknown-key hints)."""
    if loc[:1] == ("task",):
        return _fields(TaskSpec)
    if loc[:1] == ("nodes",):
        return _fields(NodeAt)
    return _fields(Hypothesis)


def _message(err: dict[str, Any], data: Any) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    dotted = ".".join(str(p) for p in loc)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = "top level" if len(loc) == 1 else ".".join(str(p) for p in loc[:-1])
        return f"unknown key '{key}' at {where}; {did_you_mean(key, _keys_for(loc))}"
    if kind == "missing":
        return f"missing required key '{dotted}'"
    if loc and loc[0] in _CHOICES and len(loc) == 1:
        return f"unknown {loc[0]} '{err.get('input')}'; {did_you_mean(str(err.get('input')), _CHOICES[loc[0]])}"
    if loc == ("version",):
        return f"unsupported version {err.get('input')!r}; this causal-mi reads version: 1"
    if loc and loc[0] == "nodes" and len(loc) >= 2:
        return (
            f"node '{loc[1]}' must be a site name (for example L1H3) or a mapping "
            "{at: L1H3, pos: -1}"
        )
    msg = err["msg"].removeprefix("Value error, ")
    return f"{dotted}: {msg} (got {err.get('input')!r})"


def _schema_problems(exc: Any, root: Any, file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        # Union members (str | NodeAt) each report; keep the first per place.
        if loc and loc[0] == "nodes" and len(loc) > 2:
            loc = loc[:2]
        if loc in seen:
            continue
        seen.add(loc)
        key = err["type"] == "extra_forbidden"
        problems.append(
            Problem(locate(root, loc, file, key=key), _message({**err, "loc": loc}, root))
        )
    return problems


def parse_hypothesis(path: Path) -> tuple[Hypothesis, Any]:
    """Schema-validated :class:`Hypothesis` and the raw YAML tree (for locations)."""
    from pydantic import ValidationError

    root = load_yaml(path)
    file = str(path)
    if not isinstance(root, dict):
        raise InputError(
            Problem(
                Location(file, 1, 1),
                "a hypothesis file must be a YAML mapping "
                "with keys version, name, model, task, nodes, edges, claims",
            )
        )
    try:
        hyp = Hypothesis.model_validate(to_plain(root))
    except ValidationError as exc:
        raise InputError(_schema_problems(exc, root, file)) from None
    problems: list[Problem] = []
    task = hyp.task
    if (task.generator is None) == (task.file is None):
        problems.append(
            Problem(
                locate(root, ("task",), file),
                "task needs exactly one of 'generator' (a built-in generator) or "
                "'file' (a JSONL file of {clean, corrupt, answer, wrong})",
            )
        )
    if problems:
        raise InputError(problems)
    return hyp, root


def load_hypothesis(path: str | Path) -> ResolvedHypothesis:
    """Parse, validate and resolve a hypothesis file; raises :class:`InputError` listing all
    problems with ``file:line:col``.

    >>> hyp = load_hypothesis("hypotheses/induction.yaml")  # doctest: +SKIP
    >>> hyp.nodes["ind"]  # doctest: +SKIP
    """
    path = Path(path)
    hyp, root = parse_hypothesis(path)
    from causal_mi.tasks.registry import task_problems

    task_errs = task_problems(hyp, root, path)
    resolved, problems = resolve(hyp, root, path)
    problems = task_errs + problems
    if problems:
        raise InputError(problems)
    assert resolved is not None
    return resolved
