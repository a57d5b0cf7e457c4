"""Syntax tree -> search-space IR: imports, name resolution, static checks.

After `resolve`, every `Name` and `Call` in the tree carries a `ref` saying what it denotes, every
`one_of` knows its labels, every `shared` decision knows its name, and the whole space has been
checked for unknown names, wrong argument counts, misplaced tensors or layers, and unbounded
recursion. Values that depend on decisions are checked later, when they are known.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from . import ast as A
from .errors import (
    ArchDSLError,
    ArchImportError,
    ArchNameError,
    ArchRecursionError,
    ArchSyntaxError,
    ArchTypeError,
    did_you_mean,
)
from .layers import LAYERS, MERGES, LayerSig
from .naming import Scope
from .parser import parse
from .printer import format_expr
from .shared_names import (
    drop_shared,
    first_decision,
    first_shared,
    static_names,
    static_stage,
    walk,
)
from .sources import find_import, import_roots, read_source

__all__ = ["SpaceIR", "resolve_file", "resolve_text", "MAX_IMPORTS", "block_arity", "net_arity"]

MAX_IMPORTS = 64
METRICS_TOP = frozenset({"params", "flops"})
METRICS_BLOCK = frozenset({"edges"})
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
}
OPTIMIZERS = frozenset({"adam", "adamw", "sgd", "rmsprop"})

VALUE, NET, TENSOR, ANY = "value", "net", "tensor", "any"


@dataclass(eq=False)
class SpaceIR:
    """A resolved search space: what the interpreter walks."""

    file: str
    text: str
    inputs: list[A.InputDecl]
    params: list[A.ParamDecl | A.SharedDecl]
    blocks: dict[str, A.BlockDecl]
    network: A.Body | None
    network_span: A.Span | None
    train: list[A.TrainEntry]
    constraints: list[A.Constraint]
    # per body: the shared decisions it owns, with their body-relative names
    shared_in: dict[int, list[tuple[A.Shared, str]]] = field(default_factory=dict)
    param_kinds: dict[str, str] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)  # id(expr) -> value/net/tensor/any
    files: list[str] = field(default_factory=list)


def resolve_file(path: str | Path, import_paths: Sequence[str | Path] = ()) -> SpaceIR:
    """Read, parse and check a .arch file; its imports are read from its own folder (symbolic
    links resolved) and from `import_paths`, nowhere else."""
    text = read_source(path)
    key = Path(os.path.realpath(path))
    roots = import_roots(key.parent, import_paths)
    return _Resolver(roots).resolve_main(parse(text, str(path)), text, key)


def resolve_text(text: str, file: str = "<string>", base_dir: str | Path | None = None,
                 import_paths: Sequence[str | Path] = ()) -> SpaceIR:
    """Parse and check .arch text; imports are read from `base_dir` (default: the current
    folder) and from `import_paths`, nowhere else."""
    roots = import_roots(Path(base_dir) if base_dir is not None else Path.cwd(), import_paths)
    return _Resolver(roots).resolve_main(parse(text, file), text, roots[0] / "<string>")


def _no_network(mod: A.Module, text: str) -> ArchSyntaxError:
    """The error for a main file without a `network` section (a library, or an empty file),
    at the end of its text."""
    lines = text.rstrip("\n").split("\n")
    line, col = len(lines), len(lines[-1]) + 1
    name = Path(mod.file).name
    return ArchSyntaxError(
        "this file has no `network` section" + (" (it is empty)" if not text.strip() else "")
        + ": a file without a network is a library of blocks and may only be imported",
        A.Span(mod.file, line, col, line, col + 1, text),
        hint=f"add `network {{ ... }}` to search it, or import it from a file that has one: "
             f'import "{name}"')


@dataclass
class _Ctx:
    blocks: dict[str, A.BlockDecl]
    gparams: dict[str, str]  # name -> kind
    locals: set[str] = field(default_factory=set)
    nodes: set[str] | None = None  # graph node names, in graph bodies
    inputs: set[str] = field(default_factory=set)  # network inputs
    metrics: frozenset[str] = frozenset()
    in_train: bool = False
    in_graph: bool = False
    main: bool = True


class _Resolver:
    def __init__(self, roots: list[Path]) -> None:
        self.roots = roots  # the folders imports may read from (sources.import_roots)
        self.loaded: dict[Path, A.Module] = {}
        self.file_blocks: dict[Path, dict[str, A.BlockDecl]] = {}
        self.shared_in: dict[int, list[tuple[A.Shared, str]]] = {}
        self._may_share: dict[int, bool] = {}  # id of a file's text -> holds the word `shared`
        self.calls: list[tuple[A.BlockDecl | None, A.BlockDecl, A.Span]] = []
        self.kinds: dict[int, str] = {}  # id(expr) -> value / net / tensor / any
        self.arity: dict[str, int] = {}  # top-level param -> tensor inputs of its sub-network

    # ---- files and imports ---------------------------------------------------------
    def resolve_main(self, mod: A.Module, text: str, key: Path) -> SpaceIR:
        blocks = self._load_blocks(mod, key, [key])
        gparams: dict[str, str] = {}
        for pd in mod.params:
            ctx = _Ctx(blocks, gparams)  # the params before this one (not a copy: O(n) in all)
            if pd.name in gparams:
                raise ArchNameError(f"param '{pd.name}' is declared twice", pd.span)
            if pd.name in blocks or pd.name in LAYERS:
                raise ArchNameError(f"param '{pd.name}' has the name of a block or layer", pd.span)
            kind = self.expr(pd.value, ctx)
            if isinstance(pd, A.SharedDecl) and kind not in (NET, ANY):
                raise ArchTypeError(
                    f"shared '{pd.name}' must be a sub-network (a block, layer or one_of)",
                    pd.value.span, hint=f"for a value, write `param {pd.name} = ...`")
            if isinstance(pd.value, A.Shared):
                raise ArchSyntaxError("a top-level param is already one decision; drop `shared`",
                                      pd.value.span)
            gparams[pd.name] = NET if isinstance(pd, A.SharedDecl) else kind
            arity = self._arity_of(pd.value, kind)
            if arity is not None:
                self.arity[pd.name] = arity
        input_names = set()
        for inp in mod.inputs:
            if inp.name in input_names or inp.name in gparams:
                raise ArchNameError(f"'{inp.name}' is declared twice", inp.span)
            input_names.add(inp.name)
            self.expr(inp.shape, _Ctx(blocks, {}))
        for blk in blocks.values():
            if blk.module == mod.file:
                self.block(blk, _Ctx(blocks, gparams))
        if mod.network is None:
            raise _no_network(mod, text)
        if not mod.inputs:
            raise ArchNameError("the network has no input", mod.network_span,
                                hint="declare one before it: `input image: [1, 8, 8]`")
        ctx = _Ctx(blocks, gparams, inputs=input_names, metrics=METRICS_BLOCK)
        self.body(mod.network, ctx, "network")
        if mod.network.is_graph is False and len(mod.inputs) > 1:
            kind = self.kinds.get(id(mod.network.result))
            if kind != TENSOR:
                raise ArchTypeError("a network with several inputs must name them: "
                                    "start the pipeline with an input, or write a graph",
                                    mod.network.result.span)
        seen = set()
        for te in mod.train:
            if te.name in seen:
                raise ArchNameError(f"train entry '{te.name}' is set twice", te.span)
            seen.add(te.name)
            if te.name not in TRAIN_KEYS:
                raise ArchNameError(f"unknown train entry '{te.name}'", te.span,
                                    hint=did_you_mean(te.name, TRAIN_KEYS)
                                    or "known entries: " + ", ".join(TRAIN_KEYS))
            self.expr(te.value, _Ctx(blocks, gparams, in_train=True))
        for c in mod.constraints:
            self.constraint(c, _Ctx(blocks, gparams, metrics=METRICS_TOP))
        self._check_recursion(blocks)
        self._name_shared(mod, blocks)
        return SpaceIR(mod.file, text, mod.inputs, mod.params, blocks, mod.network,
                       mod.network_span, mod.train, mod.constraints, self.shared_in, gparams,
                       self.kinds, [str(p) for p in self.loaded])

    def _load_blocks(self, mod: A.Module, key: Path, stack: list[Path]) -> dict[str, A.BlockDecl]:
        if key in self.file_blocks:
            return self.file_blocks[key]
        if len(self.loaded) > MAX_IMPORTS:
            raise ArchImportError(f"more than {MAX_IMPORTS} imported files", mod.span)
        self.loaded[key] = mod
        blocks: dict[str, A.BlockDecl] = {}
        for imp in mod.imports:
            target = find_import(imp.path, key.parent, self.roots, imp.span)
            if target in stack:
                cycle = " -> ".join(p.name for p in stack[stack.index(target):] + [target])
                raise ArchImportError(f"import cycle: {cycle}", imp.span)
            try:
                text = read_source(target)
            except ArchSyntaxError:  # not text: located in the imported file, none of it quoted
                raise
            except ArchDSLError as e:
                raise ArchImportError(f"cannot import '{imp.path}': {e.message}", imp.span) from None
            sub = parse(text, str(target))
            sub_blocks = self._load_blocks(sub, target, stack + [target])
            wanted = imp.names if imp.names is not None else [
                b for b, d in sub_blocks.items() if d.module == sub.file]
            for n in wanted:
                if n not in sub_blocks:
                    raise ArchImportError(f"'{imp.path}' defines no block '{n}'", imp.span,
                                          hint=did_you_mean(n, sub_blocks))
                if n in blocks and blocks[n] is not sub_blocks[n]:
                    raise ArchNameError(f"block '{n}' is imported twice", imp.span)
                blocks[n] = sub_blocks[n]
        for b in mod.blocks:
            if b.name in blocks:
                raise ArchNameError(f"block '{b.name}' is defined twice", b.span,
                                    hint="another definition is imported or earlier in this file")
            if b.name in A.DECISION_FUNCS:
                raise ArchNameError(f"'{b.name}' is a built-in decision and cannot name a block",
                                    b.span)
            blocks[b.name] = b
        self.file_blocks[key] = blocks
        if key != stack[0]:
            for b in mod.blocks:
                self.block(b, _Ctx(blocks, {}, main=False))
        return blocks

    # ---- bodies ---------------------------------------------------------------------
    def block(self, blk: A.BlockDecl, ctx: _Ctx) -> None:
        names = set()
        for p in blk.params:
            if p.name in names:
                raise ArchNameError(f"parameter '{p.name}' is declared twice", p.span)
            if p.default is not None:  # sees the parameters before it (`names`, not a copy:
                # n parameters are checked in O(n))
                self.expr(p.default, _Ctx(ctx.blocks, ctx.gparams, names, main=ctx.main))
            names.add(p.name)
        if blk.max_depth is not None and not 1 <= blk.max_depth <= 64:
            raise ArchTypeError("max_depth must be between 1 and 64", blk.span)
        inner = _Ctx(ctx.blocks, ctx.gparams, names, metrics=METRICS_BLOCK, main=ctx.main)
        self.current_block = blk
        self.body(blk.body, inner, blk.name)
        self.current_block = None

    current_block: A.BlockDecl | None = None

    def body(self, body: A.Body, ctx: _Ctx, where: str) -> None:
        for pd in body.params:
            if pd.name in ctx.locals:
                raise ArchNameError(f"'{pd.name}' is declared twice in {where}", pd.span)
            self.expr(pd.value, ctx)
            ctx.locals.add(pd.name)
        if body.is_graph:
            nodes: set[str] = set(ctx.inputs)
            for n in body.inputs:
                if n in nodes:
                    raise ArchNameError(f"input '{n}' is declared twice", body.span)
                nodes.add(n)
            ctx.nodes, ctx.in_graph = nodes, True
            for st in body.nodes:
                if st.name in nodes:
                    raise ArchNameError(f"node '{st.name}' is defined twice", st.span)
                if st.name in ctx.locals or st.name in ctx.gparams:
                    raise ArchNameError(f"node '{st.name}' hides a param of the same name", st.span)
                kind = self.expr(st.value, ctx)
                if kind not in (TENSOR, ANY):
                    raise ArchTypeError(
                        f"node '{st.name}' must be computed from other nodes",
                        st.value.span, hint=self._apply_hint(body, ctx))
                nodes.add(st.name)
            kind = self.expr(body.result, ctx)
            if kind not in (TENSOR, ANY):
                raise ArchTypeError("`return` needs a node of the graph", body.result.span)
        else:
            if ctx.inputs:
                ctx.nodes = set(ctx.inputs)
            kind = self.expr(body.result, ctx)
            if kind == VALUE:
                raise ArchTypeError("expected a layer or a pipeline here, not a value",
                                    body.result.span)
            self._single_input(body.result, kind)
        for c in body.constraints:
            self.constraint(c, ctx)

    def _apply_hint(self, body: A.Body, ctx: _Ctx) -> str:
        first = next(iter(body.inputs), None) or next(iter(sorted(ctx.inputs)), None) or "x"
        return f"apply it to a node, e.g. `layer({first})` or `{first} -> layer`"

    def constraint(self, c: A.Constraint, ctx: _Ctx) -> None:
        saved = ctx.metrics
        kind = self.expr(c.expr, ctx)
        ctx.metrics = saved
        if kind not in (VALUE, ANY):
            raise ArchTypeError(f"`{c.kind}` needs a condition", c.expr.span)
        d = first_decision(c.expr)
        if d is not None:
            raise ArchTypeError(f"a decision cannot stand in a `{c.kind}` condition", d.span,
                                hint="make it a param and name the param in the condition")

    # ---- expressions ------------------------------------------------------------------
    def expr(self, e: A.Expr, ctx: _Ctx) -> str:
        kind = getattr(self, "e_" + type(e).__name__)(e, ctx)
        self.kinds[id(e)] = kind
        return kind

    def e_Lit(self, e: A.Lit, ctx: _Ctx) -> str:
        return VALUE

    def e_ListLit(self, e: A.ListLit, ctx: _Ctx) -> str:
        for x in e.items:
            if self.expr(x, ctx) not in (VALUE, ANY):
                raise ArchTypeError("a list holds values, not layers or tensors", x.span)
        return VALUE

    def e_Name(self, e: A.Name, ctx: _Ctx) -> str:
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
            self._note_call(ctx, blk, e.span)
            # a block named without arguments is applied without any, wherever it ends up
            missing = [p.name for p in blk.params if p.default is None]
            if missing:
                raise ArchTypeError(
                    f"block '{n}' needs argument{'s' if len(missing) > 1 else ''} "
                    + ", ".join(f"'{m}'" for m in missing), e.span,
                    hint=f"call it with arguments: `{n}({', '.join(missing)})`")
            return NET
        if n in LAYERS:
            e.ref = ("layer", LAYERS[n])
            return NET
        if n in ctx.metrics:
            e.ref = ("metric", n)
            return VALUE
        e.ref = ("symbol", n)
        return VALUE

    def _unknown(self, e: A.Name, ctx: _Ctx, what: str) -> ArchNameError:
        cands = set(ctx.locals) | set(ctx.gparams) | set(ctx.blocks) | set(LAYERS)
        if ctx.nodes:
            cands |= ctx.nodes
        hint = did_you_mean(e.id, cands)
        if hint is None and ctx.in_graph and what == "node":
            hint = "declare the graph's inputs first: `input n0`"
        return ArchNameError(f"unknown {what} '{e.id}'", e.span, hint=hint)

    def _value_operand(self, x: A.Expr, ctx: _Ctx, what: str) -> str:
        return self._check_value(x, self.expr(x, ctx), ctx, what)

    def _check_value(self, x: A.Expr, kind: str, ctx: _Ctx, what: str) -> str:
        """`x`, already checked to be of `kind`, used as a value in `what`."""
        if isinstance(x, A.Name) and x.ref[0] == "symbol":
            raise self._unknown(x, ctx, "name")
        if kind == NET:
            raise ArchTypeError(f"a layer cannot be used in {what}", x.span)
        return kind

    def e_BinOp(self, e: A.BinOp, ctx: _Ctx) -> str:
        # each operand is checked once: checking it again would double the work per level
        lk = self.expr(e.left, ctx)
        rk = self.expr(e.right, ctx)
        if TENSOR in (lk, rk):
            if e.op not in ("+", "*") or lk not in (TENSOR, ANY) or rk not in (TENSOR, ANY):
                raise ArchTypeError(
                    f"'{e.op}' between a tensor and a value" if e.op in ("+", "*")
                    else f"tensors can be added (+) or multiplied (*), not combined with '{e.op}'",
                    e.span)
            return TENSOR
        self._check_value(e.left, lk, ctx, "arithmetic")
        self._check_value(e.right, rk, ctx, "arithmetic")
        return VALUE

    def e_Neg(self, e: A.Neg, ctx: _Ctx) -> str:
        kind = self._value_operand(e.operand, ctx, "arithmetic")
        if kind == TENSOR:
            raise ArchTypeError("a tensor cannot be negated", e.span)
        return VALUE

    def e_Compare(self, e: A.Compare, ctx: _Ctx) -> str:
        for side in (e.left, e.right):
            kind = self.expr(side, ctx)
            if kind == TENSOR:
                raise ArchTypeError("tensors cannot be compared", side.span)
            if isinstance(side, A.Name) and side.ref[0] == "symbol" and e.op not in ("==", "!="):
                raise self._unknown(side, ctx, "name")
        return VALUE

    def e_BoolOp(self, e: A.BoolOp, ctx: _Ctx) -> str:
        self._value_operand(e.left, ctx, f"'{e.op}'")
        self._value_operand(e.right, ctx, f"'{e.op}'")
        return VALUE

    def e_Not(self, e: A.Not, ctx: _Ctx) -> str:
        self._value_operand(e.operand, ctx, "'not'")
        return VALUE

    def e_Range(self, e: A.Range, ctx: _Ctx) -> str:
        raise ArchSyntaxError("a range `a .. b` belongs inside int(...) or float(...)", e.span,
                              hint="e.g. int(1 .. 8) or float(0.0 .. 0.5)")

    def _stage(self, x: A.Expr, ctx: _Ctx) -> str:
        kind = self.expr(x, ctx)
        if kind == VALUE:
            if isinstance(x, A.Name) and x.ref[0] == "symbol":
                raise self._unknown(x, ctx, "layer")
            raise ArchTypeError("expected a layer here, not a value", x.span)
        self._single_input(x, kind)
        return kind

    def _arity_of(self, x: A.Expr, kind: str) -> int | None:
        """How many tensors the sub-network `x` takes, where that is known statically."""
        if kind != NET:
            return None
        if isinstance(x, A.Name) and x.ref and x.ref[0] == "gparam":
            return self.arity.get(x.id)
        if isinstance(x, (A.Name, A.Call)) and x.ref and x.ref[0] == "block":
            return block_arity(x.ref[1])
        return None

    def _single_input(self, x: A.Expr, kind: str) -> None:
        """A stage of a pipeline receives one tensor: a cell with several inputs cannot be one."""
        n = self._arity_of(x, kind)
        if n is not None and n != 1:
            name = x.id if isinstance(x, A.Name) else format_expr(x)
            what = "several tensors" if n > 1 else "no tensor"
            raise ArchTypeError(f"'{name}' takes {n} tensor inputs, so it cannot be a stage that "
                                "receives one", x.span,
                                hint=f"it takes {what}: call it on graph nodes, e.g. "
                                f"`{_call_example(x, n)}`")

    def e_Pipeline(self, e: A.Pipeline, ctx: _Ctx) -> str:
        first = self._stage(e.stages[0], ctx)
        for st in e.stages[1:]:
            kind = self._stage(st, ctx)
            if kind == TENSOR:
                raise ArchTypeError("a tensor can only start a pipeline", st.span,
                                    hint="use a layer here, or name nodes in a graph body")
            if isinstance(st, A.Call) and st.func in MERGES and isinstance(st.ref, tuple):
                raise ArchTypeError(f"'{st.func}' merges several tensors; it cannot be a stage",
                                    st.span, hint=f"write {st.func}(a, b) in a graph body")
        return TENSOR if first == TENSOR else NET

    def e_Shared(self, e: A.Shared, ctx: _Ctx) -> str:
        inner = e.expr
        if not (isinstance(inner, A.Call) and inner.func in ("choice", "int", "float", "bool")):
            raise ArchSyntaxError("`shared` marks a decision: shared choice(...), int(...), "
                                  "float(...) or bool()", e.span)
        kind = self.expr(inner, ctx)
        if kind != VALUE:
            raise ArchTypeError("only value decisions can be shared inline; for a shared "
                                "sub-network write `shared NAME = ...` at the top level", e.span)
        return kind

    def e_Repeat(self, e: A.Repeat, ctx: _Ctx) -> str:
        self._value_operand(e.count, ctx, "a repeat count")
        self._stage(e.body, ctx)
        if self.kinds[id(e.body)] == TENSOR:
            raise ArchTypeError("a repeat body is a layer or pipeline, not a tensor", e.body.span)
        return NET

    def _alts(self, alts: list[A.Alt], ctx: _Ctx, distinct: bool = True) -> list[str]:
        """Check the alternatives and return their labels, which must be `distinct` where they
        are the values of a decision (one_of; parallel branches are not decisions)."""
        labels, seen = [], set()  # a set: a one_of of n alternatives is checked in O(n)
        for alt in alts:
            kind = self._stage(alt.expr, ctx)
            if kind == TENSOR:
                raise ArchTypeError("an alternative is a layer or pipeline, not a tensor",
                                    alt.expr.span)
            label = alt.label or format_expr(alt.expr)
            if distinct and label in seen:
                raise ArchNameError(f"two alternatives are both '{label}'", alt.span,
                                    hint="label them: `one_of { a: ... | b: ... }`")
            labels.append(label)
            seen.add(label)
        return labels

    def e_OneOf(self, e: A.OneOf, ctx: _Ctx) -> str:
        e.labels = self._alts(e.alts, ctx)
        return NET

    def e_Optional(self, e: A.Optional, ctx: _Ctx) -> str:
        self._net_body(e.body, ctx, "an optional body")
        return NET

    def _net_body(self, x: A.Expr, ctx: _Ctx, what: str) -> None:
        if self._stage(x, ctx) == TENSOR:
            raise ArchTypeError(f"{what} is a layer or pipeline, not a tensor", x.span)

    def e_Residual(self, e: A.Residual, ctx: _Ctx) -> str:
        self._net_body(e.body, ctx, "a residual body")
        if e.skip is not None:
            self._net_body(e.skip, ctx, "a skip path")
        return NET

    def e_Parallel(self, e: A.Parallel, ctx: _Ctx) -> str:
        if e.merge not in MERGES:
            raise ArchNameError(f"unknown merge '{e.merge}'", e.merge_span,
                                hint=did_you_mean(e.merge, MERGES) or "use add, concat or multiply")
        if len(e.alts) < 2:
            raise ArchTypeError("parallel needs at least two branches", e.span)
        self._alts(e.alts, ctx, distinct=False)
        return NET

    # ---- calls ------------------------------------------------------------------------
    def e_Call(self, e: A.Call, ctx: _Ctx) -> str:
        f = e.func
        if f in ctx.blocks:
            e.ref = ("block", ctx.blocks[f])
            self._note_call(ctx, ctx.blocks[f], e.func_span)
            names = [p.name for p in ctx.blocks[f].params]
            required = {p.name for p in ctx.blocks[f].params if p.default is None}
            return self._apply_args(e, ctx, names, required, f"block '{f}'",
                                    block_arity(ctx.blocks[f]))
        if f in A.DECISION_FUNCS:
            e.ref = ("decision", f)
            return self._decision(e, ctx)
        if f in LAYERS:
            sig: LayerSig = LAYERS[f]
            e.ref = ("layer", sig)
            if sig.inputs is None:
                return self._merge(e, ctx)
            names = [a.name for a in sig.args]
            required = {a.name for a in sig.args if a.required}
            return self._apply_args(e, ctx, names, required, f"layer '{f}'", sig.inputs)
        if f in ctx.locals or f in ctx.gparams:
            return self._apply_param(e, ctx)
        if ctx.in_train:
            e.ref = ("record", f)
            for a in e.args:
                if self.expr(a.value, ctx) not in (VALUE, ANY):
                    raise ArchTypeError("train settings are values", a.value.span)
            return VALUE
        hint = did_you_mean(f, set(LAYERS) | set(ctx.blocks) | A.DECISION_FUNCS)
        raise ArchNameError(f"unknown layer '{f}'", e.func_span, hint=hint)

    def _apply_param(self, e: A.Call, ctx: _Ctx) -> str:
        """`NAME(n0, n1)`: a param (a shared sub-network, a top-level param or a block's
        argument) holding a sub-network, applied to graph nodes."""
        f = e.func
        target = A.Name(e.func_span, f)
        kind = self.expr(target, ctx)
        if kind not in (NET, ANY):
            raise ArchTypeError(f"'{f}' is a parameter and cannot be called", e.func_span,
                                hint="only blocks and layers take arguments; a param that holds "
                                f"a sub-network is applied to graph nodes: `{f}(n0)`")
        if not e.args:
            raise ArchTypeError(f"'{f}' holds a sub-network: apply it to graph nodes, "
                                f"`{f}(n0)`, or use it as a stage, `-> {f}`", e.span)
        for a in e.args:
            if a.name is not None or self.expr(a.value, ctx) != TENSOR:
                raise ArchTypeError(
                    f"'{f}' holds a sub-network: its arguments are the graph nodes it is "
                    "applied to", a.span,
                    hint=f"its other arguments are fixed where '{f}' is defined")
        arity = self._arity_of(target, kind)
        if arity is not None and arity != len(e.args):
            raise ArchTypeError(f"'{f}' takes {arity} tensor input{'s' if arity != 1 else ''}, "
                                f"got {len(e.args)}", e.span)
        e.ref = ("apply", target)
        return TENSOR

    def _merge(self, e: A.Call, ctx: _Ctx) -> str:
        for a in e.args:
            if a.name is not None and not (a.name == "project" and e.func == "add"):
                raise ArchTypeError(f"'{e.func}' has no argument '{a.name}'", a.span,
                                    hint="add(a, b, project = true) is the only named option")
        if len(e.positional) < 2:
            raise ArchTypeError(f"'{e.func}' needs at least two tensors", e.span)
        for a in e.args:
            if a.name is not None:
                self.expr(a.value, ctx)
                continue
            if self.expr(a.value, ctx) not in (TENSOR, ANY):
                raise ArchTypeError(f"'{e.func}' merges tensors (graph nodes)", a.value.span)
        return TENSOR

    def _apply_args(self, e: A.Call, ctx: _Ctx, names: list[str], required: set[str],
                    what: str, arity: int) -> str:
        tensors = 0
        positional = 0
        given: set[str] = set()
        for a in e.args:
            kind = self.expr(a.value, ctx)
            if a.name is None:
                if kind == TENSOR:
                    if positional:
                        raise ArchTypeError("tensor inputs come before the other arguments",
                                            a.value.span)
                    tensors += 1
                    continue
                if positional >= len(names):
                    raise ArchTypeError(
                        f"{what} takes {len(names)} argument{'s' if len(names) != 1 else ''}"
                        f" but {positional + 1} or more were given", a.value.span,
                        hint=("its arguments are: " + ", ".join(names)) if names else None)
                given.add(names[positional])
                positional += 1
            else:
                if a.name not in names:
                    raise ArchNameError(f"{what} has no argument '{a.name}'", a.span,
                                        hint=did_you_mean(a.name, names) or
                                        ("its arguments are: " + ", ".join(names) if names
                                         else "it takes no arguments"))
                if a.name in given:
                    raise ArchTypeError(f"argument '{a.name}' is given twice", a.span)
                given.add(a.name)
            if kind == NET and (what.startswith("layer") or isinstance(a.value, A.Name)
                                and a.value.ref[0] == "layer" and what.startswith("layer")):
                raise ArchTypeError(f"{what} expects values, not a layer", a.value.span)
        missing = [n for n in names if n in required and n not in given]
        if missing:
            raise ArchTypeError(f"{what} needs argument{'s' if len(missing) > 1 else ''} "
                                + ", ".join(f"'{m}'" for m in missing), e.span)
        if tensors:
            if tensors != arity:
                raise ArchTypeError(f"{what} takes {arity} tensor input"
                                    f"{'s' if arity != 1 else ''}, got {tensors}", e.span)
            return TENSOR
        return NET

    def _decision(self, e: A.Call, ctx: _Ctx) -> str:
        f = e.func
        kw = e.keywords
        pos = e.positional
        allowed = {"choice": {"default", "prior"}, "int": {"step", "default", "log"},
                   "float": {"step", "default", "log"}, "bool": {"default", "prior"},
                   "some": {"min"}}[f]
        for a in e.args:
            if a.name is not None and a.name not in allowed:
                raise ArchNameError(f"{f}(...) has no option '{a.name}'", a.span,
                                    hint="its options are: " + ", ".join(sorted(allowed)))
        if f in ("int", "float"):
            if not pos or not isinstance(pos[0], A.Range):
                raise ArchSyntaxError(f"{f}(...) needs a range: {f}(low .. high)", e.span,
                                      hint="e.g. int(1 .. 8, step = 1) or float(1e-4 .. 1e-1, log)")
            extra = pos[1:]
            if any(not (isinstance(x, A.Name) and x.id == "log") for x in extra):
                raise ArchSyntaxError(f"{f}(...) takes a range, then optionally `log`",
                                      extra[0].span)
            for x in (pos[0].lo, pos[0].hi, *kw.values()):
                self._value_operand(x, ctx, "a range")
                self._no_decision(x, "a range bound")
            return VALUE
        if f == "bool":
            if pos:
                raise ArchTypeError("bool() takes no options; it is true or false", pos[0].span)
            for x in kw.values():
                self.expr(x, ctx)
            return VALUE
        if not pos:
            raise ArchTypeError(f"{f}(...) needs at least one option", e.span)
        kinds = set()
        for x in pos:
            k = self.expr(x, ctx)
            if isinstance(x, A.Range):
                raise ArchSyntaxError("ranges belong in int(...) or float(...)", x.span)
            kinds.add(k)
        for x in kw.values():
            self.expr(x, ctx)
        kinds.discard(ANY)
        if f == "some":
            if kinds - {TENSOR}:
                raise ArchTypeError("some(...) chooses among graph nodes", e.span)
            return TENSOR
        if len(kinds) > 1:
            raise ArchTypeError("a choice mixes " + " and ".join(sorted(kinds)) + "s", e.span)
        kind = kinds.pop() if kinds else ANY
        if kind == VALUE:
            for x in pos:
                self._no_decision(x, "an option")
        return kind

    def _no_decision(self, x: A.Expr, what: str) -> None:
        for sub in walk(x):
            if isinstance(sub, A.Call) and sub.ref and sub.ref[0] == "decision":
                raise ArchTypeError(f"{what} cannot itself be a decision", sub.span,
                                    hint="declare it as a param first")

    # ---- recursion ------------------------------------------------------------------------
    def _note_call(self, ctx: _Ctx, callee: A.BlockDecl, span: A.Span) -> None:
        self.calls.append((self.current_block, callee, span))

    def _check_recursion(self, blocks: dict[str, A.BlockDecl]) -> None:
        g = nx.DiGraph()
        sites = {}
        for caller, callee, span in self.calls:
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

    # ---- names of shared decisions ---------------------------------------------------------
    def _name_shared(self, mod: A.Module, blocks: dict[str, A.BlockDecl]) -> None:
        """Register each body's inline `shared` decisions (made once per instance of the body).
        Outside bodies, at the top level, every value is decided once per architecture, so
        `shared` there is dropped; in a parameter's default it is refused."""
        seen: set[int] = set()
        for blk in blocks.values():
            for p in blk.params:
                sh = first_shared(p.default) if p.default is not None else None
                if sh is not None:
                    raise ArchSyntaxError(
                        "`shared` cannot stand in a block parameter's default", sh.span,
                        hint="make it a local param of the body (`param NAME = shared "
                        "choice(...)`), or pass it as the argument")
            if id(blk.body) not in seen:
                seen.add(id(blk.body))
                self._shared_body(blk.body)
        if mod.network is not None:
            self._shared_body(mod.network)
        for inp in mod.inputs:
            d = first_decision(inp.shape)
            if d is not None:
                raise ArchTypeError("an input's shape is fixed: it cannot hold a decision", d.span)
        for pd in mod.params:
            drop_shared(pd)
        for te in mod.train:
            drop_shared(te)
        for c in mod.constraints:
            drop_shared(c)

    def _shared_body(self, body: A.Body) -> None:
        found: list[tuple[A.Shared, str]] = []
        text = body.span.text  # only the parser makes a Shared, from the word `shared`
        may = self._may_share.get(id(text))
        if may is None:
            may = self._may_share[id(text)] = not text or "shared" in text
        if not may:
            self.shared_in[id(body)] = found  # no `shared` in its file: nothing to name
            return
        sc = Scope("")
        for pd in body.params:
            static_names(pd.value, sc, pd.name, found)
        if body.is_graph:
            for st in body.nodes:
                static_names(st.value, sc.child(st.name), None, found)
            static_names(body.result, sc.child("return"), None, found)
        elif isinstance(body.result, A.Pipeline):
            static_names(body.result, sc, None, found)
        else:
            static_stage(body.result, sc, found, own=True)
        self.shared_in[id(body)] = found


def block_arity(blk: A.BlockDecl) -> int:
    """How many tensors a block takes: its graph's `input`s, or one for a pipeline body."""
    return len(blk.body.inputs) if blk.body.is_graph else 1


def net_arity(e: A.Expr) -> int:
    """How many tensors applying the sub-network `e` takes (a cell named or called without
    its nodes takes its inputs; anything else takes one)."""
    if isinstance(e, (A.Name, A.Call)) and e.ref and e.ref[0] == "block":
        return block_arity(e.ref[1])
    return 1


def _call_example(x: A.Expr, n: int) -> str:
    nodes = ", ".join(f"n{i}" for i in range(n))
    if isinstance(x, A.Call):
        rest = ", ".join(format_expr(a.value) if a.name is None
                         else f"{a.name} = {format_expr(a.value)}" for a in x.args)
        return f"{x.func}({nodes}{', ' + rest if rest else ''})"
    return f"{x.id}({nodes})" if isinstance(x, A.Name) else nodes
