"""Validate a file's ``variables:`` and ``properties:`` against its model (SPEC 2 and 5).

Runs once the model is loaded (variables name heads and neurons whose ranges depend on it);
every problem is reported with ``file:line:col`` at once, before anything is measured.
"""

from __future__ import annotations

from causal_mi.errors import InputError, Location, Problem
from causal_mi.properties.check import Property, parse_properties
from causal_mi.properties.variables import Variable, parse_variables


def load_properties(hyp, dims) -> tuple[list[Variable], list[Property]]:
    """(variables, properties) of a resolved hypothesis; raises :class:`InputError`."""
    spec = hyp.spec
    if not spec.properties and not spec.variables:
        return [], []
    from causal_mi.spec.yaml_source import load_yaml, locate

    root = load_yaml(hyp.path)
    file = str(hyp.path)
    variables, problems = parse_variables(spec.variables, hyp.nodes, dims)
    out = [Problem(locate(root, ("variables", *key), file), msg) for key, msg in problems]
    broken = frozenset(str(key[0]) for key, _ in problems if key)
    props, perr = parse_properties(spec.properties, variables, broken)
    for i, key, column, msg in perr:
        at = locate(root, ("properties", i) if key is None else ("properties", i, key), file)
        text = _item_text(root, i, key)
        col = at.col + column - 1 + (1 if text and _quoted(root, i, key) else 0)
        out.append(Problem(Location(file, at.line, col), f"property: {msg}"))
    names = [p.name for p in props]
    for i, p in enumerate(props):
        if names.index(p.name) != i:
            out.append(
                Problem(
                    locate(root, ("properties", i), file), f"property name '{p.name}' is used twice"
                )
            )
    if spec.properties and not variables and not problems:
        out.append(
            Problem(
                locate(root, ("properties",), file),
                "properties need variables: declare them under 'variables:' "
                "(e.g. prev_fires: {attention: L0H1, to: previous, above: 0.3})",
            )
        )
    if out:
        raise InputError(out, file=file)
    return variables, props


def _item_text(root, i: int, key):
    try:
        item = root["properties"][i]
        return item[key] if key is not None else item
    except (KeyError, IndexError, TypeError):
        return None


def _quoted(root, i: int, key) -> bool:
    """Whether the formula was written as a quoted scalar (its text starts one column later)."""
    text = _item_text(root, i, key)
    return type(text).__name__ in ("DoubleQuotedScalarString", "SingleQuotedScalarString")


def check_positions(hyp, variables: list[Variable], task) -> None:
    """Every variable's query position (and integer attention key) exists in the task's
    shortest prompt; raises :class:`InputError` naming the key."""
    if not variables or not task.examples:
        return
    from causal_mi.properties.variables import is_role
    from causal_mi.spec.yaml_source import load_yaml, locate
    from causal_mi.tasks.checks import role_problems

    shortest = min(min(len(e.clean), len(e.corrupt)) for e in task.examples)
    problems = []
    root = None
    for v in variables:
        checks = [("pos", v.pos)] if v.kind != "output" else []
        if v.kind == "attention" and (isinstance(v.target, int) or is_role(v.target)):
            checks.append(("to", v.target))
        for key, value in checks:
            root = root if root is not None else load_yaml(hyp.path)
            if key == "pos" and "from" in ((root.get("variables") or {}).get(v.name) or {}):
                key = "from"
            at = locate(root, ("variables", v.name, key), str(hyp.path))
            if is_role(value):
                if key == "to" and value not in {
                    r for e in task.examples for r in e.roles_of("clean")
                }:
                    from causal_mi.properties.variables import TARGETS

                    problems.append(
                        Problem(
                            at,
                            f"unknown attention target '{value}'; valid: {', '.join(TARGETS)}, "
                            "an integer position or a role the task defines: "
                            + ", ".join(sorted(task.roles())),
                        )
                    )
                    continue
                problems += role_problems(hyp, task, value, f"variable {v.name}", at)
                continue
            if -shortest <= value < shortest:
                continue
            problems.append(
                Problem(
                    at,
                    f"{key} {value} is outside the prompts: the shortest has {shortest} "
                    f"tokens (valid: 0..{shortest - 1} or -{shortest}..-1)",
                )
            )
    if problems:
        raise InputError(problems, file=str(hyp.path))
