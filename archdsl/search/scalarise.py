"""Scalarisations of several objectives, for the searchers that learn from one number (smbo as
ParEGO, mcts): a random weight vector on the simplex, and the augmented Chebyshev function of
the objectives normalised by the Pareto front of the results seen (after Knowles, "ParEGO",
2006).

Values are signed vectors (higher is better in every coordinate, `archdsl.objectives.values`).
Imports: archdsl.pareto (the front).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["RHO", "simplex_weights", "FrontScale", "chebyshev", "scalarised"]

RHO = 0.05  # the augmentation: Knowles' value; breaks ties between weakly dominated points


def simplex_weights(rng: random.Random, k: int) -> tuple[float, ...]:
    """k weights >= 0 that sum to 1, uniform on the simplex (normalised exponential draws)."""
    e = [-math.log(1.0 - rng.random()) for _ in range(k)]
    total = sum(e)
    return tuple(x / total for x in e)


class FrontScale:
    """Each coordinate of a vector normalised by the Pareto front of some vectors (at least
    one): 0 at the front's worst value in that coordinate (its nadir), 1 at its best (the
    ideal point); a dominated vector may fall below 0. Where the front holds one value of a
    coordinate, the range of all the vectors is used instead (1 where that is one value too).
    Normalising by the front rather than by every result keeps an outlier (a broken network
    at 10% accuracy) from squashing the values that matter together, as the ideal and nadir
    points do in MOEA/D and NSGA-III."""

    def __init__(self, points: Sequence[Sequence[float]]):
        from ..pareto import pareto_front

        front = [points[i] for i in pareto_front(points)]
        self.ranges: list[tuple[float, float]] = []
        for j, column in enumerate(zip(*front, strict=True)):
            lo, hi = min(column), max(column)
            if hi <= lo:
                lo = min(p[j] for p in points)
            self.ranges.append((lo, hi))

    def __call__(self, point: Sequence[float]) -> tuple[float, ...]:
        return tuple((v - lo) / (hi - lo) if hi > lo else 1.0
                     for v, (lo, hi) in zip(point, self.ranges, strict=True))


def chebyshev(y: Sequence[float], weights: Sequence[float], rho: float = RHO) -> float:
    """The augmented Chebyshev scalarisation of a normalised vector (1 the best in each
    coordinate, 0 the front's worst), higher is better:

        s = -(max_j w_j (1 - y_j) + rho * sum_j w_j (1 - y_j))

    i.e. minus the weighted distance to the ideal point (0 there). The max term makes every
    point of the Pareto front, concave parts included, the best of some weights (a weighted
    sum reaches only the convex hull); the sum term makes a dominated point score below one
    that dominates it."""
    gaps = [w * (1.0 - v) for v, w in zip(y, weights, strict=True)]
    return -(max(gaps) + rho * sum(gaps))


def scalarised(points: Sequence[Sequence[float]], weights: Sequence[float],
               rho: float = RHO) -> list[float]:
    """`chebyshev` of each of some signed vectors, normalised by their front (`FrontScale`)."""
    if not points:
        return []
    scale = FrontScale(points)
    return [chebyshev(scale(p), weights, rho) for p in points]
