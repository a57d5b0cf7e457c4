"""Grid search: every configuration of a small discrete space, once each."""

from __future__ import annotations

from ..errors import ArchDSLError
from ..space import Config, Space
from .base import Candidate, Searcher, space_cache

__all__ = ["GridSearch", "MAX_GRID"]

MAX_GRID = 100_000  # architectures: a larger space is for the other searchers


class GridSearch(Searcher):
    """Proposes every configuration of `Space.enumerate()` once, then stops (ask -> None).

    `shuffle=True` (the default) visits them in an order drawn from the seed, so a search
    stopped early by its budget has a uniform sample of the space rather than its first corner
    in enumeration order (where the first decisions never change); `shuffle=False` keeps
    enumeration order. The space must be discrete and hold at most `max_size` architectures
    (default MAX_GRID = 100,000); otherwise ArchDSLError. It evaluates every architecture
    fully, so it refuses an early-stopping scheduler."""

    schedulers = False

    name = "grid"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 shuffle: bool = True, max_size: int = MAX_GRID, *, objectives: int = 1):
        super().__init__(space, seed, repeats, objectives=objectives)
        _check_continuous(space)
        n = space.count()
        if n > max_size:
            raise ArchDSLError(f"grid search: the space has {n:,} architectures, more than "
                               f"{max_size:,}", hint="use random, mcts, smbo or evolution")
        memo = space_cache(space, "grid")
        if "all" not in memo:
            memo["all"] = list(space.enumerate())
        self.configs: list[Config] = list(memo["all"])
        if shuffle:
            self.rng.shuffle(self.configs)
        self.next = 0

    def propose(self) -> Config | None:
        if self.next >= len(self.configs):
            return None
        self.next += 1
        return self.configs[self.next - 1]

    def observe(self, cand: Candidate, value: float | None) -> None:
        pass  # the order is fixed in advance

    def repeated(self, cand: Candidate) -> None:
        pass  # an architecture met again under another configuration: just move on


def _check_continuous(space: Space) -> None:
    for d in space.decisions():
        if d.continuous:
            raise ArchDSLError(f"grid search: '{d.name}' is continuous and has no grid",
                               d.span, hint="give it a step (e.g. float(0.0 .. 0.5, step = 0.1))"
                               " or use another searcher")
