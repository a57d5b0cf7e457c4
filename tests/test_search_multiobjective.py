"""The searchers with several objectives: the told vectors checked, NSGA-II's selection and
survival on hand-made populations, the scalarisations of ParEGO (smbo) and mcts, and NSGA-II
and ParEGO against random search on a toy two-objective problem over nb201.arch."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.errors import ArchDSLError
from archdsl.pareto import dominates, hypervolume
from archdsl.search import SEARCHERS, make_searcher
from archdsl.search.evolution import Evolution
from archdsl.search.mcts import MCTS
from archdsl.search.scalarise import RHO, FrontScale, chebyshev, scalarised, simplex_weights
from archdsl.search.smbo import SMBO

ROOT = Path(__file__).resolve().parent.parent

# four widths in a row: 625 architectures
FLAT = """
input x: [4]
network {
    x -> linear(choice(4, 8, 12, 16, 20)) -> linear(choice(4, 8, 12, 16, 20))
    -> linear(choice(4, 8, 12, 16, 20)) -> linear(choice(4, 8, 12, 16, 20)) -> linear(2)
}
"""


@pytest.fixture(scope="module")
def flat() -> archdsl.Space:
    return archdsl.loads(FLAT)


def configs(space: archdsl.Space, n: int) -> list[dict]:
    return list(space.samples(n, seed=1))


def widths(config: dict) -> list[int]:
    return [v for _, v in sorted(config.items())]


# ---- what tell() accepts ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SEARCHERS))
@pytest.mark.parametrize("bad", [(1.0,), (1.0, 2.0, 3.0), (1.0, math.nan), (math.inf, 0.0),
                                 0.5, "ab", (True, 1.0), ("1", 2.0)])
def test_a_bad_vector_is_a_value_error_naming_the_searcher(name: str, bad: object,
                                                           flat: archdsl.Space) -> None:
    s = make_searcher(name, flat, seed=0, objectives=2)
    cand = s.ask()
    assert cand is not None
    with pytest.raises(ValueError, match=f"{name} searcher: with 2 objectives"):
        s.tell(cand, bad)
    assert cand.key not in s.results  # nothing learnt from it


def test_vectors_none_and_nan_are_kept_as_told(flat: archdsl.Space) -> None:
    s = make_searcher("evolution", flat, seed=0, objectives=2)
    a, b, c, d = (s.ask() for _ in range(4))
    assert a and b and c and d
    s.tell(a, [1, 2.5])
    s.tell(b, np.array([0.5, 3.0]))
    s.tell(c, None)
    s.tell(d, float("nan"))  # one NaN: a failed trial, as with one objective
    assert s.results == {a.key: (1.0, 2.5), b.key: (0.5, 3.0), c.key: None, d.key: None}
    assert s.best is not None and s.best[1] is a  # lexicographic: the first objective first


def test_one_objective_takes_a_vector_of_one(flat: archdsl.Space) -> None:
    s = make_searcher("smbo", flat, seed=0)
    a, b = s.ask(), s.ask()
    assert a and b
    s.tell(a, (0.75,))
    s.tell(b, [float("nan")])
    assert s.results == {a.key: 0.75, b.key: None}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_objectives_must_be_a_positive_integer(bad: object, flat: archdsl.Space) -> None:
    with pytest.raises(ArchDSLError, match="objectives must be an integer of at least 1"):
        make_searcher("random", flat, objectives=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["random", "grid"])
def test_random_and_grid_ignore_how_many_objectives(name: str, flat: archdsl.Space) -> None:
    def run(k: int) -> list[dict]:
        s = make_searcher(name, flat, seed=4, objectives=k)
        out = []
        for i in range(20):
            cand = s.ask()
            assert cand is not None
            out.append(cand.config)
            s.tell(cand, float(i) if k == 1 else (float(i),) * k)
        return out
    assert run(1) == run(2) == run(3)


# ---- NSGA-II ----------------------------------------------------------------------------------

def test_nsga2_defaults(flat: archdsl.Space) -> None:
    one, two = Evolution(flat), Evolution(flat, objectives=2)
    assert (one.sample, one.aging) == (5, True)
    assert (two.sample, two.aging) == (2, False)


def test_nsga2_keeps_the_best_by_rank_then_crowding(flat: archdsl.Space) -> None:
    s = Evolution(flat, seed=0, population=4, objectives=2)
    c = configs(flat, 7)
    names = "ABCDEFG"
    told = {"A": (0, 10), "B": (10, 0), "C": (5, 5), "D": (4, 4),  # D: dominated by C
            "E": (7, 7),  # dominates C and D: D, alone in the last front, dies
            "F": (8, 1),  # on the front: C, now alone in the last front, dies
            "G": (9, 0.5)}  # on the front, between F and B: the least crowding distance
    kept = []
    for name, config in zip(names, c, strict=True):
        s.tell(s.candidate(config), told[name])
        kept.append([names[c.index(m)] for m, _ in s.population])
    assert kept == [["A"], ["A", "B"], ["A", "B", "C"], ["A", "B", "C", "D"],
                    ["A", "B", "C", "E"], ["A", "B", "E", "F"], ["A", "B", "E", "F"]]
    fit = s.fitness()
    assert [f[0] for f in fit] == [0, 0, 0, 0]  # one front: every rank 0
    assert fit[0][1] == fit[1][1] == math.inf  # its extremes, A and B


def test_nsga2_tournament_prefers_the_better_rank(flat: archdsl.Space) -> None:
    s = Evolution(flat, seed=3, population=3, sample=3, objectives=2)
    x, y, z = configs(flat, 3)
    for config, value in ((x, (5, 5)), (y, (1, 1)), (z, (2, 0))):
        s.tell(s.candidate(config), value)
    assert s.fitness()[0] == (0, math.inf) and s.fitness()[1][0] == -1
    for _ in range(6):  # every child is x changed in one decision, and dies at once
        cand = s.ask()
        assert cand is not None
        assert sum(a != b for a, b in zip(widths(cand.config), widths(x), strict=True)) == 1
        s.tell(cand, (0, 0))
    assert [m for m, _ in s.population] == [x, y, z]


def test_nsga2_with_aging_the_oldest_dies(flat: archdsl.Space) -> None:
    s = Evolution(flat, seed=0, population=3, objectives=2, aging=True)
    c = configs(flat, 4)
    for config, value in zip(c, [(9, 9), (1, 1), (1, 2), (2, 1)], strict=True):
        s.tell(s.candidate(config), value)
    assert [m for m, _ in s.population] == c[1:]  # the best of all, but the oldest


def test_one_objective_elitist_without_aging(flat: archdsl.Space) -> None:
    s = Evolution(flat, seed=0, population=2, aging=False)
    c = configs(flat, 4)
    for config, value in zip(c, [3.0, 1.0, 2.0, 0.5], strict=True):
        s.tell(s.candidate(config), value)
    assert [v for _, v in s.population] == [3.0, 2.0]


# ---- scalarisations: ParEGO (smbo) and mcts ----------------------------------------------------

def test_simplex_weights() -> None:
    rng = random.Random(0)
    draws = [simplex_weights(rng, 3) for _ in range(3000)]
    assert all(len(w) == 3 and min(w) > 0 and abs(sum(w) - 1) < 1e-12 for w in draws)
    means = np.mean(draws, axis=0)
    assert np.allclose(means, 1 / 3, atol=0.02)  # uniform on the simplex: each mean 1/k


def test_front_scale() -> None:
    points = [(10.0, -5.0), (90.0, -1.0), (91.0, -1.0), (92.0, -3.0), (80.0, -6.0)]
    scale = FrontScale(points)  # the front: (91, -1) and (92, -3)
    assert scale.ranges == [(91.0, 92.0), (-3.0, -1.0)]
    assert scale((92.0, -1.0)) == (1.0, 1.0)  # the ideal point
    assert scale((91.0, -3.0)) == (0.0, 0.0)  # the nadir
    assert scale((10.0, -5.0)) == (-81.0, -1.0)  # the outlier, far below, squashes nothing
    one = FrontScale([(5.0, 5.0), (1.0, 4.0), (3.0, 0.0)])  # one point dominates the others
    assert one.ranges == [(1.0, 5.0), (0.0, 5.0)]  # then: the range of all
    assert FrontScale([(2.0, 2.0)])((2.0, 2.0)) == (1.0, 1.0)


def test_chebyshev_scalarisation() -> None:
    assert chebyshev((1.0, 1.0), (0.3, 0.7)) == 0.0  # the ideal point
    assert chebyshev((0.0, 1.0), (0.5, 0.5)) == pytest.approx(-(0.5 + RHO * 0.5))
    # a concave front: no weighted sum makes (0.4, 0.4) the best of these; Chebyshev does
    pts = [(0.0, 1.0), (1.0, 0.0), (0.4, 0.4)]
    assert max(pts, key=lambda p: chebyshev(p, (0.5, 0.5))) == (0.4, 0.4)
    assert max(pts, key=lambda p: chebyshev(p, (0.9, 0.1))) == (1.0, 0.0)
    # a dominated point scores below the one that dominates it, whatever the weights
    rng = random.Random(1)
    for _ in range(300):
        points = [tuple(float(rng.randint(0, 4)) for _ in range(3)) for _ in range(6)]
        w = simplex_weights(rng, 3)
        got = scalarised(points, w)
        for a, sa in zip(points, got, strict=True):
            for b, sb in zip(points, got, strict=True):
                if dominates(a, b):
                    assert sa > sb
    assert scalarised([], (0.5, 0.5)) == []


def test_parego_fits_the_scalarisation_under_fresh_weights(flat: archdsl.Space) -> None:
    s = SMBO(flat, seed=0, initial=4, parents=2, objectives=2)
    told = [(1.0, 0.0), (0.0, 1.0), None, (0.5, 0.5), (0.2, 0.2)]
    for config, value in zip(configs(flat, 5), told, strict=True):
        s.tell(s.candidate(config), value)
    scores = s.scores()
    w = s.weights
    assert w is not None
    ok = [v for v in told if v is not None]
    assert [x for x in scores if x is not None] == scalarised(ok, w)
    assert scores[2] is None
    assert scores[4] < scores[3]  # (0.2, 0.2): dominated by (0.5, 0.5)
    s.pool(scores)  # the parents: the best two by these scores
    top = sorted((i for i, x in enumerate(scores) if x is not None), key=lambda i: -scores[i])
    assert {s._told[i][0] for i in top[:2]} <= set(s.children)
    drawn = set()
    for _ in range(4):  # every proposal draws its own weights
        cand = s.ask()
        assert cand is not None
        drawn.add(s.weights)
    assert len(drawn) == 4
    assert make_searcher("smbo", flat).scores() == []  # one objective: the values as told


def test_mcts_rewards_rank_the_scalarisation(flat: archdsl.Space) -> None:
    s = MCTS(flat, seed=0, objectives=2)
    told = [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.2, 0.2), None]
    for config, value in zip(configs(flat, 5), told, strict=True):
        s.tell(s.candidate(config), value)
    for _ in range(20):
        s.scalarise()  # what each proposal does first: new weights
        w = s.weights
        assert w is not None
        r = {v: s.reward(v) for v in told if v is not None}
        assert s.reward(None) == 0.0
        assert all(0 < x <= 1 for x in r.values())
        assert r[(0.2, 0.2)] < r[(0.5, 0.5)]  # the one that dominates it ranks higher
        scale = FrontScale([v for v in told if v is not None])
        order = sorted(r, key=lambda v: chebyshev(scale(v), w))
        assert [r[v] for v in order] == sorted(r.values())


# ---- against random search ---------------------------------------------------------------------

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
COST = {"none": 0, "skip_connect": 0, "nor_conv_1x1": 1, "nor_conv_3x3": 9, "avg_pool_3x3": 0}


def test_nsga2_and_parego_beat_random_on_a_toy_problem() -> None:
    """Two objectives over nb201.arch's 6 edges: a gain per (edge, operation), larger for the
    costlier convolutions, to maximize, and the cost (9 per 3x3 convolution, 1 per 1x1) to
    minimize. Mean hypervolume after 60 evaluations over 4 seeds (random 321, NSGA-II 333,
    ParEGO 339; the true front: 380)."""
    space = archdsl.load(str(ROOT / "examples" / "nb201.arch"))
    rng = random.Random(201)
    edges = sorted(space.default())
    gain = {e: {op: rng.random() * (1 + COST[op]) ** 0.5 for op in OPS} for e in edges}

    def toy(config: dict) -> tuple[float, float]:
        return (sum(gain[e][op] for e, op in config.items()),
                -float(sum(COST[op] for op in config.values())))

    def mean_hv(name: str) -> float:
        out = []
        for seed in range(4):
            s = make_searcher(name, space, seed=seed, objectives=2)
            points = []
            for _ in range(60):
                cand = s.ask()
                assert cand is not None
                points.append(toy(cand.config))
                s.tell(cand, points[-1])
            out.append(hypervolume(points, (0.0, -55.0)))
        return float(np.mean(out))

    rand = mean_hv("random")
    assert mean_hv("evolution") > rand + 5
    assert mean_hv("smbo") > rand + 5
