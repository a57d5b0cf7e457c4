"""Searchers: algorithms that choose configurations of a space, one file each.

    from archdsl.search import make_searcher
    s = make_searcher("random", space, seed=0)
    cand = s.ask(); s.tell(cand, 0.93)

    s = make_searcher("evolution", space, seed=0, objectives=2)   # NSGA-II
    cand = s.ask(); s.tell(cand, (0.93, -12_345.0))   # signed: higher is better in each

The contract they share is documented in `archdsl.search.base.Searcher`.
"""

from __future__ import annotations

from typing import Any

from ..registry import named_class
from ..space import Space
from .base import Candidate, Searcher

__all__ = ["Candidate", "Searcher", "SEARCHERS", "make_searcher", "searcher_class"]

# name -> "module:class", imported when first used
SEARCHERS: dict[str, str] = {
    "random": "random:RandomSearch",
    "mcts": "mcts:MCTS",
    "smbo": "smbo:SMBO",
    "evolution": "evolution:Evolution",
    "grid": "grid:GridSearch",
}


def searcher_class(name: str) -> type[Searcher]:
    return named_class(SEARCHERS, name, __name__, "searcher")


def make_searcher(name: str, space: Space, seed: int = 0, objectives: int = 1,
                  **options: Any) -> Searcher:
    """A searcher by name (`random`, `mcts`, `smbo`, `evolution`, `grid`), for `objectives`
    objectives (told as a vector of that many values when more than one)."""
    return searcher_class(name)(space, seed=seed, objectives=objectives, **options)
