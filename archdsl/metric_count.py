"""Counting under `params`/`flops` constraints and constraints over decisions (`count(...)`):
`archdsl count --metrics`.

The metrics are known only once an architecture is built and planned, and a count over
decisions once a configuration is made, so the architectures are enumerated, but only over the
decisions that can change them. Decisions that cannot are counted by multiplication instead of
enumerated, unless a constraint over decisions reads them: every decision of the `train`
section, and a decision that is directly the dropout rate of a built-in layer (`dropout`'s `p`,
`attention`'s `dropout`): neither reaches the graph's shapes; and where no params/flops
constraint needs the architecture built, every decision whose value the walk drops at once (a
layer's argument: `Analysis.inert`). Continuous decisions count once, as in `count`:
the built-in layers' parameters and MACs do not depend on a float argument, so each is built at
one value; a user operation (`register_op`) might depend on one, and `caveat` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ast as A
from .errors import ArchLimitError, ShapeError, amount
from .graph import Architecture
from .interp import Replay, replays
from .layers import LAYERS
from .values import Decision

if TYPE_CHECKING:
    from .decision_constraints import DecisionConstraints
    from .space import Space

__all__ = ["count_with_metrics", "caveat", "MAX_ENUMERATED"]

MAX_ENUMERATED = 1_000_000  # architectures count --metrics may build (about an hour)
_BUILTIN_LAYERS = frozenset(LAYERS)  # before any user operation is registered
_RATES = {("dropout", "p"), ("attention", "dropout")}  # float arguments that size nothing


def count_with_metrics(space: Space) -> int:
    """The architectures of `space` that satisfy every constraint, params/flops and counts
    over decisions included.
    ArchLimitError if the space has more than MAX_ENUMERATED architectures (before the
    params/flops constraints): each is built, a few milliseconds apiece."""
    n = space.count()
    if n > MAX_ENUMERATED:
        raise ArchLimitError(
            f"count --metrics builds every architecture, and this space has {amount(n)}, more "
            f"than the limit of {MAX_ENUMERATED:,}", space.ir.network_span,
            hint="a plain count leaves params/flops constraints out and takes no time")
    build = bool(space.metric_constraints)
    free = _metric_free_spans(space) if build else _free_spans(space)
    dc = space.decision_constraints
    it = space._interp
    total = 0
    for ch in replays(it, lambda prefix: _Enumerate(prefix, free, dc), build=build):
        if dc and dc.failure() is not None:
            continue
        if build:
            arch = Architecture(it.graph, {}, {}, space.ir.file)
            try:
                ok = space._metric_failure(arch) is None
            except ShapeError:  # shapes that do not fit have no params: not an architecture
                ok = False
            if not ok:
                continue
        total += ch.mult  # type: ignore[attr-defined]
    return total


def caveat(space: Space) -> str | None:
    """A note when a continuous decision might change params/flops (the space has one, and uses
    a user operation that takes a float (or any) argument) or is read by a constraint over
    decisions: `count_with_metrics` evaluates each continuous decision at one value."""
    if not space._interp.an.has_continuous_calls():
        return None
    dc = space.decision_constraints
    read = [d.name for d in space.continuous_decisions() if dc.referenced(d)] if dc else []
    if read:
        return ("continuous decisions were counted at one value each; constraints over "
                f"decisions read {', '.join(read[:5])}" + (" ..." if len(read) > 5 else ""))
    nodes = space._interp.an.all_nodes()
    users = sorted({x.ref[1].name for x in nodes if isinstance(x, (A.Call, A.Name)) and x.ref
                    and x.ref[0] == "layer" and x.ref[1].name not in _BUILTIN_LAYERS
                    and any(a.type in ("float", "any") for a in x.ref[1].args)})
    if not users:
        return None
    return ("continuous decisions were counted at one value each; the user operation"
            f"{'s' if len(users) > 1 else ''} {', '.join(users)} may make params/flops depend "
            "on them")


class _Enumerate(Replay):
    """Replay over the decisions that can change the metrics; the others take their first
    option and multiply `mult` by their number of options."""

    def __init__(self, prefix: list[int], free: set[int], dc: DecisionConstraints):
        super().__init__(prefix)
        self.free = free
        self.dc = dc
        self.mult = 1

    def pick(self, d: Decision, weights: list[int] | None) -> Any:
        if (id(d.span) in self.free or d.name.startswith("train/")) \
                and not (self.dc and self.dc.referenced(d)):
            if d.options is None:
                return d.default if d.default is not None else d.lo
            self.mult *= len(d.options)
            return d.options[0]
        return super().pick(d, weights)


def _free_spans(space: Space) -> set[int]:
    """Ids of the spans of the decision calls whose value a walk that builds nothing drops
    at once, rates included."""
    an = space._interp.an
    return _metric_free_spans(space) | {id(x.span) for x in an.all_nodes()
                                        if isinstance(x, A.Call) and id(x) in an.inert}


def _metric_free_spans(space: Space) -> set[int]:
    """Ids of the spans of decision calls that are a built-in layer's rate argument."""
    out: set[int] = set()
    an = space._interp.an
    for x in an.all_nodes():
        if isinstance(x, A.Call) and x.ref and x.ref[0] == "layer" and x.func in _BUILTIN_LAYERS:
            for name, v in an.named_args(x, [a.name for a in x.ref[1].args]):
                if (x.func, name) in _RATES and isinstance(v, A.Call) and v.ref \
                        and v.ref[0] == "decision":
                    out.add(id(v.span))
    return out
