"""A whole search space as a neural circuit diagram: the unchosen network, from the space's IR.

A choice among sub-networks (`one_of`, `choice(layers...)`) is a split and a merge with one dashed
lane per alternative; an optional block is a dashed bypass beside its body; a repeat is its body
once, bracketed and marked `x N` or `x {1, 2, 3}`; value decisions are symbolic labels
(`c in {16, 32}`); input choices and `some(...)` are dashed wires into a selector, and a
`loose_ends` merge dashed wires from every node of its graph (each may be a loose end). Blocks are drawn
opened in a box labelled with their arguments (a block inside itself, or nested deeper than
`depth`, is one 3-D box); a `shared` sub-network is a 3-D box where it is used and is drawn
opened once, in a panel. Given a configuration, the lanes, bypasses and wires it chooses are bold
and the others faded. Decision names are followed the way the interpreter makes them, with one
scope per instance a drawing stands for (every copy of a repeat).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archdsl import ast as A
from archdsl.naming import Scope
from archdsl.printer import format_expr
from archdsl.semantics import net_arity
from archdsl.shared_names import stage_segment
from archdsl.space import Space

from .diagram_dot import FADED, TILE, WIRE, Cluster, Dot, _h, _small, glyph

__all__ = ["space_dot"]

BOLD = "2.2"
Scopes = list[Scope]


def _sym(e: A.Expr) -> str:
    """A value as a symbolic label: `{16, 32}` for a choice, `{1..8}` for a range."""
    if isinstance(e, A.Call) and e.ref and e.ref[0] == "decision":
        if e.func in ("choice", "some"):
            return "{" + ", ".join(_option(a) for a in e.args if a.name is None) + "}"
        if e.func == "bool":
            return "{true, false}"
        r = e.positional[0]
        if isinstance(r, A.Range):
            lo, hi = format_expr(r.lo), format_expr(r.hi)
            return f"{{{lo}..{hi}}}" if e.func == "int" else f"[{lo}, {hi}]"
    return format_expr(e)


def _option(a: A.Arg) -> str:
    """An option of a choice as the legend shows it: `small: 8` where it is labelled."""
    return f"{a.label}: {format_expr(a.value)}" if a.label else format_expr(a.value)


def _binding(name: str, e: A.Expr) -> str:
    is_decision = isinstance(e, A.Call) and e.ref and e.ref[0] == "decision"
    return f"{name} \u2208 {_sym(e)}" if is_decision else f"{name} = {_sym(e)}"


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[:n - 1] + "\u2026"


class _Drawer:
    def __init__(self, space: Space, config: dict[str, Any] | None, depth: int | None,
                 layout: str, dot: Dot):
        self.ir = space.ir
        self.cfg = config
        self.depth = depth
        self.layout = layout
        self.dot = dot
        self.k = 0
        self.stack: list[str] = []
        self.opened: set[str] = set()  # blocks drawn opened once: later uses are boxes
        self.shared: list[str] = []  # shared sub-networks to draw in panels, in order met
        self.loose: list[str] = []  # the nodes of the graph whose return is drawn

    # ---- primitives --------------------------------------------------------------------
    def faded(self, scs: Scopes) -> bool:
        return self.cfg is not None and not scs

    def new(self, attrs: dict[str, str], cl: Cluster | None) -> str:
        self.k += 1
        return self.dot.node(f"s{self.k}", attrs, cl)

    def point(self, cl: Cluster | None, scs: Scopes) -> str:
        return self.new({"shape": "point", "width": "0.07",
                         "color": FADED if self.faded(scs) else WIRE}, cl)

    def wire(self, u: str, v: str, scs: Scopes, dashed: bool = False, chosen: bool = False,
             label: str = "") -> None:
        a = {"color": FADED if self.faded(scs) else WIRE}
        if dashed:
            a["style"] = "dashed"
        if chosen and self.cfg is not None:
            a["penwidth"] = BOLD
        if label:
            a["label"] = label
        self.dot.edge(u, v, **a)

    def box(self, label: str, scs: Scopes, cl: Cluster | None, xs: list[str],
            shape: str = "box3d", note: str = "") -> str:
        body = _h(label) + (f"<BR/>{_small(note)}" if note else "")
        attrs = {"shape": shape, "label": f"<{body}>"}
        if self.faded(scs):
            attrs.update(color=FADED, fontcolor=FADED)
        n = self.new(attrs, cl)
        for x in xs:
            self.wire(x, n, scs)
        return n

    def cluster(self, parent: Cluster | None, scs: Scopes, **attrs: str) -> Cluster:
        if self.faded(scs):
            attrs.update(color=FADED, fontcolor=FADED)
            if "fillcolor" in attrs:
                attrs["fillcolor"] = "#f6f6f6"
        return self.dot.cluster(parent, **attrs)

    def chosen(self, name: str, scs: Scopes) -> list[Any]:
        return [self.cfg.get(s.path + name) for s in scs] if self.cfg is not None else []

    # ---- stages (the interpreter's `apply`, `apply_sub` and pipelines) -------------------
    def pipeline(self, stages: list[A.Expr], xs: list[str], scs: Scopes,
                 cl: Cluster | None) -> str:
        for st in stages:
            seg = stage_segment(st)
            xs = [self.stage(st, xs, [s.child(seg) for s in scs] if seg else scs, cl)]
        return xs[0]

    def sub(self, e: A.Expr, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        seg = None if isinstance(e, A.Pipeline) else stage_segment(e)
        return self.stage(e, xs, [s.child(seg) for s in scs] if seg else scs, cl)

    def stage(self, e: A.Expr, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        if isinstance(e, A.Pipeline):
            if self.ir.kinds.get(id(e.stages[0])) == "tensor":
                return self.tensor(e, {}, scs, cl)
            return self.pipeline(e.stages, xs, scs, cl)
        if isinstance(e, A.Name):
            kind, target = e.ref
            if kind == "layer":
                return self.layer(e.id, {}, xs, scs, cl)
            if kind == "block":
                return self.block(target, None, xs, scs, cl)
            if kind == "gparam":
                return self.gparam(e.id, xs, scs, cl)
            return self.box(e.id, scs, cl, xs, "box", "a layer passed in")
        if isinstance(e, A.Call):
            kind, target = e.ref
            if kind == "layer":
                sig_names = [a.name for a in target.args]
                given = [a for a in e.args if not (a.name is None and self.ir.kinds.get(
                    id(a.value)) == "tensor")]
                args: dict[str, A.Expr] = {}
                for i, a in enumerate(x for x in given if x.name is None):
                    if i < len(sig_names):
                        args[sig_names[i]] = a.value
                args.update({a.name: a.value for a in given if a.name is not None})
                for spec in target.args:  # the kernel is part of the glyph: show its default
                    if spec.name == "kernel" and "kernel" not in args and spec.default:
                        args["kernel"] = A.Lit(e.span, spec.default)
                return self.layer(e.func, args, xs, scs, cl)
            if kind == "block":
                return self.block(target, e, xs, scs, cl)
            if kind == "decision":  # a choice among layers or sub-networks
                opts = [a for a in e.args if a.name is None]
                alts = [(a.label or _short(format_expr(a.value)), a.value) for a in opts]
                names = [s.key("choice") for s in scs]
                return self.lanes(alts, [a.label or format_expr(a.value) for a in opts], names,
                                  xs, scs, cl, "choice")
        if isinstance(e, A.Repeat):
            return self.repeat(e, xs, scs, cl)
        if isinstance(e, A.OneOf):
            alts = [(a.label or _short(format_expr(a.expr)), a.expr) for a in e.alts]
            return self.lanes(alts, e.labels, [s.path for s in scs], xs, scs, cl, "one_of")
        if isinstance(e, A.Optional):
            return self.optional(e, xs, scs, cl)
        if isinstance(e, A.Residual):
            return self.residual(e, xs, scs, cl)
        if isinstance(e, A.Parallel):
            return self.parallel(e, xs, scs, cl)
        if isinstance(e, A.Shared):
            return self.stage(e.expr, xs, scs, cl)
        return self.box(_short(format_expr(e)), scs, cl, xs, "box")

    def layer(self, op: str, args: dict[str, A.Expr], xs: list[str], scs: Scopes,
              cl: Cluster | None) -> str:
        shown = {k: _sym(v) for k, v in args.items()}
        extra = [_binding(k, args[k]) for k in sorted(args) if k not in
                 ("kernel", "stride", "bias", "p", "heads", "padding")]
        n = self.new(glyph(op, shown, extra, self.layout, self.faded(scs)), cl)
        for x in xs:
            self.wire(x, n, scs)
        return n

    def gparam(self, name: str, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        decl = next(p for p in self.ir.params if p.name == name)
        if isinstance(decl, A.SharedDecl):
            if name not in self.shared:
                self.shared.append(name)
            return self.box(name, scs, cl, xs, note="shared: opened in its panel")
        v = decl.value
        if isinstance(v, A.Call) and v.ref and v.ref[0] == "decision":
            return self.box(name, scs, cl, xs, "box", f"\u2208 {_short(_sym(v), 40)}")
        return self.stage(v, xs, scs, cl)

    def block(self, blk: A.BlockDecl, call: A.Call | None, xs: list[str], scs: Scopes,
              cl: Cluster | None) -> str:
        binds: list[str] = []
        if call is not None:
            names = [p.name for p in blk.params]
            values = [a.value for a in call.args if a.name is None
                      and self.ir.kinds.get(id(a.value)) != "tensor"]
            binds += [_binding(n, x) for n, x in zip(names, values, strict=False)]
            binds += [_binding(a.name, a.value) for a in call.args if a.name is not None]
        binds += [_binding(p.name, p.value) for p in blk.body.params]
        label = blk.name + (f"({', '.join(binds)})" if binds else "")
        if blk.name in self.stack or blk.name in self.opened or (
                self.depth is not None and len(self.stack) >= self.depth):
            note = "recursive: opened around it" if blk.name in self.stack else \
                "opened where first used" if blk.name in self.opened else ""
            picked = sorted({str(v) for v in self.chosen("", scs) if v is not None})
            if picked:  # a block that is one decision (an `op` of one one_of): its choice
                note = "chosen: " + ", ".join(picked)
            return self.box(_short(label, 60), scs, cl, xs, note=note)
        self.opened.add(blk.name)
        inner = self.cluster(cl, scs, style="rounded", color="#9a9a9a", fontcolor="#505050",
                             label=_short(label, 80), labeljust="l", labelloc="t")
        self.stack.append(blk.name)
        try:
            return self.body(blk.body, xs, scs, inner)
        finally:
            self.stack.pop()

    def body(self, body: A.Body, xs: list[str], scs: Scopes, cl: Cluster | None,
             inputs: list[str] | None = None) -> str:
        if not body.is_graph:
            if self.ir.kinds.get(id(body.result)) == "tensor":
                return self.tensor(body.result, dict(zip(inputs or [], xs, strict=False)), scs,
                                   cl)
            return self.stage(body.result, xs, scs, cl)
        env = dict(zip(inputs if inputs is not None else body.inputs, xs, strict=False))
        for st in body.nodes:
            node_cl = self.cluster(cl, scs, style="dotted", color="#b0b0b0", label=st.name,
                                   labeljust="l", fontcolor="#707070")
            env[st.name] = self.tensor(st.value, env, [s.child(st.name) for s in scs], node_cl)
        saved, self.loose = self.loose, [env[st.name] for st in body.nodes]
        try:
            return self.tensor(body.result, env, [s.child("return") for s in scs], cl)
        finally:
            self.loose = saved

    # ---- structures --------------------------------------------------------------------
    def lanes(self, alts: list[tuple[str, A.Expr]], labels: list[Any], names: list[str],
              xs: list[str], scs: Scopes, cl: Cluster | None, what: str) -> str:
        split, merge = self.point(cl, scs), None
        for x in xs:
            self.wire(x, split, scs)
        outs: list[tuple[str, Scopes]] = []
        for i, (text, expr) in enumerate(alts):
            picked = [s for s, n in zip(scs, names, strict=True)
                      if self.cfg is None or self.cfg.get(n) == labels[i]]
            lane_scs = [s.index(i) for s in picked]
            lane = self.cluster(cl, lane_scs, style="dashed,rounded", color="#8a8a8a",
                                label=text, labeljust="l", fontcolor="#505050")
            start = self.point(lane, lane_scs)
            self.wire(split, start, lane_scs, dashed=True, chosen=bool(picked))
            if what == "choice":  # a choice's options are applied as they are
                outs.append((self.stage(expr, [start], lane_scs, lane), lane_scs))
            else:
                outs.append((self.sub(expr, [start], lane_scs, lane), lane_scs))
        merge = self.point(cl, scs)
        for out, lane_scs in outs:
            self.wire(out, merge, lane_scs, dashed=True, chosen=bool(lane_scs))
        return merge

    def repeat(self, e: A.Repeat, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        label = f"\u00d7 {_sym(e.count)}"
        copies: list[Scope] = []
        if self.cfg is None:
            copies = [s.index(0) for s in scs]
        else:
            counts = [self._copies(s, e) for s in scs]
            if not isinstance(e.count, A.Lit) and counts:
                label += " = " + ", ".join(str(c) for c in counts)
            copies = [s.index(i) for s, c in zip(scs, counts, strict=True) for i in range(c)]
        inner = self.cluster(cl, copies, style="dashed,rounded", color="#707070",
                             label=label, labeljust="r", labelloc="b", fontsize="11")
        return self.sub(e.body, xs, copies, inner)

    def _copies(self, s: Scope, e: A.Repeat) -> int:
        assert self.cfg is not None
        v = self.cfg.get(s.path)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(e.count, A.Lit) and isinstance(e.count.value, int):
            return e.count.value
        return sum(1 for i in range(10_000) if any(k.startswith(f"{s.path}[{i}]/")
                                                   for k in self.cfg)) or 1

    def optional(self, e: A.Optional, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        taken = [s for s in scs if self.cfg is None or self.cfg.get(s.path) is True]
        skipped = [s for s in scs if self.cfg is None or self.cfg.get(s.path) is False]
        split = self.point(cl, scs)
        for x in xs:
            self.wire(x, split, scs)
        inner = self.cluster(cl, taken, style="dashed,rounded", color="#8a8a8a",
                             label="optional", labeljust="l", fontcolor="#505050")
        start = self.point(inner, taken)
        self.wire(split, start, taken, dashed=True, chosen=bool(taken))
        out = self.sub(e.body, [start], taken, inner)
        merge = self.point(cl, scs)
        self.wire(out, merge, taken, dashed=True, chosen=bool(taken))
        self.wire(split, merge, skipped, dashed=True, chosen=bool(skipped))
        return merge

    def residual(self, e: A.Residual, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        split = self.point(cl, scs)
        for x in xs:
            self.wire(x, split, scs)
        tile = self.cluster(cl, scs, style="filled,rounded", fillcolor=TILE, color=TILE,
                            label="")
        body = self.sub(e.body, [split], scs, tile)
        skip = split
        if e.skip is not None:
            skip = self.sub(e.skip, [split], [s.child("skip") for s in scs], cl)
        return self.merge("add", [body, skip], scs, cl)

    def parallel(self, e: A.Parallel, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        split = self.point(cl, scs)
        for x in xs:
            self.wire(x, split, scs)
        outs = []
        for i, a in enumerate(e.alts):
            branch = [s.index(i) for s in scs]
            lane = self.cluster(cl, scs, style="rounded", color="#b0b0b0", label=a.label or "",
                                labeljust="l") if a.label else cl
            outs.append(self.sub(a.expr, [split], branch, lane))
        return self.merge(e.merge, outs, scs, cl)

    def merge(self, op: str, xs: list[str], scs: Scopes, cl: Cluster | None) -> str:
        n = self.new(glyph(op, {}, (), self.layout, self.faded(scs)), cl)
        for x in xs:
            self.wire(x, n, scs)
        return n

    # ---- tensor expressions (graph bodies; the interpreter's `value`) ------------------
    def tensor(self, e: A.Expr, env: dict[str, str], scs: Scopes, cl: Cluster | None,
               key: str | None = None) -> str:
        if isinstance(e, A.Name) and e.id in env:
            return env[e.id]
        if isinstance(e, A.BinOp):
            a = self.tensor(e.left, env, scs, cl, key)
            b = self.tensor(e.right, env, scs, cl, key)
            return self.merge("add" if e.op == "+" else "multiply", [a, b], scs, cl)
        if isinstance(e, A.Pipeline):
            x = self.tensor(e.stages[0], env, scs, cl, key)
            return self.pipeline(e.stages[1:], [x], scs, cl)
        if isinstance(e, A.Call) and e.ref:
            kind = e.ref[0]
            if kind == "decision" and e.func in ("some", "choice"):
                return self.select(e, env, scs, cl, key)
            tensors = [a.value for a in e.args if a.name is None
                       and self.ir.kinds.get(id(a.value)) == "tensor"]
            if kind == "apply":
                sub = [s.child(e.func) for s in scs]
                xs = [self.tensor(a.value, env, sub, cl, "in") for a in e.args]
                return self.stage(e.ref[1], xs, sub, cl)
            if tensors and e.func in ("add", "concat", "multiply") and isinstance(
                    tensors[0], A.Name) and tensors[0].ref and tensors[0].ref[0] == "loose":
                n = self.merge(e.func, [], scs, cl)
                for x in self.loose:
                    self.wire(x, n, scs, dashed=True)
                return n
            if tensors and e.func in ("add", "concat", "multiply"):
                return self.merge(e.func, [self.tensor(x, env, scs, cl, key) for x in tensors],
                                  scs, cl)
            if tensors:
                sub = [s.child(e.func) for s in scs]
                xs = [self.tensor(x, env, sub, cl, "in") for x in tensors]
                return self.stage(e, xs, sub, cl)
        return self.box(_short(format_expr(e)), scs, cl, [], "box")

    def select(self, e: A.Call, env: dict[str, str], scs: Scopes, cl: Cluster | None,
               key: str | None) -> str:
        """An input choice (one of the nodes) or `some` (a sum of a subset of them)."""
        names = [s.key(key or e.func) for s in scs]
        opts = [a for a in e.args if a.name is None]
        if e.func == "choice" and any(not isinstance(a.value, A.Name) for a in opts):
            # a choice among computations: option i's decisions are named under NAME[i]
            cands = [(a.label or format_expr(a.value),
                      self.tensor(a.value, env, [Scope(n).index(i) for n in names], cl, None))
                     for i, a in enumerate(opts)]
        else:
            cands = [(a.label or format_expr(a.value), self.tensor(a.value, env, scs, cl, None))
                     for a in opts]
        if e.func == "some":
            n = self.new(glyph("add", {}, (), self.layout, self.faded(scs)), cl)
            self.dot.node_lines[n] = self.dot.node_lines[n].replace(
                'label=<+>', 'label=<+>, xlabel=<<FONT POINT-SIZE="8">some</FONT>>')
        else:
            n = self.new({"shape": "invtriangle" if self.layout == "TB" else "triangle",
                          "orientation": "270" if self.layout == "LR" else "0",
                          "label": "", "width": "0.22", "height": "0.22", "fixedsize": "true",
                          "color": FADED if self.faded(scs) else WIRE}, cl)
        vals = [self.cfg.get(nm) for nm in names] if self.cfg is not None else [None] * len(scs)
        for text, port in cands:
            picked = [s for s, v in zip(scs, vals, strict=True)
                      if v == text or (isinstance(v, list) and text in v)]
            self.wire(port, n, picked if self.cfg is not None else scs, dashed=True,
                      chosen=bool(picked))
        return n


def space_dot(space: Space, config: dict[str, Any] | None = None, *, depth: int | None = None,
              layout: str = "LR", title: str | None = None) -> str:
    """The search space as a neural circuit diagram in DOT text; with a configuration (checked
    against the space first), what it chooses is drawn bold and the rest faded."""
    if config is not None:
        config = space.validate(config)
    ir = space.ir
    if title is None:
        name = Path(ir.file).name
        title = f"{name}: search space of {space.count():,} architectures" + (
            "; the configuration's choices in bold" if config is not None else "")
    dot = Dot(layout, title)
    d = _Drawer(space, config, depth, layout, dot)
    scs = [Scope("network")]
    legend = _legend(space, config)
    if legend:
        dot.node("legend", {"shape": "plaintext", "label": legend})
    if ir.network is None:
        return dot.text()
    ports = []
    for inp in ir.inputs:
        ports.append(dot.node(f"in_{inp.name}", {"shape": "plaintext",
                                                  "label": f"<<B>{_h(inp.name)}</B>>"}))
    body = ir.network
    if body.is_graph or d.ir.kinds.get(id(body.result)) == "tensor":
        out = d.body(body, ports, scs, None, [i.name for i in ir.inputs])
    else:
        out = d.stage(body.result, ports[:1], scs, None)
    dot.node("out", {"shape": "plaintext", "label": "<<B>output</B>>"})
    dot.edge(out, "out")
    _label_inputs(dot, ir)
    done: list[str] = []
    while len(done) < len(d.shared):
        name = d.shared[len(done)]
        done.append(name)
        decl = next(p for p in ir.params if p.name == name)
        panel = dot.cluster(None, style="rounded", color="#707070", fontsize="10",
                            labeljust="l", labelloc="t",
                            label=f"shared {name} = {_short(format_expr(decl.value), 60)}")
        stubs = [d.point(panel, scs) for _ in range(net_arity(decl.value))]
        out = d.stage(decl.value, stubs, [Scope(name)], panel)
        dot.edge(out, d.point(panel, scs))
    return dot.text()


def _label_inputs(dot: Dot, ir: Any) -> None:
    """Write each input's declared shape (and `index(N)`) on its first wire."""
    for inp in ir.inputs:
        src = f"in_{inp.name}"
        for i, line in enumerate(dot.edges):
            if line.startswith(f"{src} -> "):
                shape = format_expr(inp.shape)
                if inp.index is not None:
                    shape += f" index({format_expr(inp.index)})"
                dot.edges[i] = line.replace("[", f'[label="{shape}", ', 1) if "[" in line \
                    else line.replace(";", f' [label="{shape}"];')
                break


def _legend(space: Space, config: dict[str, Any] | None) -> str:
    """The top-level decisions and constraints, as an HTML table."""
    rows = []
    for p in space.ir.params:
        if isinstance(p, A.ParamDecl) and isinstance(p.value, A.Call) and p.value.ref \
                and p.value.ref[0] == "decision":
            text = _binding(p.name, p.value)
            if config is not None and p.name in config:
                text += f"   (chosen: {config[p.name]})"
            rows.append(text)
    rows += [f"{c.kind} {format_expr(c.expr)}" for c in space.ir.constraints]
    if not rows:
        return ""
    cells = "".join(f'<TR><TD ALIGN="LEFT">{_h(r)}</TD></TR>' for r in rows)
    return f'<<TABLE BORDER="1" CELLBORDER="0" COLOR="#b0b0b0" CELLPADDING="2">{cells}</TABLE>>'
