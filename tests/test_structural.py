"""archdsl.structural: which params can change how many architectures a body has."""

from __future__ import annotations

import itertools

import pytest

import archdsl
from archdsl.structural import StructuralNames

BLOCKS = {
    "a": "block a(k = n) { repeat(k) { one_of { relu | tanh } } }",
    "b": "block b() { relu }",
    "c": "block c(w = m) { linear(w) }",
}
HEAD = "input x: [4]\nparam n = choice(1, 2)\nparam m = choice(8, 16)\n"


@pytest.mark.parametrize("order", list(itertools.permutations(BLOCKS)))
def test_a_global_read_by_a_parameter_default_is_structural_in_any_block_order(order) -> None:
    # n reaches a repeat count only through block a's parameter default; m only a layer
    # argument: n is structural wherever a stands among the blocks, m never
    src = HEAD + "\n".join(BLOCKS[k] for k in order) + "\nnetwork { x -> a -> c -> b }\n"
    space = archdsl.loads(src)
    names = StructuralNames(space.ir, None)
    assert names.globals == {"n"}
    assert "k" in names.blocks["a"] and not names.blocks["c"] & {"w", "m"}
    # the count, which treats m's decision as independent, matches enumeration
    assert space.count() == len(list(space.enumerate())) == (2 + 4) * 2


def test_a_block_calling_a_block_takes_its_structural_parameters() -> None:
    src = """input x: [4]
block inner(k) { repeat(k) { relu } }
block outer(j = 2, w = 8) { inner(j) -> linear(w) }
network { x -> outer(choice(1, 2), w = choice(4, 8)) }
"""
    space = archdsl.loads(src)
    names = StructuralNames(space.ir, None)
    assert "k" in names.blocks["inner"]
    assert "j" in names.blocks["outer"] and "w" not in names.blocks["outer"]
    assert space.count() == len(list(space.enumerate())) == 4
