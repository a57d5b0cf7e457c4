"""A block's arguments and local params are bound in order: a local param holding a
sub-network keeps the arguments it reads, whether or not it is itself a decision."""

from __future__ import annotations

import pytest

from archdsl.space import loads

# body -> the distinct (op, width) layer lists its configurations build
_SPACES = {
    "plain": ("param f = linear(c)\n    f", {((8,),)}),
    "choice": ("param f = choice(linear(c), linear(c) -> relu)\n    f",
               {((8,),), ((8,), (None,))}),
    "labelled": ("param f = choice(a: linear(c), b: linear(c) -> relu)\n    f",
                 {((8,),), ((8,), (None,))}),
    "decided_width": ("param w = choice(4, 6)\n    param f = choice(linear(w), linear(c))\n    f",
                      {((4,),), ((6,),), ((8,),)}),  # w = 4 and 6 both give linear(c) = 8
}


@pytest.mark.parametrize(("body", "expected"), _SPACES.values(), ids=list(_SPACES))
def test_local_param_sub_network_reads_arguments(body: str, expected: set) -> None:
    space = loads(f"input x: [16]\nblock mp(c) {{\n    {body}\n}}\n"
                  "network { x -> mp(8) -> linear(3) }")
    seen = set()
    for config in space.enumerate():
        arch = space.materialize(config)
        nodes = arch.graph.nodes
        layers = [(nodes[n]["args"].get("out"),) for n in arch.layers()]
        seen.add(tuple(layers[:-1]))  # the last is linear(3)
    assert seen == expected


def test_graph_cell_local_param_applied_to_a_node() -> None:
    space = loads("input x: [16]\ncell mp(c) {\n    input h\n"
                  "    param f = choice(a: linear(c), b: linear(c) -> relu)\n"
                  "    m = f(h)\n    return m\n}\nnetwork { x -> mp(8) }")
    ops = set()
    for config in space.enumerate():
        arch = space.materialize(config)
        ops.add(tuple(arch.graph.nodes[n]["op"] for n in arch.layers()))
    assert ops == {("linear",), ("linear", "relu")}
