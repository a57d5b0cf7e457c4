"""The searcher contract, shared by every search algorithm.

A searcher proposes configurations of one space and learns from their results, through two
public calls:

    cand = searcher.ask()          # a Candidate to evaluate, or None when nothing is left
    searcher.tell(cand, value)     # its result: higher is better; None for a failed trial

A searcher made with `objectives=k` (k > 1) is told a vector of k finite numbers instead, each
signed so that higher is better (`archdsl.objectives.values`); None (or a single NaN) is still
a failed trial, and a vector of another length or with a value that is not a finite number is
a ValueError naming the searcher. With `objectives=1` (the default) a value is one number, as
it always was (a vector of one number is taken as that number).

Several candidates may be outstanding at once (asked, not yet told), and `tell` also accepts
results the searcher did not propose (a resumed study replays its trials this way).

An algorithm subclasses `Searcher`, implements `propose` and `observe`, and may implement
`pending` and `repeated`:

    propose()               -> Config | None   one configuration to try, or None when the
                                               algorithm has nothing more to offer;
    observe(cand, value)    -> None            learn from a result;
    pending(cand)           -> None            (optional) a candidate was handed out and its
                                               result is not known yet: e.g. a virtual loss;
    repeated(cand)          -> None            (optional) propose() gave an architecture that
                                               was evaluated or is outstanding, so it is not
                                               handed out; by default an evaluated one is
                                               observed again with its known value. An
                                               algorithm must not propose the same thing
                                               forever: after MAX_REPEATS repeats in a row
                                               `ask` gives up and returns None.

Configurations must come from the space's own methods (`sample`, `choose`, `mutate`,
`enumerate`), which honour every constraint of the space. Randomness comes from `self.rng`,
seeded from the seed given, so the same seed and the same results give the same sequence.
The base class keeps proposals in the space and never hands out an architecture that was
evaluated or is outstanding (unless `repeats=True`): architectures are identified by the
canonical hash of their graph together with their training decisions, so two configurations
that compute the same function are evaluated once. The keys (and anything else an algorithm
derives from a configuration alone, see `space_cache`) are remembered per space for the life of
the process, so many searches of one space pay for each architecture once.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ArchDSLError
from ..graph import Architecture
from ..space import Config, Space
from ..values import to_json

__all__ = ["Candidate", "Searcher", "Value", "MAX_REPEATS", "space_cache", "space_memos",
           "config_text"]

# a result as a searcher keeps it: one number, or (objectives > 1) a tuple of them; None: failed
Value = float | tuple[float, ...] | None

MAX_REPEATS = 1_000  # proposals of known architectures in a row before the search gives up

_CACHES: weakref.WeakKeyDictionary[Space, dict[str, dict[str, Any]]] = \
    weakref.WeakKeyDictionary()


def space_cache(space: Space, name: str) -> dict[str, Any]:
    """A memo named `name` for one space, shared by every searcher of that space in this
    process, for what depends on a configuration alone (its architecture key, an encoding).
    Keys are the configuration's JSON text (`config_text`)."""
    return space_memos(space).setdefault(name, {})


def space_memos(space: Space) -> dict[str, dict[str, Any]]:
    """Every memo of one space by name (to fill them in another process, for instance)."""
    return _CACHES.setdefault(space, {})


def config_text(config: Config) -> str:
    """A configuration as canonical JSON text: the key of `space_cache` memos."""
    return json.dumps(config, sort_keys=True)


@dataclass
class Candidate:
    """A proposed configuration and the key of the architecture it chooses."""

    config: Config
    key: str  # canonical graph hash, plus the training decisions when there are any
    info: dict[str, Any] = field(default_factory=dict)  # the algorithm's own notes


class Searcher:
    """Base class of every searcher: see the module's documentation for the contract."""

    name: ClassVar[str] = ""
    # whether it can be used with an early-stopping scheduler (it is told a stopped trial's
    # last value, see docs/schedulers.md); grid, which evaluates everything fully, cannot
    schedulers: ClassVar[bool] = True
    gave_up: str | None = None  # why ask() gave up, where it did

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False, *,
                 objectives: int = 1):
        if isinstance(objectives, bool) or not isinstance(objectives, int) or objectives < 1:
            raise ArchDSLError(f"{self.name}: objectives must be an integer of at least 1, "
                               f"got {objectives!r}")
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)
        self.repeats = repeats
        self.objectives = objectives  # how many values each result holds
        self.results: dict[str, Any] = {}  # key -> value (a Value) of every evaluated arch
        self.outstanding: dict[str, Candidate] = {}
        # the best result told: with several objectives, the best vector in lexicographic
        # order (the first objective first); `archdsl.pareto` gives the front
        self.best: tuple[Any, Candidate] | None = None
        self._keys = space_cache(space, "key")  # config JSON -> key

    # ---- the algorithm's part ----------------------------------------------------------
    def propose(self) -> Config | None:
        raise NotImplementedError

    def observe(self, cand: Candidate, value: Any) -> None:
        """Learn from a result: a float (one objective) or a tuple of floats, None if failed."""
        raise NotImplementedError

    def pending(self, cand: Candidate) -> None:
        """A candidate was handed out; its result comes later (default: nothing to do)."""

    def repeated(self, cand: Candidate) -> None:
        """propose() gave an architecture already evaluated or outstanding, which is not handed
        out. Default: an evaluated one is observed again with its known value."""
        if cand.key in self.results:
            self.observe(cand, self.results[cand.key])

    # ---- the contract --------------------------------------------------------------------
    def ask(self) -> Candidate | None:
        """The next candidate to evaluate; None when the space (or the algorithm) is spent."""
        for _ in range(MAX_REPEATS):
            config = self.propose()
            if config is None:
                return None
            cand = Candidate(config, self.key(config))
            if not self.repeats and (cand.key in self.outstanding or cand.key in self.results):
                self.repeated(cand)  # known or under way: not evaluated again
                continue
            self.outstanding[cand.key] = cand
            self.pending(cand)
            return cand
        from ..reach import dropped

        self.gave_up = (f"the searcher gave up after {MAX_REPEATS:,} proposals in a row of "
                        "architectures already seen" + (
                            ": decisions that reach nothing make many configurations one "
                            "architecture (`archdsl check` names them)"
                            if dropped(self.space.ir) else ""))
        return None

    def tell(self, cand: Candidate, value: Any) -> None:
        """The result of a candidate (from `ask`, or any configuration of the space): one
        number, or a vector of `objectives` numbers; None or NaN for a failed trial."""
        value = self.checked(value)
        self.outstanding.pop(cand.key, None)
        self.results[cand.key] = value
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (value, cand)
        self.observe(cand, value)

    def checked(self, value: Any) -> Value:
        """A told value as the searcher keeps it (see the module doc); ValueError if it is not
        one number (`objectives` 1) or a vector of `objectives` finite numbers."""
        k = self.objectives
        if k == 1:
            if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 1:
                value = value[0]
            return None if value is None or value != value else value  # NaN: a failed trial
        if value is None or (_is_number(value) and value != value):
            return None
        if hasattr(value, "tolist") and not _is_number(value):  # a numpy array
            value = value.tolist()
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != k \
                or not all(_is_number(v) and math.isfinite(v) for v in value):
            raise ValueError(f"{self.name or type(self).__name__} searcher: with {k} "
                             f"objectives a result is {k} finite numbers (or None for a failed "
                             f"trial), got {value!r}")
        return tuple(float(v) for v in value)

    def candidate(self, config: Config) -> Candidate:
        """A Candidate for a configuration found elsewhere (e.g. a stored trial)."""
        return Candidate(config, self.key(config))

    def architecture(self, config: Config, text: str) -> Architecture:
        """`space.materialize(config)` (`text`: the configuration's `config_text`), for its key;
        an algorithm that has just built it may hand back its own."""
        return self.space.materialize(config)

    def key(self, config: Config) -> str:
        """The identity of the architecture a configuration chooses (see the module doc)."""
        text = config_text(config)
        k = self._keys.get(text)
        if k is None:
            arch = self.architecture(config, text)
            k = arch.hash
            if arch.train:
                train = json.dumps({n: to_json(v) for n, v in arch.train.items()}, sort_keys=True)
                k = hashlib.sha256(f"{k} {train}".encode()).hexdigest()[:16]
            self._keys[text] = k
        return k


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
