"""The searcher contract, checked on every searcher of SEARCHERS (archdsl/search/base.py), with
one objective and with two (told as a vector)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.graph import canonical_hash
from archdsl.search import SEARCHERS, Candidate, Searcher, make_searcher

# 96 architectures; the constraint removes width 16 with tanh (12 of the 108 combinations)
SPACE = """
input x: [8]
param width = choice(4, 8, 16)
param act = choice(relu, gelu, tanh)
forbid width == 16 and act == tanh
block layer(w) { linear(w) -> act }
network {
    x -> layer(width) -> repeat(choice(1, 2)) { layer(choice(4, 8)) }
    -> optional { dropout(0.1) } -> linear(2)
}
"""

# 5 architectures
TINY = """
input x: [8]
param w = choice(2, 4, 6)
param act = choice(relu, tanh)
forbid w == 6 and act == tanh
network { x -> linear(w) -> act -> linear(2) }
"""

NAMES = list(SEARCHERS)
# (searcher, objectives): every searcher with one objective, then with two
CASES = [pytest.param(n, 1, id=n) for n in NAMES] + \
    [pytest.param(n, 2, id=f"{n}-2obj") for n in NAMES]


@pytest.fixture(scope="module")
def space() -> archdsl.Space:
    return archdsl.loads(SPACE)


@pytest.fixture(scope="module")
def tiny() -> archdsl.Space:
    return archdsl.loads(TINY)


def objective(config: dict[str, Any], k: int = 1) -> Any:
    """A fixed score per configuration: wider and deeper is better, plus a hashed jitter. With
    k = 2, a vector: that score, and a second one in conflict with it (narrower is better)."""
    text = json.dumps(config, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    jitter = int(digest[:8], 16) / 2**32
    first = config.get("width", 0) / 16 + config.get("network/repeat", 0) + 0.3 * jitter
    if k == 1:
        return first
    return first, -config.get("width", 0) / 16 + 0.3 * int(digest[8:16], 16) / 2**32


def arch_key(space: archdsl.Space, config: dict[str, Any]) -> str:
    """The architecture's identity, computed here independently of the searcher."""
    return canonical_hash(space.materialize(config).graph)


def drive(s: Searcher, n: int, batch: int = 1,
          fail: frozenset[int] = frozenset()) -> list[Candidate]:
    """Ask up to `batch` candidates at a time, then tell them (in reverse order); stop after n
    proposals or when the searcher has nothing left. Trial i fails if i is in `fail`."""
    asked: list[Candidate] = []
    while len(asked) < n:
        out = []
        for _ in range(min(batch, n - len(asked))):
            cand = s.ask()
            if cand is None:
                break
            out.append(cand)
            asked.append(cand)
        if not out:
            break
        for cand in reversed(out):
            i = asked.index(cand)
            s.tell(cand, None if i in fail else objective(cand.config, s.objectives))
    return asked


@pytest.mark.parametrize(("name", "k"), CASES)
def test_proposals_are_valid_and_meet_the_constraints(name: str, k: int,
                                                      space: archdsl.Space) -> None:
    s = make_searcher(name, space, seed=3, objectives=k)
    asked = drive(s, 40)
    assert len(asked) == 40
    for cand in asked:
        assert space.validate(cand.config) == cand.config
        assert not (cand.config["width"] == 16 and cand.config["act"] == "tanh")


# constraints over decisions (issue 16 item 5): at most one edge `a`, not every repeated edge `c`
EDGES = """
input x: [8]
op e = one_of { a: identity | b: relu | c: tanh }
param width = choice(4, 8)
network { x -> linear(width) -> repeat(choice(1, 2, 3)) { e } -> linear(2) }
require count(e == a) <= 1
forbid all(decision("network/repeat[*]/e") == c)
"""


@pytest.mark.parametrize(("name", "k"), CASES)
def test_proposals_meet_constraints_over_decisions(name: str, k: int) -> None:
    space = archdsl.loads(EDGES)
    asked = drive(make_searcher(name, space, seed=3, objectives=k), 30)
    assert len(asked) >= 10
    for cand in asked:
        edges = [v for n, v in cand.config.items() if n.endswith("/e")]
        assert edges.count("a") <= 1 and edges.count("c") < len(edges), cand.config


@pytest.mark.parametrize(("name", "k"), CASES)
def test_same_seed_same_sequence(name: str, k: int, space: archdsl.Space) -> None:
    runs = [[c.config for c in drive(make_searcher(name, space, seed=11, objectives=k), 30,
                                     batch=2)] for _ in range(2)]
    assert runs[0] == runs[1]
    other = [c.config
             for c in drive(make_searcher(name, space, seed=12, objectives=k), 30, batch=2)]
    assert other != runs[0]


@pytest.mark.parametrize(("name", "k"), CASES)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 4),
       fail=st.frozensets(st.integers(0, 39), max_size=8))
def test_no_architecture_twice_with_several_outstanding(
        name: str, k: int, space: archdsl.Space, seed: int, batch: int,
        fail: frozenset[int]) -> None:
    s = make_searcher(name, space, seed=seed, objectives=k)
    asked = drive(s, 40, batch=batch, fail=fail)
    assert len(asked) == 40
    keys = [arch_key(space, c.config) for c in asked]
    assert len(set(keys)) == len(keys)
    assert not s.outstanding
    ok = [objective(c.config, k) for i, c in enumerate(asked) if i not in fail]
    assert s.best is not None and s.best[0] == max(ok)


@pytest.mark.parametrize(("name", "k"), CASES)
def test_four_outstanding_differ(name: str, k: int, space: archdsl.Space) -> None:
    s = make_searcher(name, space, seed=5, objectives=k)
    drive(s, 12)
    out = [s.ask() for _ in range(4)]
    assert all(c is not None for c in out)
    assert len({arch_key(space, c.config) for c in out if c is not None}) == 4
    assert len(s.outstanding) == 4
    for c in out:
        assert c is not None
        s.tell(c, objective(c.config, k))
    assert not s.outstanding and len(drive(s, 8, batch=4)) == 8


@pytest.mark.parametrize(("name", "k"), CASES)
def test_failed_trials_are_survived(name: str, k: int, space: archdsl.Space) -> None:
    s = make_searcher(name, space, seed=2, objectives=k)
    asked = drive(s, 30, fail=frozenset(range(0, 30, 2)))  # every other trial fails
    assert len(asked) == 30
    nan = s.ask()
    assert nan is not None
    s.tell(nan, float("nan"))  # NaN is a failed trial too
    assert s.results[nan.key] is None
    assert len(drive(s, 10)) == 10


@pytest.mark.parametrize(("name", "k"), CASES)
def test_results_it_did_not_propose(name: str, k: int, space: archdsl.Space) -> None:
    told = list(space.samples(15, seed=99))
    s = make_searcher(name, space, seed=4, objectives=k)
    for i, config in enumerate(told):
        s.tell(s.candidate(config), None if i == 3 else objective(config, k))
    known = {arch_key(space, c) for c in told}
    asked = drive(s, 30, batch=3)
    assert len(asked) == 30
    assert not known & {arch_key(space, c.config) for c in asked}
    assert s.best is not None
    assert s.best[0] >= max(objective(c, k) for c in told if c != told[3])


@pytest.mark.parametrize(("name", "k"), CASES)
def test_exhausts_a_tiny_space(name: str, k: int, tiny: archdsl.Space) -> None:
    s = make_searcher(name, tiny, seed=0, objectives=k)
    asked = drive(s, 100, batch=2)
    assert len(asked) == tiny.count() == 5
    assert sorted(json.dumps(c.config, sort_keys=True) for c in asked) == \
        sorted(json.dumps(c, sort_keys=True) for c in tiny.enumerate())
    assert s.ask() is None
