"""Interp.sample (the cache of walks) gives exactly what a full walk gives for the same draws."""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _example_ops import example_ops

import archdsl
from archdsl.interp import PerDecision as _PerDecision
from archdsl.interp import Reject
from archdsl.interp import Uniform as _Uniform
from archdsl.values import to_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module", autouse=True)
def _example_ops():
    """examples/gnn.arch's operations (examples/gnn_ops.py), registered while these tests run."""
    with example_ops():
        yield

TRICKY = """
input x: [3, 8, 8]
param p = float(0.1 .. 0.9)
param n = int(1 .. 3)
block b(c, r = float(0.0 .. 0.5)) {
    conv2d(c, kernel = choice(1, 3)) -> dropout(r) -> optional { dropout(float(0.0 .. 0.4)) }
}
network {
    x -> repeat(n) { b(choice(8, 16)) } -> dropout(p) -> linear(choice(2, 4))
}
train { lr = float(1e-4 .. 1e-1, log)  batch = choice(16, 32) }
require p < 0.7
"""


VALUE_ONLY = """
input x: [3, 8, 8]
block leaf(c, k = choice(1, 3)) { conv2d(c, kernel = k, padding = k // 2) }
block counted(n, c) { repeat(n) { leaf(c) } }
block in_choice(c) { conv2d(choice(c, c * 2)) }
block as_stage(a, c) { leaf(c) -> a }
block passes(c) { leaf(c) -> counted(c, c) }
block constrained(c) { leaf(c) require c <= 16 }
network {
    x -> leaf(choice(8, 16)) -> counted(choice(1, 2), 8) -> in_choice(choice(4, 8))
      -> as_stage(relu, 8) -> passes(2) -> constrained(choice(8, 16))
}
"""


def _spaces() -> list[archdsl.Space]:
    out = [archdsl.loads(TRICKY), archdsl.loads(VALUE_ONLY)]
    for path in sorted(EXAMPLES.glob("*.arch")):
        text = re.sub(r"(?m)^require\s+(params|flops)\b.*$", "", path.read_text("utf-8"))
        out.append(archdsl.loads(text, str(path), base_dir=EXAMPLES))
    return out


def _draw(fn: Callable[[Any], dict], chooser: Any) -> object:
    """The configuration `fn` makes, in order: Interp.sample gives JSON, walk gives values."""
    try:
        got = fn(chooser)
        if fn.__name__ == "walk":
            got = {k: to_json(v) for k, v in got.items()}
        return list(got.items())
    except Reject as r:
        return ("reject", r.why.message)


@pytest.mark.parametrize("uniform", [True, False])
def test_cached_sampling_equals_walking(uniform: bool) -> None:
    make = _Uniform if uniform else _PerDecision
    for space, twin in zip(_spaces(), _spaces(), strict=True):
        it, plain = space._interp, twin._interp  # apart: the first walk builds tables
        a, b = random.Random(5), random.Random(5)
        for _ in range(400):
            got = _draw(it.sample, make(a))
            want = _draw(plain.walk, make(b))
            assert got == want, space.file
        assert a.random() == b.random()  # the same draws were made


def test_inert_decisions_do_not_branch() -> None:
    space = archdsl.loads(TRICKY)
    inert = space._interp.an.inert
    # kernel, optional dropout rate, linear out, train lr and batch; and b's c (its argument
    # choice(8, 16)) and r (its default), which b reads only as layer arguments
    assert len(inert) == 7
    assert space._interp.an.value_only == {"b": {"c", "r"}}




def test_value_only_parameters() -> None:
    """A parameter is value-only when it reaches nothing but layer arguments (directly, in an
    expression without decisions, or through another value-only parameter)."""
    an = archdsl.loads(VALUE_ONLY)._interp.an
    assert an.value_only == {
        "leaf": {"c", "k"},      # padding = k // 2 reads k in a layer argument: still value-only
        "counted": {"c"},        # n is a repeat count
        "in_choice": set(),      # c sets a decision's options
        "as_stage": {"c"},       # a is applied as a stage
        "passes": set(),         # c reaches counted's n
        "constrained": set(),    # c is in a constraint
    }


def test_cached_configurations_are_copies() -> None:
    """A caller changing a sampled configuration (its list values too) changes no later one."""
    space = archdsl.load(EXAMPLES / "nb101.arch")
    first = [space.sample(seed) for seed in range(30)]
    want = copy.deepcopy(first)
    lists = 0
    for config in first:
        for v in config.values():
            if isinstance(v, list):
                v.append("changed")
                lists += 1
        config.clear()
    assert lists > 0
    assert [space.sample(seed) for seed in range(30)] == want
