"""Static facts about the IR that make counting and sampling cheap.

- `free(e)`: the local names an expression reads (so closures and memo keys hold only those).
- `decides(e)`: whether applying `e` can make a decision (if not, it counts as one architecture).
- `inert`: the decisions whose value the walk of a sample never reads again (a layer argument,
  which a sample does not build, a train setting, or the argument of a block parameter that is
  itself only ever a layer argument): sampling need not branch on their value.
- `value_only`: per block, the parameters whose value only reaches layer arguments (directly, in
  an expression without decisions, or passed on to another such parameter). A walk that builds
  nothing never reads them.
- structural names (computed by archdsl.structural): params whose value can change how many
  architectures a body has. The others' decisions multiply the count and can be sampled on their
  own, without enumeration.

May import: archdsl.ast, errors, layers, semantics, structural.
"""

from __future__ import annotations

from . import ast as A
from .errors import ArchTypeError
from .layers import MERGES
from .semantics import SpaceIR
from .structural import StructuralNames

__all__ = ["Analysis"]


class Analysis:
    def __init__(self, ir: SpaceIR, network: A.BlockDecl | None = None):
        self.ir = ir
        self.network = network
        self._free: dict[object, tuple[str, ...]] = {}
        self._decides: dict[int, bool] = {}
        self._alternatives_decide: dict[int, bool] = {}  # id(one_of or parallel) -> any?
        names = StructuralNames(ir, network)
        self.structural: dict[str, set[str]] = names.blocks  # block -> structural locals
        self.global_structural: set[str] = names.globals
        self._all: list[A.Node] | None = None  # _nodes()
        self._calls: list[A.Call] = []  # the Call nodes among them, in the same order
        self.value_only: dict[str, set[str]] = self._value_only_params()
        self.inert: set[int] = self._inert_decisions()
        self._check_input_choices()

    # ---- free variables -----------------------------------------------------------------
    def free(self, e: A.Node) -> tuple[str, ...]:
        k = id(e)
        r = self._free.get(k)
        if r is None:
            acc: set[str] = set()
            self._free_into(e, acc)
            r = self._free[k] = tuple(sorted(acc))
        return r

    def _free_into(self, e: A.Node, acc: set[str]) -> None:
        stack: list[A.Node] = [e]
        pop, push, children = stack.pop, stack.extend, A.children
        while stack:
            x = pop()
            t = x.__class__
            if t is A.Lit:  # the most common leaf
                continue
            if t is A.Name:
                if x.ref and x.ref[0] in ("local", "node"):
                    acc.add(x.id if x.ref[0] == "local" else "@" + x.id)
                continue
            if t is A.Shared:
                acc.add(f"$s{id(x)}")
                continue
            if t is A.Call and x.ref and x.ref[0] == "apply":
                stack.append(x.ref[1])  # the param applied: not among the call's fields
            push(children(x))

    def gfree(self, e: A.Node) -> tuple[str, ...]:
        """The top-level params an expression reads."""
        k = ("g", id(e))
        r = self._free.get(k)  # type: ignore[call-overload]
        if r is None:
            acc: set[str] = set()
            stack = [e]
            while stack:
                x = stack.pop()
                if isinstance(x, A.Name) and x.ref and x.ref[0] == "gparam":
                    acc.add(x.id)
                if isinstance(x, A.Call) and x.ref and x.ref[0] == "apply":
                    stack.append(x.ref[1])
                stack.extend(A.children(x))
            r = self._free[k] = tuple(sorted(acc))  # type: ignore[index]
        return r

    # ---- can it decide? ------------------------------------------------------------------
    def decides(self, e: A.Node) -> bool:
        if e.__class__ is A.Lit:  # the most common leaf: nothing to cache
            return False
        k = id(e)
        r = self._decides.get(k)
        if r is None:
            self._decides[k] = True  # recursion through blocks: assume it may
            r = self._decides[k] = self._decides_impl(e)
        return r

    def block_decides(self, b: A.BlockDecl) -> bool:
        body = b.body
        if body.constraints or self.ir.shared_in.get(id(body)):
            return True
        parts: list[A.Node] = [p.default for p in b.params if p.default is not None]
        parts += [p.value for p in body.params] + [n.value for n in body.nodes]
        return any(self.decides(x) for x in parts) or self.stage_decides(body.result)

    def some_alternative_decides(self, e: A.OneOf | A.Parallel) -> bool:
        """Whether applying any alternative (branch) of `e` can make a decision; if none
        can, each counts as one architecture."""
        r = self._alternatives_decide.get(id(e))
        if r is None:
            r = self._alternatives_decide[id(e)] = any(self.stage_decides(a.expr)
                                                      for a in e.alts)
        return r

    def stage_decides(self, e: A.Node) -> bool:
        """decides(), for an expression applied as a stage (a param there may hold a
        sub-network with decisions)."""
        if e.__class__ is A.Name and e.ref and e.ref[0] == "local":
            return True
        return self.decides(e)

    def _decides_impl(self, e: A.Node) -> bool:
        rule = _DECIDES.get(e.__class__)
        if rule is None:
            return any(self.decides(x) for x in A.children(e))
        return rule(self, e)

    # one small rule per construct whose answer is not "any of its children decides"
    def _d_always(self, e: A.Node) -> bool:
        return True

    def _d_pipeline(self, e: A.Pipeline) -> bool:
        return any(self.stage_decides(x) for x in e.stages)

    def _d_repeat(self, e: A.Repeat) -> bool:
        return self.stage_decides(e.body) or self.decides(e.count)

    def _d_residual(self, e: A.Residual) -> bool:
        return self.stage_decides(e.body) or (e.skip is not None and self.stage_decides(e.skip))

    def _d_parallel(self, e: A.Parallel) -> bool:
        return any(self.stage_decides(a.expr) for a in e.alts)

    def _d_shared(self, e: A.Shared) -> bool:
        return False  # bound with its body, not where it stands

    def _d_name(self, e: A.Name) -> bool:
        if not e.ref:
            return False
        kind = e.ref[0]
        if kind == "block":
            return self.block_decides(e.ref[1])
        if kind == "gparam":  # a param may hold a sub-network with decisions inside
            shared = any(isinstance(p, A.SharedDecl) and p.name == e.id
                         for p in self.ir.params)
            return not shared and self.ir.param_kinds.get(e.id) in ("net", "any")
        return False  # a local as a value; in a stage position see stage_decides

    def _d_call(self, e: A.Call) -> bool:
        ref = e.ref
        if ref:
            kind = ref[0]
            if kind == "decision":
                return True
            if kind == "apply" and self.stage_decides(ref[1]):
                return True
            if kind == "block" and self.block_decides(ref[1]):
                return True
        return any(self.decides(a.value) for a in e.args)

    # ---- inert decisions ------------------------------------------------------------------
    def _inert_decisions(self) -> set[int]:
        """Ids of the decision calls whose value is dropped as soon as it is made, when nothing
        is built: a non-tensor argument of a layer call (not a merge, whose `project` is read),
        a train setting, or an argument of a train record."""
        ir = self.ir
        out: set[int] = set()

        def is_decision(e: A.Node) -> bool:
            return isinstance(e, A.Call) and bool(e.ref) and e.ref[0] == "decision" \
                and e.func != "some" and ir.kinds.get(id(e)) != "tensor"

        for te in ir.train:
            v = te.value
            if is_decision(v):
                out.add(id(v))
            elif isinstance(v, A.Call) and v.ref and v.ref[0] == "record":
                out.update(id(a.value) for a in v.args if is_decision(a.value))
        out.update(id(p.default) for b in ir.blocks.values() for p in b.params
                   if p.default is not None and is_decision(p.default)
                   and p.name in self.value_only.get(b.name, ()))
        self._nodes()
        for x in self._calls:
            if x.ref and x.ref[0] == "layer" and x.func not in MERGES:
                out.update(id(a.value) for a in x.args if is_decision(a.value))
            if x.ref and x.ref[0] == "block":
                vo = self.value_only.get(x.ref[1].name, set())
                out.update(id(v) for pname, v in self._block_args(x) if pname in vo
                           and is_decision(v))
        return out

    def all_nodes(self) -> list[A.Node]:
        """_nodes() and the nodes of the train section (literals there too)."""
        nodes: list[A.Node] = list(self._nodes())
        stack: list[A.Node] = [te.value for te in self.ir.train]
        while stack:
            x = stack.pop()
            nodes.append(x)
            stack.extend(A.children(x))
        return nodes

    def has_continuous_calls(self) -> bool:
        """Whether the space holds a continuous decision anywhere (a `float` range without a
        step), train section included: without one, no configuration has a continuous value."""
        return any(isinstance(x, A.Call) and x.func == "float" and x.ref
                   and x.ref[0] == "decision" and "step" not in x.keywords
                   for x in self.all_nodes())

    # ---- input choices -------------------------------------------------------------------
    def _check_input_choices(self) -> None:
        """An option of `some` may not make a decision: every
        option is evaluated whichever is chosen, so its decisions would be made, and named, for
        nothing (and the count would not match the configurations)."""
        self._nodes()
        for x in self._calls:
            if x.ref and x.ref[0] == "decision" and x.func == "some":
                # a choice among computations decides first (interp.domains.expression_choice)
                for o in x.positional:
                    if self.decides(o):
                        raise ArchTypeError(
                            f"an option of {x.func}(...) among nodes cannot make a decision",
                            o.span, hint="give it its own node (n = a -> linear(choice(8, 16)))"
                            " and choose among the nodes")

    def _nodes(self) -> list[A.Node]:
        """Every node of the blocks, their parameters' defaults, the params and the network,
        once each, literals left out (what is asked of these nodes is about calls and names)."""
        if self._all is None:
            ir = self.ir
            stack: list[A.Node] = [b.body for b in ir.blocks.values()]
            stack += [p.default for b in ir.blocks.values() for p in b.params
                      if p.default is not None]
            stack += [p.value for p in ir.params]
            if ir.network is not None:
                stack.append(ir.network)
            seen: set[int] = set()
            self._all = out = []
            calls = self._calls
            pop, push, add, keep, children, lit = (
                stack.pop, stack.extend, seen.add, out.append, A.children, A.Lit)
            while stack:
                x = pop()
                if x.__class__ is lit:
                    continue
                i = id(x)
                if i not in seen:
                    add(i)
                    keep(x)
                    if x.__class__ is A.Call:
                        calls.append(x)
                    push(children(x))
        return self._all

    # ---- value-only block parameters ------------------------------------------------------
    def _block_args(self, call: A.Call) -> list[tuple[str, A.Expr]]:
        """(parameter name, argument) of a block call's non-tensor arguments."""
        return self.named_args(call, [p.name for p in call.ref[1].params])

    def named_args(self, call: A.Call, names: list[str]) -> list[tuple[str, A.Expr]]:
        """(parameter name, argument) of a call's non-tensor arguments, positional ones named
        from `names` in order ("" past its end)."""
        out: list[tuple[str, A.Expr]] = []
        i = 0
        for a in call.args:
            if a.name is None:
                if self.ir.kinds.get(id(a.value)) == "tensor":
                    continue
                out.append((names[i] if i < len(names) else "", a.value))
                i += 1
            else:
                out.append((a.name, a.value))
        return out

    def _value_only_params(self) -> dict[str, set[str]]:
        """Block parameters read only as layer arguments (see the module's docstring): start
        from every parameter and drop those read anywhere else, until nothing changes."""
        blocks = self.ir.blocks
        vo = {name: {p.name for p in blk.params} for name, blk in blocks.items()}
        changed = True
        while changed:
            changed = False
            for name, blk in blocks.items():
                read: set[str] = set()
                self._reads(blk.body, vo, read)
                for p in blk.params:
                    if p.default is not None:
                        self._reads(p.default, vo, read)
                if vo[name] & read:
                    vo[name] -= read
                    changed = True
        return vo

    def _reads(self, e: A.Node, vo: dict[str, set[str]], acc: set[str]) -> None:
        """Add to `acc` the local names `e` reads other than as a value-only argument."""
        if isinstance(e, A.Name):
            if e.ref and e.ref[0] == "local":
                acc.add(e.id)
            return
        if isinstance(e, A.Call) and e.ref:
            kind = e.ref[0]
            if kind == "apply":  # a param holding a sub-network, applied to nodes: it is read
                self._reads(e.ref[1], vo, acc)
            if kind == "layer" and e.func not in MERGES:
                for a in e.args:
                    if self.ir.kinds.get(id(a.value)) == "tensor" or self.decides(a.value):
                        self._reads(a.value, vo, acc)
                return
            if kind == "block":
                callee = vo.get(e.ref[1].name, set())
                args = {id(v): pname for pname, v in self._block_args(e)}
                for a in e.args:
                    v = a.value
                    if not (isinstance(v, A.Name) and args.get(id(v)) in callee):
                        self._reads(v, vo, acc)
                return
        for x in A.children(e):
            self._reads(x, vo, acc)


_DECIDES = {A.OneOf: Analysis._d_always, A.Optional: Analysis._d_always,
            A.Pipeline: Analysis._d_pipeline, A.Repeat: Analysis._d_repeat,
            A.Residual: Analysis._d_residual, A.Parallel: Analysis._d_parallel,
            A.Shared: Analysis._d_shared, A.Name: Analysis._d_name, A.Call: Analysis._d_call}
