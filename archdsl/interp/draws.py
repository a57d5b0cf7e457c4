"""Random draws of the sampling choosers: an index below n, an index by integer or float weights,
a value of a continuous or log-scale range. Each draw consumes the generator exactly as it always
has: a seeded sample depends on it.

May import: archdsl.values only (and the standard library's math and random).
"""

from __future__ import annotations

import math
import random

from ..values import Decision

__all__ = ["below", "weighted", "weighted_float", "sample_float", "sample_int_log",
           "default_float"]

_EXACT = 1 << 53  # below this, random() * n picks each of n values with probability 1/n
# to within n / 2**53 (as random.choices does); above it, exact integer draws


def below(rng: random.Random, n: int) -> int:
    """A random index in range(n); none drawn when n is 1."""
    if n == 1:
        return 0
    if n < _EXACT:
        return int(rng.random() * n)
    return rng.randrange(n)


def weighted(rng: random.Random, weights: list[int], total: int) -> int:
    """Index i with probability weights[i] / total (total = sum(weights) > 0)."""
    if len(weights) == 1:
        return 0
    return _span_of(rng.random() * total if total < _EXACT else rng.randrange(total), weights)


def weighted_float(rng: random.Random, weights: tuple) -> int:
    """Index i with probability weights[i] / sum(weights), for float weights (priors)."""
    return _span_of(rng.random() * float(sum(weights)), weights)


def _span_of(r: float, weights: list | tuple) -> int:
    """The index whose span of the weights, laid end to end, holds r (0 <= r < their sum)."""
    for i, w in enumerate(weights):
        if r < w:
            return i
        r -= w
    return max(i for i, w in enumerate(weights) if w > 0)  # float rounding at the top


def sample_float(d: Decision, rng: random.Random) -> float:
    if d.log:
        return math.exp(rng.uniform(math.log(d.lo), math.log(d.hi)))
    return rng.uniform(d.lo, d.hi)


def sample_int_log(d: Decision, rng: random.Random) -> int:
    """The index of a log-uniform value of an integer range."""
    r: range = d.options
    lo, hi = r.start, r[-1]
    x = math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))
    return min(len(r) - 1, max(0, int((x - lo) // r.step)))


def default_float(d: Decision) -> float:
    """A continuous decision's default value: its `default`, else the middle of its range."""
    if d.default is not None:
        return d.default
    return math.sqrt(d.lo * d.hi) if d.log else (d.lo + d.hi) / 2
