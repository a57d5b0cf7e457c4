"""Neural circuit diagrams of architectures, through graphviz: DOT text, and SVG/PNG/PDF files.

The notation (V. Abbott, "Neural Circuit Diagrams", TMLR 2024), drawn from the architecture graph
and its static shapes (`plan`): data flows left to right on wires without arrowheads, one line per
axis of the tensor, labelled with its shape (batch axis left out) where an operation changed it.
Glyphs: a bold `L` (subscript `+` with a bias) for linear layers, a trapezoid with `*k` for
convolutions (`Max`/`mean` for pooling), a circle for normalisation, `>name>` for element-wise
nonlinearities, a triangle for softmax, a dot where a wire is copied, `+` where wires are added,
a thick bar for concatenation and flattening. Residual bodies sit in tinted tiles; identical
consecutive copies of a repeat (or of a shared sub-network) are drawn once and marked `x N`; a
block whose uses look alike is a box at each use, opened once in a panel that lists the values
that differ between uses; named blocks nested deeper than `depth` are drawn as one 3-D box, and
by default an architecture is drawn only as deep as fits about 2,000 pixels (`fit`).

The DOT text is deterministic: node and cluster names come from the graph's node numbers and the
order of the nodes, never from memory addresses or hashes. `archdsl.backends.diagram_space` draws
a whole search space with the same glyphs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from archdsl.errors import ArchDSLError
from archdsl.graph import Architecture

from .diagram_dot import TILE, WIRE, Cluster, Dot, _h, _small, glyph, wire
from .diagram_view import _COPY, _RES, MERGES, _bare, _group_label, _projection, _View
from .plan import plan

__all__ = ["FORMATS", "Dot", "GraphvizMissing", "architecture_dot", "glyph", "render",
           "to_svg", "INSTALL_HINT"]

FORMATS = ("dot", "svg", "png", "pdf")
DPI = 96  # the resolution of PNG files: the size a browser shows the SVG at
FIT_WIDTH = 2000  # pixels at DPI: the longest drawing `architecture_dot` makes unasked
# points of `Dot.width`'s estimate per pixel at DPI: 72 points an inch, and the estimate runs
# about 1.2 times over dot's own layout (the median over the examples' sampled networks)
POINTS = 72 / DPI * 1.2
INSTALL_HINT = ("install graphviz for its `dot` program: `apt-get install graphviz` (Debian, "
                "Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, or see "
                "https://graphviz.org/download/")


class GraphvizMissing(ArchDSLError):
    """The `dot` program of graphviz is not installed: only DOT text can be written."""


def architecture_dot(arch: Architecture, *, expand: bool = False, depth: int | None = None,
                     params: bool = False, layout: str = "LR", title: str | None = None,
                     fit: int | None = FIT_WIDTH) -> str:
    """The architecture as a neural circuit diagram in DOT text.

    expand: draw every copy of a repeat and every block where it stands (default: identical
    consecutive copies once, marked `x N`, and a block whose uses are drawn alike as a box at
    each use, drawn opened once in a panel); depth: draw named blocks nested deeper than this
    as one box; params: write parameter counts under the layers; layout: "LR" or "TB".
    fit: with no depth, no expand and layout "LR", a drawing estimated to be wider than this
    many pixels (at PNG resolution, 96 dpi) draws the blocks nested deeper than the deepest
    depth that fits as boxes, and says so in its title (None, or no depth fits: every block
    opened)."""
    p = plan(arch)
    if title is None:
        name = Path(arch.space_file).name if arch.space_file else "architecture"
        title = f"{name}: {p.params:,} parameters, {p.flops:,} MACs, output {p.output_shape}"
    v = _View(arch, expand, depth, p)
    dot = _draw(v, layout, title, params)
    if depth is None and not expand and fit and layout == "LR" and dot.width() > fit * POINTS:
        for shallower in range(v.max_depth() - 1, -1, -1):  # the deepest cut that fits
            cut = _draw(_View(arch, expand, shallower, p), layout, title + (
                f"; blocks nested deeper than {shallower} drawn as boxes to fit "
                "(--depth N or --expand draws more)"), params)
            if cut.width() <= fit * POINTS:
                dot = cut
                break
    return dot.text()


def _draw(v: _View, layout: str, title: str, params: bool) -> Dot:
    d = _Drawing(v, Dot(layout, title), params, layout)
    d.draw(())
    for key in v.panels:
        d.draw(key)
    return d.dot


Wire = tuple[str, str, tuple[int, ...]]  # source and target DOT nodes, the tensor in each use


class _Drawing:
    """Draws the network, or one opened block in a panel, into a Dot."""

    def __init__(self, v: _View, dot: Dot, params: bool, layout: str):
        self.v, self.dot, self.params, self.layout = v, dot, params, layout
        self.clusters: dict[tuple[tuple[str, ...], tuple[str, ...]], Cluster] = {}
        names = [_bare(k[-1]) for k in v.panels]  # a name with several panels: (1), (2), ...
        self.variant = {k: f" ({names[:i + 1].count(names[i])})" if names.count(names[i]) > 1
                        else "" for i, k in enumerate(v.panels)}
        self.varied = False  # whether the panel being drawn shows values that differ per use

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

    def uses(self, opened: tuple[str, ...], n: int) -> tuple[int, ...]:
        """Graph node n (of the network, or of the panel's first use) in every use drawn."""
        return tuple(self.v.corresponding(opened, n)) if opened else (n,)

    def draw(self, opened: tuple[str, ...]) -> None:
        v, dot, g = self.v, self.dot, self.v.arch.graph
        panel = None
        members = set(v.groups[opened].nodes) if opened else set(v.nodes)
        self.varied = False
        if opened:
            panel = dot.cluster(None, style="rounded", color="#707070", labeljust="l",
                                labelloc="t", fontsize="10")
        tag = v.tag(opened)
        drawn: set[str] = set()
        for n in sorted(members):
            r = v.rep(n, opened)
            if n in v.hidden or r in drawn or (g.nodes[n]["op"] == "identity"
                                              and not r.startswith("box")):
                continue  # an identity is a plain wire: the node it passes on is drawn
            drawn.add(r)
            self.node(n, r, opened, panel)
        wires: list[Wire] = []
        seen: set[tuple[str, str, int]] = set()
        targets = sorted(members) + ([] if opened else [v.out])
        for n in targets:
            if n in v.hidden:
                continue
            target = "out" if n == v.out else v.rep(n, opened)
            for port, u in enumerate(v.arch.predecessors(n)):
                src = v.rep(u, opened) if u in members else f"in{tag}{u}"
                carried = self.uses(opened, u) if u in members else tuple(
                    v.arch.predecessors(m)[port] for m in self.uses(opened, n))
                if src == target:
                    continue
                if n in v.projections and port == 1 and not target.startswith("box"):
                    proj = f"proj{tag}{n}"
                    if proj not in dot.node_lines:
                        dot.node(proj, _projection(v.shape[u], v.shape[n], self.layout),
                                 self.cluster_of(v.disp[n], opened, panel))
                    if (src, proj, u) not in seen:
                        wires.append((src, proj, carried))
                        seen.add((src, proj, u))
                    src, u, carried = proj, n, self.uses(opened, n)
                if (src, target, u) not in seen or g.nodes[n]["op"] in MERGES \
                        and not target.startswith("box"):  # add(x, x): two wires into +
                    wires.append((src, target, carried))
                    seen.add((src, target, u))
        if opened:  # the block's results leave the panel
            for n in sorted(members):
                if n not in v.hidden and any(s not in members for s in g.successors(n)):
                    wires.append((v.rep(n, opened), f"out{tag}{n}", self.uses(opened, n)))
        for src, target, _ in wires:  # the stubs by which a panel's wires come and go
            for end in (src, target):
                if end.startswith(("inp", "outp")):
                    self.dot.node(end, {"shape": "point", "width": "0.05", "color": WIRE},
                                  panel)
        self.wire_up(wires, panel)
        if panel is not None:
            note = "; where uses differ, their values in order of use" if self.varied else ""
            panel.attrs["label"] = (f"{_bare(opened[-1])}{self.variant[opened]}: drawn once, "
                                    f"used {v.uses(opened)} times{note}")

    def node(self, n: int, r: str, opened: tuple[str, ...], panel: Cluster | None) -> None:
        v, dot, p = self.v, self.dot, self.v.p
        d = v.arch.graph.nodes[n]
        dn = v.disp[n]
        start = len(opened) + 1 if opened else 1
        key = next((tuple(dn[:i]) for i in range(start, len(dn) + 1)
                    if tuple(dn[:i]) in v.boxes), None)
        if key is not None:
            name = _group_label(key, v.counts.get(key))
            extra = []
            if key in v.panel_of:
                variant = self.variant[v.panel_of[key]]
                name = name.replace(_bare(key[-1]), _bare(key[-1]) + variant, 1)
                extra.append("see its panel")
            if self.params:  # the box's parameters, in each use
                per_use = zip(*(self.uses(opened, m) for m in v.groups[key].nodes), strict=True)
                extra.append(self.sizes([sum(p.steps[m].params for m in ms) for ms in per_use])
                             + (" each" if v.counts.get(key, 1) > 1 else ""))
            label = "".join([_h(name)] + [f"<BR/>{_small(s)}" for s in extra])
            dot.node(r, {"shape": "box3d", "label": f"<{label}>", "style": "filled",
                         "fillcolor": "#f3f3f3"}, self.cluster_of(list(key[:-1]), opened, panel))
        elif d["op"] == "input":
            kind = d["args"].get("index")
            below = f"<BR/>{_small(f'index({kind})')}" if kind is not None else ""
            dot.node(r, {"shape": "plaintext",
                         "label": f"<<B>{_h(d['args']['name'])}</B>{below}>"})
        else:
            counts = [p.steps[m].params for m in self.uses(opened, n)]
            extra = [self.sizes(counts)] if self.params and any(counts) else []
            dot.node(r, glyph(d["op"], d["args"], extra, self.layout),
                     self.cluster_of(dn, opened, panel))

    def sizes(self, counts: list[int]) -> str:
        """Parameter counts, one per distinct value in the order of use."""
        distinct = list(dict.fromkeys(counts))
        self.varied |= len(distinct) > 1
        return " / ".join(f"{c:,}" for c in distinct) + " params"

    def wire_up(self, wires: list[Wire], panel: Cluster | None) -> None:
        v, dot = self.v, self.dot
        by_src: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for src, t, carried in wires:
            by_src.setdefault(src, []).append((t, carried))
        if "out" in [t for t, _ in sum(by_src.values(), [])]:
            dot.node("out", {"shape": "plaintext", "label": "<<B>output</B>>"})
        for src, outs in by_src.items():
            carried = outs[0][1]
            shapes = list(dict.fromkeys(tuple(v.shape[u]) for u in carried))
            labelled = src.startswith(("box", "proj", "in")) or outs[0][0].startswith("out") \
                or any(_changes_shape(v, u) for u in carried)
            self.varied |= labelled and len(shapes) > 1
            if len(outs) > 1:
                dot.node(f"copy_{src}", {"shape": "point", "width": "0.07", "color": WIRE},
                         panel)
                dot.edge(src, f"copy_{src}", **wire(shapes, labelled))
                for t, _ in outs:
                    dot.edge(f"copy_{src}", t, **wire(shapes, False))
            else:
                dot.edge(src, outs[0][0], **wire(shapes, labelled))


def _changes_shape(v: _View, u: int) -> bool:
    g = v.arch.graph
    if g.nodes[u]["op"] == "input":
        return True
    preds = v.arch.predecessors(u)
    return not preds or any(v.shape[x] != v.shape[u] for x in preds)


def _cluster_style(key: tuple[str, ...], v: _View) -> dict[str, str]:
    last = key[-1]
    if last.startswith(_RES):
        return {"style": "filled,rounded", "fillcolor": TILE, "color": TILE, "label": ""}
    if _COPY.match(last):
        return {"style": "dashed,rounded", "color": "#707070", "labeljust": "r",
                "labelloc": "b", "fontsize": "11",
                "label": _group_label(key, v.counts.get(key))}
    return {"style": "rounded", "color": "#9a9a9a", "fontcolor": "#505050", "labeljust": "l",
            "labelloc": "t",
            "label": _group_label(key, v.counts.get(key))}


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
        done = subprocess.run([exe, f"-T{fmt_arg}"] + ([f"-Gdpi={DPI}"] if fmt == "png" else []),
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
