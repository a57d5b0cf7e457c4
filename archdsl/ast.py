"""The syntax tree of a .arch file: plain dataclasses, each carrying its source span.

The parser builds these; `semantics` resolves names on them in place (the `ref` fields) and so
turns the tree into the search-space IR that the interpreter walks.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Iterable
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
    label: str | None = None  # a positional option's label: choice(small: 8, big: 32)


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
    index: Expr | None = None  # `index(N)`: integers from 0 to N - 1 (None: a float input)


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


def children(e: Node) -> Iterable[Node]:
    """The nodes directly inside `e` (its node fields and the nodes of its list fields), in
    field order. A list field may be returned as it is: iterate, do not change it."""
    get = _CHILDREN.get(e.__class__)
    if get is None:
        get = _CHILDREN[e.__class__] = _children_of(e.__class__)
    return get(e)


# class -> a function giving the children of one of its nodes (made once per class by
# `_children_of`: the walks of a large file ask for them about a million times)
_CHILDREN: dict[type, Callable[[Any], Iterable[Node]]] = {}
_NO_CHILDREN: tuple[Node, ...] = ()


def _children_of(cls: type) -> Callable[[Any], Iterable[Node]]:
    """A function giving the children of a `cls` node: the values of its fields whose declared
    type names a node class (a list of them, or one of them, maybe None)."""
    node_types = {c.__name__ for c in _node_classes(Node)}
    single: list[str] = []
    lists: list[str] = []
    order: list[tuple[str, bool]] = []
    for f in dataclasses.fields(cls):
        words = set(re.findall(r"\w+", str(f.type)))
        if words & node_types:
            is_list = "list" in words
            (lists if is_list else single).append(f.name)
            order.append((f.name, is_list))
    if not order:
        return lambda e: _NO_CHILDREN
    if not single and len(lists) == 1:
        return operator.attrgetter(lists[0])
    if not lists:
        get = operator.attrgetter(*single)
        if len(single) == 1:
            return lambda e: _NO_CHILDREN if (v := get(e)) is None else (v,)
        return lambda e: [v for v in get(e) if v is not None]

    def general(e: Any) -> list[Node]:
        out: list[Node] = []
        for name, is_list in order:
            v = getattr(e, name)
            if is_list:
                out.extend(v)
            elif v is not None:
                out.append(v)
        return out

    return general


def _node_classes(cls: type) -> list[type]:
    return [cls] + [c for sub in cls.__subclasses__() for c in _node_classes(sub)]
