"""SMBO's candidate pool and what a proposal costs: `renew` uniform samples drawn afresh per
refit, keys from the architectures its encodings built, ranks of the results."""

from __future__ import annotations

import random

import numpy as np
import pytest

import archdsl
import archdsl.search.smbo as smbo
from archdsl.errors import ArchDSLError
from archdsl.search import make_searcher
from archdsl.search.base import config_text
from archdsl.search.smbo import SMBO, _ranks

# five layers of five widths: 3,125 configurations, so fresh samples are rarely repeats
SPACE = """
input x: [4]
network {
    x -> linear(choice(4, 8, 12, 16, 20)) -> linear(choice(4, 8, 12, 16, 20))
    -> linear(choice(4, 8, 12, 16, 20)) -> linear(choice(4, 8, 12, 16, 20))
    -> linear(choice(4, 8, 12, 16, 20)) -> linear(2)
}
"""


@pytest.fixture(scope="module")
def space() -> archdsl.Space:
    return archdsl.loads(SPACE)


def score(config: dict) -> float:
    return random.Random(config_text(config)).random()


def test_smbo_defaults_and_renew_checked(space: archdsl.Space) -> None:
    s = SMBO(space)
    assert (s.initial, s.candidates, s.renew, s.parents, s.trees) == (10, 128, 4, 5, 16)
    with pytest.raises(ArchDSLError, match=r"smbo: need renew >= 1$"):
        SMBO(space, renew=0)


@pytest.mark.parametrize("renew", [1, 6, 40])
def test_each_refit_draws_renew_samples(space: archdsl.Space, renew: int) -> None:
    s = make_searcher("smbo", space, seed=3, renew=renew)
    drawn = []
    sample = space.sample

    def counted(rng: random.Random) -> dict:
        drawn.append(1)
        return sample(rng)

    space.sample = counted  # type: ignore[method-assign]
    try:
        for _ in range(40):
            before = len(drawn)
            reserve = {t for t, _ in s.reserve}
            taken = len(reserve & s.taken)  # proposals taken from the reserve refill it
            cand = s.ask()
            assert cand is not None
            if reserve:  # past the initial design and the first fill: a refit
                assert len(drawn) - before == max(renew, taken)
            s.tell(cand, score(cand.config))
    finally:
        del space.sample
    assert len(s.reserve) == s.candidates // 2


@pytest.mark.parametrize("layers", [30, smbo.KEPT_LAYERS])
def test_keys_from_kept_architectures_are_the_same(layers: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smbo, "KEPT_LAYERS", layers)  # 30: four of these 7-node networks
    # spaces of their own: keys and encodings are remembered per space
    s = make_searcher("smbo", archdsl.loads(SPACE), seed=1)
    fresh = make_searcher("random", archdsl.loads(SPACE))
    reused = 0
    for _ in range(60):
        kept = set(s._built)
        cand = s.ask()
        assert cand is not None
        reused += config_text(cand.config) in kept
        assert cand.key == fresh.key(cand.config)  # built again, from nothing
        assert config_text(cand.config) not in s._built  # handed over once
        assert s._layers == sum(len(a.graph) for a in s._built.values()) <= layers
        s.tell(cand, score(cand.config))
    assert reused > 0


def test_ranks_are_mid_ranks_among_the_successes() -> None:
    rng = random.Random(0)
    for _ in range(300):
        values = [None if rng.random() < 0.2 else rng.choice([rng.randrange(4), rng.random()])
                  for _ in range(rng.randrange(12))]
        ok = sorted(v for v in values if v is not None)
        want = [0.0 if v is None else
                (sum(u < v for u in ok) + sum(u <= v for u in ok) + 1) / (2 * len(ok))
                for v in values]
        got = _ranks(values)
        assert got.dtype == np.float64 and got.tolist() == want


@pytest.mark.parametrize("name", ["nb201", "darts", "digits", "transformer"])
def test_encoding_from_a_built_architecture_is_the_encoding_walked_afresh(name: str) -> None:
    # encode reads the decisions and the simplified graph an architecture kept when it was
    # built; the same configuration encoded from scratch (a fresh space, nothing kept) agrees
    from archdsl.search.smbo_features import encode

    space, fresh = archdsl.load(f"examples/{name}.arch"), archdsl.load(f"examples/{name}.arch")
    for config in space.samples(15, seed=4):
        arch = space.materialize(config)
        assert arch.cache["decisions"]
        bare = fresh.materialize(config)
        bare.cache.clear()
        assert list(encode(space, config, arch).items()) == \
            list(encode(fresh, config, bare).items())
        assert arch.hash == bare.hash == archdsl.graph.canonical_hash(bare.graph)
