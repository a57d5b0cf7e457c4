"""Evaluation of values and expressions, and the decisions met on the way: `Evaluator.value`
dispatches on the expression's type (one small method per construct that needs more than a
line), `decide` asks the walk's chooser (or the forced values of a joint table's row), and
constraints are checked here. Applying a sub-network to tensors is the walk's (`apply`,
`merge`: archdsl.interp.build), which this class calls but does not define.

The state of one walk lives here (chooser, decisions made, top-level values, edges read), since
every later stage reads it; counting is a separate object (`counter`, archdsl.interp.count).

May import: archdsl.ast, analysis, errors, layers, naming, printer (an error's text), semantics,
shared_names, values, and .choosers, .domains, .keys and .limits of this package (.count for
type hints only).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import ast as A
from ..analysis import Analysis
from ..errors import ArchLimitError, ArchTypeError, ConstraintError, Span
from ..layers import MERGES
from ..naming import Scope
from ..semantics import SpaceIR
from ..shared_names import stage_segment
from ..values import Decision, Labelled, Net, Record, Subsets, Sym, Tensor, arith, describe
from .choosers import Chooser, First, Reject, Uniform
from .domains import decision_of, expression_choice
from .keys import to_json_key
from .limits import MAX_DECISIONS, TOO_LARGE, check_some

if TYPE_CHECKING:
    from .count import Counter

__all__ = ["Evaluator", "SharedKey", "needs_metrics", "mentions_edges", "depth_of", "with_depth"]

_MISSING = object()


class Evaluator:
    """Values of expressions, in the environment of one walk."""

    counter: Counter  # set by the walk (archdsl.interp.walk.Interp)

    def __init__(self, ir: SpaceIR, an: Analysis):
        self.ir = ir
        self.an = an
        self.kinds = ir.kinds
        self._domains: dict = {}
        # per walk
        self.chooser: Chooser = First()
        self.build = False
        self.genv: dict[str, Any] = {}
        self.gkey: Any = None
        self.decided: dict[str, Any] = {}
        self.seen: dict[str, Decision] = {}
        self.forced: list[Any] | None = None
        self.edges = 0
        # the nodes of the graph body being built that were read, where its return merges
        # `loose_ends` (None elsewhere): name per read, the options not chosen taken out
        self.reads: list[str] | None = None
        self.shared_nets: dict[str, Net] = {}
        self.consults = 0  # decisions made or read (decide calls), and copies standing for them
        self.metric_values: dict[str, Any] | None = None  # params / flops, set by Space

    # ----------------------------------------------------------------- hooks of the walk
    def apply(self, net: Any, xs: list[Tensor], sc: Scope, seg: str | None = None,
              span: Span | None = None) -> Tensor:  # pragma: no cover
        """Apply a sub-network to its input tensors (archdsl.interp.build)."""
        raise NotImplementedError

    def merge(self, op: str, xs: list[Any], span: Span, sc: Scope,
              residual: bool = False) -> Tensor:  # pragma: no cover
        """Merge tensors into one (archdsl.interp.build)."""
        raise NotImplementedError

    def loose_merge(self, op: str, span: Span, sc: Scope) -> Tensor:  # pragma: no cover
        """`op(loose_ends)`: the merge of a graph body's loose ends (archdsl.interp.blocks)."""
        raise NotImplementedError

    @contextmanager
    def using(self, chooser: Chooser) -> Iterator[None]:
        """Evaluate with another chooser, apart from the walk in progress."""
        saved = (self.chooser, self.decided, self.seen, self.forced, self.edges, self.reads)
        self.chooser, self.decided, self.seen, self.forced = chooser, {}, {}, None
        self.reads = None
        try:
            yield
        finally:
            (self.chooser, self.decided, self.seen, self.forced, self.edges,
             self.reads) = saved

    # ----------------------------------------------------------------- decisions
    def decide(self, d: Decision, weights: list[int] | None = None, inert: bool = False) -> Any:
        self.consults += 1
        got = self.decided.get(d.name, _MISSING)
        if got is not _MISSING:
            self.chooser.reused(d.name)
            return got.value if got.__class__ is Labelled else got
        if self.forced is not None and self.forced:
            v = self.forced.pop(0)
        elif inert:
            v = self.chooser.pick_inert(d, weights)
        else:
            v = self.chooser.pick(d, weights)
        self.decided[d.name] = Labelled(d.label(v), v) if d.labelled else v
        self.seen[d.name] = d
        if len(self.decided) > MAX_DECISIONS:
            raise ArchLimitError(f"one configuration makes more than {MAX_DECISIONS:,} decisions "
                                 f"(the limit), the last '{d.name}'", d.span, hint=TOO_LARGE)
        return v

    def make_decision(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Decision:
        name = str(key) if isinstance(key, SharedKey) else sc.key(key if key else e.func)
        if e.func == "some" or self.an_kind(e) == "tensor":  # inputs are per-walk tensors
            return self._make_decision(e, env, name)
        # the domain depends only on the values the call reads: build it once per such values
        ck = (id(e), tuple([env.get(n) for n in self.an.free(e)]),
              tuple([self.genv.get(n) for n in self.an.gfree(e)]))
        try:
            tpl = self._domains.get(ck)
        except TypeError:  # an unhashable value: no caching
            return self._make_decision(e, env, name)
        if tpl is None:
            tpl = self._domains[ck] = self._make_decision(e, env, "")
        return tpl.renamed(name)

    def _make_decision(self, e: A.Call, env: dict, name: str) -> Decision:
        sc = Scope("$domain")
        return decision_of(e, lambda x: self.value(x, env, sc, None), name)

    # ----------------------------------------------------------------- values
    def value(self, e: A.Expr, env: dict, sc: Scope, key: str | None) -> Any:
        """Evaluate an expression. Decisions met are named `sc/key` (or after their function)."""
        t = type(e)
        if t is A.Lit:
            return e.value  # type: ignore[attr-defined]
        if t is A.Name:
            return self.name_value(e, env)  # type: ignore[arg-type]
        if t is A.Call:
            return self.call_value(e, env, sc, key)  # type: ignore[arg-type]
        if t is A.BinOp:
            a = self.value(e.left, env, sc, key)  # type: ignore[attr-defined]
            b = self.value(e.right, env, sc, key)  # type: ignore[attr-defined]
            if isinstance(a, Tensor) or isinstance(b, Tensor):
                return self.merge("add" if e.op == "+" else "multiply",  # type: ignore[attr-defined]
                                  [a, b], e.span, sc)
            return arith(e.op, a, b, e.span)  # type: ignore[attr-defined]
        if t is A.ListLit:
            return tuple(self.value(x, env, sc, key) for x in e.items)  # type: ignore[attr-defined]
        if t is A.Neg:
            v = self.value(e.operand, env, sc, key)  # type: ignore[attr-defined]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ArchTypeError(f"cannot negate {describe(v)}", e.span)
            return -v
        if t is A.Compare:
            return self.compare(e, env, sc, key)  # type: ignore[arg-type]
        if t is A.BoolOp:
            a = self.truth(self.value(e.left, env, sc, key), e.left.span)  # type: ignore
            if e.op == "and" and not a:  # type: ignore[attr-defined]
                return False
            if e.op == "or" and a:  # type: ignore[attr-defined]
                return True
            return self.truth(self.value(e.right, env, sc, key), e.right.span)  # type: ignore
        if t is A.Not:
            return not self.truth(self.value(e.operand, env, sc, key), e.span)  # type: ignore
        if t is A.Shared:
            return env[f"$s{id(e)}"]
        if t is A.Pipeline and self.an_kind(e.stages[0]) == "tensor":  # type: ignore[attr-defined]
            x = self.value(e.stages[0], env, sc, key)  # type: ignore[attr-defined]
            for st in e.stages[1:]:  # type: ignore[attr-defined]
                seg = stage_segment(st)
                x = self.apply(self.closure(st, env), [x], sc.child(seg) if seg else sc)
            return x
        return self.closure(e, env)

    def an_kind(self, e: A.Expr) -> str:
        return self.kinds.get(id(e), "any")

    def closure(self, e: A.Expr, env: dict) -> Net:
        vals = tuple([(n, env[n]) for n in self.an.free(e) if n in env])
        depth = env.get("$depth")
        return Net(e, vals + (("$depth", depth),) if depth else vals)

    def truth(self, v: Any, span: Span) -> bool:
        if isinstance(v, bool):
            return v
        raise ArchTypeError(f"expected true or false, got {describe(v)}", span)

    def compare(self, e: A.Compare, env: dict, sc: Scope, key: str | None) -> bool:
        a = self.value(e.left, env, sc, key)
        b = self.value(e.right, env, sc, key)
        if e.op == "==":
            return to_json_key(a) == to_json_key(b)
        if e.op == "!=":
            return to_json_key(a) != to_json_key(b)
        num = (int, float)
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, num) \
                or not isinstance(b, num):
            raise ArchTypeError(f"cannot compare {describe(a)} and {describe(b)} with '{e.op}'",
                                e.span)
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.op]

    def name_value(self, e: A.Name, env: dict) -> Any:
        kind, target = e.ref
        if kind == "local":
            return env[e.id]
        if kind == "gparam":
            return self.genv[e.id]
        if kind == "node":
            t = env["@" + e.id]
            self.edges += 1
            if self.reads is not None:
                self.reads.append(e.id)
            return t
        if kind == "symbol":
            return Sym(e.id)
        if kind == "metric":
            if e.id == "edges":
                return self.edges
            if self.metric_values is not None and e.id in self.metric_values:
                return self.metric_values[e.id]
            raise NeedsMetric(e.id)
        return Net(e, ())  # a block or layer by name

    def call_value(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Any:
        kind = e.ref[0]
        if kind == "decision":
            if e.func == "some":
                return self.some(e, env, sc, key)
            if e.func == "choice" and expression_choice(e, self.kinds):
                return self.expression_choice(e, env, sc, key)
            mark = len(self.reads) if self.reads is not None else -1
            d = self.make_decision(e, env, sc, key)
            if d.kind == "choice" and d.options and isinstance(d.options[0], Tensor):
                self.edges -= len(d.options) - 1  # only the chosen input is an edge
                chosen = self.decide(d)
                # the node is what is decided: in a shared cell the decision stands for every
                # application, each with its own tensors
                i = next(i for i, o in enumerate(d.options) if o.name == chosen.name)
                if mark >= 0:
                    self.read_only(mark, [e.positional[i]])
                return d.options[i]
            w = None
            if d.kind == "choice" and d.options and isinstance(d.options[0], Net) \
                    and isinstance(self.chooser, Uniform):
                w = [self.counter.count_net(o) for o in d.options]
            return self.decide(d, w, id(e) in self.an.inert)
        if kind == "apply":  # a param holding a sub-network, applied to nodes
            sub = sc.child(e.func)
            xs = [self.value(a.value, env, sub, "in") for a in e.args]
            return self.apply(self.closure(e.ref[1], env), xs, sub, span=e.span)
        if kind == "record":
            args = []
            sub = sc
            for a in e.args:
                args.append((a.name, self.value(a.value, env, sub, a.name or "arg")))
            return Record(e.func, tuple(args))
        tensors = [a.value for a in e.args if a.name is None
                   and self.an_kind(a.value) == "tensor"]
        if tensors:
            if e.func in MERGES:
                if tensors[0].__class__ is A.Name and tensors[0].ref[0] == "loose":
                    return self.loose_merge(e.func, e.span, sc)
                project = "project" in e.keywords and self.truth(
                    self.value(e.keywords["project"], env, sc, "project"), e.span)
                return self.merge(e.func, [self.value(x, env, sc, key) for x in tensors],
                                  e.span, sc, residual=project)
            sub = sc.child(e.func)
            xs = [self.value(x, env, sub, "in") for x in tensors]
            return self.apply(self.closure(e, env), xs, sub)
        return self.closure(e, env)

    def expression_choice(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Tensor:
        """`choice(gcn: gcn(h, e, 16), sage: sage(h, e, 16))`: decide (the option's label or
        text), then evaluate the chosen option only, its decisions named under `NAME[i]`
        (as one_of's alternatives). Uniform sampling weighs each option by its count."""
        name = sc.key(key or "choice")
        tpl = self._domains.get(id(e)) if "prior" not in e.keywords else None
        if tpl is None:
            tpl = decision_of(e, lambda x: self.value(x, env, Scope("$domain"), None), "",
                              texts=True)
            if "prior" not in e.keywords:
                self._domains[id(e)] = tpl
        d = tpl.renamed(name)
        w = None
        if isinstance(self.chooser, Uniform):
            count = self.counter
            w = count.weights(e, env, lambda: [count.count_tensor(x, env)
                                               for x in e.positional])
        i = d.options.index(self.decide(d, w))
        if w is not None and w[i] == 0:
            raise Reject(ConstraintError(f"'{name}' = {d.label(d.options[i])!r} leads to no "
                                         "valid architecture here (constraints)", e.span))
        return self.value(e.positional[i], env, Scope(name).index(i), None)

    def some(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Tensor:
        name = sc.key(key or "some")
        mark = len(self.reads) if self.reads is not None else -1
        opts = [self.value(x, env, sc, None) for x in e.positional]
        check_some(len(opts), e.span)
        d = Decision(name, "some", e.span, options=Subsets([x.name for x in opts]))
        self.edges -= len(opts)
        chosen = self.decide(d)
        picked = [o for o in opts if o.name in chosen]
        self.edges += len(picked)
        if mark >= 0:
            self.read_only(mark, [x for x, o in zip(e.positional, opts, strict=True)
                                  if o.name in chosen])
        if len(picked) == 1:
            return picked[0]
        return self.merge("add", picked, e.span, sc)


    def read_only(self, mark: int, chosen: list[A.Expr]) -> None:
        """Of the reads since `mark` (an input choice's or a `some`'s options, evaluated
        whichever is chosen), keep those of the `chosen` options: an option holds no decision,
        so the nodes it names are the nodes it reads."""
        assert self.reads is not None
        del self.reads[mark:]
        for x in chosen:
            self.reads.extend(n[1:] for n in self.an.free(x) if n[0] == "@")

    # ----------------------------------------------------------------- constraints
    def constraint_holds(self, c: A.Constraint, env: dict) -> bool:
        try:
            v = self.truth(self.value(c.expr, env, Scope("$constraint"), None), c.expr.span)
        except NeedsMetric:
            return True  # params / flops: checked by Space on the planned architecture
        return v if c.kind == "require" else not v

    def check_constraint(self, c: A.Constraint, env: dict, allow_metrics: bool = True) -> None:
        if not self.constraint_holds(c, env):
            from ..printer import format_expr

            raise Reject(ConstraintError(f"{c.kind} {format_expr(c.expr)}: not satisfied",
                                         c.span))



class SharedKey(str):
    """A decision key that is already a full name (shared decisions)."""


class NeedsMetric(Exception):
    """A constraint reads `params` or `flops`, which only a planned architecture has."""


def needs_metrics(c: A.Constraint) -> bool:
    """Whether a constraint uses `params` or `flops` (known only once the network is planned)."""
    def walk(e: Any) -> bool:
        if isinstance(e, A.Name) and e.ref and e.ref[0] == "metric" and e.id != "edges":
            return True
        if isinstance(e, A.Node):
            return any(walk(v) for v in vars(e).values())
        if isinstance(e, (list, tuple)):
            return any(walk(v) for v in e)
        return False

    return walk(c.expr)



def mentions_edges(e: A.Node) -> bool:
    if isinstance(e, A.Name):
        return e.ref is not None and e.ref[0] == "metric" and e.id == "edges"
    return any(mentions_edges(x) for x in A.children(e))



def depth_of(env: dict, blk: A.BlockDecl) -> int:
    """How deep recursive block `blk` is nested where `env` is evaluated."""
    for name, d in env.get("$depth") or ():
        if name == blk.name:
            return d
    return 0


def with_depth(env: dict, blk: A.BlockDecl, depth: int) -> tuple:
    rest = tuple(p for p in env.get("$depth") or () if p[0] != blk.name)
    return tuple(sorted(rest + ((blk.name, depth),)))

