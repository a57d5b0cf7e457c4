"""Random search: uniform over architectures (default), or each decision on its own."""

from __future__ import annotations

from ..space import Config, Space
from .base import Candidate, Searcher

__all__ = ["RandomSearch"]


class RandomSearch(Searcher):
    """Draws every configuration afresh. `uniform=True` gives every architecture of the space
    the same chance (options weighted by how many architectures follow them); `uniform=False`
    draws each decision on its own, uniformly or by its prior."""

    name = "random"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 uniform: bool = True, *, objectives: int = 1):
        super().__init__(space, seed, repeats, objectives=objectives)
        self.uniform = uniform

    def propose(self) -> Config | None:
        return self.space.sample(self.rng, uniform=self.uniform)

    def observe(self, cand: Candidate, value: float | None) -> None:
        pass  # results do not change what random search draws
