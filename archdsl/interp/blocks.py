"""Blocks: applying a block (binding its arguments, defaults, local params and shared
decisions; running its body's graph or pipeline under its constraints) and applying shared
sub-networks. In a build, both consult the tapes (archdsl.interp.caches) to copy the layers of
an application met before instead of walking it again: the cache decides nothing here, it only
stands in for a walk whose result is known. A graph body whose `return` merges `loose_ends`
adds that merge with its inputs once the return is evaluated: the nodes no read reached.

May import: archdsl.ast, analysis, errors, naming, semantics, values, and .build, .evaluate,
.caches, .choosers, .keys and .limits of this package.
"""

from __future__ import annotations

from typing import Any

from .. import ast as A
from ..analysis import Analysis
from ..errors import ArchLimitError, ArchTypeError, ConstraintError, Span
from ..naming import Scope
from ..semantics import SpaceIR
from ..values import Tensor, describe
from .build import Builder
from .caches import BlockTapes, Tape, pattern, record_tape
from .choosers import PerDecision, Reject, Uniform
from .evaluate import SharedKey, depth_of, mentions_edges, with_depth
from .keys import memo_key
from .limits import MAX_NESTING

__all__ = ["Blocks"]


class Blocks(Builder):
    """Applies blocks and shared sub-networks."""

    def __init__(self, ir: SpaceIR, an: Analysis):
        super().__init__(ir, an)
        self._items: dict = {}  # binding_items'
        self._block_tapes = BlockTapes()  # run_body_taped's, for every build walk
        # whether a block's joint table can rule a row out (else per-decision sampling of a
        # block's arguments needs no table: archdsl.rows)
        bodies = [b.body for b in ir.blocks.values()] + ([ir.network] if ir.network else [])
        self._rules_in_blocks = any(b.max_depth is not None for b in ir.blocks.values()) or any(
            body.constraints for body in bodies)
        # the graph bodies whose return merges `loose_ends` (run_body tracks their reads)
        self._loose_bodies = {id(b) for b in bodies if b.is_graph and _merges_loose(b.result)}
        self._loose: list[int] = []  # the loose-end merges of the body being built
        # per walk
        self._tapes: dict[tuple, Tape | bool] = {}  # apply_shared's
        self._gk: tuple | None = None  # _genv_key's
        self.peak = 0  # the deepest block nesting since the last _enter_peak

    # ----------------------------------------------------------------- blocks
    def apply_block(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
                    xs: list[Tensor], sc: Scope, span: Span | None = None) -> Tensor:
        """Apply a block; `span` is where it is used (the call's, by default)."""
        span = call.span if call else span or blk.span
        depth = depth_of(caller_env, blk) + 1
        if blk.max_depth is not None and depth > blk.max_depth:
            raise Reject(ConstraintError(f"block '{blk.name}' nested deeper than its max_depth "
                                         f"{blk.max_depth}", span))
        self.nesting += 1
        if self.nesting > self.peak:
            self.peak = self.nesting
        if self.nesting > MAX_NESTING:
            raise ArchLimitError(f"blocks nested more than {MAX_NESTING} deep", span)
        try:
            env = self.bind(blk, call, caller_env, sc)
            if blk.max_depth is not None:
                env["$depth"] = with_depth(caller_env, blk, depth)
            if self.build:
                return self.run_body_taped(blk, env, xs, sc, span)
            return self.run_body(blk.body, env, xs, sc, span, block=blk)
        finally:
            self.nesting -= 1

    def run_body_taped(self, blk: A.BlockDecl, env: dict, xs: list[Tensor], sc: Scope,
                       span: Span) -> Tensor:
        """run_body, in a build, through a cache of the layers each application added. A body
        that consults no decision adds layers that depend only on its bound values, the
        top-level values, its scope (path and counters) and which of its inputs are the same
        tensor: when all of those were met before, in any walk, the layers are copied."""
        tapes = self._block_tapes
        key = tapes.key(blk, env, self._genv_key(), self.chooser, xs, sc)
        if key is None:
            return self.run_body(blk.body, env, xs, sc, span, block=blk)
        tape = tapes.get(key)
        if tape is not None and self.nesting + tape.deep <= MAX_NESTING:
            sc._counts = dict(tape.counts) if tape.counts else None
            return self._copy_tape(tape, xs)
        start, consults, peak = len(self._nodes), self.consults, self._enter_peak()
        out = self.run_body(blk.body, env, xs, sc, span, block=blk)
        deep = self._leave_peak(peak)
        if self.consults == consults and tapes.has_room():
            t = record_tape(self._nodes, self._ins, start, xs, out, 0, deep)
            if t is not False:
                tapes.keep(key, t, sc)
        return out

    def _genv_key(self) -> tuple:
        """The top-level values, as a key (once per walk)."""
        k = self._gk
        if k is None:
            k = self._gk = tuple([(n, memo_key(v)) for n, v in self.genv.items()])
        return k

    def bind(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
             sc: Scope) -> dict:
        """Evaluate a block's arguments, defaults, local params and shared decisions."""
        struct = self.an.structural.get(blk.name, set())
        items = self.binding_items(blk, call)
        forced = None
        if (isinstance(self.chooser, Uniform) or self._rules_in_blocks and isinstance(
                self.chooser, PerDecision)) and any(n in struct for n, *_ in items):
            rows = self.counter.binding_table(blk, call, caller_env, sc)
            if len(rows) == 1 and rows[0].weight > 0:  # nothing to choose
                forced = list(rows[0].values)
            else:
                self.consults += 1  # the chooser is asked (a sampling cache records it)
                i = self.chooser.pick_row(rows)
                if i is not None:
                    forced = list(rows[i].values)
        env: dict[str, Any] = {}
        if "$depth" in caller_env:
            env["$depth"] = caller_env["$depth"]
        saved = self.forced
        try:
            # in order, so that a local param sees the arguments and params before it (a
            # sub-network it holds keeps them); the structural ones take the forced row's
            # values in their order, and the others draw in theirs, as a two-pass walk would
            for name, expr, where, key in items:
                self.forced = forced if name in struct else None
                if isinstance(key, tuple):
                    key = SharedKey(f"{sc.path}/{key[1]}")
                env[name] = self.value(expr, caller_env if where == "caller" else env, sc, key)
        finally:
            self.forced = saved
        return env

    def binding_items(self, blk: A.BlockDecl, call: A.Call | None) -> list[tuple]:
        """(env name, expression, 'caller' or 'callee', decision key), in evaluation order."""
        cache_key = (id(blk), id(call))
        got = self._items.get(cache_key)
        if got is not None:
            return got
        items: list[tuple] = []
        given: dict[str, A.Expr] = {}
        if call is not None:
            given = dict(self.an.named_args(call, [p.name for p in blk.params]))
        for p in blk.params:
            if p.name in given:
                items.append((p.name, given[p.name], "caller", p.name))
            elif p.default is not None:
                items.append((p.name, p.default, "callee", p.name))
            else:
                raise ArchTypeError(f"block '{blk.name}' needs argument '{p.name}'",
                                    call.span if call else blk.span)
        for pd in blk.body.params:
            items.append((pd.name, pd.value, "callee", pd.name))
        for sh, rel in self.ir.shared_in.get(id(blk.body), []):
            items.append((f"$s{id(sh)}", sh.expr, "callee", ("shared", rel)))
        self._items[cache_key] = items
        return items

    def run_body(self, body: A.Body, env: dict, xs: list[Tensor], sc: Scope, span: Span,
                 block: A.BlockDecl | None = None) -> Tensor:
        saved_edges, saved_reads, saved_loose = self.edges, self.reads, self._loose
        self.edges = 0
        self.reads = [] if self.build and id(body) in self._loose_bodies else None
        self._loose = []
        is_network = block is not None and block.keyword == "network"
        try:
            for c in body.constraints:
                if not mentions_edges(c.expr):
                    self.check_constraint(c, env)
            if body.is_graph:
                names = [i.name for i in self.ir.inputs] if is_network else list(body.inputs)
                if len(xs) != len(names):
                    what = "the network" if is_network or block is None else f"block '{block.name}'"
                    raise ArchTypeError(f"{what} takes {len(names)} input"
                                        f"{'s' if len(names) != 1 else ''}, got {len(xs)}", span)
                for n, x in zip(names, xs, strict=True):
                    env["@" + n] = Tensor(x.node, n)
                for st in body.nodes:
                    v = self.value(st.value, env, sc.child(st.name), None)
                    if not isinstance(v, Tensor):
                        raise ArchTypeError(f"node '{st.name}' is {describe(v)}, not a tensor",
                                            st.value.span)
                    env["@" + st.name] = Tensor(v.node, st.name)
                out = self.value(body.result, env, sc.child("return"), None)
                if isinstance(body.result, A.Name):
                    self.edges -= 1  # `return n3` names the output; it adds no edge
                if self._loose:
                    self._wire_loose(body, env)
            else:
                if is_network:
                    for i, x in zip(self.ir.inputs, xs, strict=False):
                        env["@" + i.name] = x
                if self.an_kind(body.result) == "tensor":
                    out = self.value(body.result, env, sc, None)
                else:
                    if len(xs) != 1:
                        raise ArchTypeError(f"a pipeline takes one input, got {len(xs)}", span)
                    out = self.apply(self.closure(body.result, env), xs, sc)
            for c in body.constraints:
                if mentions_edges(c.expr):
                    self.check_constraint(c, env)
            return out
        finally:
            self.edges, self.reads, self._loose = saved_edges, saved_reads, saved_loose

    # ----------------------------------------------------------------- loose ends
    def loose_merge(self, op: str, span: Span, sc: Scope) -> Tensor:
        """`op(loose_ends)`: a merge node whose inputs `_wire_loose` gives once the whole
        return is evaluated (what the rest of the return reads is no loose end)."""
        if not self.build:
            return Tensor(-1)
        nid = self._add_node(op, {}, span, sc.path, [])
        self._loose.append(nid)
        return Tensor(nid)

    def _wire_loose(self, body: A.Body, env: dict) -> None:
        """The inputs of the body's loose-end merges: its nodes that nothing read, in the
        order they are defined (never none: the resolver makes sure the last node is one)."""
        read = set(self.reads or ())
        ins = [env["@" + st.name].node for st in body.nodes if st.name not in read]
        for nid in self._loose:
            self._ins[nid] = list(ins)


    # ----------------------------------------------------------------- shared sub-networks
    def apply_shared(self, name: str, xs: list[Tensor], span: Span | None) -> Tensor:
        """Apply a shared sub-network in a build. Its decisions are made once and its scope is
        its own name wherever it is applied, so every application adds the same layers: the
        first one is walked and taped, the others copy the tape onto their inputs."""
        key = (name, pattern(xs))
        tape = self._tapes.get(key)
        if tape is not None and tape is not False and self.nesting + tape.deep <= MAX_NESTING:
            self.consults += 1  # the copy stands for the shared decisions: see run_body_taped
            self.edges += tape.edges
            return self._copy_tape(tape, xs)
        start, edges, peak = len(self._nodes), self.edges, self._enter_peak()
        out = self.apply(self.shared_nets[name], xs, Scope(name), span=span)
        deep = self._leave_peak(peak)
        if tape is None:  # False: it reads a tensor other than its inputs, walk it every time
            self._tapes[key] = record_tape(self._nodes, self._ins, start, xs, out,
                                           self.edges - edges, deep)
        return out

    def _enter_peak(self) -> int:
        """Start measuring how deep blocks nest from here (see _leave_peak)."""
        peak, self.peak = self.peak, self.nesting
        return peak

    def _leave_peak(self, peak: int) -> int:
        """How many levels deeper than now blocks nested since _enter_peak."""
        deep = self.peak - self.nesting
        self.peak = max(peak, self.peak)
        return deep

    def _copy_tape(self, tape: Tape, xs: list[Tensor]) -> Tensor:
        """Add a tape's layers onto inputs `xs`; their output."""
        self.peak = max(self.peak, self.nesting + tape.deep)
        new: list[int] = []
        for op, args, nspan, path, ins in tape.nodes:
            srcs = [Tensor(new[r] if r >= 0 else xs[~r].node) for r in ins]
            new.append(self._add_node(op, dict(args), nspan, path, srcs))
        return Tensor(new[tape.out], tape.name)


def _merges_loose(result: A.Expr) -> bool:
    """Whether a graph `return` merges `loose_ends` (its name resolved to a loose ref)."""
    stack = [result]
    while stack:
        x = stack.pop()
        if x.__class__ is A.Name and x.ref and x.ref[0] == "loose":  # type: ignore[attr-defined]
            return True
        stack.extend(A.children(x))
    return False
