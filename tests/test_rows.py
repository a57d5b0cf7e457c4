"""The joint tables' rows (archdsl.rows): the default configuration found in one walk guided by
the counts, and per-decision sampling under constraints (the same distribution as rejection)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.rows import per_decision_probability
from archdsl.values import Decision


def _load(src: str) -> archdsl.Space:
    return archdsl.loads(src)


# ---- the default configuration and per-decision sampling under constraints ----------------

TIGHT = """
    input x: [4]
    param a = int(1 .. 141)
    param b = int(1 .. 141)
    require a + b == 282
    network { x -> linear(a) }
"""


def test_the_default_under_a_tight_constraint_is_found_in_one_walk() -> None:
    # it took 19,881 replays (12 s); per-decision sampling then gave up after 10,000 draws
    space = _load(TIGHT)
    assert space.default() == {"a": 141, "b": 141}
    assert list(space.samples(5, seed=0, uniform=False)) == [{"a": 141, "b": 141}] * 5


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=2, max_size=4), st.integers(0, 3),
       st.sampled_from(["a + b == {k}", "a * b >= {k}", "a != b and b + 1 == {k}"]),
       st.integers(2, 12), st.booleans())
def test_the_default_takes_each_default_that_an_architecture_follows(
        sizes: list[int], d: int, cond: str, k: int, in_block: bool) -> None:
    a_opts = list(range(1, sizes[0] + 1))
    b_opts = list(range(1, sizes[1] + 1))
    default = a_opts[min(d, len(a_opts) - 1)]
    decl = (f"param a = choice({', '.join(map(str, a_opts))}, default = {default})\n"
            f"param b = choice({', '.join(map(str, b_opts))})\n")
    rule = f"require {cond.format(k=k)}\n"
    if in_block:
        src = (f"input x: [4]\nblock blk {{\n{decl}{rule}linear(a) -> linear(b)\n}}\n"
               "network { x -> blk }\n")
        prefix = "network/blk/"
    else:
        src = f"input x: [4]\n{decl}{rule}network {{ x -> linear(a) -> linear(b) }}\n"
        prefix = ""
    space = archdsl.loads(src)
    valid = [(a, b) for a in a_opts for b in b_opts if eval(cond.format(k=k))]  # noqa: S307
    if not valid:
        with pytest.raises(archdsl.EmptySpaceError):
            space.default()
        return
    # each decision in order: its default if a valid configuration follows, else the first
    # option that has one
    a = default if any(v[0] == default for v in valid) else min(v[0] for v in valid)
    b = min(v[1] for v in valid if v[0] == a)
    assert space.default() == {prefix + "a": a, prefix + "b": b}
    for c in space.samples(20, seed=1, uniform=False):
        assert (c[prefix + "a"], c[prefix + "b"]) in valid


@pytest.mark.parametrize("in_block", [False, True])
def test_per_decision_sampling_under_a_constraint_is_rejection_sampling(in_block: bool) -> None:
    # drawing each decision on its own, then discarding what breaks the constraint, gives each
    # valid configuration the same chance here (1/4), not a uniformly drawn `a` (1/2 for a = 1)
    scipy_stats = pytest.importorskip("scipy.stats")
    decl = "param a = choice(1, 2)\nparam b = choice(1, 2, 3)\nforbid a == 1 and b != 1\n"
    if in_block:
        src = f"input x: [4]\nblock blk {{\n{decl}linear(a) -> linear(b)\n}}\nnetwork {{ x -> blk }}"
    else:
        src = f"input x: [4]\n{decl}network {{ x -> linear(a) -> linear(b) }}"
    space = archdsl.loads(src)
    draws = 4000
    seen = Counter(json.dumps(c, sort_keys=True) for c in space.samples(draws, 4, uniform=False))
    assert len(seen) == 4
    _, p = scipy_stats.chisquare([seen[k] for k in sorted(seen)], [draws / 4] * 4)
    assert p > 0.001


def test_per_decision_probability_is_what_the_sampler_draws() -> None:
    import random

    from archdsl.interp import PerDecision as _PerDecision

    span = archdsl.loads("input x: [4]\nnetwork { x -> relu }").ir.network_span
    cases = [Decision("a", "choice", span, options=[1, 2, 3], prior=(1.0, 0.0, 3.0)),
             Decision("b", "int", span, options=range(1, 40, 3), log=True),
             Decision("c", "choice", span, options=["x", "y"])]
    for d in cases:
        probs = [per_decision_probability(d, i) for i in range(len(d.options))]
        assert sum(probs) == pytest.approx(1.0)
        ch = _PerDecision(random.Random(7))
        n = 20_000
        seen = Counter(ch.index(d, None) for _ in range(n))
        for i, p in enumerate(probs):
            assert seen[i] / n == pytest.approx(p, abs=0.015), (d, i)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=8).filter(any), st.integers(0, 10**6),
       st.booleans())
def test_row_draws_never_take_a_row_ruled_out(weights: list[int], seed: int, huge: bool) -> None:
    import random

    from archdsl.rows import Row, Table, draw_per_decision, draw_uniform

    scale = 2 ** 60 if huge else 1  # past 2**53 the uniform draw is an exact integer draw
    rows = Table(Row((i,), w * scale, 0.5, ()) for i, w in enumerate(weights))
    rng = random.Random(seed)
    for _ in range(50):
        assert rows[draw_uniform(rng, rows)].weight > 0
        i = draw_per_decision(rng, rows)
        assert (i is None) == all(weights) and (i is None or rows[i].weight > 0)


def test_uniform_row_draws_follow_the_weights() -> None:
    import random

    from archdsl.rows import Row, Table, draw_uniform

    scipy_stats = pytest.importorskip("scipy.stats")
    weights = [3, 0, 1, 6]
    rows = Table(Row((i,), w, 1.0, ()) for i, w in enumerate(weights))
    rng = random.Random(1)
    seen = Counter(draw_uniform(rng, rows) for _ in range(10_000))
    assert seen[1] == 0
    _, p = scipy_stats.chisquare([seen[0], seen[2], seen[3]], [3000, 1000, 6000])
    assert p > 0.001


_STAGES = ["relu", "linear(choice(2, 4))", "optional { linear(choice(2, 3)) }",
           "one_of { relu | linear(choice(2, 3)) }", "blk(choice(1, 2))", "twice(relu)",
           "twice(optional { relu })", "linear(shared choice(2, 5))",
           "repeat(choice(0, 1, 2)) { linear(choice(2, 3)) }", "dropout(choice(0.1, 0.2))",
           "linear(a)", "linear(b)"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(_STAGES), min_size=1, max_size=3),
       st.sampled_from(["", "require a + b >= 4", "forbid a == b", "require a * b == 3"]),
       st.sampled_from(["", "forbid k == 2 and m == 1", "require k + m >= 3"]),
       st.booleans(), st.integers(0, 100))
def test_random_spaces_default_and_samples_are_configurations(
        stages: list[str], rule: str, block_rule: str, train: bool, seed: int) -> None:
    src = ("input x: [4]\nparam a = choice(1, 2, 3)\nparam b = int(1 .. 3)\n"
           "block twice(f) { f -> f }\n"
           f"block blk(k) {{\n    param m = choice(1, 2)\n    {block_rule}\n"
           "    linear(k) -> linear(m)\n}\n"
           f"network {{ x -> {' -> '.join(stages)} }}\n{rule}\n"
           + ("train { batch = choice(8, 16) }\n" if train else ""))
    space = archdsl.loads(src)
    n = space.count()
    configs = {json.dumps(c, sort_keys=True) for c in space.enumerate()}
    assert len(configs) == n
    assert json.dumps(space.default(), sort_keys=True) in configs
    for uniform in (True, False):
        for c in space.samples(10, seed=seed, uniform=uniform):
            assert json.dumps(c, sort_keys=True) in configs
