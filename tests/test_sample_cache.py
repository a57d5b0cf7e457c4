"""Interp.sample (the cache of walks) gives exactly what a full walk gives for the same draws."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import archdsl
from archdsl.interp import Reject, _PerDecision, _Uniform
from archdsl.values import to_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

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


def _spaces() -> list[archdsl.Space]:
    out = [archdsl.loads(TRICKY)]
    for path in sorted(EXAMPLES.glob("*.arch")):
        text = re.sub(r"(?m)^require\s+(params|flops)\b.*$", "", path.read_text("utf-8"))
        out.append(archdsl.loads(text, str(path), base_dir=EXAMPLES))
    return out


def _draw(fn: Callable[[Any], dict], chooser: Any) -> object:
    try:
        return [(k, to_json(v)) for k, v in fn(chooser).items()]  # in order
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
    assert len(inert) == 5  # kernel, optional dropout rate, linear out, train lr and batch
