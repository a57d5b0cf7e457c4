"""Name resolution: walk a block, a body or an expression and record, on each `Name` and `Call`,
what it denotes (its `ref`: a node, a param, a block, a layer, a decision, a metric...), each
`one_of`'s labels, and the kind of every expression (`kinds`, read by the interpreter). One small
method per construct (`e_Name`, `e_Call`, ...), dispatched on the node's type.

It raises no error of its own: each construct, once resolved, is handed to `.checks`,
at the point of the walk where the check's error belongs (errors come in the order of the text).

May import: archdsl.ast, layers, and .kinds, .checks, .loose, .decision_refs; not archdsl.semantics (which drives it)
or the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import ast as A
from ..layers import LAYERS, LayerSig
from . import checks as C
from . import decision_refs as D
from . import loose as L
from .kinds import ANY, METRICS_BLOCK, NET, TENSOR, VALUE, Ctx, block_arity

__all__ = ["Resolver"]

CallSite = tuple[A.BlockDecl | None, A.BlockDecl, A.Span]  # caller (None: top level), callee, where


class Resolver:
    """Resolves names and infers kinds; `kinds`, `calls` and `arity` are its findings."""

    def __init__(self) -> None:
        self.kinds: dict[int, str] = {}  # id(expr) -> value / net / tensor / any
        self.calls: list[CallSite] = []  # every use of a block, for the recursion check
        self.arity: dict[str, int] = {}  # top-level param -> tensor inputs of its sub-network
        self.current_block: A.BlockDecl | None = None
        self.in_constraint = False  # count(...)/any(...)/all(...) over decisions allowed
        # per callee (by id; they live as long as the resolver): what it takes
        self._signatures: dict[int, C.Signature] = {}
        self._loose_ok: set[int] = set()  # merges that may take `loose_ends` (L.allowed_merges)

    # ---- blocks and bodies ----------------------------------------------------------------
    def block(self, blk: A.BlockDecl, ctx: Ctx) -> None:
        """Resolve a block: its parameters' defaults, then its body (`ctx`: the file's)."""
        names: set[str] = set()
        for p in blk.params:
            C.once(p.name, names, "parameter '{}' is declared twice", p.span)
            if p.default is not None:  # sees the parameters before it (`names`, not a copy:
                # n parameters are checked in O(n))
                self.expr(p.default, Ctx(ctx.blocks, ctx.gparams, names, main=ctx.main))
            names.add(p.name)
        C.check_max_depth(blk)
        inner = Ctx(ctx.blocks, ctx.gparams, names, metrics=METRICS_BLOCK, main=ctx.main)
        self.current_block = blk
        self.body(blk.body, inner, blk.name)
        self.current_block = None

    def body(self, body: A.Body, ctx: Ctx, where: str) -> None:
        """Resolve a body (of a block, or the network: `where`) in `ctx`, which it extends."""
        for pd in body.params:
            C.once(pd.name, ctx.locals, "'{}' is declared twice in " + where, pd.span)
            self.expr(pd.value, ctx)
            ctx.locals.add(pd.name)
        if body.is_graph:
            self._graph(body, ctx)
        else:
            if ctx.inputs:
                ctx.nodes = set(ctx.inputs)
            kind = self.expr(body.result, ctx)
            C.check_pipeline_body(body.result, kind)
            self._single_input(body.result, kind)
        for c in body.constraints:
            self.constraint(c, ctx)

    def _graph(self, body: A.Body, ctx: Ctx) -> None:
        """A graph body: its inputs, its nodes in order (each sees those before it), `return`."""
        nodes: set[str] = set(ctx.inputs)
        L.check_inputs(body)
        for n in body.inputs:
            C.once(n, nodes, "input '{}' is declared twice", body.span)
            nodes.add(n)
        ctx.nodes, ctx.in_graph = nodes, True
        for st in body.nodes:
            C.check_node_name(st, nodes, ctx)
            L.check_node_name(st)
            C.check_node(st, self.expr(st.value, ctx), body, ctx)
            nodes.add(st.name)
        self._loose_ok = L.allowed_merges(body.result)
        try:
            C.check_return(body.result, self.expr(body.result, ctx))
        finally:
            self._loose_ok = set()
        L.check_return(body)

    def constraint(self, c: A.Constraint, ctx: Ctx) -> None:
        """Resolve a `require`/`forbid` condition."""
        saved = ctx.metrics
        self.in_constraint = True
        kind = self.expr(c.expr, ctx)
        self.in_constraint = False
        ctx.metrics = saved
        C.check_constraint(c, kind)

    # ---- expressions ----------------------------------------------------------------------
    def expr(self, e: A.Expr, ctx: Ctx) -> str:
        """Resolve `e` in `ctx` and return its kind (also recorded in `kinds`)."""
        kind = _EXPR[type(e)](self, e, ctx)
        self.kinds[id(e)] = kind
        return kind

    def e_Lit(self, e: A.Lit, ctx: Ctx) -> str:
        return VALUE

    def e_ListLit(self, e: A.ListLit, ctx: Ctx) -> str:
        for x in e.items:
            C.check_list_item(x, self.expr(x, ctx))
        return VALUE

    def e_Name(self, e: A.Name, ctx: Ctx) -> str:
        n = e.id
        if ctx.nodes is not None and n in ctx.nodes:
            e.ref = ("node", n)
            return TENSOR
        if n in ctx.locals:
            e.ref = ("local", n)
            return ANY
        if n in ctx.gparams:
            e.ref = ("gparam", n)
            return ctx.gparams[n]
        if n in ctx.blocks:
            blk = ctx.blocks[n]
            e.ref = ("block", blk)
            self.calls.append((self.current_block, blk, e.span))
            C.check_block_name(e, blk)
            return NET
        if n in LAYERS:
            e.ref = ("layer", LAYERS[n])
            return NET
        if n in ctx.metrics:
            e.ref = ("metric", n)
            return VALUE
        if n == L.LOOSE:
            L.refuse_name(e)
        e.ref = ("symbol", n)
        return VALUE

    def _value(self, x: A.Expr, ctx: Ctx, what: str) -> str:
        """Resolve `x`, used as a value in `what`."""
        return C.check_value(x, self.expr(x, ctx), ctx, what)

    def e_BinOp(self, e: A.BinOp, ctx: Ctx) -> str:
        # each operand is resolved once: resolving it again would double the work per level
        return C.check_binop(e, self.expr(e.left, ctx), self.expr(e.right, ctx), ctx)

    def e_Neg(self, e: A.Neg, ctx: Ctx) -> str:
        C.check_negated(e, self._value(e.operand, ctx, "arithmetic"))
        return VALUE

    def e_Compare(self, e: A.Compare, ctx: Ctx) -> str:
        for side in (e.left, e.right):
            C.check_compared(e, side, self.expr(side, ctx), ctx)
        return VALUE

    def e_BoolOp(self, e: A.BoolOp, ctx: Ctx) -> str:
        self._value(e.left, ctx, f"'{e.op}'")
        self._value(e.right, ctx, f"'{e.op}'")
        return VALUE

    def e_Not(self, e: A.Not, ctx: Ctx) -> str:
        self._value(e.operand, ctx, "'not'")
        return VALUE

    def e_Range(self, e: A.Range, ctx: Ctx) -> str:
        raise C.misplaced_range(e)

    # ---- stages -------------------------------------------------------------------------------
    def _stage(self, x: A.Expr, ctx: Ctx) -> str:
        """Resolve `x`, a stage of a pipeline (or an alternative, or a body of one)."""
        kind = self.expr(x, ctx)
        if kind == VALUE:
            C.check_stage(x, kind, ctx)
        elif kind == NET:
            self._single_input(x, kind)
        return kind

    def arity_of(self, x: A.Expr, kind: str) -> int | None:
        """How many tensors the sub-network `x` takes, where that is known statically."""
        if kind != NET:
            return None
        if isinstance(x, A.Name) and x.ref and x.ref[0] == "gparam":
            return self.arity.get(x.id)
        if isinstance(x, (A.Name, A.Call)) and x.ref and x.ref[0] == "block":
            return block_arity(x.ref[1])
        if isinstance(x, (A.Name, A.Call)) and x.ref and x.ref[0] == "layer":
            return x.ref[1].inputs  # None for a merge
        if isinstance(x, A.Call) and x.ref == ("decision", "choice"):
            # a choice of sub-networks that all take the same number of tensors
            arities = {self.arity_of(a.value, self.kinds.get(id(a.value), ANY))
                       for a in x.args if a.name is None}
            if len(arities) == 1:
                return arities.pop()
        return None

    def _single_input(self, x: A.Expr, kind: str) -> None:
        C.check_stage_arity(x, self.arity_of(x, kind))

    def e_Pipeline(self, e: A.Pipeline, ctx: Ctx) -> str:
        first = self._stage(e.stages[0], ctx)
        for st in e.stages[1:]:
            C.check_pipeline_stage(st, self._stage(st, ctx))
        return TENSOR if first == TENSOR else NET

    def e_Shared(self, e: A.Shared, ctx: Ctx) -> str:
        C.check_shared_form(e)
        return C.check_shared_kind(e, self.expr(e.expr, ctx))

    def e_Repeat(self, e: A.Repeat, ctx: Ctx) -> str:
        self._value(e.count, ctx, "a repeat count")
        C.check_net_body(e.body, self._stage(e.body, ctx), "a repeat body")
        return NET

    def _alts(self, alts: list[A.Alt], ctx: Ctx, distinct: bool = True) -> list[str]:
        """Resolve the alternatives and return their labels (`distinct`: see `Labels`)."""
        labels = C.Labels(distinct)
        for alt in alts:
            labels.add(alt, self._stage(alt.expr, ctx), alts if distinct else None, ctx.nodes)
        return labels.labels

    def e_OneOf(self, e: A.OneOf, ctx: Ctx) -> str:
        e.labels = self._alts(e.alts, ctx)
        return NET

    def e_Optional(self, e: A.Optional, ctx: Ctx) -> str:
        C.check_net_body(e.body, self._stage(e.body, ctx), "an optional body")
        return NET

    def e_Residual(self, e: A.Residual, ctx: Ctx) -> str:
        C.check_net_body(e.body, self._stage(e.body, ctx), "a residual body")
        if e.skip is not None:
            C.check_net_body(e.skip, self._stage(e.skip, ctx), "a skip path")
        return NET

    def e_Parallel(self, e: A.Parallel, ctx: Ctx) -> str:
        C.check_parallel(e)
        self._alts(e.alts, ctx, distinct=False)
        return NET

    # ---- calls ------------------------------------------------------------------------------
    def e_Call(self, e: A.Call, ctx: Ctx) -> str:
        f = e.func
        if self.in_constraint and f in D.COUNTS:
            return D.resolve_count(e, ctx, lambda x: self.expr(x, ctx))
        C.check_option_labels(e)
        if f in ctx.blocks:
            blk = ctx.blocks[f]
            e.ref = ("block", blk)
            self.calls.append((self.current_block, blk, e.func_span))
            return self._args(e, ctx, self._signature(blk))
        if f in A.DECISION_FUNCS:
            e.ref = ("decision", f)
            return self._decision(e, ctx)
        if f in LAYERS:
            sig: LayerSig = LAYERS[f]
            e.ref = ("layer", sig)
            if sig.inputs is None:
                return self._merge(e, ctx)
            return self._args(e, ctx, self._signature(sig))
        if f in ctx.locals or f in ctx.gparams:
            return self._apply_param(e, ctx)
        if ctx.in_train:
            e.ref = ("record", f)
            for a in e.args:
                C.check_train_value(a, self.expr(a.value, ctx))
            return VALUE
        raise C.unknown_layer(e, ctx)

    def _signature(self, callee: A.BlockDecl | LayerSig) -> C.Signature:
        """What a block or a layer (a merge excepted) takes, made once per callee."""
        sig = self._signatures.get(id(callee))
        if sig is None:
            if isinstance(callee, A.BlockDecl):
                ps = callee.params
                sig = C.Signature([p.name for p in ps], {p.name for p in ps if p.default is None},
                                  f"block '{callee.name}'", block_arity(callee))
            else:
                sig = C.Signature([a.name for a in callee.args],
                                  {a.name for a in callee.args if a.required},
                                  f"layer '{callee.name}'", callee.inputs)  # type: ignore[arg-type]
            self._signatures[id(callee)] = sig
        return sig

    def _args(self, e: A.Call, ctx: Ctx, sig: C.Signature) -> str:
        check = C.ArgCheck(sig)
        for a in e.args:
            check.add(a, self.expr(a.value, ctx))
        return check.finish(e)

    def _apply_param(self, e: A.Call, ctx: Ctx) -> str:
        """`NAME(n0, n1)`: a param (a shared sub-network, a top-level param or a block's
        argument) holding a sub-network, applied to graph nodes."""
        target = A.Name(e.func_span, e.func)
        kind = self.expr(target, ctx)
        C.check_apply_param(e, kind)
        for a in e.args:
            C.check_applied_node(e, a, None if a.name is not None else self.expr(a.value, ctx))
        C.check_applied_count(e, self.arity_of(target, kind))
        e.ref = ("apply", target)
        return TENSOR

    def _merge(self, e: A.Call, ctx: Ctx) -> str:
        loose = L.loose_arg(e)
        if loose is not None:  # `concat(loose_ends)`: the loose ends of the graph, merged
            L.check_loose_merge(e, loose, self._loose_ok)
            loose.ref = L.REF
            self.kinds[id(loose)] = TENSOR
            return TENSOR
        C.check_merge(e)
        for a in e.args:
            kind = self.expr(a.value, ctx)
            if a.name is None:
                C.check_merged(e, a, kind)
        return TENSOR

    def _decision(self, e: A.Call, ctx: Ctx) -> str:
        C.check_decision_options(e)
        f = e.func
        pos = e.positional
        if f in ("int", "float"):
            C.check_range_form(e, pos)
            for x in (pos[0].lo, pos[0].hi, *e.keywords.values()):  # type: ignore[attr-defined]
                self._value(x, ctx, "a range")
                C.no_decision(x, "a range bound")
            return VALUE
        if f == "bool":
            C.check_bool_form(pos)
            for x in e.keywords.values():
                self.expr(x, ctx)
            return VALUE
        C.check_has_options(e, pos)
        kinds = set()
        for x in pos:
            kinds.add(self.expr(x, ctx))  # a range here is refused by e_Range
        for x in e.keywords.values():
            self.expr(x, ctx)
        kinds.discard(ANY)
        kind = C.check_choice_kinds(e, kinds)
        if kind == VALUE:
            for x in pos:
                C.no_decision(x, "an option")
        return kind


_EXPR: dict[type, Callable[[Resolver, A.Expr, Ctx], str]] = {
    getattr(A, name[2:]): method for name, method in vars(Resolver).items()
    if name.startswith("e_")}
