"""archdsl.pareto against brute force: dominance by its definition, the non-dominated sort by
peeling fronts pair by pair, the hypervolume by counting unit cells (integer points) and by
inclusion-exclusion (any points), on small random sets with duplicates and ties; crowding
distance on hand-made fronts and by its invariants."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archdsl.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    hypervolume_history,
    nondominated_sort,
    pareto_front,
)


def points(dims: int, max_size: int = 9, lo: int = -3, hi: int = 3):
    """Small integer point sets: few values, so duplicates and ties are common."""
    return st.lists(st.tuples(*[st.integers(lo, hi)] * dims), max_size=max_size)


def brute_dominates(a, b) -> bool:
    return a != b and all(x >= y for x, y in zip(a, b, strict=True))


def brute_sort(pts) -> list[list[int]]:
    left, fronts = set(range(len(pts))), []
    while left:
        front = sorted(i for i in left if not any(brute_dominates(pts[j], pts[i]) for j in left))
        fronts.append(front)
        left -= set(front)
    return fronts


def cells_volume(pts, ref) -> int:
    """The number of unit cells above `ref` whose upper corner some point reaches."""
    above = [p for p in pts if all(x > r for x, r in zip(p, ref, strict=True))]
    if not above:
        return 0
    top = [max(p[k] for p in above) for k in range(len(ref))]
    count = 0
    for cell in itertools.product(*[range(r, t) for r, t in zip(ref, top, strict=True)]):
        if any(all(x >= c + 1 for x, c in zip(p, cell, strict=True)) for p in above):
            count += 1
    return count


def inclusion_exclusion(pts, ref) -> float:
    above = [p for p in pts if all(x > r for x, r in zip(p, ref, strict=True))]
    total = 0.0
    for k in range(1, len(above) + 1):
        for subset in itertools.combinations(above, k):
            box = math.prod(min(p[d] for p in subset) - ref[d] for d in range(len(ref)))
            total += (-1) ** (k + 1) * box
    return total


@given(st.integers(1, 4).flatmap(lambda d: st.tuples(st.tuples(*[st.integers(-2, 2)] * d),
                                                     st.tuples(*[st.integers(-2, 2)] * d))))
def test_dominates_is_the_definition(pair) -> None:
    a, b = pair
    assert dominates(a, b) == brute_dominates(a, b)
    assert not (dominates(a, b) and dominates(b, a))
    assert not dominates(a, a)


@given(st.integers(1, 4).flatmap(points))
def test_nondominated_sort_peels_the_fronts_pair_by_pair(pts) -> None:
    fronts = nondominated_sort(pts)
    assert fronts == brute_sort(pts)
    assert pareto_front(pts) == (fronts[0] if fronts else [])
    assert sorted(i for f in fronts for i in f) == list(range(len(pts)))


@settings(max_examples=150)
@given(st.integers(1, 4).flatmap(lambda d: st.tuples(points(d, 7), st.tuples(
    *[st.integers(-3, 0)] * d))))
def test_hypervolume_counts_the_cells_the_points_cover(case) -> None:
    pts, ref = case
    assert hypervolume(pts, ref) == cells_volume(pts, ref)


@settings(max_examples=150)
@given(st.integers(2, 4).flatmap(lambda d: st.lists(
    st.tuples(*[st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.75])] * d), max_size=7)))
def test_hypervolume_is_inclusion_exclusion(pts) -> None:
    ref = (0.0,) * len(pts[0]) if pts else (0.0, 0.0)
    assert hypervolume(pts, ref) == pytest.approx(inclusion_exclusion(pts, ref), abs=1e-9)


@given(st.integers(1, 3).flatmap(lambda d: st.tuples(points(d, 8), st.tuples(
    *[st.integers(-3, 0)] * d))))
def test_hypervolume_history_is_the_volume_of_each_prefix(case) -> None:
    pts, ref = case
    history = hypervolume_history(pts, ref)
    assert history == [hypervolume(pts[:k], ref) for k in range(1, len(pts) + 1)]
    assert history == sorted(history)


def test_hand_made_sets() -> None:
    pts = [(0.9, -3.0), (0.8, -1.0), (0.7, -2.0)]
    assert nondominated_sort(pts) == [[0, 1], [2]]
    assert hypervolume(pts, (0.0, -4.0)) == pytest.approx(2.5)
    assert hypervolume_history(pts, (0.0, -4.0)) == pytest.approx([0.9, 2.5, 2.5])
    # duplicates share a front and count once
    assert nondominated_sort([(1, 1), (1, 1), (0, 0)]) == [[0, 1], [2]]
    assert hypervolume([(1, 1), (1, 1)], (0, 0)) == 1.0
    # a point on the reference's border, or below it, adds nothing
    assert hypervolume([(2, 0), (0, 5), (-1, -1)], (0, 0)) == 0.0
    assert hypervolume([(3.0,)], (1.0,)) == 2.0
    assert hypervolume([(1, 1, 1), (2, 0.5, 0.5)], (0, 0, 0)) == pytest.approx(1.25)


def test_empty_and_one_point() -> None:
    assert nondominated_sort([]) == [] and pareto_front([]) == []
    assert hypervolume([], (0, 0)) == 0.0 and hypervolume_history([], (0, 0)) == []
    assert crowding_distance([], []) == {}
    assert nondominated_sort([(1, 2)]) == [[0]]
    assert crowding_distance([(1, 2)], [0]) == {0: math.inf}
    assert hypervolume([(1, 2)], (0, 0)) == 2.0


def test_bad_points_are_a_callers_mistake() -> None:
    with pytest.raises(ValueError, match="same number"):
        nondominated_sort([(1, 2), (1, 2, 3)])
    with pytest.raises(ValueError, match="finite"):
        hypervolume([(1, math.nan)], (0, 0))
    with pytest.raises(ValueError, match="reference"):
        hypervolume([(1, 2, 3)], (0, 0))
    with pytest.raises(ValueError, match="reference"):
        hypervolume_history([(1,)], (0, 0))


def test_crowding_distance_on_a_hand_made_front() -> None:
    front = [(1, 5), (2, 4), (3, 2), (4, 1)]  # x range 3, y range 4
    d = crowding_distance(front, [0, 1, 2, 3])
    assert d[0] == d[3] == math.inf
    assert d[1] == pytest.approx((3 - 1) / 3 + (5 - 2) / 4)
    assert d[2] == pytest.approx((4 - 2) / 3 + (4 - 1) / 4)
    # only the front's members count, and a front of two is all extremes
    assert crowding_distance(front + [(0, 0)], [1, 3]) == {1: math.inf, 3: math.inf}
    # a coordinate equal across the front adds nothing
    flat = crowding_distance([(0, 1), (0, 2), (0, 4)], [0, 1, 2])
    assert flat[1] == pytest.approx((4 - 1) / 3)


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=8),
       st.integers(1, 5))
def test_crowding_distance_invariants(pts, scale) -> None:
    front = list(range(len(pts)))
    d = crowding_distance(pts, front)
    assert set(d) == set(front) and all(v >= 0 for v in d.values())
    # the extremes of each coordinate are infinite
    for m in range(2):
        lo = min(front, key=lambda i: (pts[i][m], i))
        hi = max(front, key=lambda i: (pts[i][m], i))
        assert d[lo] == d[hi] == math.inf
    # scaling a coordinate changes nothing: distances are relative to the front's range
    scaled = [(x * scale, y) for x, y in pts]
    assert crowding_distance(scaled, front) == pytest.approx(d)
