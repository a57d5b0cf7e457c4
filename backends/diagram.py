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

import shutil
import subprocess
from pathlib import Path

from archdsl.errors import ArchDSLError
from archdsl.graph import Architecture

from .diagram_dot import TILE, WIRE, Cluster, Dot, _h, _small, glyph, wire
from .diagram_view import _COPY, _RES, MERGES, _bare, _group_label, _View

__all__ = ["FORMATS", "Dot", "GraphvizMissing", "architecture_dot", "glyph", "render",
           "to_svg", "INSTALL_HINT"]

FORMATS = ("dot", "svg", "png", "pdf")
INSTALL_HINT = ("install graphviz for its `dot` program: `apt-get install graphviz` (Debian, "
                "Ubuntu), `brew install graphviz` (macOS), `conda install graphviz`, or see "
                "https://graphviz.org/download/")


class GraphvizMissing(ArchDSLError):
    """The `dot` program of graphviz is not installed: only DOT text can be written."""


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
