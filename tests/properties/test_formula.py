"""The property language: parsing, precedence, types, and Z3 semantics against a truth table
computed by hand for every assignment."""

from __future__ import annotations

import itertools
import re

import pytest

from causal_mi.properties import formula as F


def _py(node: F.Node, env: dict):
    """Hand-written evaluation of an AST (the reference for Z3)."""
    op = node.op
    if op == "var":
        return env[node.value]
    if op in ("int", "bool"):
        return node.value
    a = [_py(x, env) for x in node.args]
    if op == "not":
        return not a[0]
    if op == "and":
        return all(a)
    if op == "or":
        return any(a)
    if op == "implies":
        return (not a[0]) or a[1]
    if op == "iff":
        return a[0] == a[1]
    if op == "call":
        n = sum(map(bool, a))
        return {"exactly_one": n == 1, "at_most_one": n <= 1, "at_least_one": n >= 1}[node.value]
    x, y = a
    return {"==": x == y, "!=": x != y, ">=": x >= y, "<=": x <= y, ">": x > y, "<": x < y}[
        node.value
    ]


FORMULAS = [
    "a and b -> c",
    "a -> b -> c",
    "not a or b and c",
    "(a or b) <-> not c",
    "exactly_one(a, b, c)",
    "at_most_one(a, b) and at_least_one(b, c)",
    "n >= 2 -> a",
    "n == 1 <-> (b != c)",
    "not not a",
    "true -> (n < 3)",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_z3_agrees_with_hand_evaluation_on_every_assignment(text):
    import z3

    ast = F.parse(text)
    assert F.check_types(ast, {"a": "bool", "b": "bool", "c": "bool", "n": "int"}) == "bool"
    env = {"a": z3.Bool("a"), "b": z3.Bool("b"), "c": z3.Bool("c"), "n": z3.Int("n")}
    expr = F.to_z3(ast, env)
    for a, b, c, n in itertools.product((False, True), (False, True), (False, True), range(4)):
        vals = {"a": a, "b": b, "c": c, "n": n}
        sub = [
            (env["a"], z3.BoolVal(a)),
            (env["b"], z3.BoolVal(b)),
            (env["c"], z3.BoolVal(c)),
            (env["n"], z3.IntVal(n)),
        ]
        got = z3.is_true(z3.simplify(z3.substitute(expr, *sub)))
        assert got == _py(ast, vals), (text, vals)


def test_precedence_and_associativity():
    # -> is right-associative and binds looser than or, which binds looser than and
    assert F.parse("a -> b -> c") == F.parse("a -> (b -> c)")
    assert F.parse("a or b and c") == F.parse("a or (b and c)")
    assert F.parse("not a and b") == F.parse("(not a) and b")
    assert F.parse("a and b -> c") == F.parse("(a and b) -> c")
    assert F.parse("a -> b") != F.parse("b -> a")


@pytest.mark.parametrize(
    "text, col, message",
    [
        ("a and (b", 9, "expected ')'"),
        ("a + b", 3, "unexpected character '+'"),
        ("a b", 3, "unexpected 'b' after a complete formula"),
        ("and a", 1, "expected a variable"),
        ("foo(a)", 1, "unknown function 'foo'"),
        ("", 1, "non-empty"),
    ],
)
def test_syntax_errors_name_the_column(text, col, message):
    with pytest.raises(F.FormulaError, match=re.escape(message)) as e:
        F.parse(text)
    assert e.value.column == col


@pytest.mark.parametrize(
    "text, message",
    [
        ("n and a", "takes booleans"),
        ("a > b", "orders integers"),
        ("a == n", "compares a boolean with an integer"),
        ("a -> ghost", "unknown variable 'ghost'"),
        ("exactly_one(a, n)", "takes booleans"),
    ],
)
def test_type_errors(text, message):
    with pytest.raises(F.FormulaError, match=message):
        F.check_types(F.parse(text), {"a": "bool", "b": "bool", "n": "int"})


def test_nothing_is_evaluated():
    """Python code is just an unknown name or a syntax error, never run."""
    for text in ("__import__('os')", "a.__class__", "exec('1')"):
        with pytest.raises(F.FormulaError):
            F.check_types(F.parse(text), {"a": "bool"})
