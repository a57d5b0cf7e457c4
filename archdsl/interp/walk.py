"""The walk's entry points: `Interp`, the one interpreter of the search-space IR. Walking a space
means evaluating its network while a `Chooser` answers every decision met on the way; different
choosers give the different operations (sampling, reading a configuration, enumerating). With
`build=True` the walk also records the architecture graph. This module starts a walk (`walk`,
`sample` through the sample tree), binds the top-level params and shared sub-networks, and
evaluates the train section; the stages it runs are the classes it extends.

May import: archdsl.ast, analysis, errors, naming, rows, semantics, values, and every module of
this package.
"""

from __future__ import annotations

from typing import Any

from .. import ast as A
from ..analysis import Analysis
from ..errors import ArchTypeError
from ..naming import Scope
from ..rows import Row
from ..semantics import SpaceIR, net_arity
from ..values import Net, Tensor
from .blocks import Blocks
from .caches import SampleTree
from .choosers import Chooser
from .count import Counter
from .keys import to_json_key

__all__ = ["Interp"]


class Interp(Blocks):
    """Walks one space: decisions, values, graph (build), counts (`counter`)."""

    def __init__(self, ir: SpaceIR):
        net_block = None
        if ir.network is not None:
            net_block = A.BlockDecl(ir.network_span, "network", [], None, ir.network,
                                    "network", ir.file)
        super().__init__(ir, Analysis(ir, net_block))
        self.net_block = net_block
        self.counter = Counter(self)
        self._tree = SampleTree(self.walk)

    def walk(self, chooser: Chooser, build: bool = False) -> dict[str, Any]:
        """Decide every decision of the space with `chooser`; return name -> value."""
        self.chooser, self.build = chooser, build
        self.decided, self.seen = {}, {}
        self.graph = None
        self._nodes = []
        self._ins = []
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
        """walk(chooser) for a random chooser (`Uniform`, `PerDecision`), through the cache of
        the walks already made (archdsl.interp.caches.SampleTree), with the values in their
        JSON form (a configuration)."""
        self.counter.global_rows()  # every walk needs the table; building it draws nothing
        return self._tree.sample(chooser)

    def global_rows(self) -> list[Row]:
        """Every joint value of the structural top-level decisions, with how many architectures
        each leaves (0 where a constraint fails)."""
        return self.counter.global_rows()

    def input_tensor(self, decl: A.InputDecl) -> Tensor:
        if not self.build:
            return Tensor(-1, decl.name)
        shape = self.value(decl.shape, {}, Scope("input"), decl.name)
        if not (isinstance(shape, tuple) and shape and all(
                isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise ArchTypeError("an input shape is a list of positive integers, e.g. [1, 8, 8]",
                                decl.shape.span)
        args: dict[str, Any] = {"name": decl.name, "shape": list(shape)}
        if decl.index is not None:
            bound = self.value(decl.index, {}, Scope("input"), decl.name)
            if not (isinstance(bound, int) and not isinstance(bound, bool) and bound > 0):
                raise ArchTypeError("an index input's bound is a positive integer, e.g. "
                                    "index(12) for the integers 0 to 11", decl.index.span)
            args["index"] = bound
        nid = self._add_node("input", args, decl.span, decl.name, [])
        return Tensor(nid, decl.name)

    def eval_train(self) -> None:
        """Make the train section's decisions."""
        self.train_values()

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
