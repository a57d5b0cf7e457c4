"""The caches a walk consults, apart from the walk itself: the sample tree (`SampleTree`: the
calls a random chooser made, so that drawing the same answers again gives the configuration
without walking), and tapes (`Tape`: the layers one application added, to copy onto other
inputs instead of walking it again; `BlockTapes`: those of block bodies, with what their key
holds). When a tape may be recorded or copied is the walk's call (archdsl.interp.blocks); this
module only keys, stores and replays.

May import: archdsl.ast, naming, rows, values, and .choosers, .keys and .limits of this package.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

from .. import ast as A
from ..naming import Scope
from ..rows import Row
from ..values import Decision, Tensor, to_json
from .choosers import Chooser, Reject
from .keys import Unkeyed, memo_key
from .limits import MAX_TAPES, MAX_TRIE

__all__ = ["SampleTree", "BlockTapes", "Tape", "record_tape", "pattern"]

_T_LEAF, _T_REJECT, _T_PICK, _T_INERT, _T_ROW, _T_OPAQUE = range(6)


class SampleTree:
    """walk(chooser) for a random chooser (`Uniform`, `PerDecision`), through a cache of the
    walks already made, with the values in their JSON form (a configuration).

    The cache is a tree of the chooser's calls, each (decision, weights) fixed by the answers
    before it, so the same random draws give the same configuration. Where the tree stops, the
    walk is run (replaying the answers drawn) and extends it. One tree per chooser type."""

    def __init__(self, walk: Callable[[Chooser], dict[str, Any]]):
        self._walk = walk
        self._tries: dict[type, list] = {}  # chooser type -> [root, cells stored]

    def sample(self, chooser: Chooser) -> dict[str, Any]:
        """A configuration, drawn with `chooser` (Reject where a constraint fails)."""
        trie = self._tries.get(type(chooser))
        if trie is None:
            trie = self._tries[type(chooser)] = [None, 0]  # [root, cells stored]
        slot: Any = trie
        key: Any = 0
        node = trie[0]
        answers: list[Any] = []
        path: list[list] = []
        inert: list[tuple[str, Any]] = []
        index = chooser.index
        while node is not None:
            path.append(node)
            kind = node[0]
            if kind is _T_PICK:
                d = node[1]
                i = index(d, node[2])
                answers.append(d.options[i])
                slot = node[3]
                key = i
                node = slot.get(i)
            elif kind is _T_INERT:
                d = node[1]
                opts = d.options
                if opts is None:
                    v = chooser.pick(d, node[2])
                    answers.append(v)
                    inert.append((d.name, v))
                else:
                    i = index(d, node[2])
                    answers.append(opts[i])
                    v = opts[i] if type(opts) is range else node[4][i]
                    inert.append((d.name, copy.deepcopy(v) if type(v) is list else v))
                slot, key = node, 3
                node = node[3]
            elif kind is _T_ROW:
                i = chooser.pick_row(node[1])
                answers.append(i)
                slot = node[3]
                key = i
                node = slot.get(i)
            elif kind is _T_LEAF:
                out = dict(node[1])
                for name, v in inert:
                    out[name] = v
                for name in node[2]:  # lists: the caller may change them, not the cache
                    out[name] = copy.deepcopy(out[name])
                return out
            elif kind is _T_REJECT:
                raise Reject(node[1])
            else:  # _T_OPAQUE: a continuous value the walk reads; walk in full from here
                break
        rec = _recorder(type(chooser))(chooser, answers, path, (slot, key) if node is None else None,
                                       trie)
        try:
            decided = self._walk(rec)
        except Reject as r:
            rec.end([_T_REJECT, r.why], 1)
            raise
        config = {name: to_json(v) for name, v in decided.items()}
        rec.end([_T_LEAF, copy.deepcopy(config),
                 tuple(k for k, v in config.items() if type(v) is list)], len(config))
        return config


class _Recorder(Chooser):
    """Replays the answers a sample drew from the cache tree, then asks `inner` and records
    each call as a new node of the tree at `slot` ((container, key); None: no recording).

    Nodes: [_T_PICK, d, weights, {option index: node}], [_T_INERT, d, weights, node, JSON
    labels of the options] (a value nothing reads: one subtree for all), [_T_ROW, weights, None,
    {row: node}], [_T_OPAQUE] (a value the walk reads but the tree cannot branch on:
    continuous), [_T_LEAF, configuration, names of its list values], [_T_REJECT, why]."""

    def __init__(self, inner: Chooser, answers: list[Any], path: list[list], slot: tuple | None,
                 trie: list):
        self.inner, self.answers, self.path, self.slot, self.trie = inner, answers, path, slot, trie
        self.pos = 0
        self.inert_names: set[str] = set()

    def _replay(self, kind: int, d: Decision | None) -> Any:
        """The next answer drawn already, once checked against the node it was drawn at."""
        node = self.path[self.pos]
        if node[0] != kind or (d is not None and node[1].name != d.name):
            raise AssertionError(f"sampling cache: the walk met {d.name if d else 'a table'} "
                                 "where it was not recorded")
        self.pos += 1
        return self.answers[self.pos - 1]

    def _put(self, node: list, cells: int = 1) -> bool:
        slot, trie = self.slot, self.trie
        if slot is None or trie[1] + cells > MAX_TRIE:
            self.slot = None
            return False
        slot[0][slot[1]] = node
        trie[1] += cells
        return True

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if self.pos < len(self.answers):
            return self._replay(_T_PICK, d)
        if self.slot is None:
            return self.inner.pick(d, weights)
        if d.options is None:
            self._put([_T_OPAQUE])
            self.slot = None
            return self.inner.pick(d, weights)
        node = [_T_PICK, d, weights, {}]
        put = self._put(node)
        i = self.inner.index(d, weights)
        if put:
            self.slot = (node[3], i)
        return d.options[i]

    def pick_inert(self, d: Decision, weights: list[int] | None) -> Any:
        self.inert_names.add(d.name)
        if self.pos < len(self.answers):
            return self._replay(_T_INERT, d)
        opts = d.options
        labels = None if opts is None or type(opts) is range else d.labels()
        node = [_T_INERT, d, weights, None, labels]
        if self._put(node):
            self.slot = (node, 3)
        return self.inner.pick(d, weights)

    def pick_row(self, rows: list[Row]) -> int | None:
        if self.pos < len(self.answers):
            return self._replay(_T_ROW, None)
        node = [_T_ROW, rows, None, {}]
        put = self._put(node)
        i = self.inner.pick_row(rows)
        if put:
            self.slot = (node[3], i)
        return i

    def reused(self, name: str) -> None:
        if name in self.inert_names:  # an "inert" value is read after all: record no further
            self.slot = None

    def end(self, leaf: list, cells: int) -> None:
        self._put(leaf, cells)


_RECORDERS: dict[type, type] = {}


def _recorder(cls: type) -> type:
    """_Recorder, also an instance of `cls` (the walk asks whether it samples uniformly)."""
    r = _RECORDERS.get(cls)
    if r is None:
        r = _RECORDERS[cls] = type(f"_Recorder{cls.__name__}", (_Recorder, cls), {})
    return r



class BlockTapes:
    """The tapes of block applications that consulted no decision, kept across build walks.
    Such a body's layers depend only on its bound values, the top-level values, the chooser's
    type, which of its inputs are the same tensor, and its scope (path and counters): the key."""

    def __init__(self) -> None:
        self._tapes: dict[tuple, Tape] = {}

    @staticmethod
    def key(blk: A.BlockDecl, env: dict, genv_key: tuple, chooser: Chooser, xs: list[Tensor],
            sc: Scope) -> tuple | None:
        """The key of an application; None where a bound value cannot be part of one."""
        try:
            return (id(blk), tuple([(k, memo_key(v)) for k, v in env.items()]), genv_key,
                    type(chooser), pattern(xs), sc.path,
                    tuple(sc._counts.items()) if sc._counts else ())
        except Unkeyed:
            return None

    def get(self, key: tuple) -> Tape | None:
        return self._tapes.get(key)

    def has_room(self) -> bool:
        """Whether another tape may be kept (MAX_TAPES)."""
        return len(self._tapes) < MAX_TAPES

    def keep(self, key: tuple, tape: Tape, sc: Scope) -> None:
        """Keep `tape`, with the segment counters its application left in `sc`."""
        self._tapes[key] = tape._replace(counts=dict(sc._counts) if sc._counts else None)


def pattern(xs: list[Tensor]) -> tuple[int, ...]:
    """Which inputs are the same tensor: each input's first position."""
    first: dict[int, int] = {}
    return tuple([first.setdefault(x.node, i) for i, x in enumerate(xs)])


class Tape(NamedTuple):
    """The layers one application added, to copy onto other inputs (Interp._copy_tape)."""

    nodes: list[tuple]  # (op, args, span, path, inputs): an input is a tape index or ~i for xs[i]
    out: int  # the tape index of the output
    name: str  # the output tensor's name
    edges: int  # what the application added to Interp.edges
    deep: int  # how many levels of blocks it nested (MAX_NESTING still holds when copied)
    counts: dict | None = None  # its scope's segment counters afterwards (run_body_taped)


def record_tape(added: list[tuple], inputs: list[list[int]], start: int, xs: list[Tensor],
                out: Tensor, edges: int, deep: int) -> Tape | bool:
    """The layers added from node `start` on; False if one reads a tensor other than xs, or
    the output is one of xs (whose name the output takes, or not, by how it was returned)."""
    where = {x.node: ~i for i, x in reversed(list(enumerate(xs)))}
    nodes = []
    for n in range(start, len(added)):
        ins = []
        for src in inputs[n]:
            if src >= start:
                ins.append(src - start)
            elif src in where:
                ins.append(where[src])
            else:
                return False
        nodes.append((*added[n], ins))
    if out.node < start:
        return False
    return Tape(nodes, out.node - start, out.name, edges, deep)
