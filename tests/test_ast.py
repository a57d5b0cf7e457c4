"""ast.children: every node a field holds, in field order (the per-class accessors must agree
with a plain walk over the node's attributes)."""

from __future__ import annotations

import glob
import operator

import pytest

import archdsl
from archdsl import ast as A


def _by_attributes(e: A.Node) -> list[A.Node]:
    out: list[A.Node] = []
    for v in vars(e).values():
        if isinstance(v, A.Node):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, A.Node))
    return out


@pytest.mark.parametrize("path", sorted(glob.glob("examples/**/*.arch", recursive=True)))
def test_children_are_the_node_fields(path: str) -> None:
    try:
        space = archdsl.load(path)
    except archdsl.ArchDSLError:
        pytest.skip("a library file (no network)")
    ir = space.ir
    stack: list[A.Node] = [*ir.blocks.values(), *ir.params, *ir.train, *ir.constraints]
    stack += [ir.network] if ir.network is not None else []
    seen: set[int] = set()
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        expected = _by_attributes(x)
        got = list(A.children(x))
        assert len(got) == len(expected) and all(map(operator.is_, got, expected)), x
        stack.extend(expected)
    assert len(seen) > 10


def test_children_of_each_kind() -> None:
    s = archdsl.errors.Span("f", 1, 1, 1, 2)
    a, b = A.Lit(s, 1), A.Name(s, "x")
    assert list(A.children(A.BinOp(s, "+", a, b))) == [a, b]
    assert list(A.children(A.Residual(s, a, None))) == [a]
    assert list(A.children(A.Residual(s, a, b))) == [a, b]
    assert list(A.children(A.Param(s, "p", None))) == []
    assert list(A.children(A.ListLit(s, [a, b]))) == [a, b]
    assert list(A.children(a)) == [] and list(A.children(b)) == []
    call = A.Call(s, "f", s, [A.Arg(s, None, a)])
    assert list(A.children(call)) == call.args
    body = A.Body(s, [], [], ["i"], [A.NodeStmt(s, "n", a)], b, True)
    assert list(A.children(body)) == [body.nodes[0], b]
