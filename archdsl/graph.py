"""The chosen architecture as a graph, its canonical hash (from canonical.py), and its .arch
text with no decisions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .canonical import Simplified, canonical_graph, canonical_hash, simplified_hash
from .printer import format_comment, format_value_literal

__all__ = ["Architecture", "canonical_graph", "canonical_hash", "graph_to_arch"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a .arch name


@dataclass
class Architecture:
    """A chosen architecture: the layer graph the backends consume, and what chose it.

    `graph` is a networkx MultiDiGraph. Nodes are integers in creation order (a topological
    order) with attributes `op`, `args` (a dict of JSON values), `span` (where in the .arch text
    it came from) and `path` (its decision-name scope). Each input of a node is one edge whose
    key and attribute `port` are the input position, so a merge that takes the same tensor twice
    (`add(x, x)`) has two parallel edges. Use `predecessors(n)` for a node's inputs in port
    order. The first nodes are the inputs (`op == "input"`, args `name` and `shape`); the last
    is `output`.
    """

    graph: nx.MultiDiGraph
    config: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    space_file: str = ""
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # backends'

    @property
    def hash(self) -> str:
        """`canonical_hash(graph)`, kept: an architecture's graph is not changed once built."""
        h = self.cache.get("hash")
        if h is None:
            h = self.cache["hash"] = simplified_hash(self.simplified())
        return h

    def simplified(self) -> Simplified:
        """The canonical hash's simplifications of the graph (kept, as the hash is)."""
        s = self.cache.get("simplified")
        if s is None:
            s = self.cache["simplified"] = Simplified(self.graph)
        return s

    def layers(self) -> list[int]:
        return [n for n, d in self.graph.nodes(data=True) if d["op"] not in ("input", "output")]

    def inputs(self) -> list[int]:
        return [n for n, d in self.graph.nodes(data=True) if d["op"] == "input"]

    def output(self) -> int:
        return max(self.graph.nodes)

    def predecessors(self, n: int) -> list[int]:
        """Inputs of node n in port order, a tensor used twice listed twice."""
        pairs = sorted((d.get("port", 0), u) for u, keys in self.graph.pred[n].items()
                       for d in keys.values())
        return [u for _, u in pairs]

    def all_predecessors(self) -> dict[int, list[int]]:
        """`predecessors(n)` of every node, from one pass over the edges."""
        pairs: dict[int, list[tuple[int, int]]] = {n: [] for n in self.graph}
        for u, v, port in self.graph.edges(data="port", default=0):
            pairs[v].append((port, u))
        return {n: [u for _, u in sorted(p)] for n, p in pairs.items()}

    def to_arch(self) -> str:
        return graph_to_arch(self)

    def _repr_svg_(self) -> str:
        """Jupyter shows an architecture as its diagram (needs graphviz's `dot`)."""
        from .backends.diagram import architecture_dot, to_svg

        return to_svg(architecture_dot(self))


def _lit(v: Any, symbolic: bool = False) -> str:
    """A JSON value as .arch text; a string is written bare (a symbol such as `same`) only
    where `symbolic`, else quoted (a string "true" stays a string)."""
    if v is None:
        return "none"
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x, symbolic) for x in v) + "]"
    if symbolic and isinstance(v, str) and _NAME.fullmatch(v):
        return v
    return format_value_literal(v)


def _symbolic(op: str, arg: str) -> bool:
    """Whether a layer's argument takes symbols (`padding = same`): its string values were
    symbols. Any other string (an untyped argument of a user operation) was a string, or a
    symbol whose JSON form is that string: quoted, it builds the same layer."""
    from .layers import LAYERS

    sig = LAYERS.get(op)
    spec = next((a for a in sig.args if a.name == arg), None) if sig else None
    return spec is not None and (spec.type in ("pad", "groups", "int?")
                                 or spec.type.startswith("sym:"))


def graph_to_arch(arch: Architecture) -> str:
    """The architecture as a .arch file with no decisions: a graph of explicit layers."""
    g = arch.graph
    names: dict[int, str] = {}
    lines: list[str] = [format_comment(f"every decision fixed; from "
                                       f"{arch.space_file or 'a search space'}")]
    for n in arch.inputs():
        d = g.nodes[n]
        names[n] = d["args"]["name"]
        kind = f" index({d['args']['index']})" if "index" in d["args"] else ""
        decl = f"input {names[n]}: {_lit(d['args']['shape'])}{kind}"
        # an input this architecture does not read (an input choice took another) would be
        # an error in a file of its own: kept as a comment
        lines.append(decl if g.out_degree(n) else format_comment(f"not read: {decl}"))
    lines.append("network {")
    k = 0
    out = arch.output()
    for n in sorted(g.nodes):
        d = g.nodes[n]
        if d["op"] in ("input", "output"):
            continue
        k += 1
        names[n] = f"x{k}"
        ins = [names[p] for p in arch.predecessors(n)]
        args = [f"{a} = {_lit(v, _symbolic(d['op'], a))}" for a, v in d["args"].items()
                if a != "residual"]
        if d["op"] in ("add", "concat", "multiply"):
            if d["args"].get("residual"):
                args = ["project = true"]
            call = f"{d['op']}({', '.join(ins + args)})"
        else:
            call = f"{d['op']}({', '.join(ins + args)})"
        lines.append(f"    {names[n]} = {call}  {format_comment(d['path'])}")
    lines.append(f"    return {names[arch.predecessors(out)[0]]}")
    lines.append("}")
    if arch.train:
        lines.append("train {")
        for key, v in arch.train.items():
            lines.append(f"    {key} = {_train_lit(v)}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _train_lit(v: Any) -> str:
    """A train value (as the walk evaluates it: symbols and strings apart) as .arch text."""
    from .values import Record, Sym, to_json

    if isinstance(v, Record):
        parts = [f"{k} = {_train_lit(x)}" if k else _train_lit(x) for k, x in v.args]
        return f"{v.name}({', '.join(parts)})"
    if isinstance(v, Sym):
        return v.name
    if isinstance(v, tuple):
        return "[" + ", ".join(_train_lit(x) for x in v) + "]"
    return _lit(to_json(v))
