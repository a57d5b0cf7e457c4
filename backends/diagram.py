"""Neural circuit diagrams of architectures, through graphviz: DOT text, and SVG/PNG/PDF files.

The notation (V. Abbott, "Neural Circuit Diagrams", TMLR 2024), drawn from the architecture graph
and its static shapes (`plan`): data flows left to right on wires without arrowheads, one line per
axis of the tensor, labelled with its shape (batch axis left out) where an operation changed it.
Glyphs: a bold `L` (subscript `+` with a bias) for linear layers, a trapezoid with `*k` for
convolutions (`Max`/`mean` for pooling), a circle for normalisation, `>name>` for element-wise
nonlinearities, a triangle for softmax, a dot where a wire is copied, `+` where wires are added,
a thick bar for concatenation and flattening. Residual bodies sit in tinted tiles; identical
consecutive copies of a repeat (or of a shared sub-network) are drawn once and marked `x N`;
named blocks nested deeper than `depth` are drawn as one 3-D box.

The DOT text is deterministic: node and cluster names come from the graph's node numbers and the
order of the nodes, never from memory addresses or hashes. `archdsl.backends.diagram_space` draws
a whole search space with the same glyphs.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from archdsl.errors import ArchDSLError
from archdsl.graph import Architecture

from .plan import plan

__all__ = ["FORMATS", "Dot", "GraphvizMissing", "architecture_dot", "glyph", "render",
           "to_svg", "INSTALL_HINT"]

FORMATS = ("dot", "svg", "png", "pdf")
INSTALL_HINT = ("install graphviz for its `dot` program: `apt-get install graphviz` (Debian, "
                "Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, or see "
                "https://graphviz.org/download/")
FONT = "DejaVu Sans"
TILE = "#e3ecf9"  # residual bodies
WIRE = "#404040"
FADED = "#c0c0c0"
MERGES = ("add", "concat", "multiply")
ACTS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "tanh": "tanh", "sigmoid": "sigmoid"}
NORMS = {"batchnorm": "BN", "layernorm": "LN", "groupnorm": "GN"}


class GraphvizMissing(ArchDSLError):
    """The `dot` program of graphviz is not installed: only DOT text can be written."""


# ------------------------------------------------------------------------------ DOT text
def _quote(v: str) -> str:
    if v.startswith("<") and v.endswith(">"):
        return v  # an HTML-like label
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(a: dict[str, str]) -> str:
    return "[" + ", ".join(f"{k}={_quote(str(v))}" for k, v in sorted(a.items())) + "]"


@dataclass
class Cluster:
    name: str
    attrs: dict[str, str]
    nodes: list[str] = field(default_factory=list)
    children: list[Cluster] = field(default_factory=list)


class Dot:
    """A DOT graph written in the order things were added: the same calls give the same text."""

    def __init__(self, layout: str = "LR", label: str = ""):
        if layout not in ("LR", "TB"):
            raise ArchDSLError(f"unknown layout '{layout}'", hint="use LR or TB")
        self.layout = layout
        self.root = Cluster("", {})
        self.node_lines: dict[str, str] = {}
        self.edges: list[str] = []
        self.label = label
        self._clusters = 0

    def cluster(self, parent: Cluster | None, **attrs: str) -> Cluster:
        self._clusters += 1
        c = Cluster(f"cluster_{self._clusters}", attrs)
        (parent or self.root).children.append(c)
        return c

    def node(self, name: str, attrs: dict[str, str], cluster: Cluster | None = None) -> str:
        if name not in self.node_lines:
            (cluster or self.root).nodes.append(name)
        self.node_lines[name] = f"{name} {_attrs(attrs)};"
        return name

    def edge(self, u: str, v: str, **attrs: str) -> None:
        self.edges.append(f"{u} -> {v} {_attrs(attrs)};" if attrs else f"{u} -> {v};")

    def text(self) -> str:
        out = ["digraph G {",
               f"  graph {_attrs({'rankdir': self.layout, 'fontname': FONT, 'fontsize': '11', 'nodesep': '0.22', 'ranksep': '0.12', 'newrank': 'true', 'labelloc': 't', 'labeljust': 'l', 'label': self.label})};",
               f"  node {_attrs({'fontname': FONT, 'fontsize': '10', 'shape': 'box', 'margin': '0.06,0.03', 'height': '0.3', 'width': '0.3'})};",
               f"  edge {_attrs({'fontname': FONT, 'fontsize': '8', 'dir': 'none', 'color': WIRE, 'fontcolor': '#303030'})};"]
        self._write(self.root, out, "  ")
        out += ["  " + e for e in self.edges]
        out.append("}")
        return "\n".join(out) + "\n"

    def _write(self, c: Cluster, out: list[str], ind: str) -> None:
        for n in c.nodes:
            out.append(ind + self.node_lines[n])
        for ch in c.children:
            out.append(f"{ind}subgraph {ch.name} {{")
            out.append(f"{ind}  graph {_attrs({'fontname': FONT, 'fontsize': '9', **ch.attrs})};")
            self._write(ch, out, ind + "  ")
            out.append(ind + "}")


# ------------------------------------------------------------------------------ glyphs
def _h(s: Any) -> str:
    return html.escape(str(s), quote=False)


def _small(s: str) -> str:
    return f'<FONT POINT-SIZE="8">{_h(s)}</FONT>'


def glyph(op: str, args: dict[str, Any], extra: Iterable[str] = (), layout: str = "LR",
          faded: bool = False) -> dict[str, str]:
    """DOT attributes of an operation's glyph. `args` values are shown as written (numbers, or
    symbolic text such as `k` or `{3, 5}`); `extra` lines are added under the glyph in small
    print (argument values, parameter counts)."""
    a = {k: v for k, v in args.items() if v is not None}
    small = [s for s in extra if s]
    attrs: dict[str, str] = {}
    sideways = "270" if layout == "LR" else "0"

    def stride_of() -> str:
        s = a.get("stride")
        return f" /{s}" if s not in (None, 1, "1") else ""

    if op == "linear":
        main = "<B>L</B>" + ("<SUB>+</SUB>" if a.get("bias") not in (False, "false") else "")
        attrs = {"shape": "box", "penwidth": "2"}
    elif op in ("conv2d", "conv1d"):
        main = f"&#10033;{_h(a.get('kernel', ''))}{_h(stride_of())}"
        if str(a.get("dilation", 1)) != "1":
            small.insert(0, f"dilation {a['dilation']}")
        if str(a.get("groups", 1)) != "1":
            small.insert(0, f"groups {a['groups']}")
        attrs = {"shape": "trapezium", "orientation": sideways, "penwidth": "2"}
    elif op in ("max_pool", "avg_pool"):
        main = ("Max " if op == "max_pool" else "x&#772; ") + _h(a.get("kernel", "")) \
            + _h(stride_of())
        attrs = {"shape": "trapezium", "orientation": sideways}
    elif op in ("global_avg_pool", "global_max_pool"):
        main = "Max" if op == "global_max_pool" else "x&#772;"
        small.insert(0, "global")
        attrs = {"shape": "trapezium", "orientation": sideways}
    elif op == "relu_conv_bn":
        main = (f"&#9656;ReLU&#9656; &#10033;{_h(a.get('kernel', ''))}{_h(stride_of())} "
                "&#9679;BN")
        attrs = {"shape": "box", "style": "rounded,filled", "fillcolor": "#f1ecf9"}
    elif op in NORMS:
        main = NORMS[op]
        attrs = {"shape": "circle", "fixedsize": "true", "width": "0.42", "fontsize": "9"}
        if op == "groupnorm":
            small.insert(0, f"{a.get('groups', '')} groups")
            attrs.pop("fixedsize")
    elif op in ACTS:
        main = f"&#9656;{ACTS[op]}&#9656;"
        attrs = {"shape": "plaintext"}
    elif op == "dropout":
        main = f"&#9656;Drop {_h(a.get('p', ''))}&#9656;"
        attrs = {"shape": "plaintext", "fontcolor": "#606060"}
    elif op == "softmax":
        main = ""
        small.insert(0, "softmax")
        attrs = {"shape": "triangle", "orientation": "90" if layout == "LR" else "180",
                 "width": "0.35", "height": "0.35", "fixedsize": "true"}
    elif op in ("add", "multiply"):
        main = "+" if op == "add" else "&#215;"
        attrs = {"shape": "circle", "fixedsize": "true", "width": "0.26", "fontsize": "12"}
    elif op in ("concat", "flatten"):
        main = ""
        attrs = {"shape": "box", "style": "filled", "fillcolor": "black", "fixedsize": "true",
                 "width": "0.07" if layout == "LR" else "0.5",
                 "height": "0.5" if layout == "LR" else "0.07"}
        small = []  # a bar has no room; its wires carry the shapes
    elif op == "attention":
        main = f"Attention &#215;{_h(a.get('heads', ''))}"
        attrs = {"shape": "box", "style": "rounded,filled", "fillcolor": "#fdf0d8"}
    elif op == "embedding":
        main = f"Embed {_h(a.get('num', ''))}"
        attrs = {"shape": "box"}
    elif op == "zero":
        main = "0"
        attrs = {"shape": "plaintext", "fontcolor": "#909090"}
    elif op == "identity":
        main = "id"
        attrs = {"shape": "plaintext"}
    else:
        main = _h(op)
        attrs = {"shape": "box", "style": "rounded"}
    body = main + "".join(f"<BR/>{_small(s)}" for s in small)
    attrs["label"] = f"<{body}>" if body else ""
    if faded:
        attrs.update(color=FADED, fontcolor=FADED)
        if attrs.get("style", "").find("filled") >= 0:
            attrs["fillcolor"] = "#f4f4f4"
    return attrs


def wire(shape: list[int] | None, label: bool, faded: bool = False) -> dict[str, str]:
    """A wire: one line per axis (a bundle), labelled with the shape where it changed."""
    color = FADED if faded else WIRE
    a = {"color": ":".join([color] * max(1, min(len(shape or [0]), 4))), "penwidth": "0.8"}
    if label and shape is not None:
        a["label"] = "[" + ", ".join(map(str, shape)) + "]"
    return a


# ------------------------------------------------------------------------------ structure
_COPY = re.compile(r"^(repeat(?:#\d+)?)\[(\d+)\]$")
_HIDDEN = re.compile(r"^(one_of|optional|parallel|skip|return|residual|repeat)(#\d+)?(\[\d+\])?$")
_RES = "{res}"


def _segs(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _bare(seg: str) -> str:
    return re.sub(r"#\d+$", "", seg.split("@")[0])


@dataclass
class _Group:
    key: tuple[str, ...]
    nodes: list[int] = field(default_factory=list)  # every node under it, in id order
    label: str = ""


class _View:
    """The architecture graph arranged for drawing: groups, collapsed copies, boxes."""

    def __init__(self, arch: Architecture, expand: bool, depth: int | None):
        self.arch = arch
        g = arch.graph
        self.p = plan(arch)
        self.out = arch.output()
        self.nodes = [n for n in sorted(g.nodes) if n != self.out]
        self.shape = {n: list(self.p.steps[n].out.shape) for n in self.nodes}
        self.disp: dict[int, list[str]] = {}
        self._display_paths()
        self._residuals()
        self.groups: dict[tuple[str, ...], _Group] = {}
        for n in self.nodes:
            d = self.disp[n]
            for i in range(1, len(d) + 1):
                self.groups.setdefault(tuple(d[:i]), _Group(tuple(d[:i]))).nodes.append(n)
        self.hidden: dict[int, int] = {}  # node of a later identical copy -> its first copy's
        self.counts: dict[tuple[str, ...], int] = {}  # first copy -> copies drawn as one
        if not expand:
            self._collapse_copies()
        self.boxes: dict[tuple[str, ...], str] = {}  # groups drawn as one box
        if depth is not None:
            for key in sorted(self.groups, key=len):
                if self._named(key) and self._named_depth(key) > depth and \
                        not self._in_box(key):
                    self.boxes[key] = "box" + str(min(self.groups[key].nodes))
        self.panels = {}
        if not expand:
            self._box_repeated_blocks()

    def _in_box(self, key: tuple[str, ...]) -> bool:
        return any(key[:i] in self.boxes for i in range(1, len(key)))

    def _box_repeated_blocks(self) -> None:
        """Named blocks built alike (the same layers wired the same way, arguments and shapes
        aside) that occur more than once are boxes in the network; the first is drawn once,
        opened, in a panel of its own (`self.panels`: its key -> how many boxes stand for it)."""
        g = self.arch.graph
        alike: dict[tuple, list[tuple[str, ...]]] = {}
        for key in sorted(self.groups, key=lambda k: (self.groups[k].nodes[0], len(k))):
            nodes = self.groups[key].nodes
            if not self._named(key) or len(nodes) < 2 or nodes[0] in self.hidden \
                    or self._in_box(key) or key in self.boxes \
                    or any(k == key[:len(k)] for ks in alike.values() for k in ks):
                continue
            index = {n: i for i, n in enumerate(nodes)}
            sig = (_bare(key[-1]), tuple(
                (tuple(self.disp[n][len(key):]), g.nodes[n]["op"],
                 tuple(index.get(u, -1) for u in self.arch.predecessors(n))) for n in nodes))
            alike.setdefault(sig, []).append(key)
        self.panels: dict[tuple[str, ...], int] = {}
        for keys in alike.values():
            if len(keys) > 1:
                self.panels[keys[0]] = len(keys)
                for k in keys:
                    self.boxes[k] = "box" + str(self.groups[k].nodes[0])

    # display paths: the decision scopes, with shared instances told apart and tiles marked
    def _display_paths(self) -> None:
        g = self.arch.graph
        run: list[int] = []
        counter: dict[str, int] = {}

        def flush() -> None:
            if not run:
                return
            root = _segs(g.nodes[run[0]]["path"])[0]
            sig = [(g.nodes[n]["path"], g.nodes[n]["op"]) for n in run]
            per = next(p for p in range(1, len(run) + 1) if len(run) % p == 0
                       and all(sig[i] == sig[i - p] for i in range(p, len(run))))
            for i, n in enumerate(run):
                if i % per == 0:
                    counter[root] = counter.get(root, 0) + 1
                self.disp[n] = [f"{root}@{counter[root]}"] + self._scope(n)[1:]
            run.clear()

        for n in self.nodes:
            d = g.nodes[n]
            segs = _segs(d["path"])
            if d["op"] == "input" or not segs:
                flush()
                self.disp[n] = []
            elif segs[0] == "network":
                flush()
                self.disp[n] = self._scope(n)[1:]
            else:
                if run and _segs(g.nodes[run[0]]["path"])[0] != segs[0]:
                    flush()
                run.append(n)
        flush()

    def _scope(self, n: int) -> list[str]:
        d = self.arch.graph.nodes[n]
        segs = _segs(d["path"])
        return segs if d["op"] in MERGES else segs[:-1]

    def _residuals(self) -> None:
        """Residual bodies go in a tile: `{res}` after the residual's scope."""
        g = self.arch.graph
        self.projections: dict[int, int] = {}  # residual add -> its skip input, when projected
        for a in self.nodes:
            if g.nodes[a]["op"] != "add" or not g.nodes[a]["args"].get("residual"):
                continue
            b, s = self.arch.predecessors(a)[:2]
            anc_b, anc_s = nx.ancestors(g, b) | {b}, nx.ancestors(g, s) | {s}
            e = max(anc_b & anc_s)
            body = anc_b - nx.ancestors(g, e) - {e}
            base = self.disp[a]
            for n in sorted(body):
                d = self.disp[n]
                rest = d[len(base):] if d[:len(base)] == base else d
                self.disp[n] = base + [_RES] + rest
            if self.shape[b] != self.shape[s]:
                self.projections[a] = s

    def _named(self, key: tuple[str, ...]) -> bool:
        last = key[-1]
        return not last.startswith(_RES) and not _HIDDEN.match(last)

    def _named_depth(self, key: tuple[str, ...]) -> int:
        return sum(1 for i in range(1, len(key) + 1) if self._named(key[:i]))

    # identical consecutive copies drawn once
    def _families(self) -> list[list[tuple[str, ...]]]:
        fam: dict[tuple, list[tuple[str, ...]]] = {}
        for key in self.groups:
            m = _COPY.match(key[-1])
            if m:
                fam.setdefault((key[:-1], m.group(1)), []).append(key)
            elif "@" in key[-1]:
                fam.setdefault((key[:-1], key[-1].split("@")[0]), []).append(key)
        order = sorted(fam.values(), key=lambda ks: (len(ks[0]), min(self.groups[ks[0]].nodes)))
        return [sorted(ks, key=lambda k: min(self.groups[k].nodes)) for ks in order]

    def _signature(self, key: tuple[str, ...]) -> tuple:
        nodes = self.groups[key].nodes
        index = {n: i for i, n in enumerate(nodes)}
        g = self.arch.graph
        return tuple((tuple(self.disp[n][len(key):]), g.nodes[n]["op"],
                      json.dumps(g.nodes[n]["args"], sort_keys=True), tuple(self.shape[n]),
                      tuple(index.get(u, -1) for u in self.arch.predecessors(n)))
                     for n in nodes)

    def _follows(self, prev: tuple[str, ...], key: tuple[str, ...]) -> bool:
        """Whether copy `key` reads only what copy `prev` made (no layer between them)."""
        inside = set(self.groups[prev].nodes) | set(self.groups[key].nodes)
        return all(u in inside for n in self.groups[key].nodes
                   for u in self.arch.predecessors(n))

    def _collapse_copies(self) -> None:
        for keys in self._families():
            if self.groups[keys[0]].nodes[0] in self.hidden:
                continue
            sigs = [self._signature(k) for k in keys]
            first = 0
            for i in range(1, len(keys) + 1):
                if i < len(keys) and sigs[i] == sigs[first] and self._follows(keys[i - 1],
                                                                              keys[i]):
                    continue
                self.counts[keys[first]] = i - first
                for k in keys[first + 1:i]:
                    for a, b in zip(self.groups[k].nodes, self.groups[keys[first]].nodes,
                                    strict=True):
                        self.hidden[a] = b
                first = i

    def rep(self, n: int, opened: tuple[str, ...] = ()) -> str:
        """The DOT node that stands for graph node n (inside the opened group's panel)."""
        while n in self.hidden:
            n = self.hidden[n]
        d = self.disp[n]
        for i in range(len(opened) + 1 if d[:len(opened)] == list(opened) else 1, len(d) + 1):
            box = self.boxes.get(tuple(d[:i]))
            if box:
                return box
        if self.arch.graph.nodes[n]["op"] == "identity":
            return self.rep(self.arch.predecessors(n)[0], opened)
        return f"n{n}" if not opened else f"p{n}"


def _group_label(key: tuple[str, ...], count: int | None, copies: int) -> str:
    last = key[-1]
    m = _COPY.match(last)
    if m:
        return f"\u00d7 {count}" if count and count > 1 else f"copy {int(m.group(2)) + 1}"
    name = _bare(last)
    return f"{name} \u00d7 {count}" if count and count > 1 else name


def architecture_dot(arch: Architecture, *, expand: bool = False, depth: int | None = None,
                     params: bool = False, layout: str = "LR", title: str | None = None) -> str:
    """The architecture as a neural circuit diagram in DOT text.

    expand: draw every copy of a repeat and every block where it stands (default: identical
    consecutive copies once, marked `x N`, and a block that occurs several times as a box,
    drawn opened once in a panel); depth: draw named blocks nested deeper than this as one box
    (None: no limit); params: write parameter counts under the layers; layout: "LR" or "TB"."""
    v = _View(arch, expand, depth)
    p = v.p
    if title is None:
        name = Path(arch.space_file).name if arch.space_file else "architecture"
        title = f"{name}: {p.params:,} parameters, {p.flops:,} MACs, output {p.output_shape}"
    d = _Drawing(v, Dot(layout, title), params, layout)
    d.draw(())
    for key, uses in v.panels.items():
        d.draw(key, uses)
    return d.dot.text()


class _Drawing:
    """Draws the network, or one opened block in a panel, into a Dot."""

    def __init__(self, v: _View, dot: Dot, params: bool, layout: str):
        self.v, self.dot, self.params, self.layout = v, dot, params, layout
        self.clusters: dict[tuple[tuple[str, ...], tuple[str, ...]], Cluster] = {}

    def cluster_of(self, d: list[str], opened: tuple[str, ...], panel: Cluster | None
                   ) -> Cluster | None:
        v = self.v
        parent = panel
        for i in range(len(opened) + 1, len(d) + 1):
            key = tuple(d[:i])
            if key in v.boxes:
                break
            grp = v.groups[key]
            drawn = key[-1].startswith(_RES) or _COPY.match(key[-1]) or "@" in key[-1] or (
                v._named(key) and len(grp.nodes) > 1)
            if not drawn:
                continue
            if (opened, key) not in self.clusters:
                self.clusters[(opened, key)] = self.dot.cluster(parent, **_cluster_style(key, v))
            parent = self.clusters[(opened, key)]
        return parent

    def draw(self, opened: tuple[str, ...], uses: int = 0) -> None:
        v, dot, g = self.v, self.dot, self.v.arch.graph
        panel = None
        members = set(v.groups[opened].nodes) if opened else set(v.nodes)
        if opened:
            label = f"{_bare(opened[-1])}: drawn once, used {uses} times"
            panel = dot.cluster(None, style="rounded", color="#707070", label=label,
                                labeljust="l", labelloc="t", fontsize="10")
        tag = "p" if opened else "n"
        drawn: set[str] = set()
        for n in sorted(members):
            r = v.rep(n, opened)
            if n in v.hidden or r in drawn or (g.nodes[n]["op"] == "identity"
                                              and not r.endswith(f"{tag}{n}")):
                continue
            drawn.add(r)
            self.node(n, r, opened, panel)
        # wires: (source DOT node, target DOT node, the graph node whose tensor it carries)
        wires: list[tuple[str, str, int]] = []
        seen: set[tuple[str, str, int]] = set()
        targets = sorted(members) + ([] if opened else [v.out])
        for n in targets:
            if n in v.hidden or (n != v.out and g.nodes[n]["op"] == "identity"):
                continue
            target = "out" if n == v.out else v.rep(n, opened)
            for port, u in enumerate(v.arch.predecessors(n)):
                src = v.rep(u, opened) if u in members else self.stub(f"in{tag}{u}", panel)
                if src == target:
                    continue
                if n in v.projections and port == 1 and not v.rep(n, opened).startswith("box"):
                    proj = f"proj{tag}{n}"
                    if proj not in dot.node_lines:
                        dot.node(proj, _projection(v.shape[u], v.shape[n], self.layout),
                                 self.cluster_of(v.disp[n], opened, panel))
                    if (src, proj, u) not in seen:
                        wires.append((src, proj, u))
                        seen.add((src, proj, u))
                    src, u = proj, n
                w = (src, target, u)
                if w not in seen or g.nodes[n]["op"] in MERGES:
                    wires.append(w)
                    seen.add(w)
        if opened:  # the block's results leave the panel
            for n in sorted(members):
                if n not in v.hidden and any(s not in members for s in g.successors(n)):
                    wires.append((v.rep(n, opened), self.stub(f"out{tag}{n}", panel), n))
        self.wire_up(wires)

    def stub(self, name: str, panel: Cluster | None) -> str:
        self.dot.node(name, {"shape": "point", "width": "0.05", "color": WIRE}, panel)
        return name

    def node(self, n: int, r: str, opened: tuple[str, ...], panel: Cluster | None) -> None:
        v, dot, p = self.v, self.dot, self.v.p
        d = v.arch.graph.nodes[n]
        dn = v.disp[n]
        start = len(opened) + 1 if opened else 1
        key = next((tuple(dn[:i]) for i in range(start, len(dn) + 1)
                    if tuple(dn[:i]) in v.boxes), None)
        if key is not None:
            extra = ["opened in its panel"] if any(_alike(v, key, k) for k in v.panels) else []
            if self.params:
                extra.append(f"{sum(p.steps[m].params for m in v.groups[key].nodes):,} params")
            label = "".join([_h(_group_label(key, v.counts.get(key), 0))]
                            + [f"<BR/>{_small(s)}" for s in extra])
            dot.node(r, {"shape": "box3d", "label": f"<{label}>", "style": "filled",
                         "fillcolor": "#f3f3f3"}, self.cluster_of(list(key[:-1]), opened, panel))
        elif d["op"] == "input":
            dot.node(r, {"shape": "plaintext", "label": f"<<B>{_h(d['args']['name'])}</B>>"})
        else:
            step = p.steps[n]
            extra = [f"{step.params:,} params"] if self.params and step.params else []
            dot.node(r, glyph(d["op"], d["args"], extra, self.layout),
                     self.cluster_of(dn, opened, panel))

    def wire_up(self, wires: list[tuple[str, str, int]]) -> None:
        v, dot = self.v, self.dot
        by_src: dict[str, list[tuple[str, int]]] = {}
        for src, t, u in wires:
            by_src.setdefault(src, []).append((t, u))
        if "out" in [t for t, _ in sum(by_src.values(), [])]:
            dot.node("out", {"shape": "plaintext", "label": "<<B>output</B>>"})
        for src, outs in by_src.items():
            u = outs[0][1]
            shape = v.shape[u]
            labelled = src.startswith(("box", "proj", "in")) or _changes_shape(v, u) \
                or outs[0][0] == "out" or outs[0][0].startswith("out")
            if len(outs) > 1:
                dot.node(f"copy_{src}", {"shape": "point", "width": "0.07", "color": WIRE})
                dot.edge(src, f"copy_{src}", **wire(shape, labelled))
                for t, _ in outs:
                    dot.edge(f"copy_{src}", t, **wire(shape, False))
            else:
                dot.edge(src, outs[0][0], **wire(shape, labelled))


def _alike(v: _View, key: tuple[str, ...], other: tuple[str, ...]) -> bool:
    return v.boxes.get(key) is not None and _bare(key[-1]) == _bare(other[-1])


def _changes_shape(v: _View, u: int) -> bool:
    g = v.arch.graph
    if g.nodes[u]["op"] == "input":
        return True
    preds = v.arch.predecessors(u)
    return not preds or any(v.shape[x] != v.shape[u] for x in preds)


def _projection(src: list[int], dst: list[int], layout: str) -> dict[str, str]:
    if len(src) >= 2 and len(dst) == len(src) and len(src) != 2 or len(src) == 3:
        stride = src[-1] // dst[-1] if dst[-1] else 1
        return glyph("conv2d", {"kernel": 1, "stride": stride}, ["projection"], layout)
    return glyph("linear", {"bias": False}, ["projection"], layout)


def _cluster_style(key: tuple[str, ...], v: _View) -> dict[str, str]:
    last = key[-1]
    if last.startswith(_RES):
        return {"style": "filled,rounded", "fillcolor": TILE, "color": TILE, "label": ""}
    if _COPY.match(last):
        return {"style": "dashed,rounded", "color": "#707070", "labeljust": "r",
                "labelloc": "b", "fontsize": "11",
                "label": _group_label(key, v.counts.get(key), 0)}
    return {"style": "rounded", "color": "#9a9a9a", "fontcolor": "#505050", "labeljust": "l",
            "labelloc": "t",
            "label": _group_label(key, v.counts.get(key), 0)}


# ------------------------------------------------------------------------------ files
def to_svg(dot_text: str) -> str:
    """The diagram as SVG text (needs graphviz's `dot`)."""
    return _run_dot(dot_text, "svg").decode("utf-8")


def _run_dot(dot_text: str, fmt: str) -> bytes:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing("graphviz's `dot` program was not found", hint=INSTALL_HINT)
    fmt_arg = "png" if fmt == "png" else fmt
    try:
        done = subprocess.run([exe, f"-T{fmt_arg}"] + (["-Gdpi=110"] if fmt == "png" else []),
                              input=dot_text.encode("utf-8"), capture_output=True, timeout=300,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ArchDSLError(f"graphviz's `dot` failed: {e}") from None
    if done.returncode != 0:
        msg = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ArchDSLError("graphviz's `dot` failed" + (f": {msg[-1]}" if msg else ""))
    return done.stdout


def render(dot_text: str, path: str | Path) -> Path:
    """Write the diagram to `path`; its suffix picks the format: .dot, .svg, .png or .pdf.

    The .dot text needs nothing; an image needs graphviz's `dot` (GraphvizMissing otherwise)."""
    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArchDSLError(f"cannot draw to '{out}': unknown format '.{fmt}'" if fmt else
                           f"cannot draw to '{out}': it has no suffix",
                           hint="the output must end in .svg, .png, .pdf or .dot")
    data = dot_text.encode("utf-8") if fmt == "dot" else _run_dot(dot_text, fmt)
    try:
        out.write_bytes(data)
    except OSError as e:
        raise ArchDSLError(f"cannot write {out}: {e.strerror or e}") from None
    return out
