"""DOT text for neural circuit diagrams: the graph writer, the glyph of every operation, wires.

The notation (V. Abbott, "Neural Circuit Diagrams", TMLR 2024): data flows left to right on wires
without arrowheads, one line per axis of the tensor. Glyphs: a bold `L` (subscript `+` with a
bias) for linear layers, a trapezoid with `*k` for convolutions (`Max`/`mean` for pooling), a
circle for normalisation, `>name>` for element-wise nonlinearities, a triangle for softmax, `+`
where wires are added, a thick bar for concatenation and flattening. `Dot` writes the text in
the order things were added, so the same calls give the same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from archdsl.errors import ArchDSLError, printable

__all__ = ["Cluster", "Dot", "glyph", "wire", "FONT", "TILE", "WIRE", "FADED"]

FONT = "DejaVu Sans"
TILE = "#e3ecf9"  # residual bodies
WIRE = "#404040"
FADED = "#c0c0c0"
ACTS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "tanh": "tanh", "sigmoid": "sigmoid"}
NORMS = {"batchnorm": "BN", "layernorm": "LN", "groupnorm": "GN"}


# ------------------------------------------------------------------------------ DOT text
def _quote(v: str) -> str:
    if v.startswith("<") and v.endswith(">"):
        return v  # an HTML-like label
    # a line break becomes DOT's \n; any other non-printable character (an escape sequence,
    # an undecodable byte of a file name) is written as its escape, so the text always encodes
    return '"' + printable(v.replace("\\", "\\\\").replace('"', '\\"'), False) + '"'


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
        self.node_attrs: dict[str, dict[str, str]] = {}
        self.edges: list[str] = []
        self.links: list[tuple[str, str, dict[str, str]]] = []
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
        self.node_attrs[name] = attrs
        return name

    def edge(self, u: str, v: str, **attrs: str) -> None:
        self.edges.append(f"{u} -> {v} {_attrs(attrs)};" if attrs else f"{u} -> {v};")
        self.links.append((u, v, attrs))

    def width(self) -> float:
        """An estimate of the drawing's extent along the flow (points; inches * 72), as dot
        lays it out: nodes in ranks (a labelled wire's label takes a rank of its own), each
        rank as wide as its widest node, clusters' margins around them."""
        depth = {n: 0 for n in self.node_lines}
        self._nesting(self.root, 0, depth)
        succ: dict[str, list[tuple[str, float]]] = {}
        for u, v, a in self.links:
            succ.setdefault(u, []).append((v, _text_width(a.get("label", ""), 8)))
        rank = {n: 0 for n in self.node_lines}
        for u in _topological(list(self.node_lines), succ):
            for v, label in succ.get(u, []):
                rank[v] = max(rank.get(v, 0), rank[u] + (2 if label else 1))
        widths: dict[int, float] = {}  # dot ranks every component together
        for n, r in rank.items():
            widths[r] = max(widths.get(r, 0.0), self._extent(n))
            for _, label in succ.get(n, []):
                if label:
                    widths[r + 1] = max(widths.get(r + 1, 0.0), label + 4)
        return sum(w + 9 for w in widths.values()) + 16 * max(depth.values(), default=0) + 16

    def _extent(self, n: str) -> float:
        a = self.node_attrs.get(n, {})
        if a.get("shape") == "point":
            return 5.0
        across = self.layout == "LR" and a.get("orientation") in ("90", "270")
        text = _text_width(a.get("label", ""), float(a.get("fontsize", 10)))
        size = text + 12 if not across else 24 + text
        if a.get("fixedsize") == "true":
            size = 72 * float(a.get("width" if self.layout == "LR" else "height", 0.3))
        return max(size, 22.0)

    def _nesting(self, c: Cluster, level: int, depth: dict[str, int]) -> None:
        for n in c.nodes:
            depth[n] = level
        for ch in c.children:
            self._nesting(ch, level + 1, depth)

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


def _text_width(label: str, size: float) -> float:
    """About how wide a label is set (points): its longest line, tags left out."""
    lines = re.split(r"<BR/>|\\n|\n", label.strip("<>") if label.startswith("<") else label)
    widths = []
    for line in lines:
        small = "POINT-SIZE" in line
        text = html.unescape(re.sub(r"<[^>]*>", "", line))
        widths.append(len(text) * (8 if small else size) * 0.6)
    return max(widths, default=0.0)


def _topological(nodes: list[str], succ: dict[str, list[tuple[str, float]]]) -> list[str]:
    indeg = {n: 0 for n in nodes}
    for outs in succ.values():
        for v, _ in outs:
            indeg[v] = indeg.get(v, 0) + 1
    ready = [n for n in indeg if indeg[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop()
        order.append(n)
        for v, _ in succ.get(n, []):
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)
    return order


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
    if small and attrs.get("fixedsize") == "true":  # no room inside: the small print beside
        attrs["xlabel"] = "<" + "<BR/>".join(_small(s) for s in small) + ">"
        small = []
    body = main + "".join(f"<BR/>{_small(s)}" for s in small)
    attrs["label"] = f"<{body}>" if body else ""
    if faded:
        attrs.update(color=FADED, fontcolor=FADED)
        if attrs.get("style", "").find("filled") >= 0:
            attrs["fillcolor"] = "#f4f4f4"
    return attrs


def wire(shapes: list[tuple[int, ...]] | list[list[int]], label: bool,
         faded: bool = False) -> dict[str, str]:
    """A wire: one line per axis (a bundle), labelled with its shape where it changed (a wire
    drawn once for several uses of a block lists each use's shape where they differ)."""
    color = FADED if faded else WIRE
    axes = max((len(s) for s in shapes), default=1)
    a = {"color": ":".join([color] * max(1, min(axes, 4))), "penwidth": "0.8"}
    if label and shapes:
        a["label"] = "\n".join("[" + ", ".join(map(str, s)) + "]" for s in shapes)
    return a
