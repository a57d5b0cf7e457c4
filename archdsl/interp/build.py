"""The walk that builds the graph: applying a sub-network to tensors, one small method per
construct (pipeline, repeat, one_of, optional, residual, parallel, a layer, a merge), and the
nodes of the architecture graph it records when building (`_add_node`, `_graph`). A walk that
does not build only makes the decisions: layers are not evaluated past what decides.

Blocks (binding arguments, running bodies, shared sub-networks) are the next stage
(archdsl.interp.blocks), which this class calls through `apply_block` and `apply_shared`.

May import: archdsl.ast, analysis, errors, layers, naming, semantics, shared_names, values, and
.evaluate, .choosers and .limits of this package.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from .. import ast as A
from ..analysis import Analysis
from ..errors import (
    ArchLimitError,
    ArchTypeError,
    ArchValueError,
    ConstraintError,
    Span,
    did_you_mean,
)
from ..layers import LayerSig, check_arg_value, type_name
from ..naming import Scope
from ..semantics import SpaceIR
from ..shared_names import stage_segment
from ..values import Decision, Net, Sym, Tensor, describe, to_json
from .choosers import Reject, Uniform
from .evaluate import Evaluator
from .limits import MAX_LAYERS, MAX_REPEAT, MAX_SILENT, TOO_LARGE

__all__ = ["Builder", "layer_args", "repeat_count"]

_BOOL = [True, False]


class Builder(Evaluator):
    """Applies sub-networks; records the graph's nodes in a build."""

    def __init__(self, ir: SpaceIR, an: Analysis):
        super().__init__(ir, an)
        self._one_ofs: dict[int, Decision] = {}  # id(OneOf) -> its decision (fixed options)
        self._silent: set[tuple] = set()  # (net, gkey, nesting) that decided nothing: apply()
        # per walk
        self.graph: nx.MultiDiGraph | None = None
        self._nodes: list[tuple[str, dict, Span, str]] = []  # the graph's, while walking
        self._ins: list[list[int]] = []  # each node's inputs, in port order
        self.layers = 0
        self.nesting = 0

    # ----------------------------------------------------------------- hooks of the blocks
    def apply_block(self, blk: A.BlockDecl, call: A.Call | None, caller_env: dict,
                    xs: list[Tensor], sc: Scope,
                    span: Span | None = None) -> Tensor:  # pragma: no cover
        """Apply a block (archdsl.interp.blocks)."""
        raise NotImplementedError

    def apply_shared(self, name: str, xs: list[Tensor],
                     span: Span | None) -> Tensor:  # pragma: no cover
        """Apply a shared sub-network in a build (archdsl.interp.blocks)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- application
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
            return self.optional(e, env, xs, sc)  # type: ignore[arg-type]
        if t is A.Residual:
            return self.residual(e, env, xs, sc)  # type: ignore[arg-type]
        if t is A.Parallel:
            return self.parallel(e, env, xs, sc)  # type: ignore[arg-type]
        if t is A.Shared:
            return self.apply(self.value(e, env, sc, None), xs, sc)
        v = self.value(e, env, sc, None)
        if isinstance(v, Net) and v.expr is not e:
            return self.apply(v, xs, sc)
        raise ArchTypeError(f"expected a layer, got {describe(v)}", e.span)

    def repeat(self, e: A.Repeat, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        body = self.closure(e.body, env)
        w = None
        if isinstance(e.count, A.Call) and e.count.ref[0] == "decision" \
                and isinstance(self.chooser, Uniform):
            d = self.make_decision(e.count, env, Scope(sc.path), "")
            if d.options is not None:
                count = self.counter
                w = count.weights(e, env, lambda: [count.count_net(body) ** repeat_count(n, e)
                                                   for n in d.options])
            n = self.decide(renamed(d, sc.path), w)
        elif isinstance(e.count, A.Call) and e.count.ref[0] == "decision":
            d = self.make_decision(e.count, env, Scope(sc.path), "")
            n = self.decide(renamed(d, sc.path))
        else:
            n = self.value(e.count, env, sc, None)
        n = repeat_count(n, e)
        x = xs
        for i in range(n):
            x = [self.apply_sub(body, x, sc.index(i))]
        return x[0]

    def one_of(self, e: A.OneOf, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        count = self.counter
        w = count.weights(e, env, lambda: count.alternative_counts(e, env)) \
            if isinstance(self.chooser, Uniform) else None
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

    def optional(self, e: A.Optional, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        count = self.counter
        w = count.weights(e, env, lambda: [count.count_net(self.closure(e.body, env)), 1]) \
            if isinstance(self.chooser, Uniform) else None
        d = Decision(sc.path, "optional", e.span, options=_BOOL)
        if self.decide(d, w):
            return self.apply_sub(self.closure(e.body, env), xs, sc)
        return xs[0]

    def residual(self, e: A.Residual, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        y = self.apply_sub(self.closure(e.body, env), xs, sc)
        if e.skip is not None:
            s = self.apply_sub(self.closure(e.skip, env), xs, sc.child("skip"))
        else:
            s = xs[0]
        return self.merge("add", [y, s], e.span, sc, residual=True)

    def parallel(self, e: A.Parallel, env: dict, xs: list[Tensor], sc: Scope) -> Tensor:
        outs = [self.apply_sub(self.closure(a.expr, env), xs, sc.index(i))
                for i, a in enumerate(e.alts)]
        return self.merge(e.merge, outs, e.span, sc)

    def apply_sub(self, net: Net, xs: list[Tensor], sc: Scope) -> Tensor:
        """Apply the body of a structure: a lone stage gets its own name segment."""
        seg = None if isinstance(net.expr, A.Pipeline) else stage_segment(net.expr)
        return self.apply(net, xs, sc.child(seg) if seg else sc)

    # ----------------------------------------------------------------- layers and nodes
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
        args = layer_args(sig, given)
        if len(xs) != (sig.inputs or len(xs)):
            raise ArchTypeError(f"layer '{sig.name}' takes {sig.inputs} tensor input"
                                f"{'s' if sig.inputs != 1 else ''}, got {len(xs)}", span)
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
                                 f"the last at '{path}'", span, hint=TOO_LARGE)
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


def layer_args(sig: LayerSig, given: dict[str, tuple[Any, Span]]) -> dict[str, Any]:
    """A layer's arguments, checked against its signature, in their JSON form (the defaults of
    those not given filled in)."""
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
    return args


def renamed(d: Decision, name: str) -> Decision:
    d.name = name
    return d


def repeat_count(n: Any, e: A.Repeat) -> int:
    """A repeat's count, checked: an integer from 0 to MAX_REPEAT."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise ArchTypeError(f"a repeat count is an integer, got {describe(n)}", e.count.span)
    if n < 0:
        raise ArchValueError(f"a repeat count cannot be negative ({n})", e.count.span)
    if n > MAX_REPEAT:
        raise ArchLimitError(f"repeat({n:,}) is more than the limit of {MAX_REPEAT:,} copies",
                             e.count.span)
    return n
