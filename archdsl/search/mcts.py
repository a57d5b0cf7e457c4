"""Monte Carlo tree search over the tree of decisions, with UCT, RAVE and virtual loss; with
several objectives, a random Chebyshev scalarisation per proposal.

Imports: archdsl.errors, archdsl.space, archdsl.values, and base.py and scalarise.py of this
package."""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from typing import Any

from ..errors import ArchDSLError, ConstraintError, ShapeError
from ..space import Config, Space
from ..values import Decision
from .base import Candidate, Searcher
from .scalarise import FrontScale, chebyshev, simplex_weights

__all__ = ["MCTS"]

Move = tuple[str, int]  # (decision name, option index; for a continuous decision: its bin)


class _Node:
    """A prefix of answers. Its decision is the next one `Space.choose` meets after them."""

    __slots__ = ("children", "allowed", "values", "virtual", "exhausted", "endless")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.allowed: list[int] | None = None  # options that lead somewhere; None: a leaf
        self.values: list[Any] = []  # results of the configurations through here
        self.virtual = 0  # proposals through here still outstanding
        self.exhausted = False  # nothing new below (every configuration proposed, or none)
        self.endless = False  # a continuous decision above: never exhausted

    @property
    def visits(self) -> int:
        return len(self.values) + self.virtual


class MCTS(Searcher):
    """Monte Carlo tree search over the decisions, in the order `Space.choose` meets them.

    Each proposal walks down the tree of answers. Where every allowed option of a decision has
    been tried, the option with the highest UCT score is taken:

        Q + c * sqrt(ln N / n),  Q = (1 - b) * Q_tree + b * Q_rave,  b = sqrt(k / (3n + k))

    where Q_tree is the mean reward of the configurations below that option, Q_rave the mean
    reward of every configuration that made the same decision the same way anywhere in the
    tree (rapid action value estimation: it shares what is learnt about one decision across
    the branches), n the visits of the option and N those of the decision. At the first
    option not tried yet (the untried option with the best Q_rave) the walk leaves the tree,
    and the decisions after it are drawn by move-average sampling (`draw`: in proportion to
    the architectures that follow an option times exp(Q_rave / temperature)); the whole walk
    is added to the tree. Rewards are normalised by rank: a result counts as the
    fraction of results seen that it beats (failed trials: 0), so Q is in [0, 1] whatever
    the objective's scale or outliers, and `c` means the same in every space.

    Several objectives: every proposal draws a weight vector uniformly on the simplex, and
    for that proposal a result's reward is the rank, as above, of its augmented Chebyshev
    scalarisation (`scalarise.chebyshev`, of the objectives normalised by the front of the
    results, `scalarise.FrontScale`) among those of every result seen. The tree keeps the
    results themselves, so every statistic is read under the proposal's weights: each walk
    is a one-objective search towards another part of the Pareto front, and what is learnt
    serves every part.

    Continuous decisions are split into `bins` equal parts (on a log scale where the decision
    has one); the tree chooses a part and the value is drawn at random within it.
    Outstanding proposals count as visits with reward 0 (virtual loss), so proposals made
    before their results come back take different paths. A configuration is never proposed
    twice; a subtree whose configurations have all been proposed is closed, and when the
    whole tree is closed the search is over. An architecture met again under another
    configuration is not evaluated again: its known result is back-propagated.

    Defaults: exploration c = 0.5, rave k = 20, temperature 0.1, bins 4 (docs/searchers.md).
    """

    name = "mcts"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 exploration: float = 0.5, rave: float = 20.0, temperature: float = 0.1,
                 bins: int = 4, *, objectives: int = 1):
        super().__init__(space, seed, repeats, objectives=objectives)
        if exploration < 0 or rave < 0 or temperature <= 0 or bins < 1:
            raise ArchDSLError("mcts: need exploration >= 0, rave >= 0, temperature > 0, "
                               "bins >= 1")
        self.c, self.k, self.temperature, self.bins = exploration, rave, temperature, bins
        self.root = _Node()
        self.ranked: list[float] = []  # every result seen, sorted: the rank normalisation
        self.rave: dict[Move, list[Any]] = {}
        # several objectives: every successful result, and this proposal's weights, the
        # scalarisations of the results (sorted) and a memo: result -> reward
        self.vectors: list[tuple[float, ...]] = []
        self.weights: tuple[float, ...] | None = None
        self._scalars: list[float] = []
        self._scale: FrontScale | None = None
        self._rewards: dict[tuple[float, ...], float] = {}
        self._last: tuple[list[_Node], list[Move]] = ([], [])
        self._pending: dict[str, tuple[list[_Node], list[Move]]] = {}

    # ---- rewards ---------------------------------------------------------------------------
    def reward(self, value: Any) -> float:
        """The rank of a result among those seen, in [0, 1]; 0 for a failed trial. With several
        objectives: the rank of its scalarisation under this proposal's weights."""
        if self.objectives > 1 and value is not None:
            got = self._rewards.get(value)
            if got is None:
                got = self._rewards[value] = self._scalar_rank(value)
            return got
        if value is None or not self.ranked:
            return 0.0
        r = self.ranked
        return (bisect_left(r, value) + bisect_right(r, value)) / (2 * len(r))

    def _scalar_rank(self, value: tuple[float, ...]) -> float:
        r, scale = self._scalars, self._scale
        if not r or scale is None or self.weights is None:
            return 0.0
        x = chebyshev(scale(value), self.weights)
        return (bisect_left(r, x) + bisect_right(r, x)) / (2 * len(r))

    def scalarise(self) -> None:
        """Several objectives: draw this proposal's weights and rank the results under them."""
        self.weights = simplex_weights(self.rng, self.objectives)
        self._rewards = {}
        if self.vectors:
            scale = self._scale = FrontScale(self.vectors)
            self._scalars = sorted(chebyshev(scale(v), self.weights) for v in self.vectors)

    def mean(self, values: list[Any], virtual: int = 0) -> float:
        n = len(values) + virtual
        return sum(self.reward(v) for v in values) / n if n else 0.5

    # ---- proposing -------------------------------------------------------------------------
    def propose(self) -> Config | None:
        if self.objectives > 1:
            self.scalarise()
        while not self.root.exhausted:
            walk = _Walk(self)
            try:
                config = self.space.choose(walk)
            except (ConstraintError, ShapeError):  # these answers lead to no architecture
                self._close(walk.nodes, dead=True)
                continue
            except _Closed:  # nothing open below the last node after all: close it
                self._close(walk.nodes, dead=True)
                continue
            if walk.nodes[-1].allowed is None and walk.nodes[-1].exhausted:
                continue  # this configuration was proposed before: walk again
            self._last = (walk.nodes, walk.moves)
            return config
        return None

    def pending(self, cand: Candidate) -> None:
        nodes, moves = self._last
        self._pending[cand.key] = self._last
        for node in nodes:
            node.virtual += 1
        self._close(nodes)

    def repeated(self, cand: Candidate) -> None:
        nodes, moves = self._last
        self._close(nodes)
        if cand.key in self.results:  # evaluated before: learn its value again
            self._backup(nodes, moves, self.results[cand.key])

    def observe(self, cand: Candidate, value: Any) -> None:
        got = self._pending.pop(cand.key, None)
        if got is None:  # a result it did not propose: find its place in the tree
            got = self._trace(cand.config)
            if got is None:
                return
            self._close(got[0])
        else:
            for node in got[0]:
                node.virtual -= 1
        if value is not None and self.objectives > 1:
            self.vectors.append(value)
        elif value is not None:
            self.ranked.insert(bisect_left(self.ranked, value), value)
        self._backup(*got, value)

    def _backup(self, nodes: list[_Node], moves: list[Move], value: Any) -> None:
        for node in nodes:
            node.values.append(value)
        for m in moves:
            self.rave.setdefault(m, []).append(value)

    def _close(self, nodes: list[_Node], dead: bool = False) -> None:
        """The walk's last node is taken (or leads nowhere): close what is now exhausted."""
        leaf = nodes[-1]
        if leaf.endless and not dead:
            return
        leaf.exhausted = True
        for node in reversed(nodes[:-1]):
            if node.allowed is None or not all(
                    i in node.children and node.children[i].exhausted for i in node.allowed):
                return
            node.exhausted = True

    def _trace(self, config: Config) -> tuple[list[_Node], list[Move]] | None:
        """The tree path of a configuration (made if new); None if it is not in the space."""
        walk = _Walk(self, config)
        try:
            self.space.choose(walk)
        except (ArchDSLError, _Closed):
            return None
        return walk.nodes, walk.moves

    # ---- one decision ----------------------------------------------------------------------
    def select(self, node: _Node, name: str, options: list[int],
               weights: list[int] | None) -> tuple[int, bool]:
        """The option to take at `node`, and whether the walk has left the tree."""
        untried = [i for i in options if i not in node.children or not node.children[i].visits]
        if untried:
            best = max(self.mean(self.rave.get((name, i), [])) for i in untried)
            top = [i for i in untried if self.mean(self.rave.get((name, i), [])) == best]
            return top[self.rng.randrange(len(top))], True
        log_n = math.log(sum(node.children[i].visits for i in options))

        def score(i: int) -> float:
            child = node.children[i]
            n = child.visits
            q = self.mean(child.values, child.virtual)
            amaf = self.rave.get((name, i))
            if amaf and self.k > 0:
                b = math.sqrt(self.k / (3 * n + self.k))
                q = (1 - b) * q + b * self.mean(amaf)
            return q + self.c * math.sqrt(log_n / n)

        scores = [score(i) for i in options]
        best = max(scores)
        top = [i for i, s in zip(options, scores, strict=True) if s == best]
        return top[self.rng.randrange(len(top))], False


    def draw(self, name: str, options: list[int], weights: list[int] | None) -> int:
        """A rollout's option: drawn with probability in proportion to the architectures that
        follow it (where known) times exp(Q_rave / temperature) (move-average sampling)."""
        w = [(weights[i] if weights is not None else 1)
             * math.exp(self.smoothed(name, i) / self.temperature) for i in options]
        r = self.rng.random() * sum(w)
        for i, x in zip(options, w, strict=True):
            r -= x
            if r < 0:
                return i
        return options[-1]

    def smoothed(self, name: str, i: int) -> float:
        """Q_rave of a move, with one pseudo-result of 0.5 so that a move not tried is neutral."""
        values = self.rave.get((name, i), [])
        return (sum(self.reward(v) for v in values) + 0.5) / (len(values) + 1)


class _Closed(Exception):
    """The walk met a decision whose allowed options are all exhausted."""


class _Walk:
    """A `Space.choose` policy that walks the tree: MCTS selection, then random rollout; or,
    given a configuration, that configuration's own answers."""

    def __init__(self, mcts: MCTS, config: Config | None = None):
        self.mcts, self.config = mcts, config
        self.node = mcts.root
        self.nodes: list[_Node] = [mcts.root]
        self.moves: list[Move] = []
        self.rollout = False

    def __call__(self, d: Decision, weights: list[int] | None) -> Any:
        m, node = self.mcts, self.node
        size = m.bins if d.continuous else d.size
        if node.allowed is None:
            node.allowed = [i for i in range(size) if weights is None or weights[i] > 0]
        if self.config is not None:
            value = self.config.get(d.name)
            i = _bin(d, value, m.bins) if d.continuous else d.index_of_json(value)
        else:
            open_ = [i for i in node.allowed
                     if i not in node.children or not node.children[i].exhausted]
            if not open_:
                raise _Closed
            if self.rollout:
                i = m.draw(d.name, open_, weights)
            else:
                i, self.rollout = m.select(node, d.name, open_, weights)
        child = node.children.get(i)
        if child is None:
            child = node.children[i] = _Node()
            child.endless = node.endless or d.continuous
        self.node = child
        self.nodes.append(child)
        self.moves.append((d.name, i))
        if not d.continuous:
            return i
        if self.config is not None:
            return self.config[d.name]
        return _in_bin(d, i, m.bins, m.rng)


def _scale(d: Decision) -> tuple[float, float]:
    return (math.log(d.lo), math.log(d.hi)) if d.log else (float(d.lo), float(d.hi))


def _bin(d: Decision, value: Any, bins: int) -> int:
    lo, hi = _scale(d)
    x = math.log(value) if d.log else float(value)
    return min(bins - 1, max(0, int((x - lo) / (hi - lo) * bins))) if hi > lo else 0


def _in_bin(d: Decision, i: int, bins: int, rng: random.Random) -> float:
    lo, hi = _scale(d)
    x = lo + (hi - lo) * (i + rng.random()) / bins
    x = math.exp(x) if d.log else x
    return min(max(x, d.lo), d.hi)
