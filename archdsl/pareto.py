"""Pareto math on points given in MAXIMIZATION form (higher is better in every coordinate: see
`archdsl.objectives.values`): dominance, fast non-dominated sorting, crowding distance and the
exact hypervolume in any dimension, alone and after each point of a sequence.

    points = [(0.9, -3.0), (0.8, -1.0), (0.7, -2.0)]
    nondominated_sort(points)                  # [[0, 1], [2]]
    hypervolume(points, (0.0, -4.0))           # 0.9*1 + 0.8*3 - 0.8*1 = 2.5

A point is a sequence of finite floats; every point of a call has the same length (ValueError
otherwise: these are a caller's mistakes, not a user's). Pure: numpy only, no study, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["dominates", "nondominated_sort", "pareto_front", "crowding_distance",
           "hypervolume", "hypervolume_history"]

Point = tuple[float, ...]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether `a` Pareto-dominates `b`: no worse in every coordinate, better in one (equal
    points dominate neither)."""
    a, b = _point(a), _point(b)
    if len(a) != len(b):
        raise ValueError(f"points of {len(a)} and {len(b)} coordinates cannot be compared")
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def nondominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """The fast non-dominated sort of Deb et al. (2002): the points' indices in fronts, front 0
    the points no other dominates (the Pareto front), front k those dominated only by points
    of fronts before it. Indices ascend within a front; equal points share a front. Memory
    grows as the square of the number of points (a population's worth is nothing); for the
    front alone of a large set, `pareto_front` needs far less."""
    p = _matrix(points)
    n = len(p)
    if n == 0:
        return []
    no_worse = np.ones((n, n), dtype=bool)
    better = np.zeros((n, n), dtype=bool)
    for m in range(p.shape[1]):  # a coordinate at a time: n * n booleans, not n * n * dims
        column = p[:, m]
        no_worse &= column[:, None] >= column[None, :]
        better |= column[:, None] > column[None, :]
    dom = no_worse & better  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)  # how many points dominate each
    fronts: list[list[int]] = []
    current = [int(i) for i in np.flatnonzero(count == 0)]
    while current:
        fronts.append(current)
        for i in current:
            count[dom[i]] -= 1
        count[current] = -1  # placed
        current = [int(j) for j in np.flatnonzero(count == 0)]
    return fronts


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """The indices (ascending) of the points no other point dominates. The points are taken
    best first (lexicographically): a point's dominator comes before it, and is dominated by
    nothing or by a front member that then dominates the point too, so each point is checked
    against the front so far only."""
    p = _matrix(points)
    if len(p) == 0:
        return []
    order = np.lexsort(p.T[::-1])[::-1]  # descending, by the first coordinate, then the next
    kept: list[int] = []
    front = np.empty((0, p.shape[1]))
    for i in order:
        q = p[i]
        if not (np.all(front >= q, axis=1) & np.any(front > q, axis=1)).any():
            kept.append(int(i))
            front = np.vstack([front, q])
    return sorted(kept)


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance of each index of `front` among the front's points: per
    coordinate, the gap between its two neighbours in that coordinate (sorted, ties by index)
    divided by the front's range there, summed; the first and last point in any coordinate
    get infinity (so every point of a front of one or two does). A coordinate in which the
    whole front is equal adds nothing."""
    p = _matrix(points)
    idx = list(dict.fromkeys(int(i) for i in front))
    dist = {i: 0.0 for i in idx}
    if len(idx) <= 2:
        return {i: math.inf for i in idx}
    for m in range(p.shape[1]):
        order = sorted(idx, key=lambda i: (p[i, m], i))
        lo, hi = p[order[0], m], p[order[-1], m]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for k in range(1, len(order) - 1):
            dist[order[k]] += float(p[order[k + 1], m] - p[order[k - 1], m]) / float(hi - lo)
    return dist


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The exact volume of the region the points dominate, bounded by `reference`: the union of
    the boxes from the reference to each point. A point not strictly better than the
    reference in every coordinate adds nothing. Two coordinates: a sweep (n log n); more:
    slicing along the last coordinate (HSO, Zitzler 2001) on the non-dominated points,
    fine for a search's fronts (hundreds of points, a few objectives)."""
    ref = _point(reference)
    pts = _above(points, ref)
    return _volume(list(dict.fromkeys(pts[i] for i in pareto_front(pts))), ref)


def hypervolume_history(points: Sequence[Sequence[float]],
                        reference: Sequence[float]) -> list[float]:
    """The hypervolume of the first 1, 2, ..., n points (one value per point, in order): how a
    search's front grew trial by trial. Nondecreasing; a point that adds nothing repeats the
    value before it."""
    ref = _point(reference)
    front: list[Point] = []
    out: list[float] = []
    volume = 0.0
    for raw in points:
        q = _point(raw)
        if len(q) != len(ref):
            raise ValueError(f"a point of {len(q)} coordinates against a reference of {len(ref)}")
        if all(x > r for x, r in zip(q, ref, strict=True)) and not any(_no_worse(f, q) for f in front):
            front = [f for f in front if not _no_worse(q, f)] + [q]
            volume = _volume(front, ref)
        out.append(volume)
    return out


# ---- helpers -------------------------------------------------------------------------------
def _point(p: Sequence[float]) -> Point:
    out = tuple(float(x) for x in p)
    if not all(math.isfinite(x) for x in out):
        raise ValueError(f"a point's coordinates must be finite, not {out}")
    return out


def _matrix(points: Sequence[Sequence[float]]) -> np.ndarray:
    pts = [_point(p) for p in points]
    if not pts:
        return np.zeros((0, 0))
    if len({len(p) for p in pts}) > 1:
        raise ValueError("the points do not all have the same number of coordinates")
    return np.array(pts, dtype=float)


def _above(points: Sequence[Sequence[float]], ref: Point) -> list[Point]:
    """The points strictly better than the reference in every coordinate."""
    out = []
    for raw in points:
        q = _point(raw)
        if len(q) != len(ref):
            raise ValueError(f"a point of {len(q)} coordinates against a reference of {len(ref)}")
        if all(x > r for x, r in zip(q, ref, strict=True)):
            out.append(q)
    return out


def _no_worse(a: Point, b: Point) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True))


def _nondominated(pts: list[Point]) -> list[Point]:
    """The distinct points no other point weakly dominates (what a volume needs)."""
    distinct = list(dict.fromkeys(pts))
    return [p for p in distinct if not any(q != p and _no_worse(q, p) for q in distinct)]


def _volume(pts: list[Point], ref: Point) -> float:
    """The volume the points (each strictly above `ref`) dominate."""
    if not pts:
        return 0.0
    d = len(ref)
    if d == 1:
        return max(p[0] for p in pts) - ref[0]
    if d == 2:
        total, top = 0.0, ref[1]
        for x, y in sorted(pts, reverse=True):  # x descending: each higher y adds a strip
            if y > top:
                total += (x - ref[0]) * (y - top)
                top = y
        return total
    # slice along the last coordinate, from the highest value down to the reference
    pts = sorted(pts, key=lambda p: p[-1], reverse=True)
    total, k = 0.0, 0
    while k < len(pts):
        z = pts[k][-1]
        while k < len(pts) and pts[k][-1] == z:
            k += 1
        below = pts[k][-1] if k < len(pts) else ref[-1]
        total += _volume(_nondominated([p[:-1] for p in pts[:k]]), ref[:-1]) * (z - below)
    return total
