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

from .plan import plan

MERGES = ("add", "concat", "multiply")

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
