"""The syntax tree of a .arch file: plain dataclasses, each carrying its source span.

The parser builds these; `semantics` resolves names on them in place (the `ref` fields) and so
turns the tree into the search-space IR that the interpreter walks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import Span

__all__ = [
    "Node", "Expr", "Lit", "Name", "ListLit", "Call", "Arg", "Range", "BinOp", "Neg", "Compare",
    "BoolOp", "Not", "Pipeline", "Shared", "Repeat", "Alt", "OneOf", "Optional", "Residual",
    "Parallel", "Param", "ParamDecl", "SharedDecl", "BlockDecl", "Constraint", "NodeStmt", "Body",
    "InputDecl", "Import", "TrainEntry", "Module", "DECISION_FUNCS", "children",
]

DECISION_FUNCS = frozenset({"choice", "int", "float", "bool", "some"})


@dataclass(eq=False)
class Node:
    span: Span


@dataclass(eq=False)
class Expr(Node):
    pass


@dataclass(eq=False)
class Lit(Expr):
    value: Any  # int, float, str or bool


@dataclass(eq=False)
class Name(Expr):
    id: str
    ref: Any = None  # filled by semantics: a Ref


@dataclass(eq=False)
class ListLit(Expr):
    items: list[Expr]


@dataclass(eq=False)
class Range(Expr):
    lo: Expr
    hi: Expr


@dataclass(eq=False)
class Arg(Node):
    name: str | None  # None for a positional argument
    value: Expr


@dataclass(eq=False)
class Call(Expr):
    func: str
    func_span: Span
    args: list[Arg]
    ref: Any = None

    @property
    def positional(self) -> list[Expr]:
        return [a.value for a in self.args if a.name is None]

    @property
    def keywords(self) -> dict[str, Expr]:
        return {a.name: a.value for a in self.args if a.name is not None}


@dataclass(eq=False)
class BinOp(Expr):
    op: str  # + - * / // % **
    left: Expr
    right: Expr


@dataclass(eq=False)
class Neg(Expr):
    operand: Expr


@dataclass(eq=False)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(eq=False)
class BoolOp(Expr):
    op: str  # and / or
    left: Expr
    right: Expr


@dataclass(eq=False)
class Not(Expr):
    operand: Expr


@dataclass(eq=False)
class Pipeline(Expr):
    stages: list[Expr]


@dataclass(eq=False)
class Shared(Expr):
    expr: Expr
    static_name: str = ""  # filled by semantics


@dataclass(eq=False)
class Repeat(Expr):
    count: Expr
    body: Expr


@dataclass(eq=False)
class Alt(Node):
    label: str | None
    expr: Expr


@dataclass(eq=False)
class OneOf(Expr):
    alts: list[Alt]
    labels: list[str] = field(default_factory=list)  # filled by semantics


@dataclass(eq=False)
class Optional(Expr):
    body: Expr


@dataclass(eq=False)
class Residual(Expr):
    body: Expr
    skip: Expr | None


@dataclass(eq=False)
class Parallel(Expr):
    merge: str
    merge_span: Span
    alts: list[Alt]


# ---- declarations and statements -------------------------------------------------------


@dataclass(eq=False)
class Param(Node):
    name: str
    default: Expr | None


@dataclass(eq=False)
class ParamDecl(Node):
    name: str
    value: Expr


@dataclass(eq=False)
class SharedDecl(Node):
    name: str
    value: Expr


@dataclass(eq=False)
class Constraint(Node):
    kind: str  # require / forbid
    expr: Expr


@dataclass(eq=False)
class NodeStmt(Node):
    name: str
    value: Expr


@dataclass(eq=False)
class Body(Node):
    params: list[ParamDecl]
    constraints: list[Constraint]
    inputs: list[str]  # graph bodies: the declared input nodes
    nodes: list[NodeStmt]
    result: Expr  # the pipeline, or the graph's return expression
    is_graph: bool


@dataclass(eq=False)
class BlockDecl(Node):
    name: str
    params: list[Param]
    max_depth: int | None
    body: Body
    keyword: str = "block"  # block / cell / op
    module: str = ""  # the file it was defined in


@dataclass(eq=False)
class InputDecl(Node):
    name: str
    shape: Expr


@dataclass(eq=False)
class Import(Node):
    path: str
    alias: str | None
    names: list[str] | None  # `from "x" import a, b`


@dataclass(eq=False)
class TrainEntry(Node):
    name: str
    value: Expr


@dataclass(eq=False)
class Module(Node):
    file: str
    imports: list[Import]
    inputs: list[InputDecl]
    params: list[ParamDecl | SharedDecl]
    blocks: list[BlockDecl]
    network: Body | None
    network_span: Span | None
    train: list[TrainEntry]
    constraints: list[Constraint]


def children(e: Node) -> Iterator[Node]:
    """The nodes directly inside `e` (its node fields and the nodes of its list fields)."""
    for v in vars(e).values():
        if isinstance(v, Node):
            yield v
        elif isinstance(v, list):
            for x in v:
                if isinstance(x, Node):
                    yield x
