"""The canonical form of an architecture graph, and its hash.

First the simplifications that keep what the network computes (`Simplified`): zero branches
dropped from sums, nodes that cannot reach the output dropped, identities and one-input merges
contracted. Then a canonical labelling of what is left, a DAG with labelled nodes (the layer
and its arguments) and labelled edges (the input ports, unordered for commutative merges, and
how many times one tensor is used): colour refinement in both directions (each node's colour
from its inputs' colours, in topological order, then from its consumers'); tied nodes that can
be swapped with their post-dominated regions ordered at will; individualisation for other ties,
keeping the least serialisation over those that are not symmetries. Two graphs get the same
hash exactly when they are isomorphic as such labelled DAGs (up to the hash's 64 bits): a layer
used twice (one set of weights) and two copies of it differ. The one exception bounds the time:
a graph with more than _SEARCH_MOST nodes tied in other ways is hashed by its refined colours,
which colour refinement (Weisfeiler-Lehman) cannot tell apart either.

May import: the standard library, and networkx for `canonical_graph`'s result. Nothing else of
archdsl: this is a function of the graph alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from array import array
from typing import Any

import networkx as nx

__all__ = ["Simplified", "canonical_graph", "canonical_hash", "simplified_hash"]

_COMMUTATIVE = frozenset({"add", "multiply"})
_ZERO_THROUGH = frozenset({"identity", "avg_pool", "max_pool", "zero"})
_CONTRACT = frozenset({"identity", "add", "concat", "multiply"})
_LABELS: dict[tuple[str, str], str] = {}  # (op, repr(args)) -> the node's label
_LABELS_MAX = 50_000
_PORT_NAMES = [f"{p}x1" for p in range(64)]  # the edge label of one input at port p
_SEARCH_MOST = 24  # tied nodes the exact search takes on (see _Canon.serialised)

Edge = tuple[int, str]  # (the other node, the edge's label)


class Simplified:
    """An architecture graph after the simplifications, its nodes numbered 0..n-1 in a
    topological order.

    `ids[i]`: node i's name in the graph; `attrs[i]`: its attributes; `ops[i]`: its op; `kept`: the nodes kept, in order;
    `ins[i]`: the inputs of a kept node as (port, node) pairs, a contracted node replaced by
    the node it passed on; `zero`: the kept nodes known to compute a zero tensor."""

    def __init__(self, g: nx.DiGraph) -> None:
        ids, ins = _read(g)
        n = len(ids)
        node = g._node
        self.ids = ids
        self.attrs = attrs = list(node.values()) if ids == list(node) else [node[k] for k in ids]
        self.ops = ops = [d["op"] for d in attrs]
        zero: set[int] = set()  # marked zero: through identity / pooling, or a sum of zeros
        if "zero" in ops:
            zeroish: set[int] = set()  # zero ops and marked nodes
            for v in range(ops.index("zero"), n):
                op = ops[v]
                xs = ins[v]
                if xs and zeroish:
                    if op == "add":
                        kept = [x for x in xs if x[1] not in zeroish]
                        if len(kept) < len(xs):
                            ins[v] = kept
                            if not kept:
                                zero.add(v)
                    elif op in _ZERO_THROUGH and any(u in zeroish for _, u in xs):
                        zero.add(v)
                if op == "zero" or v in zero:
                    zeroish.add(v)
        out = ids.index(max(ids))
        alive = [False] * n
        alive[out] = True
        for v in range(out, -1, -1):
            if alive[v]:
                for _, u in ins[v]:
                    alive[u] = True
        rep = list(range(n))  # a contracted node -> the node it passes on
        kept_nodes = []
        contracted = False
        for v in range(n):
            if not alive[v]:
                continue
            xs = ins[v]
            if len(xs) == 1 and ops[v] in _CONTRACT:
                rep[v] = rep[xs[0][1]]
                contracted = True
                continue
            if contracted:
                ins[v] = [(port, rep[u]) for port, u in xs]
            kept_nodes.append(v)
        self.kept = kept_nodes
        self.ins = ins
        self.zero = {v for v in zero if alive[v] and rep[v] == v}


def _read(g: nx.DiGraph) -> tuple[list[Any], list[list[tuple[int, int]]]]:
    """The nodes in a topological order (as the interpreter makes them: 0..n-1 with every
    edge forward; else their sorted order where that is one, else any), and each node's
    inputs as (port, position) pairs."""
    node, pred = g._node, g._pred  # read directly: this runs for every architecture hashed
    n = len(node)
    ids = list(node)
    if g.is_multigraph() and ids == list(range(n)):
        ins: list[list[tuple[int, int]]] = []
        for v in ids:
            xs = []
            for u, keyed in pred[v].items():
                if u >= v:
                    return _renumbered(g)
                for d in keyed.values():
                    xs.append((d.get("port", 0), u))
            ins.append(xs)
        return ids, ins
    return _renumbered(g)


def _renumbered(g: nx.DiGraph) -> tuple[list[Any], list[list[tuple[int, int]]]]:
    """The nodes in a topological order (their sorted order where that is one), and each
    node's inputs as (port, position) pairs."""
    try:
        order = sorted(g)
    except TypeError:
        order = list(g)
    pos = {k: i for i, k in enumerate(order)}
    if not all(pos[u] < pos[v] for u, v in g.edges()):
        order = list(nx.lexicographical_topological_sort(g, key=pos.__getitem__))
        pos = {k: i for i, k in enumerate(order)}
    ins = [[(d.get("port", 0), pos[u]) for u, _, d in g.in_edges(v, data=True)] for v in order]
    return order, ins


def canonical_graph(g: nx.DiGraph) -> nx.MultiDiGraph:
    """Drop what cannot change the output (zero branches, dead nodes, identities,
    one-input sums), so that architectures computing the same function compare equal.

    The result is a MultiDiGraph whose edges keep `port`; a tensor used twice by one node
    (`x + x`) stays two parallel edges. Nodes keep their attributes; those known to compute
    zero have `_zero` set."""
    s = Simplified(g)
    h = nx.MultiDiGraph()
    ids = s.ids
    for v in s.kept:
        h.add_node(ids[v], **g.nodes[ids[v]], **({"_zero": True} if v in s.zero else {}))
    h.add_edges_from((ids[u], ids[v], {"port": port}) for v in s.kept for port, u in s.ins[v])
    return h


def _labels(s: Simplified) -> list[str]:
    """The kept nodes' labels: the op and its arguments; an input's shape, and its name where
    there are several inputs (they are not interchangeable); "zero" for a node known to be
    zero. Labels of arguments are cached by the arguments' repr (which tells 1, 1.0, True
    and -0.0 apart, as the JSON does)."""
    named = s.ops.count("input") > 1
    labels = [""] * len(s.ids)
    attrs, zero, cache = s.attrs, s.zero, _LABELS
    for v in s.kept:
        if v in zero:
            labels[v] = "zero"
            continue
        d = attrs[v]
        op, args = d["op"], d.get("args", {})
        if op == "input":
            args = {"shape": args.get("shape"), **({"name": args.get("name")} if named else {}),
                    **({"index": args["index"]} if "index" in args else {})}
            labels[v] = op + json.dumps(args, sort_keys=True)
            continue
        key = (op, repr(args) if args else "")
        label = cache.get(key)
        if label is None:
            if len(cache) >= _LABELS_MAX:
                cache.clear()
            label = cache[key] = op + json.dumps(args, sort_keys=True)
        labels[v] = label
    return labels


def canonical_hash(g: nx.DiGraph) -> str:
    """Equal for architectures that compute the same function up to node order: 16 hex
    digits of the SHA-256 of the canonical form of `canonical_graph(g)`."""
    return simplified_hash(Simplified(g))


def simplified_hash(s: Simplified) -> str:
    """`canonical_hash` of the graph `s` simplifies."""
    return hashlib.sha256(_Canon.of(s, _labels(s)).serialised()).hexdigest()[:16]


class _Canon:
    """The canonical order of a simplified graph's kept nodes, and its serialisation.

    Colours are ranks of sorted signatures (never hashes: equal colours mean equal
    signatures, and the ranks do not depend on how the nodes are numbered)."""

    def __init__(self, kept: list[int], labels: list[str], preds: list[list[Edge]],
                 succs: list[list[Edge]], up_levels: list[list[int]]) -> None:
        self.kept = kept  # the nodes, in a topological order
        self.labels = labels
        self.preds, self.succs = preds, succs  # (node, edge label) pairs, one per neighbour
        self.up_levels = up_levels  # the nodes by their longest distance from an input
        self._down_levels: list[list[int]] | None = None
        self._height: list[int] = []  # each node's longest distance to the output
        self._keys: dict[int, tuple[bytes, tuple[Edge, ...]]] = {}
        self._children: list[list[int]] | None = None  # in the post-dominator tree

    @classmethod
    def of(cls, s: Simplified, labels: list[str]) -> _Canon:
        """The canonical order's state for a simplified graph: its edges with their labels."""
        preds: list[list[Edge]] = [[] for _ in s.ids]
        ins, ops = s.ins, s.ops
        for v in s.kept:
            xs = ins[v]
            if len(xs) == 1:  # most nodes: one input
                port, u = xs[0]
                preds[v] = [(u, "x1" if ops[v] in _COMMUTATIVE else
                             _PORT_NAMES[port] if 0 <= port < 64 else f"{port}x1")]
            elif xs:
                preds[v] = _edges(xs, ops[v] in _COMMUTATIVE)
        return cls.linked(s.kept, labels, preds)

    @classmethod
    def linked(cls, kept: list[int], labels: list[str], preds: list[list[Edge]]) -> _Canon:
        """The state for the nodes `kept` (a topological order) with labelled input edges."""
        n = len(labels)
        succs: list[list[Edge]] = [[] for _ in range(n)]
        depth = [0] * n
        up_levels: list[list[int]] = [[]]
        for v in kept:
            d = 0
            for u, e in preds[v]:
                succs[u].append((v, e))
                if depth[u] >= d:
                    d = depth[u] + 1
            depth[v] = d
            if d == len(up_levels):
                up_levels.append([])
            up_levels[d].append(v)
        return cls(kept, labels, preds, succs, up_levels)

    # ---- refinement ------------------------------------------------------------------------
    def _pass(self, colors: list, levels: list[list[int]],
              nbrs: list[list[Edge]]) -> tuple[list[int], int]:
        """New colours from `colors` and the new colours of each node's neighbours on the
        side `levels` starts from (ranked level by level: a level's neighbours come first),
        and how many there are."""
        new = [0] * len(colors)
        k = 0
        for level in levels:
            if len(level) == 1:
                new[level[0]] = k
                k += 1
                continue
            sigs = [(colors[v], sorted([(new[u], e) for u, e in nbrs[v]])) for v in level]
            order = sorted(range(len(level)), key=sigs.__getitem__)
            last = None
            for i in order:
                if sigs[i] != last:
                    last = sigs[i]
                    k += 1
                new[level[i]] = k - 1
        return new, k

    def _round(self, colors: list) -> tuple[list[int], int]:
        """One pass from the inputs, then one from the output unless every node is apart."""
        up, k = self._pass(colors, self.up_levels, self.preds)
        if k == len(self.kept):
            return up, k
        return self._pass(up, self._down(), self.succs)

    def _down(self) -> list[list[int]]:
        """The kept nodes by their longest distance to the output (made when first needed)."""
        if self._down_levels is None:
            succs = self.succs
            height = [0] * len(succs)
            levels: list[list[int]] = [[]]
            for v in reversed(self.kept):
                h = 0
                for u, _ in succs[v]:
                    if height[u] >= h:
                        h = height[u] + 1
                height[v] = h
                while h >= len(levels):
                    levels.append([])
                levels[h].append(v)
            self._down_levels, self._height = levels, height
        return self._down_levels

    # ---- ties --------------------------------------------------------------------------------
    def _cells(self, colors: list[int]) -> list[list[int]]:
        """The classes of more than one node, in colour order."""
        by: dict[int, list[int]] = {}
        for v in self.kept:
            by.setdefault(colors[v], []).append(v)
        return [by[c] for c in sorted(by) if len(by[c]) > 1]

    def _swap_key(self, v: int) -> tuple[bytes, tuple[Edge, ...]]:
        """A key that two nodes of one class share when swapping them, each with its region,
        is a symmetry of the graph: the same consumers, and regions that are the same graph
        over the same outside nodes. A node's region is itself and the nodes it
        post-dominates (every path from them to the output passes through it: only the node
        itself has consumers outside); nodes of one class (same depth and distance to the
        output) post-dominate neither the other, so their regions are disjoint."""
        key = self._keys.get(v)
        if key is None:
            key = self._keys[v] = (self._region_form(v), tuple(sorted(self.succs[v])))
        return key

    def _region(self, v: int) -> list[int]:
        """v and the nodes it post-dominates: v's subtree of the post-dominator tree."""
        if self._children is None:
            self._children = [[] for _ in self.succs]
            for u, p in zip(self.kept, _post_dominators(self.kept, self.succs), strict=True):
                if p >= 0:
                    self._children[p].append(u)
        children = self._children
        region = [v]
        for r in region:  # grows while read
            region.extend(children[r])
        return region

    def _region_form(self, v: int) -> bytes:
        """The canonical serialisation of v's region, its outside inputs labelled by node."""
        inside = set(self._region(v))
        outside = {u for r in inside for u, _ in self.preds[r] if u not in inside}
        nodes = sorted(inside | outside)  # node numbers are a topological order
        local = {x: i for i, x in enumerate(nodes)}
        labels = [self.labels[x] if x in inside else f"\0{x}" for x in nodes]
        preds = [[(local[u], e) for u, e in self.preds[x]] if x in inside else [] for x in nodes]
        return _Canon.linked(list(range(len(nodes))), labels, preds).serialised()

    def _symmetric(self, colors: list[int], cells: list[list[int]]) -> tuple[list[int] | None,
                                                                                bool]:
        """Colours with the nodes of every class whose nodes can all be swapped with each
        other (so that any order of them gives the same form) put in node order, None where
        there is no such class; and whether every class was one."""
        new: list[int] | None = None
        every = True
        covered: set[int] = set()  # the regions of classes ordered: their inner ties follow
        for cell in sorted(cells, key=lambda c: self._height[c[0]]):  # outer regions first
            if cell[0] in covered:
                every = False
                continue
            k0 = self._swap_key(cell[0])
            if all(self._swap_key(v) == k0 for v in cell[1:]):
                if new is None:
                    new = [(len(colors) + 1) * c for c in colors]
                for k, v in enumerate(cell):
                    new[v] += k
                    covered.update(self._region(v))
            else:
                every = False
        return new, every

    def _settle(self, colors: list) -> tuple[list[int], list[list[int]]]:
        """`colors` refined in both directions and symmetric classes ordered, until what is
        left tied (if anything) is an equitable partition with no such class."""
        m = len(self.kept)
        k = -1
        while True:
            colors, k2 = self._round(colors)
            if k2 == m:
                return colors, []
            cells = self._cells(colors)
            ordered, every = self._symmetric(colors, cells)
            if every:
                return ordered, []  # type: ignore[return-value]
            if ordered is not None:
                colors, k2 = ordered, -1
            elif k2 == k:
                return colors, cells
            k = k2

    @staticmethod
    def _individualise(colors: list[int], v: int) -> list[int]:
        new = [2 * c + 1 for c in colors]
        new[v] -= 1
        return new

    def _order(self, colors: list[int]) -> list[int]:
        """The kept nodes by colour (ties in node order)."""
        return sorted(self.kept, key=colors.__getitem__)

    def _form(self, order: list[int]) -> tuple:
        """Each node's inputs in `order`: their positions, and the edge labels."""
        pos = [0] * len(self.labels)
        for i, v in enumerate(order):
            pos[v] = i
        preds = self.preds
        form = []
        for v in order:
            es = preds[v]
            if len(es) == 1:
                u, e = es[0]
                form.append(((pos[u], e),))
            else:
                form.append(tuple(sorted([(pos[u], e) for u, e in es])))
        return tuple(form)

    def _search(self, colors: list[int], cells: list[list[int]]) -> list[int]:
        """The order of the least form over the individualisations of the ties (`cells`) of
        settled `colors`.

        Each node of the first tie is individualised and the colours refined; where the
        forms with the remaining ties in node order are all the same, the tie is one orbit
        of the graph's symmetries that fix what was individualised before (the refinement
        keeps the order of classes, so equal forms map the one node onto the other), and
        any of its nodes does; else each distinct one is searched and the least form kept."""
        while cells:
            children: dict[tuple, tuple[list[int], list[list[int]]]] = {}
            for v in cells[0]:
                child = self._settle(self._individualise(colors, v))
                children.setdefault(self._form(self._order(child[0])), child)
            if len(children) > 1:
                return min((self._search(*c) for c in children.values()), key=self._form)
            colors, cells = next(iter(children.values()))
        return self._order(colors)

    def serialised(self) -> bytes:
        """The canonical serialisation: the node labels and the edge labels (each sorted,
        one a line), then for each node in canonical order its label's index, its number
        of input nodes, and their positions and edge labels' indices (64-bit little-endian).

        Where more than _SEARCH_MOST nodes are tied after refinement in ways that are no
        swap of regions (many copies of a symmetric structure), the search could take very
        long: the serialisation is then that of the refined colours (each node's colour
        instead of its position, marked "~"), an invariant as strong as colour refinement
        (which Weisfeiler-Lehman is) but not exact."""
        colors, cells = self._settle(self.labels)
        exact = sum(map(len, cells)) <= _SEARCH_MOST
        order = self._search(colors, cells) if exact else self._order(colors)
        labels, preds = self.labels, self.preds
        names = sorted({labels[v] for v in order})
        rank = {x: i for i, x in enumerate(names)}
        enames = sorted({e for v in order for _, e in preds[v]})
        erank = {x: i for i, x in enumerate(enames)}
        pos = [0] * len(labels)
        if exact:
            for i, v in enumerate(order):
                pos[v] = i
        else:
            pos = colors
        flat: list[int] = []
        for v in order:
            es = preds[v]
            flat += (rank[labels[v]], len(es))
            if len(es) == 1:
                u, e = es[0]
                flat += (pos[u], erank[e])
            else:
                for p, e in sorted([(pos[u], erank[e]) for u, e in es]):
                    flat += (p, e)
        numbers = array("q", flat)
        if sys.byteorder == "big":
            numbers.byteswap()
        return ("" if exact else "~\n").encode() + \
            ("\n".join(names) + "\n\n" + "\n".join(enames) + "\n\n").encode() + numbers.tobytes()


def _post_dominators(kept: list[int], succs: list[list[Edge]]) -> list[int]:
    """Each kept node's immediate post-dominator, in the order of `kept` (-1 for the output,
    the one node with no consumer): the nearest node every path from it to the output
    passes through."""
    ipdom = [-1] * len(succs)
    height = [0] * len(succs)  # depth in the post-dominator tree
    for v in reversed(kept):
        ss = succs[v]
        if not ss:
            continue
        a = ss[0][0]
        for s, _ in ss[1:]:
            b = s
            while height[a] > height[b]:
                a = ipdom[a]
            while height[b] > height[a]:
                b = ipdom[b]
            while a != b:
                a, b = ipdom[a], ipdom[b]
        ipdom[v] = a
        height[v] = height[a] + 1
    return [ipdom[v] for v in kept]


def _edges(xs: list[tuple[int, int]], commutative: bool) -> list[Edge]:
    """A node's inputs (more than one) as (node, label) pairs, one per input node: the
    label is the ports it is used at (none for a commutative op) and how many times."""
    by: dict[int, list[int]] = {}
    for port, u in xs:
        by.setdefault(u, []).append(port)
    return [(u, ("" if commutative else ",".join(map(str, sorted(ps)))) + f"x{len(ps)}")
            for u, ps in by.items()]
