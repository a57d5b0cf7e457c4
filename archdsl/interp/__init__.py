"""The interpreter of the search-space IR, one module per stage of a walk:

    limits    the caps a walk, a count and a cache may reach, and their checks
    keys      values as keys (comparison as the language does; cache keys)
    draws     the random draws of the sampling choosers
    choosers  who answers decisions: Uniform, PerDecision, Default, FromConfig, Replay, Sizes
    domains   the Decision a choice/some/bool/int/float call makes
    caches    the sample tree and the tapes, which the walk consults
    evaluate  values of expressions; decisions; constraints        (Evaluator)
    build     applying sub-networks, construct by construct; graph  (Builder(Evaluator))
    blocks    applying blocks and shared sub-networks               (Blocks(Builder))
    count     architectures counted; joint tables; option weights   (Counter, beside the walk)
    walk      the entry points: walk, sample, globals, train         (Interp(Blocks))

A module imports only modules above it in this list (type hints aside), and the language's
modules (ast, analysis, semantics, values, rows, errors...). This package re-exports what the
rest of archdsl uses.
"""

from __future__ import annotations

from ..naming import Scope
from .choosers import (
    Chooser,
    Default,
    FromConfig,
    PerDecision,
    Reject,
    Replay,
    Uniform,
    replays,
)
from .draws import sample_float
from .evaluate import needs_metrics
from .limits import MAX_DECISIONS, MAX_LAYERS, MAX_NESTING, MAX_REPEAT
from .walk import Interp

__all__ = ["Interp", "Chooser", "Reject", "needs_metrics", "MAX_REPEAT", "MAX_LAYERS", "MAX_NESTING",
           "MAX_DECISIONS", "Uniform", "PerDecision", "Default", "FromConfig", "Replay", "replays",
           "sample_float", "Scope"]

