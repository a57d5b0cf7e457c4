"""The one interpreter of the search-space IR.

Walking a space means evaluating its network while a `Chooser` answers every decision met on the
way. Different choosers give the different operations: sampling uniformly over architectures or per
decision, reading a configuration, enumerating by depth-first replay. With `build=True` the walk
also records the architecture graph. `count` uses the same evaluation for decision domains and adds
counting rules per construct; uniform sampling asks it for the weight of each option.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import networkx as nx

from . import ast as A
from .analysis import Analysis
from .errors import (
    ArchDSLError,
    ArchLimitError,
    ArchTypeError,
    ArchValueError,
    ConfigError,
    ConstraintError,
    Span,
    amount,
    did_you_mean,
)
from .layers import MERGES, LayerSig, check_arg_value, type_name
from .naming import Scope
from .rows import Row, Table, default_row, draw_per_decision, draw_uniform, make_row
from .semantics import SpaceIR, net_arity
from .shared_names import stage_segment
from .values import Decision, Net, Record, Subsets, Sym, Tensor, arith, describe, to_json

__all__ = ["Interp", "Chooser", "Reject", "needs_metrics", "MAX_REPEAT", "MAX_LAYERS", "MAX_NESTING",
           "MAX_DECISIONS"]

MAX_REPEAT = 10_000  # copies in one repeat
MAX_LAYERS = 20_000  # layer nodes in one architecture (building and planning: ~0.1 ms each)
MAX_NESTING = 64  # nested block applications
MAX_TABLE = 20_000  # rows when enumerating the joint values of structural decisions
MAX_DECISIONS = 20_000  # decisions in one configuration (a walk: ~0.05 ms each)
MAX_COUNT_BITS = 200_000  # counts beyond 2**this are refused rather than computed
MAX_DOMAIN = 10_000_000  # options of one discrete decision
_TOO_LARGE = ("repeats, recursion and blocks applied inside blocks multiply: fewer copies, a "
              "lower max_depth or a shallower nesting make it smaller")


class Reject(Exception):
    """A sampled configuration broke a constraint: sample again."""

    def __init__(self, why: ArchDSLError):
        super().__init__(why.message)
        self.why = why


class Chooser:
    """Answers decisions. `weights[i]` (when given) is how many architectures follow option i."""

    def pick(self, d: Decision, weights: list[int] | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def index(self, d: Decision, weights: list[int] | None) -> int:
        """pick(), as the index of the option, for a decision with finite options: the random
        choosers implement it, and their pick() is `d.options[index(d, weights)]`."""
        return d.options.index(self.pick(d, weights))  # pragma: no cover

    def pick_row(self, rows: list[Row]) -> int | None:
        """Choose a row of a joint table (see archdsl.rows); None: decide one by one."""
        return None

    def pick_inert(self, d: Decision, weights: list[int] | None) -> Any:
        """pick(), for a decision whose value the walk drops at once (`Analysis.inert`)."""
        return self.pick(d, weights)

    def reused(self, name: str) -> None:
        """A decision already made is met again (its value is read a second time)."""


class Interp:
    def __init__(self, ir: SpaceIR):
        self.ir = ir
        self.net_block = None
        if ir.network is not None:
            self.net_block = A.BlockDecl(ir.network_span, "network", [], None, ir.network,
                                         "network", ir.file)
        self.an = Analysis(ir, self.net_block)
        self._items: dict = {}
        self.kinds = ir.kinds
        self._domains: dict = {}
        self._one_ofs: dict[int, Decision] = {}  # id(OneOf) -> its decision (fixed options)
        self._weights: dict = {}
        self.params = {p.name: p for p in ir.params}
        self._memos: dict[Any, dict] = {}
        self._global_rows: list | None = None
        self._tries: dict[type, list] = {}  # chooser type -> [root, size]: see sample()
        self._silent: set[tuple] = set()  # (net, gkey, nesting) that decided nothing: apply()
        # whether a block's joint table can rule a row out (else per-decision sampling of a
        # block's arguments needs no table: archdsl.rows)
        bodies = [b.body for b in ir.blocks.values()] + ([ir.network] if ir.network else [])
        self._rules_in_blocks = any(b.max_depth is not None for b in ir.blocks.values()) or any(
            body.constraints for body in bodies)
        # per walk
        self.chooser: Chooser = _First()
        self.build = False
        self.genv: dict[str, Any] = {}
        self.gkey: Any = None
        self.decided: dict[str, Any] = {}
        self.seen: dict[str, Decision] = {}
        self.graph: nx.DiGraph | None = None
        self.forced: list[Any] | None = None
        self.nesting = 0
        self.edges = 0
        self.layers = 0
        self.shared_nets: dict[str, Net] = {}
        self._tapes: dict[tuple, _Tape | bool] = {}  # apply_shared's, for one walk
        self._block_tapes: dict[tuple, _Tape] = {}  # run_body_taped's, for every build walk
        self._gk: tuple | None = None  # _genv_key's, for one walk
        self.consults = 0  # decisions made or read (decide calls), and copies standing for them
        self.peak = 0  # the deepest block nesting since the last _enter_peak
        self.metric_values: dict[str, Any] | None = None  # params / flops, set by Space

    # =================================================================== walking
    @contextmanager
    def using(self, chooser: Chooser) -> Iterator[None]:
        """Evaluate with another chooser, apart from the walk in progress."""
        saved = (self.chooser, self.decided, self.seen, self.forced, self.edges)
        self.chooser, self.decided, self.seen, self.forced = chooser, {}, {}, None
        try:
            yield
        finally:
            self.chooser, self.decided, self.seen, self.forced, self.edges = saved

    def walk(self, chooser: Chooser, build: bool = False) -> dict[str, Any]:
        """Decide every decision of the space with `chooser`; return name -> value."""
        self.chooser, self.build = chooser, build
        self.decided, self.seen = {}, {}
        self.graph = None
        self._nodes: list[tuple[str, dict, Span, str]] = []  # the graph's, while walking
        self._ins: list[list[int]] = []  # each node's inputs, in port order
        self._tapes = {}
        self._gk = None
        self.layers = self.nesting = self.edges = self.peak = 0
        self.bind_globals()
        ir = self.ir
        if self.net_block is not None and (build or self.an.block_decides(self.net_block)):
            inputs = [self.input_tensor(i) for i in ir.inputs]
            out = self.apply_block(self.net_block, None, {}, inputs, Scope("network"))
            if build:
                self._add_node("output", {}, ir.network_span, "network", [out])
        if build:
            self.graph = self._graph()
        self.eval_train()
        return self.decided

    def sample(self, chooser: Chooser) -> dict[str, Any]:
        """walk(chooser) for a random chooser (`_Uniform`, `_PerDecision`), through a cache of
        the walks already made, with the values in their JSON form (a configuration).

        The cache is a tree of the chooser's calls, each (decision, weights) fixed by the
        answers before it, so the same random draws give the same configuration. Where the
        tree stops, the walk is run (replaying the answers drawn) and extends it."""
        self.global_rows()  # every walk needs the table; building it draws nothing
        trie = self._tries.get(type(chooser))
        if trie is None:
            trie = self._tries[type(chooser)] = [None, 0]  # [root, cells stored]
        slot: Any = trie
        key: Any = 0
        node = trie[0]
        answers: list[Any] = []
        path: list[list] = []
        inert: list[tuple[str, Any]] = []
        index = chooser.index
        while node is not None:
            path.append(node)
            kind = node[0]
            if kind is _T_PICK:
                d = node[1]
                i = index(d, node[2])
                answers.append(d.options[i])
                slot = node[3]
                key = i
                node = slot.get(i)
            elif kind is _T_INERT:
                d = node[1]
                opts = d.options
                if opts is None:
                    v = chooser.pick(d, node[2])
                    answers.append(v)
                    inert.append((d.name, v))
                else:
                    i = index(d, node[2])
                    answers.append(opts[i])
                    v = opts[i] if type(opts) is range else node[4][i]
                    inert.append((d.name, copy.deepcopy(v) if type(v) is list else v))
                slot, key = node, 3
                node = node[3]
            elif kind is _T_ROW:
                i = chooser.pick_row(node[1])
                answers.append(i)
                slot = node[3]
                key = i
                node = slot.get(i)
            elif kind is _T_LEAF:
                out = dict(node[1])
                for name, v in inert:
                    out[name] = v
                for name in node[2]:  # lists: the caller may change them, not the cache
                    out[name] = copy.deepcopy(out[name])
                return out
            elif kind is _T_REJECT:
                raise Reject(node[1])
            else:  # _T_OPAQUE: a continuous value the walk reads; walk in full from here
                break
        rec = _recorder(type(chooser))(chooser, answers, path, (slot, key) if node is None else None, trie)
        try:
            decided = self.walk(rec)
        except Reject as r:
            rec.end([_T_REJECT, r.why], 1)
            raise
        config = {name: to_json(v) for name, v in decided.items()}
        rec.end([_T_LEAF, copy.deepcopy(config),
                 tuple(k for k, v in config.items() if type(v) is list)], len(config))
        return config

    def input_tensor(self, decl: A.InputDecl) -> Tensor:
        if not self.build:
            return Tensor(-1, decl.name)
        shape = self.value(decl.shape, {}, Scope("input"), decl.name)
        if not (isinstance(shape, tuple) and shape and all(
                isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise ArchTypeError("an input shape is a list of positive integers, e.g. [1, 8, 8]",
                                decl.shape.span)
        nid = self._add_node("input", {"name": decl.name, "shape": list(shape)}, decl.span,
                             decl.name, [])
        return Tensor(nid, decl.name)

    def eval_train(self) -> None:
        sc = Scope("train")
        for te in self.ir.train:
            if isinstance(te.value, A.Call) and te.value.ref and te.value.ref[0] == "record":
                self.value(te.value, {}, sc.child(te.name), None)
            else:
                self.value(te.value, {}, sc, te.name)

    def train_values(self) -> dict[str, Any]:
        """The train section evaluated with the decisions already made."""
        out = {}
        sc = Scope("train")
        for te in self.ir.train:
            if isinstance(te.value, A.Call) and te.value.ref and te.value.ref[0] == "record":
                out[te.name] = self.value(te.value, {}, sc.child(te.name), None)
            else:
                out[te.name] = self.value(te.value, {}, sc, te.name)
        return out

    # ----------------------------------------------------------------- globals
    def bind_globals(self) -> None:
        """Decide the top-level params and shared sub-networks."""
        rows = self.global_rows()
        forced = None
        if rows:
            i = self.chooser.pick_row(rows)
            if i is not None:
                forced = list(rows[i].values)
        self.genv = {}
        self.shared_nets = {}
        struct = self.an.global_structural
        for p in self.ir.params:
            if p.name in struct:
                self._bind_global(p, forced)
        for p in self.ir.params:
            if p.name not in struct:
                self._bind_global(p, None)
        self.gkey = tuple(to_json_key(self.genv.get(n)) for n in sorted(struct))
        for c in self.ir.constraints:
            self.check_constraint(c, {}, allow_metrics=False)
        build, self.build = self.build, False
        try:
            for name, net in self.shared_nets.items():
                if self.an.stage_decides(net.expr):
                    self.apply(net, [Tensor(-1)] * net_arity(net.expr), Scope(name))
        finally:
            self.build = build

    def _bind_global(self, p: A.ParamDecl | A.SharedDecl, forced: list | None) -> None:
        if isinstance(p, A.SharedDecl):
            net = self.value(p.value, {}, Scope(""), p.name)
            if not isinstance(net, Net):
                raise ArchTypeError(f"shared '{p.name}' must be a sub-network", p.value.span)
            self.shared_nets[p.name] = net
            self.genv[p.name] = net
            return
        saved = self.forced
        self.forced = forced
        try:
            self.genv[p.name] = self.value(p.value, {}, Scope(""), p.name)
        finally:
            self.forced = saved

    def global_rows(self) -> list[Row]:
        """Every joint value of the structural top-level decisions, with how many architectures
        each leaves (0 where a constraint fails)."""
        if self._global_rows is not None:
            return self._global_rows
        struct = [p for p in self.ir.params if p.name in self.an.global_structural]
        rows: list[Row] = Table()

        def bind() -> dict:
            self.genv = {}
            for p in struct:
                self._bind_global(p, None)
            return dict(self.genv)

        saved = (self.chooser, self.build, self.decided, self.seen)
        # the table must not draw from the caller's chooser: a seeded sample is the same
        # whether or not this space has been used before
        self.chooser, self.build = _First(), False
        try:
            for values, genv, picks in self.outcomes(bind):
                self.decided, self.seen = {}, {}
                self.genv = genv
                self.shared_nets = {p.name: genv[p.name] for p in self.ir.params
                                    if isinstance(p, A.SharedDecl) and p.name in genv}
                for p in self.ir.params:
                    if p.name not in self.an.global_structural:
                        self._bind_global(p, None)
                self.gkey = tuple(to_json_key(genv.get(n))
                                  for n in sorted(self.an.global_structural))
                w = _held(self._count_rest(), self.ir.network_span)
                rows.append(make_row(values, w, picks))
                if len(rows) > MAX_TABLE:
                    raise ArchLimitError(
                        f"more than {MAX_TABLE:,} combinations of the top-level params that "
                        "shape the network", self.ir.params[0].span if self.ir.params else None)
        finally:
            self.chooser, self.build, self.decided, self.seen = saved
        self._global_rows = rows
        return rows

    def _count_rest(self) -> int:
        """Architectures left once the structural top-level values in self.genv are fixed."""
        for c in self.ir.constraints:
            if not self.constraint_holds(c, {}):
                return 0
        total = 1
        sizes = _Sizes()
        with self.using(sizes):
            for p in self.ir.params:
                if p.name not in self.an.global_structural and isinstance(p, A.ParamDecl):
                    self.value(p.value, {}, Scope(""), p.name)
            self.eval_train()
        total *= sizes.mult
        for net in self.shared_nets.values():
            total = _held(total * self.count_net(net), net.expr.span)
            if total == 0:
                return 0
        if self.net_block is not None:
            total = _held(total * self.count_block(self.net_block, None, {}),
                          self.ir.network_span)
        return total

    # ----------------------------------------------------------------- decisions
    def decide(self, d: Decision, weights: list[int] | None = None, inert: bool = False) -> Any:
        self.consults += 1
        got = self.decided.get(d.name, _MISSING)
        if got is not _MISSING:
            self.chooser.reused(d.name)
            return got
        if self.forced is not None and self.forced:
            v = self.forced.pop(0)
        elif inert:
            v = self.chooser.pick_inert(d, weights)
        else:
            v = self.chooser.pick(d, weights)
        self.decided[d.name] = v
        self.seen[d.name] = d
        if len(self.decided) > MAX_DECISIONS:
            raise ArchLimitError(f"one configuration makes more than {MAX_DECISIONS:,} decisions "
                                 f"(the limit), the last '{d.name}'", d.span, hint=_TOO_LARGE)
        return v

    def make_decision(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Decision:
        name = str(key) if isinstance(key, _SharedKey) else sc.key(key if key else e.func)
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
        f = e.func
        kw = e.keywords
        default = self.value(kw["default"], env, sc, None) if "default" in kw else None
        if f == "choice" or f == "some":
            opts = [self.value(x, env, sc, None) for x in e.positional]
            if f == "choice":
                seen = set()
                for x, o in zip(e.positional, opts, strict=True):
                    k = to_json_key(o)
                    if k in seen:
                        raise ArchValueError(f"choice option {to_json(o)!r} appears twice",
                                             x.span)
                    seen.add(k)
            prior = None
            if "prior" in kw:
                prior = self.value(kw["prior"], env, sc, None)
                if not (isinstance(prior, tuple) and len(prior) == len(opts) and all(
                        isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0
                        for p in prior) and sum(prior) > 0):
                    raise ArchValueError(
                        f"prior must be a list of {len(opts)} non-negative weights",
                        kw["prior"].span)
                prior = tuple(_finite(p, kw["prior"].span, "a prior weight") for p in prior)
                if not math.isfinite(sum(prior)):
                    raise ArchValueError("the prior's weights add up to more than a float holds",
                                         kw["prior"].span)
            d = Decision(name, f, e.span, options=opts, default=default, prior=prior)
            if default is not None and to_json_key(default) not in {to_json_key(o) for o in opts}:
                raise ArchValueError(f"default {to_json(default)!r} is not one of the options",
                                     kw["default"].span)
            return d
        if f == "bool":
            prior = None
            if "prior" in kw:
                p = self.value(kw["prior"], env, sc, None)
                if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                    raise ArchValueError("bool prior is the probability of true, in [0, 1]",
                                         kw["prior"].span)
                prior = (p, 1 - p)
            return Decision(name, "bool", e.span, options=[True, False], default=default,
                            prior=prior)
        rng: A.Range = e.positional[0]  # type: ignore[assignment]
        lo = self.value(rng.lo, env, sc, None)
        hi = self.value(rng.hi, env, sc, None)
        log = len(e.positional) > 1
        if "log" in kw:
            log = self.value(kw["log"], env, sc, None) is True
        step = self.value(kw["step"], env, sc, None) if "step" in kw else None
        if f == "int":
            for v, x in ((lo, rng.lo), (hi, rng.hi)):
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ArchTypeError(f"int range bounds are integers, got {describe(v)}", x.span)
            if step is None:
                step = 1
            if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
                raise ArchValueError("step must be a positive integer", kw["step"].span)
            if hi < lo:
                raise ArchValueError(f"empty range: {lo} .. {hi}", rng.span)
            if log and lo <= 0:
                raise ArchValueError("a log-scale range must be positive", rng.span)
            n = (hi - lo) // step + 1  # not len(range): that overflows past sys.maxsize
            if n > MAX_DOMAIN:
                raise ArchLimitError(f"int(...) has {amount(n)} values, more than the limit of "
                                     f"{MAX_DOMAIN:,}", rng.span,
                                     hint="give it a larger step: int(a .. b, step = s), or use "
                                     "float(a .. b, log) for a wide range")
            r = range(lo, hi + 1, step)
            if default is not None and default not in r:
                raise ArchValueError(f"default {default} is not in the range", kw["default"].span)
            return Decision(name, "int", e.span, options=r, log=log, default=default)
        for v, x in ((lo, rng.lo), (hi, rng.hi)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ArchTypeError(f"float range bounds are numbers, got {describe(v)}", x.span)
        lo, hi = _finite(lo, rng.lo.span), _finite(hi, rng.hi.span)
        if hi < lo:
            raise ArchValueError(f"empty range: {lo} .. {hi}", rng.span)
        if log and lo <= 0:
            raise ArchValueError("a log-scale range must be positive", rng.span)
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
                raise ArchValueError("step must be a positive number", kw["step"].span)
            q = (hi - lo) / _finite(step, kw["step"].span)
            if not q < MAX_DOMAIN:  # also when q overflows to inf
                raise ArchLimitError(f"float(..., step = {step}) has more than {MAX_DOMAIN:,} "
                                     "values", rng.span,
                                     hint="give it a larger step, or drop the step to make it "
                                     "continuous")
            n = int(math.floor(q + 1e-9)) + 1
            opts = [round(lo + i * step, 12) for i in range(n)]
            if default is not None:  # one of the values (to rounding): that value
                x = _float_default(default, kw["default"].span)
                default = next((o for o in opts if abs(o - x) <= 1e-9 * max(1.0, abs(o))), None)
                if default is None:
                    raise ArchValueError(f"default {x} is not one of the range's values "
                                         f"({amount(n)} from {lo} in steps of {step})",
                                         kw["default"].span)
            return Decision(name, "float", e.span, options=opts, log=log, default=default)
        if default is not None:
            default = _float_default(default, kw["default"].span)
            if not lo <= default <= hi:
                raise ArchValueError(f"default {default} is outside the range",
                                     kw["default"].span)
        return Decision(name, "float", e.span, lo=lo, hi=hi, log=log, default=default)

    # ================================================================= evaluation
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
            return t
        if kind == "symbol":
            return Sym(e.id)
        if kind == "metric":
            if e.id == "edges":
                return self.edges
            if self.metric_values is not None and e.id in self.metric_values:
                return self.metric_values[e.id]
            raise _NeedsMetric(e.id)
        return Net(e, ())  # a block or layer by name

    def call_value(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Any:
        kind = e.ref[0]
        if kind == "decision":
            if e.func == "some":
                return self.some(e, env, sc, key)
            d = self.make_decision(e, env, sc, key)
            if d.kind == "choice" and d.options and isinstance(d.options[0], Tensor):
                self.edges -= len(d.options) - 1  # only the chosen input is an edge
                chosen = self.decide(d)
                # the node is what is decided: in a shared cell the decision stands for every
                # application, each with its own tensors
                return next(o for o in d.options if o.name == chosen.name)
            w = None
            if d.kind == "choice" and d.options and isinstance(d.options[0], Net) \
                    and isinstance(self.chooser, _Uniform):
                w = [self.count_net(o) for o in d.options]
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
                project = "project" in e.keywords and self.truth(
                    self.value(e.keywords["project"], env, sc, "project"), e.span)
                return self.merge(e.func, [self.value(x, env, sc, key) for x in tensors],
                                  e.span, sc, residual=project)
            sub = sc.child(e.func)
            xs = [self.value(x, env, sub, "in") for x in tensors]
            return self.apply(self.closure(e, env), xs, sub)
        return self.closure(e, env)

    def some(self, e: A.Call, env: dict, sc: Scope, key: str | None) -> Tensor:
        name = sc.key(key or "some")
        opts = [self.value(x, env, sc, None) for x in e.positional]
        _check_some(len(opts), e.span)
        d = Decision(name, "some", e.span, options=Subsets([x.name for x in opts]))
        self.edges -= len(opts)
        chosen = self.decide(d)
        picked = [o for o in opts if o.name in chosen]
        self.edges += len(picked)
        if len(picked) == 1:
            return picked[0]
        return self.merge("add", picked, e.span, sc)

    # ================================================================= application
    def apply(self, net: Any, xs: list[Tensor], sc: Scope, seg: str | None = None,
              span: Span | None = None) -> Tensor:
        """Apply a sub-network to its input tensors, in scope `sc`."""
        if not isinstance(net, Net):
            if isinstance(net, Sym):
                raise ArchTypeError(f"unknown layer '{net.name}'", span)
            raise ArchTypeError(f"expected a layer, got {describe(net)}", span)
        e = net.expr
        if seg is not None:
            sc = sc.child(seg)
        if self.build:
            return self._apply(net, e, xs, sc, span)
        if not self.an.stage_decides(e):
            return xs[0] if xs else Tensor(-1)
        # a sub-network that may decide (it applies a block's sub-network parameter, say) but
        # made no decision when applied before, with the same values, makes none now
        key: tuple | None = (net, self.gkey, self.nesting)
        try:
            if key in self._silent:
                return xs[0] if xs else Tensor(-1)
        except TypeError:  # an unhashable value
            key = None
        before = self.consults
        out = self._apply(net, e, xs, sc, span)
        if key is not None and self.consults == before and len(self._silent) < MAX_SILENT:
            self._silent.add(key)
        return out

    def _apply(self, net: Net, e: A.Expr, xs: list[Tensor], sc: Scope,
               span: Span | None) -> Tensor:
        env = dict(net.env)
        t = type(e)
        if t is A.Pipeline:
            x = xs
            build = self.build
            decides = self.an.decides
            for st in e.stages:  # type: ignore[attr-defined]
                s = stage_segment(st)
                if not build and not decides(st) and not (
                        type(st) is A.Name and st.ref[0] == "local"):  # type: ignore[attr-defined]
                    if s:
                        sc.key(s)  # keep the names of later stages as they are
                    continue
                x = [self.apply(self.closure(st, env), x, sc.child(s) if s else sc)]
            return x[0]
        if t is A.Name:
            kind, target = e.ref  # type: ignore[attr-defined]
            if kind == "layer":
                return self.layer(target, {}, xs, e.span, sc)
            if kind == "block":
                return self.apply_block(target, None, env, xs, sc, span=span or e.span)
            if kind == "local":
                return self.apply(env[e.id], xs, sc, span=e.span)  # type: ignore[attr-defined]
            if kind == "gparam":
                if e.id in self.shared_nets:  # type: ignore[attr-defined]
                    if self.build:
                        return self.apply_shared(e.id, xs, span)  # type: ignore[attr-defined]
                    return self.apply(self.shared_nets[e.id], xs, Scope(e.id), span=span)
                v = self.genv[e.id]  # type: ignore[attr-defined]
                if not self.build and isinstance(v, Net) and not self.an.stage_decides(v.expr):
                    return xs[0]
                return self.apply(v, xs, sc, span=e.span)  # type: ignore
            if kind == "symbol":
                raise ArchTypeError(f"unknown layer '{e.id}'", e.span)  # type: ignore
            raise ArchTypeError(f"'{e.id}' is not a layer", e.span)  # type: ignore
        if t is A.Call:
            kind, target = e.ref  # type: ignore[attr-defined]
            if kind == "layer":
                return self.layer_call(e, target, env, xs, sc)  # type: ignore[arg-type]
            if kind == "block":
                return self.apply_block(target, e, env, xs, sc)  # type: ignore[arg-type]
            if kind == "decision":
                chosen = self.value(e, env, sc, None)
                return self.apply(chosen, xs, sc)
            raise ArchTypeError(f"'{e.func}' is not a layer", e.span)  # type: ignore
        if t is A.Repeat:
            return self.repeat(e, env, xs, sc)  # type: ignore[arg-type]
        if t is A.OneOf:
            return self.one_of(e, env, xs, sc)  # type: ignore[arg-type]
        if t is A.Optional:
            w = self.weights(e, env, lambda: [self.count_net(self.closure(e.body, env)), 1]) \
                if isinstance(self.chooser, _Uniform) else None
            d = Decision(sc.path, "optional", e.span, options=_BOOL)
            if self.decide(d, w):
                return self.apply_sub(self.closure(e.body, env), xs, sc)  # type: ignore
            return xs[0]
        if t is A.Residual:
            y = self.apply_sub(self.closure(e.body, env), xs, sc)  # type: ignore
            if e.skip is not None:  # type: ignore[attr-defined]
                s = self.apply_sub(self.closure(e.skip, env), xs, sc.child("skip"))  # type: ignore
            else:
                s = xs[0]
            return self.merge("add", [y, s], e.span, sc, residual=True)
        if t is A.Parallel:
            outs = [self.apply_sub(self.closure(a.expr, env), xs, sc.index(i))
                    for i, a in enumerate(e.alts)]  # type: ignore[attr-defined]
            return self.merge(e.merge, outs, e.span, sc)  # type: ignore[attr-defined]
        if t is A.Shared:
            return self.apply(self.value(e, env, sc, None), xs, sc)
        v = self.value(e, env, sc, None)
        if isinstance(v, Net) and v.expr is not e:
            return self.apply(v, xs, sc)
        raise ArchTypeError(f"expected a layer, got {describe(v)}", e.span)

    def apply_shared(self, name: str, xs: list[Tensor], span: Span | None) -> Tensor:
        """Apply a shared sub-network in a build. Its decisions are made once and its scope is
        its own name wherever it is applied, so every application adds the same layers: the
        first one is walked and taped, the others copy the tape onto their inputs."""
        key = (name, _pattern(xs))
        tape = self._tapes.get(key)
        if tape is not None and tape is not False and self.nesting + tape.deep <= MAX_NESTING:
            self.consults += 1  # the copy stands for the shared decisions: see run_body_taped
            self.edges += tape.edges
            return self._copy_tape(tape, xs)
        start, edges, peak = len(self._nodes), self.edges, self._enter_peak()
        out = self.apply(self.shared_nets[name], xs, Scope(name), span=span)
        deep = self._leave_peak(peak)
        if tape is None:  # False: it reads a tensor other than its inputs, walk it every time
            self._tapes[key] = _tape(self._nodes, self._ins, start, xs, out,
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

    def _copy_tape(self, tape: _Tape, xs: list[Tensor]) -> Tensor:
        """Add a tape's layers onto inputs `xs`; their output."""
        self.peak = max(self.peak, self.nesting + tape.deep)
        new: list[int] = []
        for op, args, nspan, path, ins in tape.nodes:
            srcs = [Tensor(new[r] if r >= 0 else xs[~r].node) for r in ins]
            new.append(self._add_node(op, dict(args), nspan, path, srcs))
        return Tensor(new[tape.out], tape.name)

    def repeat(self, e: A.Repeat, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        body = self.closure(e.body, env)
        w = None
        if isinstance(e.count, A.Call) and e.count.ref[0] == "decision" \
                and isinstance(self.chooser, _Uniform):
            d = self.make_decision(e.count, env, Scope(sc.path), "")
            if d.options is not None:
                w = self.weights(e, env, lambda: [self.count_net(body) ** self._count_n(n, e)
                                                  for n in d.options])
            n = self.decide(_renamed(d, sc.path), w)
        elif isinstance(e.count, A.Call) and e.count.ref[0] == "decision":
            d = self.make_decision(e.count, env, Scope(sc.path), "")
            n = self.decide(_renamed(d, sc.path))
        else:
            n = self.value(e.count, env, sc, None)
        n = self._count_n(n, e)
        x = xs
        for i in range(n):
            x = [self.apply_sub(body, x, sc.index(i))]
        return x[0]

    def _count_n(self, n: Any, e: A.Repeat) -> int:
        if isinstance(n, bool) or not isinstance(n, int):
            raise ArchTypeError(f"a repeat count is an integer, got {describe(n)}", e.count.span)
        if n < 0:
            raise ArchValueError(f"a repeat count cannot be negative ({n})", e.count.span)
        if n > MAX_REPEAT:
            raise ArchLimitError(f"repeat({n:,}) is more than the limit of {MAX_REPEAT:,} copies",
                                 e.count.span)
        return n

    def one_of(self, e: A.OneOf, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        w = self.weights(e, env, lambda: [self._count_stage(a.expr, env) for a in e.alts]) \
            if isinstance(self.chooser, _Uniform) else None
        tpl = self._one_ofs.get(id(e))
        if tpl is None:
            tpl = self._one_ofs[id(e)] = Decision("", "one_of", e.span, options=e.labels)
        d = tpl.renamed(sc.path)
        label = self.decide(d, w)
        i = e.labels.index(label)
        if w is not None and w[i] == 0:
            raise Reject(ConstraintError(f"'{d.name}' = {label!r} leads to no valid "
                                         "architecture here (depth bound or constraints)", e.span))
        return self.apply_sub(self.closure(e.alts[i].expr, env), xs, sc.index(i))

    def weights(self, e: A.Expr, env: dict, fn: Callable[[], list[int]]) -> list[int]:
        """fn(), cached for the values `e` reads (the weights of a structure's options)."""
        ck = (id(e), tuple([env.get(n) for n in self.an.free(e)]), env.get("$depth"), self.gkey)
        try:
            w = self._weights.get(ck)
        except TypeError:
            return fn()
        if w is None:
            w = self._weights[ck] = fn()
        return w

    def apply_sub(self, net: Net, xs: list[Tensor], sc: Scope) -> Tensor:
        """Apply the body of a structure: a lone stage gets its own name segment."""
        seg = None if isinstance(net.expr, A.Pipeline) else stage_segment(net.expr)
        return self.apply(net, xs, sc.child(seg) if seg else sc)

    # ----------------------------------------------------------------- blocks
    def apply_block(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
                    xs: list[Tensor], sc: Scope, span: Span | None = None) -> Tensor:
        """Apply a block; `span` is where it is used (the call's, by default)."""
        span = call.span if call else span or blk.span
        depth = _depth(caller_env, blk) + 1
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
                env["$depth"] = _with_depth(caller_env, blk, depth)
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
        try:
            key = (id(blk), tuple([(k, _memo_key(v)) for k, v in env.items()]),
                   self._genv_key(), type(self.chooser), _pattern(xs), sc.path,
                   tuple(sc._counts.items()) if sc._counts else ())
        except _Unkeyed:
            return self.run_body(blk.body, env, xs, sc, span, block=blk)
        tape = self._block_tapes.get(key)
        if tape is not None and self.nesting + tape.deep <= MAX_NESTING:
            sc._counts = dict(tape.counts) if tape.counts else None
            return self._copy_tape(tape, xs)
        start, consults, peak = len(self._nodes), self.consults, self._enter_peak()
        out = self.run_body(blk.body, env, xs, sc, span, block=blk)
        deep = self._leave_peak(peak)
        if self.consults == consults and len(self._block_tapes) < MAX_TAPES:
            t = _tape(self._nodes, self._ins, start, xs, out, 0, deep)
            if t is not False:
                self._block_tapes[key] = t._replace(
                    counts=dict(sc._counts) if sc._counts else None)
        return out

    def _genv_key(self) -> tuple:
        """The top-level values, as a key (once per walk)."""
        k = self._gk
        if k is None:
            k = self._gk = tuple([(n, _memo_key(v)) for n, v in self.genv.items()])
        return k

    def bind(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
             sc: Scope) -> dict:
        """Evaluate a block's arguments, defaults, local params and shared decisions."""
        struct = self.an.structural.get(blk.name, set())
        items = self.binding_items(blk, call)
        forced = None
        if (isinstance(self.chooser, _Uniform) or self._rules_in_blocks and isinstance(
                self.chooser, _PerDecision)) and any(n in struct for n, *_ in items):
            rows = self.binding_table(blk, call, caller_env, sc)
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
            for structural in (True, False):
                self.forced = forced if structural else None
                for name, expr, where, key in items:
                    if (name in struct) == structural:
                        if isinstance(key, tuple):
                            key = _SharedKey(f"{sc.path}/{key[1]}")
                        env[name] = self.value(expr, caller_env if where == "caller" else env,
                                               sc, key)
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
            names = [p.name for p in blk.params]
            i = 0
            for a in call.args:
                if a.name is None:
                    if self.an_kind(a.value) == "tensor":
                        continue
                    given[names[i]] = a.value
                    i += 1
                else:
                    given[a.name] = a.value
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
        saved_edges = self.edges
        self.edges = 0
        is_network = block is not None and block.keyword == "network"
        try:
            for c in body.constraints:
                if not _mentions_edges(c.expr):
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
                if _mentions_edges(c.expr):
                    self.check_constraint(c, env)
            return out
        finally:
            self.edges = saved_edges

    # ----------------------------------------------------------------- constraints
    def constraint_holds(self, c: A.Constraint, env: dict) -> bool:
        try:
            v = self.truth(self.value(c.expr, env, Scope("$constraint"), None), c.expr.span)
        except _NeedsMetric:
            return True  # params / flops: checked by Space on the planned architecture
        return v if c.kind == "require" else not v

    def check_constraint(self, c: A.Constraint, env: dict, allow_metrics: bool = True) -> None:
        if not self.constraint_holds(c, env):
            from .printer import format_expr

            raise Reject(ConstraintError(f"{c.kind} {format_expr(c.expr)}: not satisfied",
                                         c.span))

    # ----------------------------------------------------------------- layers
    def layer_call(self, e: A.Call, sig: LayerSig, env: dict, xs: list[Tensor],
                   sc: Scope) -> Tensor:
        args: dict[str, Any] = {}
        names = [a.name for a in sig.args]
        i = 0
        for a in e.args:
            if a.name is None:
                if self.an_kind(a.value) == "tensor":
                    continue
                name = names[i]
                i += 1
            else:
                name = a.name
            if not self.build and not self.an.decides(a.value):
                continue  # nothing is built, and a value alone decides nothing: not evaluated
            args[name] = (self.value(a.value, env, sc, name), a.value.span)
        if not self.build:
            return xs[0] if xs else Tensor(-1)
        return self.layer(sig, args, xs, e.span, sc)

    def layer(self, sig: LayerSig, given: dict[str, tuple[Any, Span]], xs: list[Tensor],
              span: Span, sc: Scope) -> Tensor:
        if not self.build:
            return xs[0] if xs else Tensor(-1)
        missing = [f"'{a.name}'" for a in sig.args if a.needed and a.name not in given]
        if missing:  # before any value is checked or shape rule runs
            raise ArchTypeError(f"layer '{sig.name}' needs its argument"
                                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}", span,
                                hint=f"call it as `{sig.signature()}`")
        args: dict[str, Any] = {}
        for spec in sig.args:
            if spec.name in given:
                v, vspan = given[spec.name]
                try:
                    v = check_arg_value(spec.type, v)
                except OverflowError:
                    raise ArchValueError(f"{sig.name}: argument '{spec.name}' is a number too "
                                         "large for a float (beyond about 1.8e308)",
                                         vspan) from None
                except TypeError:
                    hint = None
                    if isinstance(v, Sym):
                        hint = did_you_mean(v.name, spec.type[4:].split("|")
                                            if spec.type.startswith("sym:")
                                            else ["same", "valid"] if spec.type == "pad" else [])
                    raise ArchTypeError(
                        f"{sig.name}: argument '{spec.name}' expects {type_name(spec.type)}, "
                        f"got {to_json(v)!r} ({describe(v)})", vspan, hint=hint) from None
                if spec.type in ("int", "int?") and v is not None and v <= 0 and spec.name in (
                        "out", "kernel", "stride", "groups", "dilation", "heads", "num", "dim"):
                    raise ArchValueError(f"{sig.name}: '{spec.name}' must be positive, got {v}",
                                         vspan)
                if spec.name == "p" and not 0.0 <= v < 1.0:
                    raise ArchValueError(f"{sig.name}: p must be in [0, 1), got {v}", vspan)
                args[spec.name] = to_json(v)
            else:
                args[spec.name] = to_json(spec.default)
        if len(xs) != (sig.inputs or len(xs)):
            raise ArchTypeError(f"layer '{sig.name}' takes {sig.inputs} input, got {len(xs)}",
                                span)
        return Tensor(self._add_node(sig.name, args, span, sc.path, xs))

    def merge(self, op: str, xs: list[Any], span: Span, sc: Scope,
              residual: bool = False) -> Tensor:
        for x in xs:
            if not isinstance(x, Tensor):
                raise ArchTypeError(f"'{op}' merges tensors, got {describe(x)}", span)
        if not self.build:
            return xs[0]
        attrs: dict[str, Any] = {"residual": True} if residual else {}
        return Tensor(self._add_node(op, attrs, span, sc.path, xs))

    def _add_node(self, op: str, args: dict, span: Span, path: str, xs: list[Tensor]) -> int:
        nid = len(self._nodes)
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise ArchLimitError(f"the architecture has more than {MAX_LAYERS:,} layers (the limit), "
                                 f"the last at '{path}'", span, hint=_TOO_LARGE)
        self._nodes.append((op, args, span, path))
        self._ins.append([x.node for x in xs])
        return nid

    def _graph(self) -> nx.MultiDiGraph:
        """The architecture graph of the nodes added: attributes op, args, span, path; an
        edge per input, keyed by its port."""
        g = nx.MultiDiGraph()
        # networkx's own adjacency dicts, filled the way add_node / add_edge fill them (a third
        # of the time of add_*_from; tests/test_space.py checks the two graphs are the same)
        node, succ, pred = g._node, g._succ, g._pred
        for n, (op, args, span, path) in enumerate(self._nodes):
            node[n] = {"op": op, "args": args, "span": span, "path": path}
            succ[n] = {}
            pred[n] = {}
        for v, ins in enumerate(self._ins):
            into = pred[v]
            for port, u in enumerate(ins):
                keys = into.get(u)
                if keys is None:
                    keys = succ[u][v] = into[u] = {}
                keys[port] = {"port": port}
        return g

    # ================================================================= counting
    def memo(self) -> dict:
        m = self._memos.get(self.gkey)
        if m is None:
            m = self._memos[self.gkey] = {}
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
        r = _held(self._count_net(net), net.expr.span)
        memo[net] = r
        return r

    def _count_net(self, net: Net) -> int:
        e = net.expr
        env = dict(net.env)
        t = type(e)
        if t is A.Pipeline:
            r = 1
            for st in e.stages:  # type: ignore[attr-defined]
                if self.an_kind(st) == "tensor":
                    r = _held(r * self.count_tensor(st, env), st.span)
                else:
                    r = _held(r * self.count_net(self.closure(st, env)), st.span)
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
                v = self.genv.get(e.id)  # type: ignore[attr-defined]
                if e.id in self.shared_nets:  # type: ignore[attr-defined]
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
                r = self.count_net(self.closure(target, env))
            else:
                r = self.count_args(e, env)  # type: ignore[arg-type]
            for a in e.args:  # type: ignore[attr-defined]
                if a.name is None and self.an_kind(a.value) == "tensor":
                    r = _held(r * self.count_tensor(a.value, env), e.span)
            return r
        if t is A.Repeat:
            c = self.count_net(self.closure(e.body, env))  # type: ignore[attr-defined]
            outcomes = self.count_outcomes(e.count, env)  # type: ignore[attr-defined]
            total, power, k = 0, 1, 0
            for n in sorted(self._count_n(n, e) for n in outcomes):  # type: ignore
                if c.bit_length() * n > MAX_COUNT_BITS:
                    raise ArchLimitError(
                        f"this repeat alone gives more than 2**{MAX_COUNT_BITS:,} architectures, "
                        "too many to count exactly", e.span)
                power *= c ** (n - k)  # c**n, built up from the previous power
                k = n
                total += power
            return total
        if t is A.OneOf:
            return sum(self._count_stage(a.expr, env) for a in e.alts)  # type: ignore
        if t is A.Optional:
            return 1 + self.count_net(self.closure(e.body, env))  # type: ignore[attr-defined]
        if t is A.Residual:
            r = self.count_net(self.closure(e.body, env))  # type: ignore[attr-defined]
            if e.skip is not None:  # type: ignore[attr-defined]
                r = _held(r * self.count_net(self.closure(e.skip, env)), e.span)  # type: ignore
            return r
        if t is A.Parallel:
            r = 1
            for a in e.alts:  # type: ignore[attr-defined]
                r = _held(r * self._count_stage(a.expr, env), e.span)
            return r
        if t is A.Shared:
            return 1
        return 1

    def _count_stage(self, e: A.Expr, env: dict) -> int:
        """count_net of a stage, without making its closure where it decides nothing."""
        if not self.an.stage_decides(e):
            return 1
        return self.count_net(self.closure(e, env))

    def count_choice(self, e: A.Call, env: dict) -> int:
        """A choice used as a stage: among sub-networks."""
        total = 0
        with self.using(_Sizes()):
            opts = [self.value(o, env, Scope("$count"), None) for o in e.positional]
        for v in opts:
            total += self.count_net(v) if isinstance(v, Net) else 1
        return _held(total, e.span)

    def count_args(self, e: A.Call, env: dict) -> int:
        sizes = _Sizes()
        with self.using(sizes):
            for a in e.args:
                if a.name is None and self.an_kind(a.value) == "tensor":
                    continue
                self.value(a.value, env, Scope("$count"), a.name or "arg")
        return sizes.mult

    def count_outcomes(self, e: A.Expr, env: dict) -> list[Any]:
        """The values an expression can take, one per combination of its decisions."""
        return [v for _, v, _ in self.outcomes(lambda: self.value(e, env, Scope("$c"), ""))]

    def count_block(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict) -> int:
        if blk.max_depth is not None and _depth(caller_env, blk) + 1 > blk.max_depth:
            return 0
        rows = self.binding_table(blk, call, caller_env, Scope("$count"))
        return _held(sum(r.weight for r in rows), call.span if call else blk.span)

    def binding_table(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
                      sc: Scope) -> list[Row]:
        """Rows of joint values of the block's structural decisions, weighted by the number
        of architectures each leaves."""
        items = self.binding_items(blk, call)
        ckey = ("bind", id(blk), id(call),
                tuple(sorted((k, to_json_key(v)) for k, v in caller_env.items()
                             if k in self._caller_free(blk, call))), caller_env.get("$depth"))
        memo = self.memo()
        got = memo.get(ckey)
        if got is not None:
            return got
        struct = self.an.structural.get(blk.name, set())
        depth = _depth(caller_env, blk) + 1

        def bind_struct() -> dict:
            env: dict[str, Any] = {}
            if "$depth" in caller_env:
                env["$depth"] = caller_env["$depth"]
            for name, expr, where, key in items:
                if name in struct:
                    env[name] = self.value(expr, caller_env if where == "caller" else env,
                                           Scope("$t"), key)
            return env

        rows: list[Row] = Table()
        saved_decided, saved_seen = self.decided, self.seen
        try:
            for values, env, picks in self.outcomes(bind_struct):
                self.decided, self.seen = {}, {}
                sizes = _Sizes()
                with self.using(sizes):
                    for name, expr, where, key in items:
                        if name not in struct:
                            env[name] = self.value(expr, caller_env if where == "caller" else env,
                                                   Scope("$t"), key)
                if blk.max_depth is not None:
                    env["$depth"] = _with_depth(caller_env, blk, depth)
                w = _held(sizes.mult * self.count_body(blk.body, env),
                          call.span if call else blk.span)
                rows.append(make_row(values, w, picks))
                if len(rows) > MAX_TABLE:
                    raise ArchLimitError(f"block '{blk.name}': more than {MAX_TABLE:,} "
                                         "combinations of its structural arguments",
                                         call.span if call else blk.span)
        finally:
            self.decided, self.seen = saved_decided, saved_seen
        memo[ckey] = rows
        return rows

    def _caller_free(self, blk: A.BlockDecl, call: A.Call | None) -> set[str]:
        if call is None:
            return set()
        out: set[str] = set()
        for a in call.args:
            out.update(self.an.free(a.value))
        return out

    def count_body(self, body: A.Body, env: dict) -> int:
        env = dict(env)
        for c in body.constraints:
            if not _mentions_edges(c.expr) and not self.constraint_holds(c, env):
                return 0
        if not body.is_graph:
            if self.an_kind(body.result) == "tensor":
                return self.count_tensor(body.result, env)
            return self.count_net(self.closure(body.result, env))
        edge_cs = [c for c in body.constraints if _mentions_edges(c.expr)]
        poly: dict[int, int] = {0: 1}
        for st in body.nodes:
            poly = _mul(poly, self.tensor_poly(st.value, env), st.span)
        if not isinstance(body.result, A.Name):
            poly = _mul(poly, self.tensor_poly(body.result, env), body.result.span)
        total = 0
        saved = self.edges
        try:
            for k, n in poly.items():
                self.edges = k
                if all(self.constraint_holds(c, env) for c in edge_cs):
                    total += n
        finally:
            self.edges = saved
        return total

    def count_tensor(self, e: A.Expr, env: dict) -> int:
        return sum(self.tensor_poly(e, env).values())

    def tensor_poly(self, e: A.Expr, env: dict) -> dict[int, int]:
        """Architectures of a tensor expression, by the number of graph edges it uses."""
        t = type(e)
        if t is A.Name:
            return {1: 1} if e.ref[0] == "node" else {0: 1}  # type: ignore[attr-defined]
        if t is A.BinOp:
            return _mul(self.tensor_poly(e.left, env), self.tensor_poly(e.right, env),  # type: ignore
                        e.span)
        if t is A.Pipeline:
            p = self.tensor_poly(e.stages[0], env)  # type: ignore[attr-defined]
            r = 1
            for st in e.stages[1:]:  # type: ignore[attr-defined]
                r = _held(r * self.count_net(self.closure(st, env)), st.span)
            return {k: _held(v * r, e.span) for k, v in p.items()}
        if t is A.Call:
            kind = e.ref[0]  # type: ignore[attr-defined]
            if kind == "decision":
                opts = [self.tensor_poly(x, env) for x in e.positional]  # type: ignore
                if e.func == "some":  # type: ignore[attr-defined]
                    _check_some(len(opts), e.span)
                    acc: dict[int, int] = {0: 1}
                    for p in opts:
                        acc = _mul(acc, _add({0: 1}, p), e.span)
                    acc[0] -= 1
                    return {k: v for k, v in acc.items() if v}
                out: dict[int, int] = {}
                for p in opts:
                    out = _add(out, p)
                return out
            p: dict[int, int] = {0: 1}
            rest = []
            for a in e.args:  # type: ignore[attr-defined]
                if a.name is None and self.an_kind(a.value) == "tensor":
                    p = _mul(p, self.tensor_poly(a.value, env), e.span)
                else:
                    rest.append(a)
            if kind == "layer":
                r = self.count_args(e, env) if rest else 1  # type: ignore[arg-type]
            elif kind == "block":
                r = self.count_block(e.ref[1], e, env)  # type: ignore
            elif kind == "apply":
                r = self.count_net(self.closure(e.ref[1], env))  # type: ignore[attr-defined]
            else:
                r = 1
            return {k: _held(v * r, e.span) for k, v in p.items()}
        return {0: 1}

    # ================================================================= enumeration
    def outcomes(self, fn: Callable[[], Any]) -> Iterator[tuple[list, Any, list]]:
        """Run `fn` once per combination of the discrete decisions it makes (depth-first
        replay). Yields (values, result, [(decision, option index)...]); continuous decisions
        take their default (index None) and count once."""
        prefix: list[int] = []
        while True:
            ch = _Replay(prefix)
            saved_dec, saved_seen = self.decided, self.seen
            self.decided, self.seen = {}, {}
            try:
                with self.using(ch):
                    result = fn()
                ok = True
            except Reject:
                ok = False
            finally:
                self.decided, self.seen = saved_dec, saved_seen
            if ok:
                yield ch.values, result, ch.picks
            prefix = next_prefix(ch.trace)
            if prefix is None:
                return


# ===================================================================== choosers
_MISSING = object()
_BOOL = [True, False]


class _SharedKey(str):
    """A decision key that is already a full name (shared decisions)."""


class _Unkeyed(Exception):
    """A value that cannot be part of a cache key (a tensor, or something unhashable)."""


def _memo_key(v: Any) -> Any:
    """A hashable key that tells values apart as the walk does (Nets by expression and env)."""
    t = type(v)
    if t is Net:
        return ("net", id(v.expr), tuple([(k, _memo_key(x)) for k, x in v.env]))
    if t is tuple:
        return ("l", tuple([_memo_key(x) for x in v]))
    if t is Tensor:
        raise _Unkeyed
    if t is float:
        return ("float", repr(v))  # -0.0 is not 0.0 to a layer's arguments
    try:
        hash(v)
    except TypeError:
        raise _Unkeyed from None
    return (t.__name__, v)


def _pattern(xs: list[Tensor]) -> tuple[int, ...]:
    """Which inputs are the same tensor: each input's first position."""
    first: dict[int, int] = {}
    return tuple([first.setdefault(x.node, i) for i, x in enumerate(xs)])


class _Tape(NamedTuple):
    """The layers one application added, to copy onto other inputs (Interp._copy_tape)."""

    nodes: list[tuple]  # (op, args, span, path, inputs): an input is a tape index or ~i for xs[i]
    out: int  # the tape index of the output
    name: str  # the output tensor's name
    edges: int  # what the application added to Interp.edges
    deep: int  # how many levels of blocks it nested (MAX_NESTING still holds when copied)
    counts: dict | None = None  # its scope's segment counters afterwards (run_body_taped)


def _tape(added: list[tuple], inputs: list[list[int]], start: int, xs: list[Tensor],
          out: Tensor, edges: int, deep: int) -> _Tape | bool:
    """The layers added from node `start` on; False if one reads a tensor other than xs, or
    the output is one of xs (whose name the output takes, or not, by how it was returned)."""
    where = {x.node: ~i for i, x in reversed(list(enumerate(xs)))}
    nodes = []
    for n in range(start, len(added)):
        ins = []
        for src in inputs[n]:
            if src >= start:
                ins.append(src - start)
            elif src in where:
                ins.append(where[src])
            else:
                return False
        nodes.append((*added[n], ins))
    if out.node < start:
        return False
    return _Tape(nodes, out.node - start, out.name, edges, deep)


def _depth(env: dict, blk: A.BlockDecl) -> int:
    """How deep recursive block `blk` is nested where `env` is evaluated."""
    for name, d in env.get("$depth") or ():
        if name == blk.name:
            return d
    return 0


def _with_depth(env: dict, blk: A.BlockDecl, depth: int) -> tuple:
    rest = tuple(p for p in env.get("$depth") or () if p[0] != blk.name)
    return tuple(sorted(rest + ((blk.name, depth),)))


def _finite(v: int | float, span: Span, what: str = "a range bound or step") -> float:
    """A number as a float (huge integers are an error, not an OverflowError)."""
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ArchValueError(f"{what} must be a finite number", span)
    return x


def _check_some(n: int, span: Span) -> None:
    """some(...) of n nodes is one decision of 2**n - 1 options: refused past MAX_DOMAIN."""
    if (1 << n) - 1 > MAX_DOMAIN:
        raise ArchLimitError(f"some(...) of {n} nodes has 2**{n} - 1 subsets, more than the "
                             f"limit of {MAX_DOMAIN:,} options", span,
                             hint="choose among fewer nodes (at most 23)")


def _float_default(v: Any, span: Span) -> float:
    """A float range's `default`, as a finite float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArchTypeError(f"a float range's default is a number, got {describe(v)}", span)
    return _finite(v, span, "a default")


def _renamed(d: Decision, name: str) -> Decision:
    d.name = name
    return d


def _mentions_edges(e: A.Node) -> bool:
    if isinstance(e, A.Name):
        return e.ref is not None and e.ref[0] == "metric" and e.id == "edges"
    return any(_mentions_edges(x) for x in A.children(e))


def _mul(a: dict[int, int], b: dict[int, int], span: Span | None) -> dict[int, int]:
    out: dict[int, int] = {}
    for i, x in a.items():
        for j, y in b.items():
            out[i + j] = _held(out.get(i + j, 0) + x * y, span)
    return out


def _held(n: int, span: Span | None) -> int:
    """A count, refused once it passes 2**MAX_COUNT_BITS: every product and sum of counting
    goes through here, so no intermediate number grows much past the limit."""
    if n.bit_length() > MAX_COUNT_BITS:
        raise ArchLimitError(f"more than 2**{MAX_COUNT_BITS:,} architectures: too many to count "
                             "exactly", span,
                             hint="make the space smaller (a lower max_depth, fewer copies or "
                             "options)")
    return n


def _add(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


class _NeedsMetric(Exception):
    pass


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


def to_json_key(v: Any) -> Any:
    """A hashable, type-aware key for comparing values."""
    if isinstance(v, bool):
        return ("b", v)
    if isinstance(v, (int, float)):
        return ("n", v)
    if isinstance(v, tuple):
        return ("l", tuple(to_json_key(x) for x in v))
    if isinstance(v, Sym):
        return ("s", v.name)
    if isinstance(v, str):
        return ("t", v)
    if isinstance(v, Net):
        return ("net", v.text(), tuple((k, to_json_key(x)) for k, x in v.env))
    if isinstance(v, Tensor):
        return ("tensor", v.name)
    if isinstance(v, Record):
        return ("r", v.name, tuple((k, to_json_key(x)) for k, x in v.args))
    return ("?", repr(v))


_T_LEAF, _T_REJECT, _T_PICK, _T_INERT, _T_ROW, _T_OPAQUE = range(6)
MAX_TRIE = 400_000  # cells (nodes and leaf entries) kept by Interp.sample per chooser type
MAX_TAPES = 4096  # block applications whose layers a build keeps (Interp.run_body_taped)
MAX_SILENT = 100_000  # sub-networks remembered as deciding nothing (Interp.apply)


class _Recorder(Chooser):
    """Replays the answers a sample drew from the cache tree, then asks `inner` and records
    each call as a new node of the tree at `slot` ((container, key); None: no recording).

    Nodes: [_T_PICK, d, weights, {option index: node}], [_T_INERT, d, weights, node, JSON
    labels of the options] (a value nothing reads: one subtree for all), [_T_ROW, weights, None,
    {row: node}], [_T_OPAQUE] (a value the walk reads but the tree cannot branch on:
    continuous), [_T_LEAF, configuration, names of its list values], [_T_REJECT, why]."""

    def __init__(self, inner: Chooser, answers: list[Any], path: list[list], slot: tuple | None,
                 trie: list):
        self.inner, self.answers, self.path, self.slot, self.trie = inner, answers, path, slot, trie
        self.pos = 0
        self.inert_names: set[str] = set()

    def _replay(self, kind: int, d: Decision | None) -> Any:
        """The next answer drawn already, once checked against the node it was drawn at."""
        node = self.path[self.pos]
        if node[0] != kind or (d is not None and node[1].name != d.name):
            raise AssertionError(f"sampling cache: the walk met {d.name if d else 'a table'} "
                                 "where it was not recorded")
        self.pos += 1
        return self.answers[self.pos - 1]

    def _put(self, node: list, cells: int = 1) -> bool:
        slot, trie = self.slot, self.trie
        if slot is None or trie[1] + cells > MAX_TRIE:
            self.slot = None
            return False
        slot[0][slot[1]] = node
        trie[1] += cells
        return True

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if self.pos < len(self.answers):
            return self._replay(_T_PICK, d)
        if self.slot is None:
            return self.inner.pick(d, weights)
        if d.options is None:
            self._put([_T_OPAQUE])
            self.slot = None
            return self.inner.pick(d, weights)
        node = [_T_PICK, d, weights, {}]
        put = self._put(node)
        i = self.inner.index(d, weights)
        if put:
            self.slot = (node[3], i)
        return d.options[i]

    def pick_inert(self, d: Decision, weights: list[int] | None) -> Any:
        self.inert_names.add(d.name)
        if self.pos < len(self.answers):
            return self._replay(_T_INERT, d)
        opts = d.options
        labels = None if opts is None or type(opts) is range else d.labels()
        node = [_T_INERT, d, weights, None, labels]
        if self._put(node):
            self.slot = (node, 3)
        return self.inner.pick(d, weights)

    def pick_row(self, rows: list[Row]) -> int | None:
        if self.pos < len(self.answers):
            return self._replay(_T_ROW, None)
        node = [_T_ROW, rows, None, {}]
        put = self._put(node)
        i = self.inner.pick_row(rows)
        if put:
            self.slot = (node[3], i)
        return i

    def reused(self, name: str) -> None:
        if name in self.inert_names:  # an "inert" value is read after all: record no further
            self.slot = None

    def end(self, leaf: list, cells: int) -> None:
        self._put(leaf, cells)


_RECORDERS: dict[type, type] = {}


def _recorder(cls: type) -> type:
    """_Recorder, also an instance of `cls` (the walk asks whether it samples uniformly)."""
    r = _RECORDERS.get(cls)
    if r is None:
        r = _RECORDERS[cls] = type(f"_Recorder{cls.__name__}", (_Recorder, cls), {})
    return r


class _First(Chooser):
    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return d.default if d.default is not None else d.lo
        return d.options[0]


class _Sizes(Chooser):
    """Counts: multiplies the sizes of the decisions met, answers each with its first option."""

    def __init__(self) -> None:
        self.mult = 1

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        self.mult = _held(self.mult * (sum(weights) if weights is not None else d.size), d.span)
        if d.options is None:
            return d.default if d.default is not None else d.lo
        return d.options[0]


class _Replay(Chooser):
    """Follows a prefix of option indices, then takes the first allowed option."""

    def __init__(self, prefix: list[int]):
        self.prefix = prefix
        self.trace: list[tuple[int, int]] = []
        self.values: list[Any] = []
        self.picks: list[tuple[Decision, int | None]] = []

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        pos = len(self.trace)
        if d.options is None:
            v = d.default if d.default is not None else d.lo
            self.trace.append((0, 1))
            self.values.append(v)
            self.picks.append((d, None))
            return v
        n = len(d.options)
        i = self.prefix[pos] if pos < len(self.prefix) else 0
        if weights is not None:
            while i < n and weights[i] == 0:
                i += 1
            if i >= n:
                self.trace.append((n - 1, n))
                raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                             d.span))
        self.trace.append((i, n))
        v = d.options[i]
        self.values.append(v)
        self.picks.append((d, i))
        return v


def next_prefix(trace: list[tuple[int, int]]) -> list[int] | None:
    """The option indices a depth-first replay follows after the walk that made `trace`
    ((index, number of options) per decision); None when that walk was the last."""
    trace = list(trace)
    while trace and trace[-1][0] + 1 >= trace[-1][1]:
        trace.pop()
    if not trace:
        return None
    return [i for i, _ in trace[:-1]] + [trace[-1][0] + 1]


def replays(it: Interp, make: Callable[[list[int]], _Replay], build: bool = False
            ) -> Iterator[_Replay]:
    """Walk `it` once per combination of options, depth first (`make(prefix)` gives each
    walk's chooser); yield the chooser of each walk no constraint rejected, while `it.decided`
    (and with `build`, `it.graph`) still hold that walk's."""
    prefix: list[int] | None = []
    while prefix is not None:
        ch = make(prefix)
        try:
            it.walk(ch, build=build)
            yield ch
        except Reject:
            pass
        prefix = next_prefix(ch.trace)


class _Uniform(Chooser):
    """Uniform over architectures: options weighted by the architectures that follow."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return sample_float(d, self.rng)
        return d.options[self.index(d, weights)]

    def index(self, d: Decision, weights: list[int] | None) -> int:
        if weights is not None:
            total = sum(weights)
            if total == 0:
                raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                             d.span))
            return _weighted(self.rng, weights, total)
        if d.kind == "int" and d.log:
            return sample_int_log(d, self.rng)
        return _below(self.rng, len(d.options))

    def pick_row(self, rows: list[Row]) -> int | None:
        i = draw_uniform(self.rng, rows)
        if i is None:
            raise Reject(ConstraintError("no combination of values satisfies the constraints",
                                         None))
        return i


class _PerDecision(Chooser):
    """Each decision on its own: uniform (or by its prior; log-uniform on log scales)."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick_row(self, rows: list[Row]) -> int | None:
        return draw_per_decision(self.rng, rows)

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return sample_float(d, self.rng)
        return d.options[self.index(d, weights)]

    def index(self, d: Decision, weights: list[int] | None) -> int:
        if weights is not None and d.prior is None:
            allowed = [i for i, w in enumerate(weights) if w > 0]
            if not allowed:
                raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                             d.span))
            return allowed[_below(self.rng, len(allowed))]
        if d.prior is not None:
            return _weighted_float(self.rng, d.prior)
        if d.kind == "int" and d.log:
            return sample_int_log(d, self.rng)
        return _below(self.rng, len(d.options))


class _Default(_Uniform):
    """The default configuration: each decision at its default where an architecture follows
    (weights[i] > 0), else its first option that leads to one; a continuous decision at its
    default, else the middle of its range (geometric on a log scale)."""

    def __init__(self) -> None:
        super().__init__(random.Random(0))  # never drawn from

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return default_float(d)
        return d.options[self.index(d, weights)]

    def index(self, d: Decision, weights: list[int] | None) -> int:
        i = d.default_index()
        if weights is None or weights[i] > 0:
            return i
        j = next((j for j, w in enumerate(weights) if w > 0), None)
        if j is None:
            raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                         d.span))
        return j

    def pick_row(self, rows: list[Row]) -> int | None:
        i = default_row(rows)
        if i is None:
            raise Reject(ConstraintError("no combination of values satisfies the constraints",
                                         None))
        return i


def default_float(d: Decision) -> float:
    """A continuous decision's default value: its `default`, else the middle of its range."""
    if d.default is not None:
        return d.default
    return math.sqrt(d.lo * d.hi) if d.log else (d.lo + d.hi) / 2


class _FromConfig(Chooser):
    """Reads each decision from a configuration (JSON values)."""

    def __init__(self, config: dict[str, Any], fill_defaults: bool = False):
        self.config = config
        self.fill = fill_defaults
        self.used: set[str] = set()

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.name not in self.config:
            if self.fill:
                if d.options is None:
                    return default_float(d)
                return d.options[d.default_index()]
            raise ConfigError(f"the configuration has no value for '{d.name}'", d.span,
                              hint=f"it takes {d.domain_text()}")
        self.used.add(d.name)
        v = d.value_of_json(self.config[d.name])
        if weights is not None and d.options is not None:
            i = d.index_of_json(self.config[d.name])
            if weights[i] == 0:
                raise ConfigError(f"'{d.name}' = {to_json(v)!r} leads to no valid architecture "
                                  "(depth bound or constraints)", d.span)
        return v


_EXACT = 1 << 53  # below this, random() * n picks each of n values with probability 1/n
# to within n / 2**53 (as random.choices does); above it, exact integer draws


def _below(rng: random.Random, n: int) -> int:
    """A random index in range(n); none drawn when n is 1."""
    if n == 1:
        return 0
    if n < _EXACT:
        return int(rng.random() * n)
    return rng.randrange(n)


def _weighted(rng: random.Random, weights: list[int], total: int) -> int:
    """Index i with probability weights[i] / total (total = sum(weights) > 0)."""
    if len(weights) == 1:
        return 0
    return _span_of(rng.random() * total if total < _EXACT else rng.randrange(total), weights)


def _weighted_float(rng: random.Random, weights: tuple) -> int:
    """Index i with probability weights[i] / sum(weights), for float weights (priors)."""
    return _span_of(rng.random() * float(sum(weights)), weights)


def _span_of(r: float, weights: list | tuple) -> int:
    """The index whose span of the weights, laid end to end, holds r (0 <= r < their sum)."""
    for i, w in enumerate(weights):
        if r < w:
            return i
        r -= w
    return max(i for i, w in enumerate(weights) if w > 0)  # float rounding at the top


def sample_float(d: Decision, rng: random.Random) -> float:
    if d.log:
        return math.exp(rng.uniform(math.log(d.lo), math.log(d.hi)))
    return rng.uniform(d.lo, d.hi)


def sample_int_log(d: Decision, rng: random.Random) -> int:
    """The index of a log-uniform value of an integer range."""
    r: range = d.options
    lo, hi = r.start, r[-1]
    x = math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))
    return min(len(r) - 1, max(0, int((x - lo) // r.step)))
