"""Structural names: the params whose value can change how many architectures a body has (a
repeat count, a range bound, a constraint, a sub-network), per block and among the top-level
params. The others only reach layer arguments, so their decisions multiply the count and can be
sampled on their own, without enumeration.

May import: archdsl.ast and archdsl.semantics (the IR), nothing that evaluates.
"""

from __future__ import annotations

from . import ast as A
from .semantics import SpaceIR

__all__ = ["StructuralNames"]


class StructuralNames:
    """`blocks`: block name -> its structural locals (parameters and params of its body);
    `globals`: the structural top-level params. `network`, where given, is the network as a
    block (named "network")."""

    def __init__(self, ir: SpaceIR, network: A.BlockDecl | None = None):
        self.ir = ir
        self.blocks: dict[str, set[str]] = {}
        self._consulted: set[str] = set()  # blocks whose structural set _refs read
        self._body_names: dict[int, set[str]] = {}  # id(body) -> what _body_refs gave last
        blocks = dict(ir.blocks)
        if network is not None:
            blocks["network"] = network
        self._fixed_point(blocks)
        self.globals: set[str] = self._globals()

    def _fixed_point(self, blocks: dict[str, A.BlockDecl]) -> None:
        """Each block's set, to a fixed point: a block's set grows with those of the blocks it
        calls, so it is computed again only when one of those changed since it was last
        computed."""
        for name in blocks:
            self.blocks[name] = set()
        step = 0
        changed_at: dict[str, int] = {}  # block -> the step its set last changed at
        computed: dict[str, tuple[int, set[str]]] = {}  # block -> (step, blocks it read)
        changed = True
        while changed:
            changed = False
            for name, blk in blocks.items():
                last = computed.get(name)
                if last is not None and all(changed_at.get(d, -1) < last[0] for d in last[1]):
                    continue
                step += 1
                self._consulted = set()
                s = self._block(blk)
                computed[name] = (step, self._consulted)
                if s != self.blocks[name]:
                    self.blocks[name] = s
                    changed_at[name] = step
                    changed = True
        self._consulted = set()

    def _globals(self) -> set[str]:
        """Names used structurally by the network, shared sub-networks, constraints, and the
        blocks' bodies and parameter defaults (a block may read a global param anywhere), and
        by the params those name, to a fixed point."""
        ir = self.ir
        glob: set[str] = set()
        bodies = ([ir.network] if ir.network is not None else []) + \
            [blk.body for blk in ir.blocks.values()]
        for body in bodies:
            known = self._body_names.get(id(body))
            if known is None:
                self._body_refs(body, glob)
            else:  # the same walk, made last in the fixed point
                glob |= known
        for blk in ir.blocks.values():
            for p in blk.params:
                if p.default is not None:
                    self._refs(p.default, p.name in self.blocks[blk.name], glob)
        for c in ir.constraints:
            self._refs(c.expr, True, glob)
        params = {p.name: p for p in ir.params}
        for p in ir.params:
            if isinstance(p, A.SharedDecl):
                self._refs(p.value, True, glob)
        for te in ir.train:
            self._refs(te.value, False, glob)
        done: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name in list(glob):
                p = params.get(name)
                if p is not None and name not in done:
                    done.add(name)
                    before = len(glob)
                    self._refs(p.value, True, glob)
                    changed = changed or len(glob) != before
        for p in ir.params:
            if p.name not in glob:
                self._refs(p.value, False, glob)  # their range bounds still count
        return {n for n in glob if n in params}

    def _block(self, blk: A.BlockDecl) -> set[str]:
        s: set[str] = set()
        self._body_refs(blk.body, s)
        # kept for the globals' pass: at the fixed point, the last of these saw every final set
        self._body_names[id(blk.body)] = set(s)
        decl = {p.name: p.default for p in blk.params}
        decl.update({p.name: p.value for p in blk.body.params})
        done: set[str] = set()
        while True:
            todo = [n for n in s if n in decl and n not in done]
            if not todo:
                break
            for n in todo:
                done.add(n)
                if decl[n] is not None:
                    self._refs(decl[n], True, s)
        for n, e in decl.items():
            if n not in s and e is not None:
                self._refs(e, False, s)
        return s

    def _body_refs(self, body: A.Body, acc: set[str]) -> None:
        for n in body.nodes:
            self._refs(n.value, True, acc)
        self._refs(body.result, True, acc)
        for c in body.constraints:
            self._refs(c.expr, True, acc)

    def _refs(self, e: A.Node, structural: bool, acc: set[str]) -> None:
        """Add the names `e` reads in structural positions to `acc`."""
        t = e.__class__
        if t is A.Lit:  # the most common leaf
            return
        if t is A.Name:
            if structural and e.ref and e.ref[0] in ("local", "gparam"):
                acc.add(e.id)
            return
        if t is A.Shared:
            self._refs(e.expr, structural, acc)
            return
        if t is A.Call and e.ref:
            self._call_refs(e, structural, acc)
            return
        if t is A.Range:
            self._refs(e.lo, True, acc)
            self._refs(e.hi, True, acc)
            return
        for x in A.children(e):
            self._refs(x, structural, acc)

    def _call_refs(self, e: A.Call, structural: bool, acc: set[str]) -> None:
        kind = e.ref[0]
        if kind in ("layer", "record"):
            for a in e.args:
                self._refs(a.value, False, acc)
        elif kind == "decision":
            bounds = e.func in ("int", "float")  # range bounds set the domain's size
            for a in e.args:
                self._refs(a.value, bounds or structural, acc)
        elif kind == "apply":  # a sub-network param applied to nodes: all structural
            self._refs(e.ref[1], structural, acc)
            for a in e.args:
                self._refs(a.value, True, acc)
        elif kind == "block":
            blk: A.BlockDecl = e.ref[1]
            names = [p.name for p in blk.params]
            self._consulted.add(blk.name)
            sset = self.blocks.get(blk.name, set())
            i = 0
            for a in e.args:
                if a.name is None and self.ir.kinds.get(id(a.value)) == "tensor":
                    self._refs(a.value, True, acc)
                    continue
                pname = a.name if a.name is not None else (names[i] if i < len(names) else "")
                if a.name is None:
                    i += 1
                self._refs(a.value, structural and pname in sset, acc)
        else:
            for x in A.children(e):
                self._refs(x, structural, acc)
