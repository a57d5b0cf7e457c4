"""The chosen architecture as a graph, its canonical hash, and its .arch text with no decisions."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .printer import format_comment, format_value_literal

__all__ = ["Architecture", "canonical_graph", "canonical_hash", "graph_to_arch"]

_COMMUTATIVE = {"add", "multiply"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a .arch name
_ZERO_THROUGH = {"identity", "avg_pool", "max_pool", "zero"}


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
        return canonical_hash(self.graph)

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


def canonical_graph(g: nx.DiGraph) -> nx.MultiDiGraph:
    """Drop what cannot change the output (zero branches, dead nodes, identities,
    one-input sums), so that architectures computing the same function compare equal.

    The result is a MultiDiGraph whose edges keep `port`; a tensor used twice by one node
    (`x + x`) stays two parallel edges."""
    h = nx.MultiDiGraph()
    h.add_nodes_from((n, dict(d)) for n, d in g.nodes(data=True))
    h.add_edges_from((u, v, {"port": d.get("port", 0)}) for u, v, d in g.edges(data=True))
    out = max(h.nodes)
    # zero tensors: through identity/pooling they stay zero; in a sum they vanish
    changed = True
    while changed:
        changed = False
        for n in list(nx.topological_sort(h)):
            d = h.nodes[n]
            if d["op"] == "zero" or d.get("_zero"):
                for s in list(h.successors(n)):
                    op = h.nodes[s]["op"]
                    if op == "add":
                        h.remove_edges_from([(n, s, k) for k in list(h[n][s])])
                        changed = True
                        if h.in_degree(s) == 0:
                            h.nodes[s]["_zero"] = True
                    elif op in _ZERO_THROUGH and not h.nodes[s].get("_zero"):
                        h.nodes[s]["_zero"] = True
                        changed = True
    alive = nx.ancestors(h, out) | {out}
    h.remove_nodes_from([n for n in list(h.nodes) if n not in alive])
    # contract pass-throughs: identity, and sums of one input (x + x has two)
    for n in list(nx.topological_sort(h)):
        op = h.nodes[n]["op"]
        if h.in_degree(n) != 1 or op not in ("identity", "add", "concat", "multiply"):
            continue
        (p,) = h.predecessors(n)
        h.add_edges_from((p, s, {"port": port})
                         for _, s, port in h.out_edges(n, data="port", default=0))
        h.remove_node(n)
    return h


def _label(d: dict, named_inputs: bool = False) -> str:
    args = {k: v for k, v in d.get("args", {}).items()}
    if d["op"] == "input":  # by name too where there are several: they are not interchangeable
        args = {"shape": args.get("shape"), **({"name": args.get("name")} if named_inputs else {})}
    if d.get("_zero"):
        return "zero"
    return d["op"] + json.dumps(args, sort_keys=True)


def canonical_hash(g: nx.DiGraph) -> str:
    """Equal for architectures that compute the same function up to node order."""
    h = canonical_graph(g)
    named = sum(1 for _, d in g.nodes(data=True) if d["op"] == "input") > 1
    lab = nx.DiGraph()  # parallel edges become one labelled edge: the ports, and how many
    for n, d in h.nodes(data=True):
        lab.add_node(n, label=_label(d, named))
    for u, nbrs in h.adj.items():
        for v, keyed in nbrs.items():
            ports = sorted(d["port"] for d in keyed.values())
            port = "" if h.nodes[v]["op"] in _COMMUTATIVE else ",".join(map(str, ports))
            lab.add_edge(u, v, label=f"{port}x{len(ports)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # networkx notes a past change of hashes
        wl = nx.weisfeiler_lehman_graph_hash(lab, node_attr="label", edge_attr="label",
                                             iterations=max(3, min(lab.number_of_nodes(), 64)))
    return hashlib.sha256(wl.encode()).hexdigest()[:16]


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
        lines.append(f"input {names[n]}: {_lit(d['args']['shape'])}")
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
