"""Evolution: regularized evolution (Real et al., 2019) for one objective, NSGA-II (Deb et al.,
2002) for several: tournament selection, mutation, and aging or elitist survival.

Imports: archdsl.errors, archdsl.space, base.py of this package, and archdsl.pareto (the
non-dominated sort and crowding distance) with several objectives."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..errors import ArchDSLError
from ..space import Config, Space
from .base import Candidate, Searcher

__all__ = ["Evolution"]


class Evolution(Searcher):
    """Regularized evolution, or NSGA-II with several objectives.

    The first `population` proposals are drawn uniformly from the space; after that each
    proposal is a child: `sample` members of the population are drawn at random, and the best
    of them (the tournament winner) is changed in one decision with `Space.mutate`, which
    keeps the child valid. Failed trials do not join the population.

    One objective: the best is the highest value; each result joins the population and the
    oldest member dies (aging), so no architecture lives forever however lucky its score.

    Several objectives (NSGA-II, steady state): the best is the lower non-domination rank of
    the population (`pareto.nondominated_sort`), then the larger crowding distance within its
    front (`pareto.crowding_distance`); the tournament is binary (`sample` 2) by default.
    Each result joins the population; when it holds more than `population`, the member with
    the smallest crowding distance in the last front dies (elitist survival: the population is
    always the best `population` by rank then crowding; ties: the oldest dies). With
    `aging=True` the oldest dies instead, as in regularized evolution.

    Defaults: population 20; sample 5 (one objective) or 2 (several), at most the population;
    aging True (one objective) or False (several). See docs/searchers.md.
    """

    name = "evolution"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 population: int = 20, sample: int | None = None, aging: bool | None = None,
                 *, objectives: int = 1):
        super().__init__(space, seed, repeats, objectives=objectives)
        several = objectives > 1
        if sample is None:
            sample = max(1, min(2 if several else 5, population))
        if population < 1 or not 1 <= sample <= population:
            raise ArchDSLError(f"evolution: need population >= 1 and 1 <= sample <= population, "
                               f"got population {population}, sample {sample}")
        self.size, self.sample = population, sample
        self.aging = (not several) if aging is None else bool(aging)
        self.population: deque[tuple[Config, Any]] = deque()  # oldest first
        self.seeding: set[str] = set()  # keys of the first random proposals not yet told
        self._drawn = False  # the last proposal is one of those
        self._fitness: list[Any] | None = None  # per member, higher is better (see fitness)

    def propose(self) -> Config | None:
        self._drawn = len(self.population) + len(self.seeding) < self.size
        if self._drawn:
            return self.space.sample(self.rng)
        members = list(self.population)
        if not members:  # the first random ones are still out: draw another
            return self.space.sample(self.rng)
        if self.objectives == 1:
            contenders = self.rng.sample(members, min(self.sample, len(members)))
            parent = max(contenders, key=lambda m: m[1])[0]
        else:
            fit = self.fitness()
            picks = self.rng.sample(range(len(members)), min(self.sample, len(members)))
            parent = members[max(picks, key=lambda i: fit[i])][0]
        try:
            return self.space.mutate(parent, self.rng)
        except ArchDSLError:  # no valid neighbour (a one-architecture space): draw afresh
            return self.space.sample(self.rng)

    def fitness(self) -> list[tuple[int, float]]:
        """Several objectives: (-rank, crowding distance) of each member of the population, in
        its order (higher is better: the tournament's order)."""
        if self._fitness is None:
            from ..pareto import crowding_distance, nondominated_sort

            points = [tuple(v) for _, v in self.population]
            fit: list[Any] = [None] * len(points)
            for rank, front in enumerate(nondominated_sort(points)):
                crowd = crowding_distance(points, front)
                for i in front:
                    fit[i] = (-rank, crowd[i])
            self._fitness = fit
        return self._fitness

    def pending(self, cand: Candidate) -> None:
        if self._drawn:
            self.seeding.add(cand.key)

    def observe(self, cand: Candidate, value: Any) -> None:
        self.seeding.discard(cand.key)
        if value is None:
            return
        self.population.append((cand.config, value))
        self._fitness = None
        if len(self.population) > self.size:
            if self.aging:
                self.population.popleft()  # aging: the oldest dies, not the worst
            else:
                del self.population[self.worst()]
            self._fitness = None

    def worst(self) -> int:
        """Elitist survival: the member that dies (lowest value, or lowest crowding distance
        in the last front; ties: the oldest)."""
        if self.objectives == 1:
            values = [v for _, v in self.population]
            return values.index(min(values))
        fit = self.fitness()
        return min(range(len(fit)), key=lambda i: fit[i])

    def repeated(self, cand: Candidate) -> None:
        pass  # a child already known: draw another rather than copy it into the population
