"""Regularized evolution (Real et al., 2019): tournament selection, mutation, and aging."""

from __future__ import annotations

from collections import deque

from ..errors import ArchDSLError
from ..space import Config, Space
from .base import Candidate, Searcher

__all__ = ["Evolution"]


class Evolution(Searcher):
    """Regularized evolution. The first `population` proposals are drawn uniformly from the
    space; after that each proposal is a child: `sample` members of the population are drawn
    at random, and the best of them (the tournament winner) is changed in one decision with
    `Space.mutate`, which keeps the child valid. Each result joins the population and the
    oldest member dies, so no architecture lives forever however lucky its score
    (failed trials do not join). Defaults: population 20, tournament 5 (see docs/searchers.md).
    """

    name = "evolution"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 population: int = 20, sample: int = 5):
        super().__init__(space, seed, repeats)
        if population < 1 or not 1 <= sample <= population:
            raise ArchDSLError(f"evolution: need population >= 1 and 1 <= sample <= population, "
                               f"got population {population}, sample {sample}")
        self.size, self.sample = population, sample
        self.population: deque[tuple[Config, float]] = deque()  # oldest first
        self.seeding: set[str] = set()  # keys of the first random proposals not yet told
        self._drawn = False  # the last proposal is one of those

    def propose(self) -> Config | None:
        self._drawn = len(self.population) + len(self.seeding) < self.size
        if self._drawn:
            return self.space.sample(self.rng)
        members = list(self.population)
        if not members:  # the first random ones are still out: draw another
            return self.space.sample(self.rng)
        contenders = self.rng.sample(members, min(self.sample, len(members)))
        parent = max(contenders, key=lambda m: m[1])[0]
        try:
            return self.space.mutate(parent, self.rng)
        except ArchDSLError:  # no valid neighbour (a one-architecture space): draw afresh
            return self.space.sample(self.rng)

    def pending(self, cand: Candidate) -> None:
        if self._drawn:
            self.seeding.add(cand.key)

    def observe(self, cand: Candidate, value: float | None) -> None:
        self.seeding.discard(cand.key)
        if value is None:
            return
        self.population.append((cand.config, value))
        if len(self.population) > self.size:
            self.population.popleft()  # aging: the oldest dies, not the worst

    def repeated(self, cand: Candidate) -> None:
        pass  # a child already known: draw another rather than copy it into the population
