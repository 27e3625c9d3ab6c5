"""The property language (SPEC 5): a restricted parser, never ``eval``.

Grammar, loosest binding first::

    formula := iff
    iff     := implies ('<->' implies)*
    implies := or ('->' implies)?                  (right-associative)
    or      := and ('or' and)*
    and     := not ('and' not)*
    not     := 'not' not | compare
    compare := atom (('==' | '!=' | '>=' | '<=' | '>' | '<') atom)?
    atom    := NAME | INTEGER | 'true' | 'false' | '(' formula ')'
             | ('exactly_one' | 'at_most_one' | 'at_least_one') '(' NAME (',' NAME)* ')'

Names are the file's variables (booleans or small integers). Types are checked: ``and`` /
``or`` / ``not`` / ``->`` / ``<->`` take booleans, ``<`` ``<=`` ``>`` ``>=`` integers, ``==``
and ``!=`` two operands of one type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FUNCTIONS = ("exactly_one", "at_most_one", "at_least_one")
_TOKEN = re.compile(
    r"\s*(?:(?P<op><->|->|==|!=|>=|<=|>|<|\(|\)|,)|(?P<int>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<bad>\S))"
)
_KEYWORDS = {"and", "or", "not", "true", "false"}


class FormulaError(ValueError):
    """A formula that does not parse or type-check; ``column`` is 1-based."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class Node:
    """An AST node: ``op`` is var | int | bool | not | and | or | implies | iff | cmp | call."""

    op: str
    args: tuple = ()
    value: object = None  # the name, integer, bool, comparison operator or function name
    col: int = field(default=1, compare=False)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None or m.end() == i:
            break
        kind = m.lastgroup
        val = m.group(kind)
        col = m.start(kind) + 1
        if kind == "bad":
            raise FormulaError(f"unexpected character '{val}'", col)
        if kind == "name" and val in _KEYWORDS:
            kind = "kw"
        out.append((kind, val, col))
        i = m.end()
    out.append(("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            found = tok[1] or "the end of the formula"
            raise FormulaError(f"expected '{value}', found '{found}'", tok[2])
        self.i += 1
        return tok

    def formula(self) -> Node:
        left = self.implies()
        while self.peek()[1] == "<->":
            col = self.take()[2]
            left = Node("iff", (left, self.implies()), col=col)
        return left

    def implies(self) -> Node:
        left = self.disj()
        if self.peek()[1] == "->":
            col = self.take()[2]
            return Node("implies", (left, self.implies()), col=col)
        return left

    def disj(self) -> Node:
        parts = [self.conj()]
        while self.peek()[1] == "or":
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else Node("or", tuple(parts), col=parts[0].col)

    def conj(self) -> Node:
        parts = [self.neg()]
        while self.peek()[1] == "and":
            self.take()
            parts.append(self.neg())
        return parts[0] if len(parts) == 1 else Node("and", tuple(parts), col=parts[0].col)

    def neg(self) -> Node:
        if self.peek()[1] == "not":
            col = self.take()[2]
            return Node("not", (self.neg(),), col=col)
        return self.compare()

    def compare(self) -> Node:
        left = self.atom()
        if self.peek()[1] in ("==", "!=", ">=", "<=", ">", "<"):
            _, op, col = self.take()
            return Node("cmp", (left, self.atom()), op, col)
        return left

    def atom(self) -> Node:
        kind, val, col = self.take()
        if val == "(":
            node = self.formula()
            self.take(")")
            return node
        if kind == "int":
            return Node("int", value=int(val), col=col)
        if kind == "kw" and val in ("true", "false"):
            return Node("bool", value=val == "true", col=col)
        if kind == "name" and self.peek()[1] == "(":
            if val not in FUNCTIONS:
                raise FormulaError(f"unknown function '{val}'; valid: {', '.join(FUNCTIONS)}", col)
            self.take("(")
            args = [self.atom()]
            while self.peek()[1] == ",":
                self.take()
                args.append(self.atom())
            self.take(")")
            return Node("call", tuple(args), val, col)
        if kind == "name":
            return Node("var", value=val, col=col)
        found = val or "the end of the formula"
        raise FormulaError(f"expected a variable, a number or '(', found '{found}'", col)


def parse(text: str) -> Node:
    """The AST of ``text``; raises :class:`FormulaError` with the column."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("a property must be a non-empty formula", 1)
    p = _Parser(text)
    node = p.formula()
    kind, val, col = p.peek()
    if kind != "end":
        raise FormulaError(f"unexpected '{val}' after a complete formula", col)
    return node


def names(node: Node) -> list[str]:
    """Variable names in ``node``, in order of first appearance."""
    out: dict[str, None] = {}

    def walk(n: Node) -> None:
        if n.op == "var":
            out.setdefault(n.value, None)
        for a in n.args:
            walk(a)

    walk(node)
    return list(out)


def check_types(node: Node, types: dict[str, str]) -> str:
    """``"bool"`` or ``"int"`` for ``node`` given each variable's type; raises
    :class:`FormulaError` on an unknown name or a type mismatch."""
    if node.op == "var":
        if node.value not in types:
            from causal_mi.errors import did_you_mean

            raise FormulaError(
                f"unknown variable '{node.value}'; {did_you_mean(node.value, types)}", node.col
            )
        return types[node.value]
    if node.op == "int":
        return "int"
    if node.op == "bool":
        return "bool"
    kinds = [check_types(a, types) for a in node.args]
    if node.op in ("not", "and", "or", "implies", "iff", "call"):
        for a, k in zip(node.args, kinds, strict=True):
            if k != "bool":
                raise FormulaError(
                    f"'{node.value or node.op}' takes booleans; this operand is an integer "
                    "(compare it, e.g. 'x >= 1')",
                    a.col,
                )
        return "bool"
    # comparison
    if node.value in ("==", "!="):
        if kinds[0] != kinds[1]:
            raise FormulaError(f"'{node.value}' compares a boolean with an integer", node.col)
    elif "bool" in kinds:
        raise FormulaError(f"'{node.value}' orders integers; a boolean cannot be ordered", node.col)
    return "bool"


def to_z3(node: Node, env: dict):
    """The Z3 expression of ``node``; ``env`` maps names to Z3 constants."""
    import z3

    op = node.op
    if op == "var":
        return env[node.value]
    if op == "int":
        return z3.IntVal(node.value)
    if op == "bool":
        return z3.BoolVal(node.value)
    args = [to_z3(a, env) for a in node.args]
    if op == "not":
        return z3.Not(args[0])
    if op == "and":
        return z3.And(*args)
    if op == "or":
        return z3.Or(*args)
    if op == "implies":
        return z3.Implies(*args)
    if op == "iff":
        return args[0] == args[1]
    if op == "call":
        ones = [(a, 1) for a in args]
        if node.value == "exactly_one":
            return z3.PbEq(ones, 1)
        if node.value == "at_most_one":
            return z3.PbLe(ones, 1)
        return z3.PbGe(ones, 1)
    a, b = args
    return {
        "==": lambda: a == b,
        "!=": lambda: a != b,
        ">=": lambda: a >= b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        "<": lambda: a < b,
    }[node.value]()
