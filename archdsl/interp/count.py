"""Counting: how many architectures a sub-network, a block or a tensor expression can give, and
the joint tables (archdsl.rows) of the decisions that shape a network, each row weighted by the
architectures it leaves. Uniform sampling asks `weights` for the weight of each option.

A `Counter` keeps its own memo (per joint value of the structural top-level params) and asks
the walk it counts for (`it`: archdsl.interp.walk.Interp) for the values of expressions and the
domains of decisions, evaluated with a `Sizes` or `Replay` chooser apart from the walk in
progress (`it.using`). A graph body is counted by a polynomial in the number of edges it uses
(`tensor_poly`), so that constraints on `edges` count exactly.

May import: archdsl.ast, errors, naming, rows, values, and .build (repeat_count), .evaluate,
.choosers, .keys and .limits of this package (.walk for type hints only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import ast as A
from ..errors import ArchLimitError, Span
from ..naming import Scope
from ..rows import Row, Table, make_row
from ..values import Net
from .build import repeat_count
from .choosers import First, Reject, Replay, Sizes, next_prefix
from .evaluate import depth_of, mentions_edges, with_depth
from .keys import to_json_key
from .limits import MAX_COUNT_BITS, MAX_TABLE, check_some, held

if TYPE_CHECKING:
    from .walk import Interp

__all__ = ["Counter"]


class Counter:
    """Counts the architectures of the space `it` walks."""

    def __init__(self, it: Interp):
        self.it = it
        self.an = it.an
        self._memos: dict[Any, dict] = {}  # gkey -> {Net or table key: count or rows}
        self._weights: dict = {}  # weights'
        self._rows: list[Row] | None = None  # global_rows'

    def weights(self, e: A.Expr, env: dict, fn: Callable[[], list[int]]) -> list[int]:
        """fn(), cached for the values `e` reads (the weights of a structure's options)."""
        it = self.it
        ck = (id(e), tuple([env.get(n) for n in self.an.free(e)]), env.get("$depth"), it.gkey)
        try:
            w = self._weights.get(ck)
        except TypeError:
            return fn()
        if w is None:
            w = self._weights[ck] = fn()
        return w

    def global_rows(self) -> list[Row]:
        """Every joint value of the structural top-level decisions, with how many architectures
        each leaves (0 where a constraint fails)."""
        if self._rows is not None:
            return self._rows
        it = self.it
        struct = [p for p in it.ir.params if p.name in self.an.global_structural]
        rows: list[Row] = Table()

        def bind() -> dict:
            it.genv = {}
            for p in struct:
                it._bind_global(p, None)
            return dict(it.genv)

        saved = (it.chooser, it.build, it.decided, it.seen)
        # the table must not draw from the caller's chooser: a seeded sample is the same
        # whether or not this space has been used before
        it.chooser, it.build = First(), False
        try:
            for values, genv, picks in self.outcomes(bind):
                it.decided, it.seen = {}, {}
                it.genv = genv
                it.shared_nets = {p.name: genv[p.name] for p in it.ir.params
                                  if isinstance(p, A.SharedDecl) and p.name in genv}
                for p in it.ir.params:
                    if p.name not in self.an.global_structural:
                        it._bind_global(p, None)
                it.gkey = tuple(to_json_key(genv.get(n))
                                for n in sorted(self.an.global_structural))
                w = held(self.count_rest(), it.ir.network_span)
                rows.append(make_row(values, w, picks))
                if len(rows) > MAX_TABLE:
                    raise ArchLimitError(
                        f"more than {MAX_TABLE:,} combinations of the top-level params that "
                        "shape the network", it.ir.params[0].span if it.ir.params else None)
        finally:
            it.chooser, it.build, it.decided, it.seen = saved
        self._rows = rows
        return rows

    def count_rest(self) -> int:
        """Architectures left once the structural top-level values in the walk's genv are fixed."""
        it = self.it
        for c in it.ir.constraints:
            if not it.constraint_holds(c, {}):
                return 0
        total = 1
        sizes = Sizes()
        with it.using(sizes):
            for p in it.ir.params:
                if p.name not in self.an.global_structural and isinstance(p, A.ParamDecl):
                    it.value(p.value, {}, Scope(""), p.name)
            it.eval_train()
        total *= sizes.mult
        for net in it.shared_nets.values():
            total = held(total * self.count_net(net), net.expr.span)
            if total == 0:
                return 0
        if it.net_block is not None:
            total = held(total * self.count_block(it.net_block, None, {}), it.ir.network_span)
        return total

    def memo(self) -> dict:
        it = self.it
        m = self._memos.get(it.gkey)
        if m is None:
            m = self._memos[it.gkey] = {}
        return m

    def count_net(self, net: Net) -> int:
        """How many architectures applying this sub-network can give."""
        if not self.an.stage_decides(net.expr):
            return 1
        memo = self.memo()
        got = memo.get(net)
        if got is not None:
            return got
        memo[net] = 1  # guards against a cycle through params; replaced below
        r = held(self._count_net(net), net.expr.span)
        memo[net] = r
        return r

    def _count_net(self, net: Net) -> int:
        it = self.it
        e = net.expr
        env = dict(net.env)
        t = type(e)
        if t is A.Pipeline:
            r = 1
            for st in e.stages:  # type: ignore[attr-defined]
                if it.an_kind(st) == "tensor":
                    r = held(r * self.count_tensor(st, env), st.span)
                else:
                    r = held(r * self.count_net(it.closure(st, env)), st.span)
                if r == 0:
                    return 0
            return r
        if t is A.Name:
            kind, target = e.ref  # type: ignore[attr-defined]
            if kind == "block":
                return self.count_block(target, None, env)
            if kind == "local":
                v = env[e.id]  # type: ignore[attr-defined]
                return self.count_net(v) if isinstance(v, Net) else 1
            if kind == "gparam":
                v = it.genv.get(e.id)  # type: ignore[attr-defined]
                if e.id in it.shared_nets:  # type: ignore[attr-defined]
                    return 1
                return self.count_net(v) if isinstance(v, Net) else 1
            return 1
        if t is A.Call:
            kind, target = e.ref  # type: ignore[attr-defined]
            if kind == "block":
                r = self.count_block(target, e, env)  # type: ignore[arg-type]
            elif kind == "decision":
                return self.count_choice(e, env)  # type: ignore[arg-type]
            elif kind == "apply":
                r = self.count_net(it.closure(target, env))
            else:
                r = self.count_args(e, env)  # type: ignore[arg-type]
            for a in e.args:  # type: ignore[attr-defined]
                if a.name is None and it.an_kind(a.value) == "tensor":
                    r = held(r * self.count_tensor(a.value, env), e.span)
            return r
        if t is A.Repeat:
            c = self.count_net(it.closure(e.body, env))  # type: ignore[attr-defined]
            outcomes = self.count_outcomes(e.count, env)  # type: ignore[attr-defined]
            total, power, k = 0, 1, 0
            for n in sorted(repeat_count(n, e) for n in outcomes):  # type: ignore
                if c.bit_length() * n > MAX_COUNT_BITS:
                    raise ArchLimitError(
                        f"this repeat alone gives more than 2**{MAX_COUNT_BITS:,} architectures, "
                        "too many to count exactly", e.span)
                power *= c ** (n - k)  # c**n, built up from the previous power
                k = n
                total += power
            return total
        if t is A.OneOf:
            return sum(self.alternative_counts(e, env))  # type: ignore[arg-type]
        if t is A.Optional:
            return 1 + self.count_net(it.closure(e.body, env))  # type: ignore[attr-defined]
        if t is A.Residual:
            r = self.count_net(it.closure(e.body, env))  # type: ignore[attr-defined]
            if e.skip is not None:  # type: ignore[attr-defined]
                r = held(r * self.count_net(it.closure(e.skip, env)), e.span)  # type: ignore
            return r
        if t is A.Parallel:
            r = 1
            for a in e.alts:  # type: ignore[attr-defined]
                r = held(r * self.count_stage(a.expr, env), e.span)
            return r
        if t is A.Shared:
            return 1
        return 1

    def alternative_counts(self, e: A.OneOf, env: dict) -> list[int]:
        """The count of each alternative of a one_of (one each where none decides)."""
        if not self.an.some_alternative_decides(e):
            return [1] * len(e.alts)
        return [self.count_stage(a.expr, env) for a in e.alts]

    def count_stage(self, e: A.Expr, env: dict) -> int:
        """count_net of a stage, without making its closure where it decides nothing."""
        it = self.it
        if not self.an.stage_decides(e):
            return 1
        return self.count_net(it.closure(e, env))

    def count_choice(self, e: A.Call, env: dict) -> int:
        """A choice used as a stage: among sub-networks."""
        it = self.it
        total = 0
        with it.using(Sizes()):
            opts = [it.value(o, env, Scope("$count"), None) for o in e.positional]
        for v in opts:
            total += self.count_net(v) if isinstance(v, Net) else 1
        return held(total, e.span)

    def count_args(self, e: A.Call, env: dict) -> int:
        it = self.it
        sizes = Sizes()
        with it.using(sizes):
            for a in e.args:
                if a.name is None and it.an_kind(a.value) == "tensor":
                    continue
                it.value(a.value, env, Scope("$count"), a.name or "arg")
        return sizes.mult

    def count_outcomes(self, e: A.Expr, env: dict) -> list[Any]:
        """The values an expression can take, one per combination of its decisions."""
        it = self.it
        return [v for _, v, _ in self.outcomes(lambda: it.value(e, env, Scope("$c"), ""))]

    def count_block(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict) -> int:
        if blk.max_depth is not None and depth_of(caller_env, blk) + 1 > blk.max_depth:
            return 0
        rows = self.binding_table(blk, call, caller_env, Scope("$count"))
        return held(sum(r.weight for r in rows), call.span if call else blk.span)

    def binding_table(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
                      sc: Scope) -> list[Row]:
        """Rows of joint values of the block's structural decisions, weighted by the number
        of architectures each leaves."""
        it = self.it
        items = it.binding_items(blk, call)
        ckey = ("bind", id(blk), id(call),
                tuple(sorted((k, to_json_key(v)) for k, v in caller_env.items()
                             if k in self.caller_free(blk, call))), caller_env.get("$depth"))
        memo = self.memo()
        got = memo.get(ckey)
        if got is not None:
            return got
        struct = self.an.structural.get(blk.name, set())
        depth = depth_of(caller_env, blk) + 1

        def bind_struct() -> dict:
            env: dict[str, Any] = {}
            if "$depth" in caller_env:
                env["$depth"] = caller_env["$depth"]
            for name, expr, where, key in items:
                if name in struct:
                    env[name] = it.value(expr, caller_env if where == "caller" else env,
                                         Scope("$t"), key)
            return env

        rows: list[Row] = Table()
        saved_decided, saved_seen = it.decided, it.seen
        try:
            for values, env, picks in self.outcomes(bind_struct):
                it.decided, it.seen = {}, {}
                sizes = Sizes()
                with it.using(sizes):
                    for name, expr, where, key in items:
                        if name not in struct:
                            env[name] = it.value(expr, caller_env if where == "caller" else env,
                                                 Scope("$t"), key)
                if blk.max_depth is not None:
                    env["$depth"] = with_depth(caller_env, blk, depth)
                w = held(sizes.mult * self.count_body(blk.body, env),
                         call.span if call else blk.span)
                rows.append(make_row(values, w, picks))
                if len(rows) > MAX_TABLE:
                    raise ArchLimitError(f"block '{blk.name}': more than {MAX_TABLE:,} "
                                         "combinations of its structural arguments",
                                         call.span if call else blk.span)
        finally:
            it.decided, it.seen = saved_decided, saved_seen
        memo[ckey] = rows
        return rows

    def caller_free(self, blk: A.BlockDecl, call: A.Call | None) -> set[str]:
        if call is None:
            return set()
        out: set[str] = set()
        for a in call.args:
            out.update(self.an.free(a.value))
        return out

    def count_body(self, body: A.Body, env: dict) -> int:
        it = self.it
        env = dict(env)
        for c in body.constraints:
            if not mentions_edges(c.expr) and not it.constraint_holds(c, env):
                return 0
        if not body.is_graph:
            if it.an_kind(body.result) == "tensor":
                return self.count_tensor(body.result, env)
            return self.count_net(it.closure(body.result, env))
        edge_cs = [c for c in body.constraints if mentions_edges(c.expr)]
        poly: dict[int, int] = {0: 1}
        for st in body.nodes:
            poly = mul(poly, self.tensor_poly(st.value, env), st.span)
        if not isinstance(body.result, A.Name):
            poly = mul(poly, self.tensor_poly(body.result, env), body.result.span)
        total = 0
        saved = it.edges
        try:
            for k, n in poly.items():
                it.edges = k
                if all(it.constraint_holds(c, env) for c in edge_cs):
                    total += n
        finally:
            it.edges = saved
        return total

    def count_tensor(self, e: A.Expr, env: dict) -> int:
        return sum(self.tensor_poly(e, env).values())

    def tensor_poly(self, e: A.Expr, env: dict) -> dict[int, int]:
        """Architectures of a tensor expression, by the number of graph edges it uses."""
        it = self.it
        t = type(e)
        if t is A.Name:
            return {1: 1} if e.ref[0] == "node" else {0: 1}  # type: ignore[attr-defined]
        if t is A.BinOp:
            return mul(self.tensor_poly(e.left, env), self.tensor_poly(e.right, env),  # type: ignore
                       e.span)
        if t is A.Pipeline:
            p = self.tensor_poly(e.stages[0], env)  # type: ignore[attr-defined]
            r = 1
            for st in e.stages[1:]:  # type: ignore[attr-defined]
                r = held(r * self.count_net(it.closure(st, env)), st.span)
            return {k: held(v * r, e.span) for k, v in p.items()}
        if t is A.Call:
            kind = e.ref[0]  # type: ignore[attr-defined]
            if kind == "decision":
                opts = [self.tensor_poly(x, env) for x in e.positional]  # type: ignore
                if e.func == "some":  # type: ignore[attr-defined]
                    check_some(len(opts), e.span)
                    acc: dict[int, int] = {0: 1}
                    for p in opts:
                        acc = mul(acc, add({0: 1}, p), e.span)
                    acc[0] -= 1
                    return {k: v for k, v in acc.items() if v}
                out: dict[int, int] = {}
                for p in opts:
                    out = add(out, p)
                return out
            p: dict[int, int] = {0: 1}
            rest = []
            for a in e.args:  # type: ignore[attr-defined]
                if a.name is None and it.an_kind(a.value) == "tensor":
                    p = mul(p, self.tensor_poly(a.value, env), e.span)
                else:
                    rest.append(a)
            if kind == "layer":
                r = self.count_args(e, env) if rest else 1  # type: ignore[arg-type]
            elif kind == "block":
                r = self.count_block(e.ref[1], e, env)  # type: ignore
            elif kind == "apply":
                r = self.count_net(it.closure(e.ref[1], env))  # type: ignore[attr-defined]
            else:
                r = 1
            return {k: held(v * r, e.span) for k, v in p.items()}
        return {0: 1}

    def outcomes(self, fn: Callable[[], Any]) -> Iterator[tuple[list, Any, list]]:
        """Run `fn` once per combination of the discrete decisions it makes (depth-first
        replay). Yields (values, result, [(decision, option index)...]); continuous decisions
        take their default (index None) and count once."""
        it = self.it
        prefix: list[int] = []
        while True:
            ch = Replay(prefix)
            saved_dec, saved_seen = it.decided, it.seen
            it.decided, it.seen = {}, {}
            try:
                with it.using(ch):
                    result = fn()
                ok = True
            except Reject:
                ok = False
            finally:
                it.decided, it.seen = saved_dec, saved_seen
            if ok:
                yield ch.values, result, ch.picks
            prefix = next_prefix(ch.trace)
            if prefix is None:
                return


def mul(a: dict[int, int], b: dict[int, int], span: Span | None) -> dict[int, int]:
    """The product of two polynomials (edges -> architectures)."""
    out: dict[int, int] = {}
    for i, x in a.items():
        for j, y in b.items():
            out[i + j] = held(out.get(i + j, 0) + x * y, span)
    return out


def add(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    """The sum of two polynomials (edges -> architectures)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out
