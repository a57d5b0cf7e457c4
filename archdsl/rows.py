"""Rows of a joint table: one joint value of the decisions that shape a network (the top-level
params, or a block's structural arguments), how many architectures it leaves, and what the
samplers and the default configuration need to choose a row without trying the others.

A row's decisions are those one replay of the table's expression made, in order; a row is
chosen instead of deciding them one by one where a constraint rules rows out:

- uniform sampling weighs each row by its architectures (`Row.weight`);
- per-decision sampling weighs each row allowed (weight > 0) by the probability that drawing its
  decisions one by one gives it (`Row.prob`): rejection sampling with the rows that can only be
  rejected left out, so the distribution is the same and no draw is wasted on them;
- the default configuration takes each decision's default where a valid architecture follows,
  else its first option that leads to one: the allowed row of least `Row.rank`.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

from .values import Decision

__all__ = ["Row", "Table", "make_row", "draw_uniform", "per_decision_probability", "draw_per_decision", "default_row"]


class Row(NamedTuple):
    values: tuple  # the decisions' values, in the order the replay made them
    weight: int  # architectures this row leaves (0: a constraint or depth bound rules it out)
    prob: float  # the probability that per-decision sampling draws these values
    rank: tuple  # per decision: 0 for its default, 1 + index for another option


def make_row(values: Sequence[Any], weight: int, picks: Sequence[tuple[Decision, int | None]]
             ) -> Row:
    """A row from the (decision, option index) pairs of one replay (None: continuous)."""
    prob = 1.0
    rank = []
    for d, i in picks:
        if i is None:
            rank.append(0)
            continue
        prob *= per_decision_probability(d, i)
        rank.append(0 if i == d.default_index() else 1 + i)
    return Row(tuple(values), weight, prob, tuple(rank))


def per_decision_probability(d: Decision, i: int) -> float:
    """The probability that the per-decision sampler draws option i of `d`."""
    if d.prior is not None:
        return d.prior[i] / math.fsum(d.prior)
    r = d.options
    if d.kind == "int" and d.log and isinstance(r, range) and len(r) > 1:
        lo, hi = r.start, r[-1] + 1  # as sample_int_log draws: log-uniform on [lo, hi + 1)
        a = r[i]
        b = hi if i == len(r) - 1 else r[i] + r.step
        return (math.log(b) - math.log(a)) / (math.log(hi) - math.log(lo))
    return 1.0 / len(r)


def default_row(rows: Sequence[Row]) -> int | None:
    """The index of the allowed row of least rank (None if no row is allowed)."""
    best = None
    for i, row in enumerate(rows):
        if row.weight > 0 and (best is None or row.rank < rows[best].rank):
            best = i
    return best


def draw_per_decision(rng: random.Random, rows: Sequence[Row]) -> int | None:
    """A row drawn by per-decision probability among the allowed ones; None where every row
    is allowed (the decisions are then drawn one by one, as without a table)."""
    cum = _cumulative(rows)
    if cum is None:
        return None
    i = min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)
    while rows[i].weight == 0:  # only at the very top, by float rounding
        i -= 1
    return i


def draw_uniform(rng: random.Random, rows: Sequence[Row]) -> int | None:
    """A row drawn with probability weight / total weight (as random.choices draws: random()
    scaled to the total below 2**53, an exact integer draw above); None if every weight is 0."""
    cum = getattr(rows, "cum_weights", None)
    if cum is None:
        cum = list(itertools.accumulate(row.weight for row in rows))
        if isinstance(rows, Table):
            rows.cum_weights = cum
    total = cum[-1] if cum else 0
    if total == 0:
        return None
    if len(cum) == 1:
        return 0
    r = rng.random() * total if total < 1 << 53 else rng.randrange(total)
    i = min(bisect.bisect_right(cum, r), len(cum) - 1)
    while rows[i].weight == 0:  # only at the very top, by float rounding
        i -= 1
    return i


class Table(list):
    """A joint table's rows, and what the draws prepare from them once."""

    cum: list[float] | None | bool = False  # draw_per_decision's; False: not prepared yet
    cum_weights: list[int] | None = None  # draw_uniform's


def _cumulative(rows: Sequence[Row]) -> list[float] | None:
    """The running sums of the allowed rows' probabilities (None: every row allowed, or none
    is); kept on a Table."""
    got = getattr(rows, "cum", False)
    if got is not False:
        return got  # type: ignore[return-value]
    cum: list[float] | None = None
    if not all(row.weight > 0 for row in rows):
        cum = list(itertools.accumulate(row.prob if row.weight > 0 else 0.0 for row in rows))
        if not cum or cum[-1] <= 0.0:
            cum = None  # every row ruled out: the walk rejects it as before
    if isinstance(rows, Table):
        rows.cum = cum
    return cum
