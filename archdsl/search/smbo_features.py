"""SMBO's features of a configuration: what is known of it without training it.

`encode(space, config)` gives the decisions and the architecture's graph features;
`graph_features(graph)` computes the graph part from the canonical hash's simplifications
(`archdsl.canonical.Simplified`), with the same result as counting over `canonical_graph` (a
test compares the two) without building that graph. Imports: networkx (types),
archdsl.canonical, archdsl.errors, archdsl.graph (types) and archdsl.space only.
"""

from __future__ import annotations

import math

import networkx as nx

from ..canonical import Simplified
from ..errors import ArchDSLError
from ..graph import Architecture
from ..space import Config, Space

__all__ = ["encode", "graph_features"]


def encode(space: Space, config: Config, arch: Architecture | None = None) -> dict[str, float]:
    """Features of a configuration, all known without training it (`arch`: its architecture,
    `space.materialize(config)`, where the caller has it).

    The decisions: one column per option of a discrete decision (1 where taken), plus the
    option's position scaled to [0, 1] where the options are numbers in order; a continuous
    decision's value scaled to [0, 1] (on its log scale where it has one). Decisions the
    configuration does not reach are 0. The architecture: how many layers of each operation
    (with its kernel size, where it has one) the canonical graph holds (the graph with zero
    branches, dead nodes and identities dropped, so that an operation on a path that is never
    used does not count), its depth (longest path) and size, and log10 of the parameter count
    and the FLOPs (static shapes: -1 where the shapes do not fit)."""
    f: dict[str, float] = {}
    if arch is None:
        arch = space.materialize(config)
    for d in arch.cache.get("decisions") or space.decisions(config):
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
        # numbers in order get an ordinal feature too (a labelled choice's own values)
        labels = list(d.options) if d.labelled else d.labels()
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
            f[d.name] = i / (d.size - 1)
    f.update(graph_features(arch.graph, arch.simplified()))
    try:
        m = space.metrics(arch)
        f["graph:log_params"] = math.log10(1 + m["params"])
        f["graph:log_flops"] = math.log10(1 + m["flops"])
    except ArchDSLError:
        f["graph:log_params"] = f["graph:log_flops"] = -1.0
    return f


def graph_features(g: nx.MultiDiGraph, s: Simplified | None = None) -> dict[str, float]:
    """`op:NAME[/kK]` counts of the canonical graph's layers (in its node order), then
    `graph:depth` (its longest path, in edges) and `graph:layers` (its nodes, the input and
    output included): counted on `canonical.Simplified`, the simplifications that
    `canonical_graph` makes (`s`, where the caller has it), without building the canonical
    graph itself."""
    if s is None:
        s = Simplified(g)
    node, ids, ins = g._node, s.ids, s.ins
    depth: dict[int, int] = {}  # a kept node -> its longest path from a source
    counts: dict[str, float] = {}
    for v in s.kept:
        depth[v] = max((depth[u] + 1 for _, u in ins[v]), default=0)
        op = s.ops[v]
        if op not in ("input", "output"):
            k = node[ids[v]].get("args", {}).get("kernel")
            name = f"op:{op}" + (f"/k{k}" if k is not None else "")
            counts[name] = counts.get(name, 0.0) + 1.0
    counts["graph:depth"] = float(max(depth.values()))
    counts["graph:layers"] = float(len(depth))
    return counts
