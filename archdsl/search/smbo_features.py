"""SMBO's features of a configuration: what is known of it without training it.

`encode(space, config)` gives the decisions and the architecture's graph features;
`graph_features(graph)` computes the graph part in one pass over the layer graph, with the
same result as counting over `archdsl.graph.canonical_graph` (a test compares the two), without
building that graph. Imports: networkx, archdsl.errors and archdsl.space only.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx

from ..errors import ArchDSLError
from ..space import Config, Space

__all__ = ["encode", "graph_features"]

_ZERO_THROUGH = frozenset({"identity", "avg_pool", "max_pool", "zero"})  # zero in, zero out
_PASS = frozenset({"identity", "add", "concat", "multiply"})  # one input: the input itself


def encode(space: Space, config: Config) -> dict[str, float]:
    """Features of a configuration, all known without training it.

    The decisions: one column per option of a discrete decision (1 where taken), plus the
    option's position scaled to [0, 1] where the options are numbers in order; a continuous
    decision's value scaled to [0, 1] (on its log scale where it has one). Decisions the
    configuration does not reach are 0. The architecture: how many layers of each operation
    (with its kernel size, where it has one) the canonical graph holds (the graph with zero
    branches, dead nodes and identities dropped, so that an operation on a path that is never
    used does not count), its depth (longest path) and size, and log10 of the parameter count
    and the FLOPs (static shapes: -1 where the shapes do not fit)."""
    f: dict[str, float] = {}
    for d in space.decisions(config):
        value = config[d.name]
        if d.continuous:
            lo, hi = (math.log(d.lo), math.log(d.hi)) if d.log else (d.lo, d.hi)
            x = math.log(value) if d.log else value
            f[d.name] = (x - lo) / (hi - lo) if hi > lo else 0.0
            continue
        if d.size < 2:
            continue
        i = d.index_of_json(value)
        f[f"{d.name}#{i}"] = 1.0
        labels = d.labels()
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
            f[d.name] = i / (d.size - 1)
    arch = space.materialize(config)
    f.update(graph_features(arch.graph))
    try:
        m = space.metrics(arch)
        f["graph:log_params"] = math.log10(1 + m["params"])
        f["graph:log_flops"] = math.log10(1 + m["flops"])
    except ArchDSLError:
        f["graph:log_params"] = f["graph:log_flops"] = -1.0
    return f


def graph_features(g: nx.MultiDiGraph) -> dict[str, float]:
    """`op:NAME[/kK]` counts of the canonical graph's layers (in node order), then
    `graph:depth` (its longest path, in edges) and `graph:layers` (its nodes, the input and
    output included).

    The rules of `canonical_graph`, applied in one topological pass over the layer graph
    instead of building the canonical graph (a test compares the two): a `zero` layer is zero,
    and so is an identity or pooling of zero; zero terms drop out of a sum, and a sum left
    with none is zero; nodes that do not reach the output are dropped; an identity, or a
    sum/concat/product of one input, is its input."""
    nodes: dict[Any, dict] = g._node
    order = _topological(g)
    ins: dict[Any, list] = {}
    zero: set = set()
    for v in order:
        inputs = [u for u, keys in g._pred[v].items() for _ in keys]  # x + x: x twice
        op = nodes[v]["op"]
        if op == "add":
            kept = [u for u in inputs if u not in zero]
            if len(kept) < len(inputs) and not kept:
                zero.add(v)
            inputs = kept
        elif op in _ZERO_THROUGH and (op == "zero" or any(u in zero for u in inputs)):
            zero.add(v)
        ins[v] = inputs
    alive = {max(nodes)}  # the output
    for v in reversed(order):
        if v in alive:
            alive.update(ins[v])
    same: dict = {}  # a pass-through node -> the node it stands for
    depth: dict = {}  # a node of the canonical graph -> its longest path from a source
    for v in order:
        if v not in alive:
            continue
        inputs = ins[v]
        if len(inputs) == 1 and nodes[v]["op"] in _PASS:
            u = inputs[0]
            same[v] = same.get(u, u)
        else:
            depth[v] = max((depth[same.get(u, u)] + 1 for u in inputs), default=0)
    counts: dict[str, float] = {}
    for v, data in nodes.items():
        if v in depth and data["op"] not in ("input", "output"):
            k = data.get("args", {}).get("kernel")
            name = f"op:{data['op']}" + (f"/k{k}" if k is not None else "")
            counts[name] = counts.get(name, 0.0) + 1.0
    counts["graph:depth"] = float(max(depth.values()))
    counts["graph:layers"] = float(len(depth))
    return counts


def _topological(g: nx.MultiDiGraph) -> list:
    """The nodes in topological order: their own order (an architecture's nodes are made in
    one), unless an edge runs backwards."""
    pos = {n: i for i, n in enumerate(g._node)}
    if all(pos[u] < pos[v] for u, v in g.edges()):
        return list(pos)
    return list(nx.topological_sort(g))
