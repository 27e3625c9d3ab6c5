"""The engine's modules import each other without cycles, counting imports inside functions
(a cycle hidden in a function is still one: runner.py and paths.py had one); only imports
under ``if TYPE_CHECKING:`` (annotations) are left out."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ENGINE = Path(__file__).resolve().parents[2] / "causal_mi" / "engine"


def _imports(source: str) -> set[str]:
    tree = ast.parse(source)
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _graph(files: dict[str, str]) -> nx.DiGraph:
    g = nx.DiGraph()
    for name, source in files.items():
        g.add_node(name)
        for mod in _imports(source):
            if mod in files and mod != name:
                g.add_edge(name, mod)
    return g


def test_the_engine_has_no_import_cycle():
    files = {
        f"causal_mi.engine.{f.stem}": f.read_text()
        for f in ENGINE.glob("*.py")
        if f.stem != "__init__"
    }
    assert len(files) > 10
    cycles = list(nx.simple_cycles(_graph(files)))
    assert not cycles, cycles


def test_a_cycle_inside_a_function_is_found():
    files = {
        "a": "from b import f\n",
        "b": "def f():\n    from a import g\n",
        "c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a import g\n",
        "a2": "import c\n",
    }
    assert list(nx.simple_cycles(_graph(files))) in ([["a", "b"]], [["b", "a"]])


HOOK_NAME = re.compile(r"(^|\.)(hook_\w+|blocks\.)")


def _hook_literals(source: str) -> list[tuple[int, str]]:
    """String literals (docstrings and other bare expressions aside) that spell a hook."""
    tree = ast.parse(source)
    bare = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare:
            if HOOK_NAME.search(node.value):
                out.append((node.lineno, node.value))
    return out


def test_hook_names_are_spelled_only_in_models():
    # the adapter (models/) owns every hook name; the engine and everything built on it ask
    # it (models.adapter.hook_point, layer_hook, UNEMBED_IN)
    root = ENGINE.parent
    found = {
        str(f.relative_to(root)): hits
        for pkg in ("engine", "effects", "graph", "properties", "verify", "analysis", "stats")
        for f in (root / pkg).rglob("*.py")
        if (hits := _hook_literals(f.read_text()))
    }
    assert not found, found
    # the failing case: an f-string spelling one (a docstring mentioning one is fine)
    hits = _hook_literals('x = f"blocks.{la}.attn.hook_z"\n"""blocks.0.hook_z"""\n')
    assert sorted(hits) == [(1, ".attn.hook_z"), (1, "blocks.")]
