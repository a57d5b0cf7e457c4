"""The architecture graph arranged for drawing: display scopes, collapsed copies, boxes, panels.

Nodes are grouped by their display scope (decision scopes, with the instances of a shared
sub-network told apart and residual bodies marked as tiles). Identical consecutive copies of a
repeat (or of a shared sub-network) are drawn once and counted; named blocks nested deeper than
a depth are boxes; a block whose uses are drawn alike (the same glyphs wired the same way) is a
box at each use and is opened once, in a panel of its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import networkx as nx

from archdsl.graph import Architecture

from .diagram_dot import glyph
from .plan import Plan, plan

MERGES = ("add", "concat", "multiply")

# ------------------------------------------------------------------------------ structure
_COPY = re.compile(r"^(repeat(?:#\d+)?)\[(\d+)\]$")
_HIDDEN = re.compile(r"^(one_of|optional|parallel|skip|return|residual|repeat)(#\d+)?(\[\d+\])?$")
_RES = "{res}"


def _segs(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _bare(seg: str) -> str:
    """A scope's name: `motif#2[3]` and `cell@4` are `motif` and `cell`."""
    return re.sub(r"(#\d+)?(\[\d+\])?$", "", seg.split("@")[0])


@dataclass
class _Group:
    key: tuple[str, ...]
    nodes: list[int] = field(default_factory=list)  # every node under it, in id order
    label: str = ""


class _View:
    """The architecture graph arranged for drawing: groups, collapsed copies, boxes."""

    def __init__(self, arch: Architecture, expand: bool, depth: int | None,
                 the_plan: Plan | None = None):
        self.arch = arch
        g = arch.graph
        self.p = the_plan or plan(arch)
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
                    self.boxes[key] = self._box_name(key)
        # a block opened once in a panel: its first use -> every use (boxes), in order
        self.panels: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        self.panel_of: dict[tuple[str, ...], tuple[str, ...]] = {}  # a use -> its panel
        if not expand:
            self._box_repeated_blocks()

    def max_depth(self) -> int:
        """How deep named blocks nest (0: none)."""
        return max((self._named_depth(k) for k in self.groups if self._named(k)), default=0)

    def _in_box(self, key: tuple[str, ...]) -> bool:
        return any(key[:i] in self.boxes for i in range(1, len(key)))

    def _box_repeated_blocks(self) -> None:
        """Named blocks whose uses are drawn alike (the same glyphs wired the same way, copies
        collapsed the same way; shapes aside) and occur more than once are boxes in the network;
        the first is drawn once, opened, in a panel of its own. Outer blocks first: a block
        inside a panel's block is drawn in that panel."""
        alike: dict[tuple, list[tuple[str, ...]]] = {}
        for key in sorted(self.groups, key=lambda k: (self.groups[k].nodes[0], len(k))):
            nodes = self.groups[key].nodes
            if self._named(key) and len(nodes) > 1 and nodes[0] not in self.hidden \
                    and not self._in_box(key) and key not in self.boxes:
                alike.setdefault(self._drawn_alike(key), []).append(key)
        for keys in sorted(alike.values(), key=lambda ks: (min(map(self._named_depth, ks)),
                                                          self.groups[ks[0]].nodes[0])):
            keys = [k for k in keys if not self._in_closed_box(k)
                    and not any(o != k and o == k[:len(o)] for o in keys)]
            if len(keys) > 1:
                self._open_in_panel(keys)
        settled = False
        while not settled:  # a use that ended in another panel's later use is not drawn
            settled = True
            for first, keys in list(self.panels.items()):
                kept = [k for k in keys if not self._in_closed_box(k)]
                if kept != keys:
                    settled = False
                    del self.panels[first]
                    for k in keys:
                        self.boxes.pop(k, None)
                        self.panel_of.pop(k, None)
                    if len(kept) > 1 or kept and any(kept[0][:i] in self.panels
                                                     for i in range(1, len(kept[0]))):
                        self._open_in_panel(kept)

    def _open_in_panel(self, keys: list[tuple[str, ...]]) -> None:
        self.panels[keys[0]] = keys
        for k in keys:
            self.boxes[k] = self._box_name(k)
            self.panel_of[k] = keys[0]

    def _box_name(self, key: tuple[str, ...]) -> str:
        """The DOT name of a group drawn as a box: its first node and how deep it is."""
        return f"box{self.groups[key].nodes[0]}_{len(key)}"

    def _in_closed_box(self, key: tuple[str, ...]) -> bool:
        """Whether a group lies inside a box that is not opened in a panel."""
        return any(key[:i] in self.boxes and key[:i] not in self.panels
                   for i in range(1, len(key)))

    def _drawn_alike(self, key: tuple[str, ...]) -> tuple:
        """What a use of a block looks like opened: its name, and per node its place, glyph,
        inputs and the copy it is drawn as (arguments that only change shapes left out)."""
        g = self.arch.graph
        nodes = self.groups[key].nodes
        index = {n: i for i, n in enumerate(nodes)}
        return (_bare(key[-1]), tuple(
            (tuple(self.disp[n][len(key):]), g.nodes[n]["op"],
             glyph(g.nodes[n]["op"], g.nodes[n]["args"]).get("label", ""),
             tuple(index.get(u, -1) for u in self.arch.predecessors(n)),
             index.get(self.hidden.get(n, -1), -1),
             _projection(self.shape[self.projections[n]], self.shape[n]).get("label")
             if n in self.projections else None) for n in nodes))

    def uses(self, panel: tuple[str, ...]) -> int:
        """How many times the block opened in `panel` is used: its boxes, each counted as
        often as it is drawn for (copies collapsed into it, or into a group around it, and
        the uses of a panel it is drawn in)."""
        total = 0
        for key in self.panels[panel]:
            outer = max((i for i in range(1, len(key)) if key[:i] in self.panels), default=0)
            times = self.uses(key[:outer]) if outer else 1
            for i in range(outer + 1, len(key) + 1):
                times *= self.counts.get(key[:i], 1)
            total += times
        return total

    def corresponding(self, panel: tuple[str, ...], n: int) -> list[int]:
        """Node n of the panel's first use and the same node in each of its other uses (in
        every use of the panel a use stands in)."""
        i = self.groups[panel].nodes.index(n)
        out: list[int] = []
        for key in self.panels[panel]:
            m = self.groups[key].nodes[i]
            outer = max((j for j in range(1, len(key)) if key[:j] in self.panels), default=0)
            out += self.corresponding(key[:outer], m) if outer else [m]
        return out

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
        if self.arch.graph.nodes[n]["op"] == "identity":  # a plain wire: what it carries
            u = self.arch.predecessors(n)[0]
            if opened and self.disp[u][:len(opened)] != list(opened):
                return f"in{self.tag(opened)}{u}"  # from outside the panel: its input's stub
            return self.rep(u, opened)
        return f"{self.tag(opened)}{n}"

    def tag(self, opened: tuple[str, ...]) -> str:
        """The prefix of the DOT names of the network's nodes (`n`) or of a panel's."""
        return f"p{list(self.panels).index(opened) + 1}_" if opened else "n"


def _group_label(key: tuple[str, ...], count: int | None) -> str:
    last = key[-1]
    m = _COPY.match(last)
    if m:
        return f"\u00d7 {count}" if count and count > 1 else f"copy {int(m.group(2)) + 1}"
    name = _bare(last)
    return f"{name} \u00d7 {count}" if count and count > 1 else name


def _projection(src: list[int], dst: list[int], layout: str = "LR") -> dict[str, str]:
    """The glyph of the projection a residual puts on its skip wire when the shapes differ."""
    if len(src) >= 2 and len(dst) == len(src) and len(src) != 2 or len(src) == 3:
        stride = src[-1] // dst[-1] if dst[-1] else 1
        return glyph("conv2d", {"kernel": 1, "stride": stride}, ["projection"], layout)
    return glyph("linear", {"bias": False}, ["projection"], layout)
