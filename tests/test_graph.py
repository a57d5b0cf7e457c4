"""The architecture graph: its .arch text (`fix`), where every value comes back as the same
value; and its canonical hash, equal exactly for isomorphic simplified graphs."""

from __future__ import annotations

import json
import re

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.graph import canonical_graph, canonical_hash
from archdsl.layers import ArgSpec, register_layer

register_layer("str_op_for_fix", (ArgSpec("mode", "any"),))

# words that are no symbol where a value goes: literals, and keywords that start an expression
_NOT_SYMBOLS = frozenset({"true", "false", "none", "not", "one_of", "optional", "parallel",
                          "repeat", "residual", "shared"})
_WORDS = st.sampled_from(["true", "false", "none", "same", "valid", "depthwise", "x", "adam"])


def _text(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=60, deadline=None)
@given(st.one_of(_WORDS, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                                          blacklist_characters="\x7f"),
                                 max_size=12)), st.booleans())
def test_a_string_survives_fix(s: str, symbol: bool) -> None:
    # "true" or "none" as a string came back as a boolean / none (written bare)
    value = s if symbol and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) \
        and s not in _NOT_SYMBOLS else _text(s)
    src = (f"input x: [4]\nnetwork {{ x -> str_op_for_fix(mode = {value}) -> relu }}\n"
           f"train {{ lr = {value}  optimizer = adam(lr = 0.1) }}\n")
    space = archdsl.loads(src)
    arch = space.materialize(space.default())
    again = archdsl.loads(space.fix(space.default()))
    arch2 = again.materialize(again.default())
    ops = [d for _, d in arch.graph.nodes(data=True) if d["op"] == "str_op_for_fix"]
    ops2 = [d for _, d in arch2.graph.nodes(data=True) if d["op"] == "str_op_for_fix"]
    assert [d["args"] for d in ops] == [d["args"] for d in ops2] == [{"mode": s}]
    assert arch2.train == arch.train
    assert type(arch2.train["lr"]) is type(arch.train["lr"])


def test_symbols_stay_symbols_in_fix() -> None:
    src = ("input x: [3, 8, 8]\nnetwork { x -> conv2d(4, padding = same, groups = depthwise) "
           "-> max_pool(2, stride = none) -> global_avg_pool -> linear(3) }\n")
    space = archdsl.loads(src)
    text = space.fix(space.default())
    assert "padding = same" in text and "groups = depthwise" in text and "stride = none" in text
    again = archdsl.loads(text)
    assert again.materialize(again.default()).hash == space.materialize(space.default()).hash


def test_the_hash_tells_several_inputs_apart() -> None:
    # which inputs an architecture reads changes what it computes: the hash took inputs by
    # shape only, so some(x0, x1) and some(x2, x3) of same-shaped inputs hashed equal
    inputs = "".join(f"input x{i}: [4]\n" for i in range(4))
    space = archdsl.loads(inputs + "network {\n    y = some(x0, x1, x2, x3) -> linear(4)\n"
                          "    return y\n}\n")
    hashes = {space.materialize({"network/y/some": s}).hash
              for s in (["x0", "x1"], ["x2", "x3"], ["x0", "x2"], ["x1", "x3"])}
    assert len(hashes) == 4
    # the same graph with its nodes made in another order still hashes equal (two inputs:
    # an input the network never reads is an error)
    inputs = "input x0: [4]\ninput x1: [4]\n"
    a = archdsl.loads(inputs + "network {\n    p = x0 -> relu\n    q = x1 -> tanh\n"
                      "    return p + q\n}\n")
    b = archdsl.loads(inputs + "network {\n    q = x1 -> tanh\n    p = x0 -> relu\n"
                      "    return q + p\n}\n")
    assert a.materialize({}).hash == b.materialize({}).hash


# ---- the canonical hash ----------------------------------------------------------------------
def _hash(src: str, config: dict | None = None) -> str:
    space = archdsl.loads(src)
    return space.materialize(config if config is not None else space.default()).hash


def _cycles(*cycles: list[str]) -> str:
    """A relu of x per name, and a sum per pair of neighbours on each cycle of names: every
    relu feeds two sums (colour refinement alone cannot tell such wirings apart)."""
    relus = sorted({a for c in cycles for a in c})
    lines = [f"    {a} = x -> relu" for a in relus]
    sums = [f"s{k}" for k in range(sum(len(c) for c in cycles))]
    pairs = [(c[i], c[(i + 1) % len(c)]) for c in cycles for i in range(len(c))]
    lines += [f"    {s} = {a} + {b}" for s, (a, b) in zip(sums, pairs, strict=True)]
    return "input x: [4]\nnetwork {\n" + "\n".join(lines) + \
        f"\n    return add({', '.join(sums)})\n}}\n"


def test_the_hash_tells_regular_wirings_apart() -> None:
    # one cycle of six against two of three: every relu feeds two sums and every sum reads
    # two relus in both; the Weisfeiler-Lehman hash (before issue 12) gave them one hash
    hexagon = _hash(_cycles(["a", "b", "c", "d", "e", "f"]))
    triangles = _hash(_cycles(["a", "b", "c"], ["d", "e", "f"]))
    assert hexagon != triangles
    # the same hexagon with its relus and sums made in another order
    assert _hash(_cycles(["d", "a", "f", "c", "b", "e"])) == \
        _hash(_cycles(["a", "f", "c", "b", "e", "d"])) == hexagon


def test_many_copies_of_a_symmetric_wiring() -> None:
    # 40 hexagons in a row: too many ties for the exact search (each hexagon's 12 nodes are
    # symmetric, but swapping no two of them with their regions is a symmetry), hashed by the
    # refined colours instead; still the same for the same network made in another order
    names = "abcdef"
    cell = "".join(f"    {a} = n -> relu\n" for a in names) + \
        "    return add(" + ", ".join(f"{a} + {b}" for a, b in zip(names, names[1:] + "a",
                                                                strict=True)) + ")\n"
    src = ("input x: [4]\ncell hexa {\n    input n\n" + cell + "}\n"
           "network {\n    x -> repeat(40) { hexa } -> linear(2)\n}\n")
    graph = archdsl.loads(src).materialize({}).graph
    assert graph.number_of_nodes() > 500
    assert canonical_hash(_renumbered(graph, [0.3, 0.9, 0.1, 0.5, 0.7])) == canonical_hash(graph)


def test_a_shared_layer_is_not_two_copies() -> None:
    # one linear read by two branches has one set of weights; two linears of x have two
    shared = _hash("input x: [4]\nnetwork {\n    c = x -> linear(4)\n"
                   "    return (c -> relu) + (c -> tanh)\n}\n")
    copies = _hash("input x: [4]\nnetwork {\n    p = x -> linear(4) -> relu\n"
                   "    q = x -> linear(4) -> tanh\n    return p + q\n}\n")
    assert shared != copies
    # the same for two identical branches: a symmetry of the graph, and still two layers
    twice = _hash("input x: [4]\nnetwork {\n    c = x -> linear(4) -> relu\n    return c + c\n}\n")
    two = _hash("input x: [4]\nnetwork {\n    return (x -> linear(4) -> relu) + "
                "(x -> linear(4) -> relu)\n}\n")
    assert twice != two


_OPS = ("relu", "tanh", "add", "concat", "multiply", "identity", "zero", "avg_pool")


@st.composite
def _graphs(draw: st.DrawFn, ops: tuple[str, ...] = _OPS, most: int = 9) -> nx.MultiDiGraph:
    """A random architecture graph as the interpreter makes them: nodes 0..n-1 in topological
    order, one edge per input keyed and labelled by its port, an output last."""
    g = nx.MultiDiGraph()
    inputs = draw(st.integers(1, 2))
    for i in range(inputs):
        g.add_node(i, op="input", args={"name": f"x{i}", "shape": [4]})
    for v in range(inputs, draw(st.integers(inputs + 1, most))):
        op = draw(st.sampled_from(ops))
        arity = draw(st.integers(2, 3)) if op in ("add", "concat", "multiply") else 1
        g.add_node(v, op=op, args={"k": 3} if op == "avg_pool" else {})
        for port in range(arity):
            g.add_edge(draw(st.integers(0, v - 1)), v, key=port, port=port)
    out = len(g)
    g.add_node(out, op="output", args={})
    g.add_edge(out - 1, out, key=0, port=0)
    return g


def _renumbered(g: nx.MultiDiGraph, keys: list[float]) -> nx.MultiDiGraph:
    """The same graph with its nodes made in another topological order (the output last)
    and its edges added in another order."""
    out = max(g)
    order = list(nx.lexicographical_topological_sort(
        g, key=lambda v: (v == out, keys[v % len(keys)], v)))
    new = {v: i for i, v in enumerate(order)}
    h = nx.MultiDiGraph()
    h.add_nodes_from((new[v], g.nodes[v]) for v in order)
    h.add_edges_from(sorted(((new[u], new[v], d) for u, v, d in g.edges(data=True)),
                            key=lambda e: keys[(e[0] + 3 * e[1]) % len(keys)]))
    return h


def _labelled(g: nx.MultiDiGraph) -> nx.DiGraph:
    """The oracle: the simplified graph with the hash's labels (op and arguments, "zero";
    an edge's ports, none for add and multiply, and how many times), for nx.is_isomorphic."""
    c = canonical_graph(g)
    named = sum(d["op"] == "input" for _, d in g.nodes(data=True)) > 1
    h = nx.DiGraph()
    for n, d in c.nodes(data=True):
        args = d["args"] if d["op"] != "input" else \
            {"shape": d["args"]["shape"], **({"name": d["args"]["name"]} if named else {})}
        h.add_node(n, label="zero" if d.get("_zero") else d["op"] + json.dumps(args, sort_keys=True))
    for u, v in set(c.edges()):
        ports = sorted(d["port"] for d in c[u][v].values())
        h.add_edge(u, v, label=("" if c.nodes[v]["op"] in ("add", "multiply") else str(ports))
                   + f"x{len(ports)}")
    return h


@settings(max_examples=150, deadline=None)
@given(_graphs(), st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_the_hash_ignores_the_order_nodes_are_made_in(g: nx.MultiDiGraph,
                                                      keys: list[float]) -> None:
    assert canonical_hash(_renumbered(g, keys)) == canonical_hash(g)


@settings(max_examples=300, deadline=None)
@given(_graphs(("relu", "add", "concat"), 7), _graphs(("relu", "add", "concat"), 7))
def test_equal_hashes_exactly_for_isomorphic_graphs(g: nx.MultiDiGraph,
                                                    h: nx.MultiDiGraph) -> None:
    same = nx.is_isomorphic(_labelled(g), _labelled(h),
                            node_match=lambda a, b: a["label"] == b["label"],
                            edge_match=lambda a, b: a["label"] == b["label"])
    assert (canonical_hash(g) == canonical_hash(h)) == same


def test_canonical_graph_of_a_graph_made_in_any_order() -> None:
    # nodes named out of topological order (and not by integers) are put in one first
    g = nx.MultiDiGraph()
    g.add_node("z", op="output", args={})
    g.add_node("b", op="relu", args={})
    g.add_node("a", op="input", args={"name": "x", "shape": [4]})
    g.add_node("c", op="identity", args={})
    g.add_edge("a", "c", port=0)
    g.add_edge("c", "b", port=0)
    g.add_edge("b", "z", port=0)
    c = canonical_graph(g)
    assert sorted(c.nodes) == ["a", "b", "z"] and sorted(c.edges()) == [("a", "b"), ("b", "z")]
    h = nx.MultiDiGraph([(0, 1, {"port": 0}), (1, 2, {"port": 0})])
    for n, op in enumerate(("input", "relu", "output")):
        h.nodes[n].update(op=op, args={"name": "x", "shape": [4]} if op == "input" else {})
    assert canonical_hash(g) == canonical_hash(h)
