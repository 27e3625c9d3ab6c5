"""Read YAML safely while remembering where every key and value came from.

ruamel's round-trip loader builds only plain maps, lists and scalars (no object
construction), and records line/column of each key and item; :func:`locate` maps a
pydantic error location tuple back to that position.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causal_mi.errors import InputError, Location, Problem


def load_yaml(path: Path) -> Any:
    """Parse ``path``; a syntax error becomes an :class:`InputError` with file:line:col."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"hypothesis file not found: {path}", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read hypothesis file: {exc}", file=str(path)) from None
    yaml = YAML(typ="rt", pure=True)
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise InputError(
            Problem(loc, f"invalid YAML: {what}; check indentation and quoting near this line")
        ) from None
    except YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", file=str(path)) from None
    return data


def to_plain(node: Any) -> Any:
    """Round-trip YAML objects -> plain dict / list / scalars (what pydantic validates)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return bool(node) if "Boolean" in type(node).__name__ else int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def locate(root: Any, loc: tuple[Any, ...], file: str, *, key: bool = False) -> Location:
    """Position of ``loc`` inside ``root``; falls back to the nearest existing parent.

    With ``key=True`` the last element is a mapping key and its key's position is returned
    (used for unknown keys).
    """
    node, line, col = root, 0, 0
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            if lc is not None:
                pos = lc.key(part) if (key and last) else lc.value(part)
                if pos and pos[0] is not None:
                    line, col = pos[0] + 1, pos[1] + 1
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                pos = lc.item(part)
                if pos and pos[0] is not None:
                    line, col = pos[0] + 1, pos[1] + 1
            node = node[part]
        else:
            if line == 0 and lc is not None:
                line, col = lc.line + 1, lc.col + 1
            break
    return Location(file, line, col)
