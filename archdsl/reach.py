"""Decisions that reach nothing: what of a space no layer, train entry or constraint reads.

Reachability runs from the roots (the network, the train section, the constraints) through the
names they read: a top-level `param`, a block's parameters and body params, a graph's nodes. A
block call's argument reaches only if the block reads the parameter it fills. What no root
reaches yet makes a decision is dropped: every option of that decision builds the same
architecture, so the count is too large by its factor and a searcher finds nothing new in it.

`dropped(ir)` lists those places (`Dropped`: why, the expression); `reach_warnings(space)` names
the decisions they make, by their stable names as in configurations, as `SpaceWarning`s.

May import: archdsl.ast, errors, semantics (and space, for the names a walk gives).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import ast as A
from .errors import SpaceWarning, Span
from .semantics import SpaceIR

if TYPE_CHECKING:
    from .space import Space

__all__ = ["Dropped", "dropped", "reach_warnings", "NAME_SAMPLES", "SHOWN"]

NAME_SAMPLES = 20  # configurations walked (besides the default) to find the names of decisions
SHOWN = 20  # warnings shown at most, then how many more there are


@dataclass
class Dropped:
    """A place that makes a decision nothing reads: `why` ("nothing reads param 'p'"), and
    the expression that decides."""

    why: str
    expr: A.Node


def _makes_decision(e: A.Node) -> bool:
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, (A.OneOf, A.Optional)):
            return True
        if isinstance(x, A.Call) and x.ref and x.ref[0] == "decision":
            return True
        stack.extend(A.children(x))
    return False


class _Reach:
    def __init__(self, ir: SpaceIR):
        self.ir = ir
        self.params = {p.name: p for p in ir.params}
        self.used: set[str] = set()  # top-level params read
        self.todo: list[str] = []
        self.reads: dict[str, set[str]] = {}  # block -> the locals and nodes its body reads
        self.blocks: dict[str, A.BlockDecl] = {}  # the blocks reached
        self.pending: list[A.BlockDecl] = []
        self.out: list[Dropped] = []

    def run(self) -> list[Dropped]:
        ir = self.ir
        if ir.network is not None:
            self.body_reads(ir.network, None, "network")
        for te in ir.train:
            self.visit(te.value, set())
        for c in ir.constraints:
            self.visit(c.expr, set())
        while self.todo or self.pending:
            while self.todo:
                p = self.params[self.todo.pop()]
                self.visit(p.value, set())
            while self.pending:
                blk = self.pending.pop()
                self.block_reads(blk)
        for p in ir.params:
            if p.name not in self.used and _makes_decision(p.value):
                self.out.append(Dropped(f"nothing reads {_kind(p)} '{p.name}'", p.value))
        return self.out

    # ---- a body: what it reads, and what it leaves unread --------------------------------
    def block_reads(self, blk: A.BlockDecl) -> set[str]:
        r = self.reads.get(blk.name)
        if r is None:
            # a recursive call while this block is computed: assume it reads every parameter
            self.reads[blk.name] = {p.name for p in blk.params}
            r = self.reads[blk.name] = self.body_reads(blk.body, blk,
                                                         f"{blk.keyword} '{blk.name}'")
        return r

    def body_reads(self, body: A.Body, blk: A.BlockDecl | None, where: str) -> set[str]:
        read: set[str] = set()
        self.visit(body.result, read)
        if _reads_every_node(body.result):
            read.update("@" + n.name for n in body.nodes)
        for c in body.constraints:
            self.visit(c.expr, read)
        decl: dict[str, A.Node] = {"@" + n.name: n.value for n in body.nodes}
        decl.update({p.name: p.value for p in body.params})
        if blk is not None:
            decl.update({p.name: p.default for p in blk.params if p.default is not None})
        done: set[str] = set()
        todo = list(read)
        while todo:
            n = todo.pop()
            if n in done or n not in decl:
                continue
            done.add(n)
            got: set[str] = set()
            self.visit(decl[n], got)
            read |= got
            todo.extend(got - done)
        for n in body.nodes:
            if "@" + n.name not in read and _makes_decision(n.value):
                self.out.append(Dropped(f"nothing reads node '{n.name}' of {where}", n.value))
        for p in body.params:
            if p.name not in read and _makes_decision(p.value):
                self.out.append(Dropped(f"nothing reads param '{p.name}' of {where}", p.value))
        if blk is not None:
            for bp in blk.params:
                if bp.name not in read and bp.default is not None \
                        and _makes_decision(bp.default):
                    self.out.append(Dropped(f"{where} never reads its parameter '{bp.name}'",
                                            bp.default))
        return read

    # ---- an expression -------------------------------------------------------------------
    def visit(self, e: A.Node, read: set[str]) -> None:
        stack = [e]
        while stack:
            x = stack.pop()
            t = x.__class__
            if t is A.Lit:
                continue
            if t is A.Name:
                self.name(x, read)
                continue
            if t is A.Call and x.ref:
                kind = x.ref[0]
                if kind == "apply":
                    stack.append(x.ref[1])
                elif kind == "block":
                    stack.extend(self.block_call(x))
                    continue
            stack.extend(A.children(x))

    def name(self, x: A.Name, read: set[str]) -> None:
        if not x.ref:
            return
        kind = x.ref[0]
        if kind == "local":
            read.add(x.id)
        elif kind == "node":
            read.add("@" + x.id)
        elif kind == "gparam":
            if x.id not in self.used and x.id in self.params:
                self.used.add(x.id)
                self.todo.append(x.id)
        elif kind == "block":
            self.reach_block(x.ref[1])

    def reach_block(self, blk: A.BlockDecl) -> None:
        if blk.name not in self.blocks:
            self.blocks[blk.name] = blk
            self.pending.append(blk)

    def block_call(self, call: A.Call) -> list[A.Node]:
        """The arguments of a block call that reach (tensors, and those the block reads); the
        others are recorded as dropped where they make a decision."""
        blk: A.BlockDecl = call.ref[1]
        self.reach_block(blk)
        reads = self.block_reads(blk)
        names = [p.name for p in blk.params]
        out: list[A.Node] = []
        i = 0
        for a in call.args:
            if a.name is None and self.ir.kinds.get(id(a.value)) == "tensor":
                out.append(a.value)
                continue
            pname = a.name if a.name is not None else (names[i] if i < len(names) else "")
            if a.name is None:
                i += 1
            if pname in reads or pname not in names:
                out.append(a.value)
            elif _makes_decision(a.value):
                self.out.append(Dropped(
                    f"{blk.keyword} '{blk.name}' never reads its parameter '{pname}'", a.value))
        return out


def _kind(p: A.ParamDecl | A.SharedDecl) -> str:
    return "shared" if isinstance(p, A.SharedDecl) else "param"


def _reads_every_node(result: A.Node) -> bool:
    """Whether a return reads every node whatever its text names (a loose-end merge)."""
    stack = [result]
    while stack:
        x = stack.pop()
        if isinstance(x, A.Name) and "loose" in x.id:
            return True
        if isinstance(x, A.Call) and "loose" in x.func:
            return True
        stack.extend(A.children(x))
    return False


def dropped(ir: SpaceIR) -> list[Dropped]:
    """The places of `ir` that make a decision no layer, train entry or constraint reads, in
    source order."""
    out = _Reach(ir).run()
    seen: set[int] = set()
    unique = [d for d in out if not (id(d.expr) in seen or seen.add(id(d.expr)))]  # type: ignore[func-returns-value]
    return sorted(unique, key=lambda d: (d.expr.span.file, d.expr.span.line,
                                         d.expr.span.column))


def _key(s: Span) -> tuple[str, int, int, int, int]:
    return (s.file, s.line, s.column, s.end_line, s.end_column)


def reach_warnings(space: Space, limit: int = SHOWN) -> list[SpaceWarning]:
    """One warning per dropped place, naming the decisions it makes (their stable names, from
    the default configuration and a few samples) at the place's span; past `limit` places,
    one more warning (without a span) says how many are not shown."""
    places = dropped(space.ir)
    if not places:
        return []
    rest = len(places) - limit
    places = places[:limit]
    names: dict[tuple[str, int, int, int, int], list[str]] = {}
    configs = []
    try:  # names are best effort: a space with no valid configuration is reported elsewhere
        configs.append(space.default())
        configs += space.samples(NAME_SAMPLES, seed=0, uniform=False)
    except Exception:  # noqa: BLE001
        pass
    for cfg in configs:
        for d in space.decisions(cfg):
            got = names.setdefault(_key(d.span), [])
            if d.name not in got:
                got.append(d.name)
    out: list[SpaceWarning] = []
    for p in places:
        inside: set[tuple[str, int, int, int, int]] = set()
        stack = [p.expr]
        while stack:
            x = stack.pop()
            inside.add(_key(x.span))
            stack.extend(A.children(x))
        found = [n for k in sorted(inside) for n in names.get(k, [])]
        if found:
            shown = ", ".join(f"'{n}'" for n in found[:3]) \
                + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            head = f"the decision{'s' if len(found) > 1 else ''} {shown} reach{'' if len(found) > 1 else 'es'} nothing"
        else:
            head = "a decision here reaches nothing"
        out.append(SpaceWarning(
            f"{head}: {p.why}, so every option builds the same architecture", p.expr.span,
            hint="use it (in a layer, a train entry or a constraint) or remove it"))
    if rest > 0:
        out.append(SpaceWarning(f"{rest:,} more place(s) make decisions that reach nothing "
                                f"(the first {limit} are shown)"))
    return out
