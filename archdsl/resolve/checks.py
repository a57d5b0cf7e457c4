"""The resolver's static checks: given a node whose names are resolved and the kinds of its parts,
raise the error it deserves (a misplaced tensor or layer, a wrong argument or tensor count,
labels given twice, an unknown train entry, recursion without a bound...). The functions here
neither walk nor resolve: `.names` calls each where the node is resolved, so errors come
in the order of the text.

May import: archdsl.ast, errors, layers, printer, shared_names (its walks), and .kinds,
.node_options; not
.names or archdsl.semantics (they import this).
"""

from __future__ import annotations

import networkx as nx

from .. import ast as A
from ..errors import ArchNameError, ArchRecursionError, ArchSyntaxError, ArchTypeError, did_you_mean
from ..layers import LAYERS, MERGES
from ..printer import format_expr
from ..shared_names import first_decision, first_shared, walk
from . import node_options as N
from .kinds import ANY, NET, TENSOR, VALUE, Ctx

__all__ = ["TRAIN_KEYS", "OPTIMIZERS", "DECISION_OPTIONS", "unknown", "check_value", "check_binop",
           "check_block_name", "once", "check_list_item", "check_negated", "check_compared",
           "misplaced_range", "check_shared_form", "check_shared_kind", "check_train_value",
           "unknown_layer", "check_stage", "check_net_body", "check_pipeline_body",
           "check_parallel", "check_stage_arity", "check_pipeline_stage", "Labels", "Signature", "ArgCheck",
           "check_merge", "check_merged", "check_apply_param", "check_applied_node",
           "check_applied_count", "check_option_labels", "check_decision_options", "check_range_form", "check_bool_form",
           "check_has_options", "check_choice_kinds", "no_decision", "check_top_param",
           "check_max_depth", "check_node_name", "check_node", "check_return", "check_constraint",
           "check_train_entry", "check_shared_placement", "check_recursion"]

TRAIN_KEYS = {
    "optimizer": "adam, adamw, sgd or rmsprop, optionally with arguments: adam(lr = 0.001)",
    "lr": "the learning rate",
    "batch": "the batch size",
    "epochs": "the number of training epochs",
    "weight_decay": "L2 penalty",
    "momentum": "SGD momentum",
    "schedule": "constant, cosine or step",
    "label_smoothing": "label smoothing for the cross-entropy loss",
    "seed": "the training seed",
    "task": "classification or regression (left out: told by the labels' type)",
}
OPTIMIZERS = frozenset({"adam", "adamw", "sgd", "rmsprop"})
DECISION_OPTIONS = {"choice": {"default", "prior"}, "int": {"step", "default", "log"},
                    "float": {"step", "default", "log"}, "bool": {"default", "prior"},
                    "some": {"min"}}


def _s(n: int) -> str:
    return "s" if n != 1 else ""


# ---- names and values ---------------------------------------------------------------------
def unknown(e: A.Name, ctx: Ctx, what: str) -> ArchNameError:
    """The error for a name that denotes nothing where a `what` (name, layer, node) is needed."""
    cands = set(ctx.locals) | set(ctx.gparams) | set(ctx.blocks) | set(LAYERS)
    if ctx.nodes:
        cands |= ctx.nodes
    hint = did_you_mean(e.id, cands)
    if hint is None and ctx.in_graph and what == "node":
        hint = "declare the graph's inputs first: `input n0`"
    return ArchNameError(f"unknown {what} '{e.id}'", e.span, hint=hint)


def check_value(x: A.Expr, kind: str, ctx: Ctx, what: str) -> str:
    """`x`, already resolved to be of `kind`, used as a value in `what`."""
    if isinstance(x, A.Name) and x.ref[0] == "symbol":
        raise unknown(x, ctx, "name")
    if kind == NET:
        raise ArchTypeError(f"a layer cannot be used in {what}", x.span)
    return kind


def check_binop(e: A.BinOp, lk: str, rk: str, ctx: Ctx) -> str:
    """The kind of `left op right` from its operands' kinds."""
    if TENSOR in (lk, rk):
        if e.op not in ("+", "*") or lk not in (TENSOR, ANY) or rk not in (TENSOR, ANY):
            raise ArchTypeError(
                f"'{e.op}' between a tensor and a value" if e.op in ("+", "*")
                else f"tensors can be added (+) or multiplied (*), not combined with '{e.op}'",
                e.span)
        return TENSOR
    check_value(e.left, lk, ctx, "arithmetic")
    check_value(e.right, rk, ctx, "arithmetic")
    return VALUE


def check_block_name(e: A.Name, blk: A.BlockDecl) -> None:
    """A block named without arguments is applied without any, wherever it ends up."""
    missing = [p.name for p in blk.params if p.default is None]
    if missing:
        raise ArchTypeError(
            f"block '{e.id}' needs argument{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{m}'" for m in missing), e.span,
            hint=f"call it with arguments: `{e.id}({', '.join(missing)})`")


def once(name: str, seen: set[str] | dict[str, str], message: str, span: A.Span) -> None:
    """`name` is not yet declared (`seen`); `message` has a `{}` for it."""
    if name in seen:
        raise ArchNameError(message.format(name), span)


def check_list_item(x: A.Expr, kind: str) -> None:
    """An item of a list literal is a value."""
    if kind not in (VALUE, ANY):
        raise ArchTypeError("a list holds values, not layers or tensors", x.span)


def check_negated(e: A.Neg, kind: str) -> None:
    """`-x`: `x` (already checked to be a value or unknown) is no tensor."""
    if kind == TENSOR:
        raise ArchTypeError("a tensor cannot be negated", e.span)


def check_compared(e: A.Compare, side: A.Expr, kind: str, ctx: Ctx) -> None:
    """One side of a comparison: not a tensor; an unknown name only in == and !=."""
    if kind == TENSOR:
        raise ArchTypeError("tensors cannot be compared", side.span)
    if isinstance(side, A.Name) and side.ref[0] == "symbol" and e.op not in ("==", "!="):
        raise unknown(side, ctx, "name")


def misplaced_range(e: A.Range) -> ArchSyntaxError:
    """A range outside int(...) and float(...)."""
    return ArchSyntaxError("a range `a .. b` belongs inside int(...) or float(...)", e.span,
                           hint="e.g. int(1 .. 8) or float(0.0 .. 0.5)")


def check_shared_form(e: A.Shared) -> None:
    """Inline `shared` marks a decision call (checked before the call is resolved)."""
    inner = e.expr
    if not (isinstance(inner, A.Call) and inner.func in ("choice", "int", "float", "bool")):
        raise ArchSyntaxError("`shared` marks a decision: shared choice(...), int(...), "
                              "float(...) or bool()", e.span)


def check_shared_kind(e: A.Shared, kind: str) -> str:
    """Inline `shared` shares a value decision; returns its kind."""
    if kind != VALUE:
        raise ArchTypeError("only value decisions can be shared inline; for a shared "
                            "sub-network write `shared NAME = ...` at the top level", e.span)
    return kind


def check_train_value(a: A.Arg, kind: str) -> None:
    """An argument of a train setting's call (`adam(lr = 0.001)`)."""
    if kind not in (VALUE, ANY):
        raise ArchTypeError("train settings are values", a.value.span)


def unknown_layer(e: A.Call, ctx: Ctx) -> ArchNameError:
    """The error for a call of a name that is no block, layer, decision or param."""
    if e.func in ("count", "any", "all", "decision"):
        what = "names decisions inside count(...), any(...) or all(...)" \
            if e.func == "decision" else "counts over decisions"
        hint = (f"{e.func}(...) {what} in a top-level `require`/`forbid`, e.g. "
                'require count(decision("network/*/kernel") == 7) <= 2')
    else:
        hint = did_you_mean(e.func, set(LAYERS) | set(ctx.blocks) | A.DECISION_FUNCS)
    return ArchNameError(f"unknown layer '{e.func}'", e.func_span, hint=hint)


# ---- stages and alternatives ----------------------------------------------------------------
def check_stage(x: A.Expr, kind: str, ctx: Ctx) -> None:
    """A stage of a pipeline, an alternative or a body is a sub-network or a tensor."""
    if kind == VALUE:
        if isinstance(x, A.Name) and x.ref[0] == "symbol":
            raise unknown(x, ctx, "layer")
        raise ArchTypeError("expected a layer here, not a value", x.span)


def check_net_body(x: A.Expr, kind: str, what: str) -> None:
    """The body of a repeat, optional or residual (or a skip path) is not a tensor."""
    if kind == TENSOR:
        raise ArchTypeError(f"{what} is a layer or pipeline, not a tensor", x.span)


def check_pipeline_body(x: A.Expr, kind: str) -> None:
    """A body that is no graph is a pipeline or a layer."""
    if kind == VALUE:
        raise ArchTypeError("expected a layer or a pipeline here, not a value", x.span)


def check_parallel(e: A.Parallel) -> None:
    """A known merge and at least two branches (checked before the branches are resolved)."""
    if e.merge not in MERGES:
        raise ArchNameError(f"unknown merge '{e.merge}'", e.merge_span,
                            hint=did_you_mean(e.merge, MERGES) or "use add, concat or multiply")
    if len(e.alts) < 2:
        raise ArchTypeError("parallel needs at least two branches", e.span)


def check_stage_arity(x: A.Expr, n: int | None) -> None:
    """A stage of a pipeline receives one tensor: a sub-network taking `n` != 1 cannot be one."""
    if n is not None and n != 1:
        name = x.id if isinstance(x, A.Name) else format_expr(x)
        what = "several tensors" if n > 1 else "no tensor"
        raise ArchTypeError(f"'{name}' takes {n} tensor inputs, so it cannot be a stage that "
                            "receives one", x.span,
                            hint=f"it takes {what}: call it on graph nodes, e.g. "
                            f"`{_call_example(x, n)}`")


def _call_example(x: A.Expr, n: int) -> str:
    """`x` written as a call on `n` graph nodes, for a hint."""
    nodes = ", ".join(f"n{i}" for i in range(n))
    if isinstance(x, A.Call):
        rest = ", ".join(format_expr(a.value) if a.name is None
                         else f"{a.name} = {format_expr(a.value)}" for a in x.args)
        return f"{x.func}({nodes}{', ' + rest if rest else ''})"
    return f"{x.id}({nodes})" if isinstance(x, A.Name) else nodes


def check_pipeline_stage(st: A.Expr, kind: str) -> None:
    """A stage after the first of a pipeline: a sub-network of one input."""
    if kind == TENSOR:
        raise ArchTypeError("a tensor can only start a pipeline", st.span,
                            hint="use a layer here, or name nodes in a graph body")
    if isinstance(st, A.Call) and st.func in MERGES and isinstance(st.ref, tuple):
        raise ArchTypeError(f"'{st.func}' merges several tensors; it cannot be a stage",
                            st.span, hint=f"write {st.func}(a, b) in a graph body")


class Labels:
    """The labels of alternatives, which must be distinct where they are the values of a
    decision (one_of; parallel branches are not decisions)."""

    __slots__ = ("labels", "seen", "distinct")

    def __init__(self, distinct: bool) -> None:
        self.labels: list[str] = []
        self.seen: set[str] = set()  # a set: a one_of of n alternatives is checked in O(n)
        self.distinct = distinct

    def add(self, alt: A.Alt, kind: str, alts: list[A.Alt] | None = None,
            nodes: set[str] | None = None) -> None:
        """Add `alt`, of `kind`; `alts` (a one_of's, in a graph body with `nodes`) make the
        hint of a tensor alternative show how to choose the operations instead."""
        if kind == TENSOR:
            hint = None
            if alts is not None:
                hint = N.one_of_hint(alts, nodes or set())
            raise ArchTypeError("an alternative is a layer or pipeline, not a tensor: one_of "
                                "cannot choose between computations on nodes", alt.expr.span,
                                hint=hint)
        label = alt.label or format_expr(alt.expr)
        if self.distinct and label in self.seen:
            raise ArchNameError(f"two alternatives are both '{label}'", alt.span,
                                hint="label them: `one_of { a: ... | b: ... }`")
        self.labels.append(label)
        self.seen.add(label)


# ---- calls ------------------------------------------------------------------------------------
class Signature:
    """What a block or layer takes: argument `names` (the `required` ones without a default) and
    `arity` tensors; `what` names it in messages ("layer 'linear'")."""

    __slots__ = ("names", "required", "what", "arity", "layer")

    def __init__(self, names: list[str], required: set[str], what: str, arity: int) -> None:
        self.names, self.required, self.what, self.arity = names, required, what, arity
        self.layer = what.startswith("layer")  # a layer's arguments are values, never layers


class ArgCheck:
    """The arguments of one call of `sig`, given one by one with their kinds: tensor inputs
    first, then values by position or by name, each once, the required ones all given, and as
    many tensors as the callee takes."""

    __slots__ = ("sig", "tensors", "positional", "given")

    def __init__(self, sig: Signature) -> None:
        self.sig = sig
        self.tensors = 0
        self.positional = 0
        self.given: set[str] = set()

    def add(self, a: A.Arg, kind: str) -> None:
        sig = self.sig
        names, what = sig.names, sig.what
        if a.name is None:
            if kind == TENSOR:
                if self.positional:
                    raise ArchTypeError("tensor inputs come before the other arguments",
                                        a.value.span)
                self.tensors += 1
                return
            positional = self.positional
            if positional >= len(names):
                raise ArchTypeError(
                    f"{what} takes {len(names)} argument{_s(len(names))}"
                    f" but {positional + 1} or more were given", a.value.span,
                    hint=("its arguments are: " + ", ".join(names)) if names else None)
            self.given.add(names[positional])
            self.positional = positional + 1
        else:
            if a.name not in names:
                raise ArchNameError(f"{what} has no argument '{a.name}'", a.span,
                                    hint=did_you_mean(a.name, names) or
                                    ("its arguments are: " + ", ".join(names) if names
                                     else "it takes no arguments"))
            if a.name in self.given:
                raise ArchTypeError(f"argument '{a.name}' is given twice", a.span)
            self.given.add(a.name)
        if kind == NET and sig.layer:
            raise ArchTypeError(f"{what} expects values, not a layer", a.value.span)

    def finish(self, e: A.Call) -> str:
        """The kind of the call: a tensor where it is applied to tensors, else a sub-network."""
        sig, given = self.sig, self.given
        if not sig.required <= given:
            missing = [n for n in sig.names if n in sig.required and n not in given]
            raise ArchTypeError(f"{sig.what} needs argument{'s' if len(missing) > 1 else ''} "
                                + ", ".join(f"'{m}'" for m in missing), e.span)
        if self.tensors:
            if self.tensors != sig.arity:
                raise ArchTypeError(f"{sig.what} takes {sig.arity} tensor input"
                                    f"{_s(sig.arity)}, got {self.tensors}", e.span)
            return TENSOR
        return NET


def check_merge(e: A.Call) -> None:
    """The form of a merge call (add, concat, multiply) before its arguments are resolved."""
    for a in e.args:
        if a.name is not None and not (a.name == "project" and e.func == "add"):
            raise ArchTypeError(f"'{e.func}' has no argument '{a.name}'", a.span,
                                hint="add(a, b, project = true) is the only named option")
    if len(e.positional) < 2:
        raise ArchTypeError(f"'{e.func}' needs at least two tensors", e.span)


def check_merged(e: A.Call, a: A.Arg, kind: str) -> None:
    """A positional argument of a merge is a tensor."""
    if kind not in (TENSOR, ANY):
        raise ArchTypeError(f"'{e.func}' merges tensors (graph nodes)", a.value.span)


def check_apply_param(e: A.Call, kind: str) -> None:
    """`NAME(...)` where NAME is a param of `kind`: it must hold a sub-network and be given
    graph nodes (the nodes' kinds are checked one by one as they are resolved)."""
    f = e.func
    if kind not in (NET, ANY):
        raise ArchTypeError(f"'{f}' is a parameter and cannot be called", e.func_span,
                            hint="only blocks and layers take arguments; a param that holds "
                            f"a sub-network is applied to graph nodes: `{f}(n0)`")
    if not e.args:
        raise ArchTypeError(f"'{f}' holds a sub-network: apply it to graph nodes, "
                            f"`{f}(n0)`, or use it as a stage, `-> {f}`", e.span)


def check_applied_node(e: A.Call, a: A.Arg, kind: str | None) -> None:
    """An argument of an applied sub-network param: a graph node (`kind`: None if named)."""
    if a.name is not None or kind != TENSOR:
        raise ArchTypeError(
            f"'{e.func}' holds a sub-network: its arguments are the graph nodes it is "
            "applied to", a.span,
            hint=f"its other arguments are fixed where '{e.func}' is defined")


def check_applied_count(e: A.Call, arity: int | None) -> None:
    """An applied sub-network param gets as many nodes as it takes (`arity`, if known)."""
    if arity is not None and arity != len(e.args):
        raise ArchTypeError(f"'{e.func}' takes {arity} tensor input{_s(arity)}, "
                            f"got {len(e.args)}", e.span)


# ---- decisions ----------------------------------------------------------------------------------
def check_option_labels(e: A.Call) -> None:
    """Labels (`choice(small: 8, big: 32)`) stand only on choice options: on all or none of
    them, each label once."""
    labelled = [a for a in e.args if a.label is not None]
    if not labelled:
        return
    if e.func != "choice":
        raise ArchSyntaxError(f"only choice(...) options take labels, not {e.func}(...)'s",
                              labelled[0].span)
    seen: set[str] = set()
    for a in e.args:
        if a.name is not None:
            continue
        if a.label is None:
            raise ArchSyntaxError("label every option of this choice, or none", a.span,
                                  hint=f"e.g. `choice({labelled[0].label}: ..., other: ...)`")
        if a.label in seen:
            raise ArchNameError(f"two options are both labelled '{a.label}'", a.span)
        seen.add(a.label)


def check_decision_options(e: A.Call) -> None:
    """The named options of a decision call are those its function takes."""
    allowed = DECISION_OPTIONS[e.func]
    for a in e.args:
        if a.name is not None and a.name not in allowed:
            raise ArchNameError(f"{e.func}(...) has no option '{a.name}'", a.span,
                                hint="its options are: " + ", ".join(sorted(allowed)))


def check_range_form(e: A.Call, pos: list[A.Expr]) -> None:
    """int(...) and float(...) take a range, then optionally `log`."""
    f = e.func
    if not pos or not isinstance(pos[0], A.Range):
        raise ArchSyntaxError(f"{f}(...) needs a range: {f}(low .. high)", e.span,
                              hint="e.g. int(1 .. 8, step = 1) or float(1e-4 .. 1e-1, log)")
    extra = pos[1:]
    if any(not (isinstance(x, A.Name) and x.id == "log") for x in extra):
        raise ArchSyntaxError(f"{f}(...) takes a range, then optionally `log`", extra[0].span)


def check_bool_form(pos: list[A.Expr]) -> None:
    """bool(...) has named options only."""
    if pos:
        raise ArchTypeError("bool() takes no options; it is true or false", pos[0].span)


def check_has_options(e: A.Call, pos: list[A.Expr]) -> None:
    """choice(...) and some(...) have options."""
    if not pos:
        raise ArchTypeError(f"{e.func}(...) needs at least one option", e.span)


def check_choice_kinds(e: A.Call, kinds: set[str]) -> str:
    """The kind of choice(...) or some(...) from its options' kinds (ANY dropped)."""
    if e.func == "some":
        if kinds - {TENSOR}:
            raise ArchTypeError("some(...) chooses among graph nodes", e.span)
        return TENSOR
    if len(kinds) > 1:
        raise ArchTypeError("a choice mixes " + " and ".join(sorted(kinds)) + "s", e.span)
    return kinds.pop() if kinds else ANY


def no_decision(x: A.Expr, what: str) -> None:
    """`x` (a range bound, an option of a value choice) holds no decision of its own."""
    for sub in walk(x):
        if isinstance(sub, A.Call) and sub.ref and sub.ref[0] == "decision":
            raise ArchTypeError(f"{what} cannot itself be a decision", sub.span,
                                hint="declare it as a param first")


# ---- declarations ---------------------------------------------------------------------------------
def check_top_param(pd: A.ParamDecl | A.SharedDecl, kind: str) -> None:
    """A top-level param or shared, its value resolved to `kind`."""
    if isinstance(pd, A.SharedDecl) and kind not in (NET, ANY):
        raise ArchTypeError(
            f"shared '{pd.name}' must be a sub-network (a block, layer or one_of)",
            pd.value.span, hint=f"for a value, write `param {pd.name} = ...`")
    if isinstance(pd.value, A.Shared):
        raise ArchSyntaxError("a top-level param is already one decision; drop `shared`",
                              pd.value.span)


def check_max_depth(blk: A.BlockDecl) -> None:
    """A block's `max_depth` bound is between 1 and 64."""
    if blk.max_depth is not None and not 1 <= blk.max_depth <= 64:
        raise ArchTypeError("max_depth must be between 1 and 64", blk.span)


def check_node_name(st: A.NodeStmt, nodes: set[str], ctx: Ctx) -> None:
    """A graph node's name is new: no other node, no param."""
    if st.name in nodes:
        raise ArchNameError(f"node '{st.name}' is defined twice", st.span)
    if st.name in ctx.locals or st.name in ctx.gparams:
        raise ArchNameError(f"node '{st.name}' hides a param of the same name", st.span)


def check_node(st: A.NodeStmt, kind: str, body: A.Body, ctx: Ctx) -> None:
    """A graph node is computed from other nodes."""
    if kind not in (TENSOR, ANY):
        first = next(iter(body.inputs), None) or next(iter(sorted(ctx.inputs)), None) or "x"
        raise ArchTypeError(
            f"node '{st.name}' must be computed from other nodes", st.value.span,
            hint=f"apply it to a node, e.g. `layer({first})` or `{first} -> layer`")


def check_return(x: A.Expr, kind: str) -> None:
    """A graph's `return` names a node (or computes on nodes)."""
    if kind not in (TENSOR, ANY):
        raise ArchTypeError("`return` needs a node of the graph", x.span)


def check_constraint(c: A.Constraint, kind: str) -> None:
    """A `require`/`prefer` condition is a value and names params, not decisions."""
    if kind not in (VALUE, ANY):
        raise ArchTypeError(f"`{c.kind}` needs a condition", c.expr.span)
    d = first_decision(c.expr)
    if d is not None:
        raise ArchTypeError(f"a decision cannot stand in a `{c.kind}` condition", d.span,
                            hint="make it a param and name the param in the condition")
    nodes = list(walk(c.expr))
    count = next((x for x in nodes if isinstance(x, A.Call) and x.ref and x.ref[0] == "count"),
                 None)
    metric = next((x for x in nodes if isinstance(x, A.Name) and x.ref
                   and x.ref[0] == "metric"), None)
    if count is not None and metric is not None:
        raise ArchTypeError(f"a `{c.kind}` condition counts decisions or reads {metric.id}, "
                            "not both", metric.span,
                            hint="write two constraints: one over decisions, one on "
                            f"{metric.id}")


def check_train_entry(te: A.TrainEntry, seen: set[str]) -> None:
    """A train entry is a known one, set once (`seen`: the entries before it)."""
    if te.name in seen:
        raise ArchNameError(f"train entry '{te.name}' is set twice", te.span)
    seen.add(te.name)
    if te.name not in TRAIN_KEYS:
        raise ArchNameError(f"unknown train entry '{te.name}'", te.span,
                            hint=did_you_mean(te.name, TRAIN_KEYS)
                            or "known entries: " + ", ".join(TRAIN_KEYS))


def check_shared_placement(mod: A.Module, blocks: dict[str, A.BlockDecl]) -> None:
    """Inline `shared` stands in no block parameter's default, and no input's shape holds a
    decision."""
    for blk in blocks.values():
        for p in blk.params:
            sh = first_shared(p.default) if p.default is not None else None
            if sh is not None:
                raise ArchSyntaxError(
                    "`shared` cannot stand in a block parameter's default", sh.span,
                    hint="make it a local param of the body (`param NAME = shared "
                    "choice(...)`), or pass it as the argument")
    for inp in mod.inputs:
        d = first_decision(inp.shape)
        if d is not None:
            raise ArchTypeError("an input's shape is fixed: it cannot hold a decision", d.span)


def check_recursion(calls: list[tuple[A.BlockDecl | None, A.BlockDecl, A.Span]],
                    blocks: dict[str, A.BlockDecl]) -> None:
    """Blocks that call themselves (directly or through others) declare a `max_depth`.
    `calls`: (calling block or None at the top level, called block, where), in text order."""
    g = nx.DiGraph()
    sites = {}
    for caller, callee, span in calls:
        if caller is None:
            continue
        g.add_edge(caller.name, callee.name)
        sites.setdefault((caller.name, callee.name), span)
    for comp in nx.strongly_connected_components(g):
        cyclic = len(comp) > 1 or any(g.has_edge(n, n) for n in comp)
        if not cyclic:
            continue
        for name in sorted(comp):
            blk = blocks.get(name)
            if blk is not None and blk.max_depth is None:
                site = next(s for (a, b), s in sites.items() if a == name and b in comp)
                others = sorted(comp - {name})
                via = f" (through {', '.join(others)})" if others else ""
                raise ArchRecursionError(
                    f"block '{name}' calls itself{via} with no depth bound", site,
                    hint=f"declare a bound: `block {name}(...) max_depth 3 {{ ... }}`; "
                    "at the bound, alternatives that recurse further are not chosen")
