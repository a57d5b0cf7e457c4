"""Scalarisations of several objectives, for the searchers that learn from one number (smbo as
ParEGO, mcts): a random weight vector on the simplex, and the augmented Chebyshev function of
the objectives normalised by the ranges seen (Knowles, "ParEGO", 2006).

Values are signed vectors (higher is better in every coordinate, `archdsl.objectives.values`).
Imports: the standard library only.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

__all__ = ["RHO", "simplex_weights", "bounds", "chebyshev"]

RHO = 0.05  # the augmentation: Knowles' value; breaks ties between weakly dominated points

Bounds = list[tuple[float, float]]  # per objective: the lowest and highest value seen


def simplex_weights(rng: random.Random, k: int) -> tuple[float, ...]:
    """k weights >= 0 that sum to 1, uniform on the simplex (normalised exponential draws)."""
    e = [-math.log(1.0 - rng.random()) for _ in range(k)]
    total = sum(e)
    return tuple(x / total for x in e)


def bounds(points: Sequence[Sequence[float]]) -> Bounds:
    """The range of each coordinate over some points (at least one)."""
    return [(min(c), max(c)) for c in zip(*points, strict=True)]


def chebyshev(point: Sequence[float], weights: Sequence[float], ranges: Bounds,
              rho: float = RHO) -> float:
    """The augmented Chebyshev scalarisation of a signed vector, higher is better:

        y_j = (v_j - lo_j) / (hi_j - lo_j)            (1 = the best seen; 1 where hi_j = lo_j)
        s   = -(max_j w_j (1 - y_j) + rho * sum_j w_j (1 - y_j))

    i.e. minus the weighted distance to the ideal point of the results seen (0 at best). The
    max term makes every point of the Pareto front, concave parts included, the best of some
    weights; the sum term makes a dominated point score below one that dominates it."""
    gaps = []
    for v, w, (lo, hi) in zip(point, weights, ranges, strict=True):
        y = (v - lo) / (hi - lo) if hi > lo else 1.0
        gaps.append(w * (1.0 - y))
    return -(max(gaps) + rho * sum(gaps))
