"""Choosers: who answers the decisions a walk meets. A walk asks its chooser for each decision's
value (`pick`, or `index` for the option's position), for a row of a joint table (`pick_row`),
and tells it when a decision is read again (`reused`). The policies: `Uniform` (uniform over
architectures, by the weights counting gives), `PerDecision` (each decision on its own, by its
prior), `Default` (the default configuration), `FromConfig` (a configuration's values), `First`,
`Sizes` (counting: multiplies domain sizes) and `Replay` (depth-first enumeration, with
`next_prefix` and `replays`).

May import: archdsl.values, archdsl.rows, archdsl.errors, and .draws and .limits of this package
(.walk for type hints only).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import ArchDSLError, ConfigError, ConstraintError
from ..rows import Row, default_row, draw_per_decision, draw_uniform
from ..values import Decision, to_json
from .draws import below, default_float, sample_float, sample_int_log, weighted, weighted_float
from .limits import held

if TYPE_CHECKING:
    from .walk import Interp

__all__ = ["Reject", "Chooser", "First", "Sizes", "Replay", "next_prefix", "replays", "Uniform",
           "PerDecision", "Default", "FromConfig"]


class Reject(Exception):
    """A sampled configuration broke a constraint: sample again."""

    def __init__(self, why: ArchDSLError):
        super().__init__(why.message)
        self.why = why


class Chooser:
    """Answers decisions. `weights[i]` (when given) is how many architectures follow option i."""

    def pick(self, d: Decision, weights: list[int] | None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def index(self, d: Decision, weights: list[int] | None) -> int:
        """pick(), as the index of the option, for a decision with finite options: the random
        choosers implement it, and their pick() is `d.options[index(d, weights)]`."""
        return d.options.index(self.pick(d, weights))  # pragma: no cover

    def pick_row(self, rows: list[Row]) -> int | None:
        """Choose a row of a joint table (see archdsl.rows); None: decide one by one."""
        return None

    def pick_inert(self, d: Decision, weights: list[int] | None) -> Any:
        """pick(), for a decision whose value the walk drops at once (`Analysis.inert`)."""
        return self.pick(d, weights)

    def reused(self, name: str) -> None:
        """A decision already made is met again (its value is read a second time)."""


class First(Chooser):
    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return d.default if d.default is not None else d.lo
        return d.options[0]


class Sizes(Chooser):
    """Counts: multiplies the sizes of the decisions met, answers each with its first option."""

    def __init__(self) -> None:
        self.mult = 1

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        self.mult = held(self.mult * (sum(weights) if weights is not None else d.size), d.span)
        if d.options is None:
            return d.default if d.default is not None else d.lo
        return d.options[0]


class Replay(Chooser):
    """Follows a prefix of option indices, then takes the first allowed option."""

    def __init__(self, prefix: list[int]):
        self.prefix = prefix
        self.trace: list[tuple[int, int]] = []
        self.values: list[Any] = []
        self.picks: list[tuple[Decision, int | None]] = []

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        pos = len(self.trace)
        if d.options is None:
            v = d.default if d.default is not None else d.lo
            self.trace.append((0, 1))
            self.values.append(v)
            self.picks.append((d, None))
            return v
        n = len(d.options)
        i = self.prefix[pos] if pos < len(self.prefix) else 0
        if weights is not None:
            while i < n and weights[i] == 0:
                i += 1
            if i >= n:
                self.trace.append((n - 1, n))
                raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                             d.span))
        self.trace.append((i, n))
        v = d.options[i]
        self.values.append(v)
        self.picks.append((d, i))
        return v


def next_prefix(trace: list[tuple[int, int]]) -> list[int] | None:
    """The option indices a depth-first replay follows after the walk that made `trace`
    ((index, number of options) per decision); None when that walk was the last."""
    trace = list(trace)
    while trace and trace[-1][0] + 1 >= trace[-1][1]:
        trace.pop()
    if not trace:
        return None
    return [i for i, _ in trace[:-1]] + [trace[-1][0] + 1]


def replays(it: Interp, make: Callable[[list[int]], Replay], build: bool = False
            ) -> Iterator[Replay]:
    """Walk `it` once per combination of options, depth first (`make(prefix)` gives each
    walk's chooser); yield the chooser of each walk no constraint rejected, while `it.decided`
    (and with `build`, `it.graph`) still hold that walk's."""
    prefix: list[int] | None = []
    while prefix is not None:
        ch = make(prefix)
        try:
            it.walk(ch, build=build)
            yield ch
        except Reject:
            pass
        prefix = next_prefix(ch.trace)


class Uniform(Chooser):
    """Uniform over architectures: options weighted by the architectures that follow."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return sample_float(d, self.rng)
        return d.options[self.index(d, weights)]

    def index(self, d: Decision, weights: list[int] | None) -> int:
        if weights is not None:
            total = sum(weights)
            if total == 0:
                raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                             d.span))
            return weighted(self.rng, weights, total)
        if d.kind == "int" and d.log:
            return sample_int_log(d, self.rng)
        return below(self.rng, len(d.options))

    def pick_row(self, rows: list[Row]) -> int | None:
        i = draw_uniform(self.rng, rows)
        if i is None:
            raise Reject(ConstraintError("no combination of values satisfies the constraints",
                                         None))
        return i


class PerDecision(Chooser):
    """Each decision on its own: uniform (or by its prior; log-uniform on log scales)."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick_row(self, rows: list[Row]) -> int | None:
        return draw_per_decision(self.rng, rows)

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return sample_float(d, self.rng)
        return d.options[self.index(d, weights)]

    def index(self, d: Decision, weights: list[int] | None) -> int:
        if weights is not None and d.prior is None:
            allowed = [i for i, w in enumerate(weights) if w > 0]
            if not allowed:
                raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                             d.span))
            return allowed[below(self.rng, len(allowed))]
        if d.prior is not None:
            return weighted_float(self.rng, d.prior)
        if d.kind == "int" and d.log:
            return sample_int_log(d, self.rng)
        return below(self.rng, len(d.options))


class Default(Uniform):
    """The default configuration: each decision at its default where an architecture follows
    (weights[i] > 0), else its first option that leads to one; a continuous decision at its
    default, else the middle of its range (geometric on a log scale)."""

    def __init__(self) -> None:
        super().__init__(random.Random(0))  # never drawn from

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.options is None:
            return default_float(d)
        return d.options[self.index(d, weights)]

    def index(self, d: Decision, weights: list[int] | None) -> int:
        i = d.default_index()
        if weights is None or weights[i] > 0:
            return i
        j = next((j for j, w in enumerate(weights) if w > 0), None)
        if j is None:
            raise Reject(ConstraintError(f"'{d.name}': no option leads to an architecture",
                                         d.span))
        return j

    def pick_row(self, rows: list[Row]) -> int | None:
        i = default_row(rows)
        if i is None:
            raise Reject(ConstraintError("no combination of values satisfies the constraints",
                                         None))
        return i


class FromConfig(Chooser):
    """Reads each decision from a configuration (JSON values)."""

    def __init__(self, config: dict[str, Any], fill_defaults: bool = False):
        self.config = config
        self.fill = fill_defaults
        self.used: set[str] = set()

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if d.name not in self.config:
            if self.fill:
                if d.options is None:
                    return default_float(d)
                return d.options[d.default_index()]
            raise ConfigError(f"the configuration has no value for '{d.name}'", d.span,
                              hint=f"it takes {d.domain_text()}")
        self.used.add(d.name)
        v = d.value_of_json(self.config[d.name])
        if weights is not None and d.options is not None:
            i = d.index_of_json(self.config[d.name])
            if weights[i] == 0:
                raise ConfigError(f"'{d.name}' = {to_json(v)!r} leads to no valid architecture "
                                  "(depth bound or constraints)", d.span)
        return v
