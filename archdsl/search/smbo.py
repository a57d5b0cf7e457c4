"""Sequential model-based optimisation: a random-forest surrogate and expected improvement;
with several objectives, ParEGO's random scalarisations.

Imports: numpy; scikit-learn and scipy when a model is first fitted; archdsl.errors,
archdsl.gc_pause, archdsl.graph (types), archdsl.space, and base.py, scalarise.py and
smbo_features.py (the encoding) of this package."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ArchDSLError
from ..gc_pause import no_gc
from ..graph import Architecture
from ..space import Config, Space
from .base import Candidate, Searcher, config_text, space_cache
from .scalarise import scalarised, simplex_weights
from .smbo_features import encode

__all__ = ["SMBO", "encode"]

Item = tuple[str, Config]  # a configuration and its JSON text (`config_text`)
# architectures of the new candidates kept for their keys, the last built up to this many
# layers in all (about 25 of nb201.arch, 5 MB): a third of the proposals are among them, and
# their keys then need no second build
KEPT_LAYERS = 4000


class SMBO(Searcher):
    """Sequential model-based optimisation (SMAC-like).

    The first `initial` proposals are the space's default configuration (every decision at
    its default: the author's choice, or the first option, and the middle of a continuous
    range), then uniform samples of the space. After that, every proposal
    refits a surrogate: a random forest (`trees` trees of scikit-learn, each on a bootstrap
    sample, half the features tried at each split) over `encode(config)`, fitted to the ranks
    of the results (so the objective's scale and outliers do not matter; failed trials rank
    lowest). Its mean and the spread of its trees give expected improvement over the best
    rank seen, which is maximised over a pool of about `candidates` configurations: half
    uniform samples (exploration anywhere; `renew` of them drawn afresh at each refit, the
    rest kept from before), half mutations (`Space.mutate`, one or two decisions) of the best
    `parents` configurations so far (refinement near the best; made once per parent).
    Configurations proposed or told before are left out of the pool. The pool's ranking is
    kept for proposals made before the next result (several outstanding proposals take the
    next best candidates). Encodings are cached per space and configuration.

    Several objectives (ParEGO, Knowles 2006): every proposal draws a weight vector uniformly
    on the simplex (`scalarise.simplex_weights`) and fits the forest, ranks the parents and
    acquires on the augmented Chebyshev scalarisation of the results (`scalarise.scalarised`:
    each objective normalised by the Pareto front of the results); so each proposal aims at
    another part of the front (a proposal of a known architecture, not handed out, is
    followed by the next of the same ranking). A parent's mutations are made once and kept
    (the weights change the parents at every proposal: a parent comes back often).

    Defaults: initial 10, candidates 128, renew 4, parents 5, trees 16 (see
    docs/searchers.md).
    """

    name = "smbo"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 initial: int = 10, candidates: int = 128, renew: int = 4, parents: int = 5,
                 trees: int = 16, *, objectives: int = 1):
        super().__init__(space, seed, repeats, objectives=objectives)
        if initial < 1 or candidates < 2 or parents < 1 or trees < 2:
            raise ArchDSLError("smbo: need initial >= 1, candidates >= 2, parents >= 1, "
                               "trees >= 2")
        if renew < 1:
            raise ArchDSLError("smbo: need renew >= 1")
        self.initial, self.candidates, self.renew, self.parents, self.trees = \
            initial, candidates, renew, parents, trees
        self._codes: dict[str, dict[str, float]] = space_cache(space, "smbo-encode")
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # text -> columns, values
        self._built: dict[str, Architecture] = {}  # text -> architecture, the last built
        self._layers = 0  # the nodes of the architectures in _built
        self.columns: dict[str, int] = {}  # feature name -> column
        self.data: list[tuple[Config, Any]] = []  # every result told (a float or a tuple)
        self._told: list[Item] = []  # the same configurations, with their JSON text
        self.taken: set[str] = set()  # configurations proposed or told (JSON text)
        self.queue: list[Item] = []  # the pool, best first, for the current model
        self.reserve: list[Item] = []  # uniform samples kept in the pool
        self.children: dict[str, list[Item]] = {}  # parent (JSON text) -> its mutations
        self.weights: tuple[float, ...] | None = None  # several objectives: the last drawn
        self.fresh = False  # the queue was ranked with every result told so far
        self.started = False  # the default configuration was proposed

    # ---- features -------------------------------------------------------------------------
    def encode(self, config: Config, text: str | None = None) -> dict[str, float]:
        """`encode(space, config)`, cached per space and configuration (`text` is the
        configuration's `config_text`, where the caller has it)."""
        if text is None:
            text = config_text(config)
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = self._encode_new(config, text)
        return code

    def _encode_new(self, config: Config, text: str) -> dict[str, float]:
        """The encoding of a configuration met for the first time; its architecture is kept
        among the last built (`KEPT_LAYERS`), for its key where it is proposed."""
        arch = self.space.materialize(config)
        code = encode(self.space, config, arch)
        built = self._built
        built[text] = arch
        self._layers += len(arch.graph)
        while self._layers > KEPT_LAYERS and built:
            self._layers -= len(built.pop(next(iter(built))).graph)
        return code

    def architecture(self, config: Config, text: str) -> Architecture:
        arch = self._built.pop(text, None)
        if arch is not None:
            self._layers -= len(arch.graph)
            return arch
        with no_gc():  # a build makes many objects and no cycles
            return self.space.materialize(config)

    def matrix(self, configs: list[Config]) -> np.ndarray:
        """The feature matrix of some configurations (columns in order of first appearance)."""
        return self._matrix([(config_text(c), c) for c in configs])

    def _matrix(self, items: list[Item]) -> np.ndarray:
        rows = []
        for text, config in items:
            row = self._rows.get(text)
            if row is None:  # columns are only ever added: a row's columns stay as they are
                code = self.encode(config, text)
                cols = [self.columns.setdefault(name, len(self.columns)) for name in code]
                row = self._rows[text] = (np.array(cols, dtype=np.intp),
                                          np.array(list(code.values()), dtype=np.float32))
            rows.append(row)
        x = np.zeros((len(rows), len(self.columns)), dtype=np.float32)
        if rows:
            lengths = [len(cols) for cols, _ in rows]
            at = np.repeat(np.arange(len(rows)), lengths)
            x[at, np.concatenate([cols for cols, _ in rows])] = \
                np.concatenate([values for _, values in rows])
        return x

    # ---- the contract ---------------------------------------------------------------------
    def propose(self) -> Config | None:
        if not self.started:
            self.started = True
            try:
                return self.space.default()
            except ArchDSLError:  # no default satisfies the constraints: start anywhere
                pass
        if len(self.data) + len(self.outstanding) < self.initial or not self.scored():
            return self.space.sample(self.rng)
        if not self.fresh or not self.queue:
            with no_gc():  # the new candidates' graphs: many objects, no cycles to collect
                self.queue = self.rank()
            self.fresh = True
        while self.queue:
            text, config = self.queue.pop(0)
            if text not in self.taken:
                return config
        return self.space.sample(self.rng)  # every candidate taken: a tiny space

    def pending(self, cand: Candidate) -> None:
        self.taken.add(config_text(cand.config))
        if self.objectives > 1:
            self.fresh = False  # ParEGO: the next candidate handed out draws other weights

    def repeated(self, cand: Candidate) -> None:
        self.taken.add(config_text(cand.config))

    def observe(self, cand: Candidate, value: Any) -> None:
        text = config_text(cand.config)
        self.taken.add(text)
        self.data.append((cand.config, value))
        self._told.append((text, cand.config))
        self.fresh = False

    # ---- the model ------------------------------------------------------------------------
    def scored(self) -> bool:
        """Enough successful results to fit a model (two different values)."""
        return len({v for _, v in self.data if v is not None}) >= 2

    def rank(self) -> list[Item]:
        """The candidate pool, highest expected improvement first."""
        from scipy.special import ndtr

        scores = self.scores()
        pool = self.pool(scores)
        if not pool:
            return []
        y = _ranks(scores)
        x = self._matrix(self._told)
        xc = self._matrix(pool)
        x = np.pad(x, ((0, 0), (0, xc.shape[1] - x.shape[1])))
        preds = _forest(x, y, xc, self.trees, self.rng.randrange(2**31))
        mu, sd = preds.mean(axis=0), preds.std(axis=0) + 1e-9
        z = (mu - y.max()) / sd
        ei = (mu - y.max()) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        order = np.lexsort((-mu, -ei))  # highest EI; ties (EI 0) by the higher mean
        return [pool[i] for i in order]

    def scores(self) -> list[float | None]:
        """What the model learns of each result told: its value, or with several objectives
        its augmented Chebyshev scalarisation under weights drawn now (None: failed)."""
        if self.objectives == 1:
            return [v for _, v in self.data]
        self.weights = simplex_weights(self.rng, self.objectives)
        got = iter(scalarised([v for _, v in self.data if v is not None], self.weights))
        return [None if v is None else next(got) for _, v in self.data]

    def pool(self, scores: list[float | None] | None = None) -> list[Item]:
        """The candidates, none taken before: uniform samples (`candidates / 2` of them,
        `renew` drawn afresh at each refit, more where proposals took some) and mutations of
        the best `parents` configurations by `scores` (default: `scores()`) (made when a
        configuration becomes a parent)."""
        if scores is None:
            scores = self.scores()
        rng, space, half = self.rng, self.space, self.candidates // 2
        taken = self.taken
        self.reserve = [item for item in self.reserve if item[0] not in taken]
        for _ in range(max(half - len(self.reserve), self.renew)):
            self.reserve.append(self.fresh_code(space.sample(rng)))
        self.reserve = self.reserve[-half:]
        best = sorted((i for i, v in enumerate(scores) if v is not None),
                      key=lambda i: -scores[i])  # type: ignore[operator]
        parents = {self._told[i][0]: self._told[i][1] for i in best[:self.parents]}
        each = max(1, half // self.parents)
        if self.objectives == 1:
            self.children = {t: kids for t, kids in self.children.items() if t in parents}
            for text, parent in parents.items():
                if text not in self.children:
                    self.children[text] = self.mutations(parent, each)
            kids = [item for items in self.children.values() for item in items]
        else:  # every parent's kept: other weights may make it a parent again
            for text, parent in parents.items():
                if text not in self.children:
                    self.children[text] = self.mutations(parent, each)
            kids = [item for t in parents for item in self.children[t]]
        pool, seen = [], set(taken)
        for item in self.reserve + kids:
            if item[0] not in seen:
                seen.add(item[0])
                pool.append(item)
        return pool

    def mutations(self, parent: Config, n: int) -> list[Item]:
        """n neighbours of a configuration: one decision changed, or (every other) two."""
        out = []
        for j in range(n):
            try:
                child = self.space.mutate(parent, self.rng)
                if j % 2:
                    child = self.space.mutate(child, self.rng)
            except ArchDSLError:  # no valid neighbour
                break
            out.append(self.fresh_code(child))
        return out

    def fresh_code(self, config: Config) -> Item:
        """Encode a configuration just made: in a space with params/flops constraints the
        architecture the space has just built and checked is reused."""
        text = config_text(config)
        self.encode(config, text)
        return text, config


def _forest(x: np.ndarray, y: np.ndarray, xc: np.ndarray, trees: int,
            seed: int) -> np.ndarray:
    """Predictions for `xc` of each tree of a random forest fitted to (x, y): regression trees
    of scikit-learn, each on a bootstrap sample, half the features tried at each split. The
    trees are fitted one by one rather than through RandomForestRegressor, whose overhead is
    several times the fitting on a few hundred rows."""
    rng = np.random.default_rng(seed)
    n = len(y)
    preds = np.empty((trees, len(xc)))
    fit = _fitter()
    state = np.random.RandomState()  # reseeded per tree: as RandomState(seed), 40x cheaper
    for t in range(trees):
        weight = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        state.seed(int(rng.integers(2**31)))
        preds[t] = fit(x, y, weight, state).predict(xc).ravel()
    return preds


# x, y, weights, the tree's random state (seeded) -> the fitted sklearn Tree
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.RandomState], Any]


@functools.cache
def _fitter() -> Fit:
    """How `_forest` fits one tree (returning scikit-learn's `Tree`): DecisionTreeRegressor's
    own builder called directly, which skips the estimator's checks and set-up (12 -> 6 ms CPU
    for a refit with 100 results), where this scikit-learn's builder gives the same tree as
    the estimator on a small problem; else the estimator."""
    def estimator(x: np.ndarray, y: np.ndarray, weight: np.ndarray,
                  state: np.random.RandomState) -> Any:
        from sklearn import config_context
        from sklearn.tree import DecisionTreeRegressor

        with config_context(assume_finite=True, skip_parameter_validation=True):
            tree = DecisionTreeRegressor(max_features=0.5, random_state=state)
            tree.fit(x, y, sample_weight=weight, check_input=False)
        return tree.tree_

    def builder(x: np.ndarray, y: np.ndarray, weight: np.ndarray,
                state: np.random.RandomState) -> Any:
        from sklearn.tree._classes import CRITERIA_REG, DENSE_SPLITTERS
        from sklearn.tree._tree import DepthFirstTreeBuilder, Tree

        n, features = x.shape
        splitter = DENSE_SPLITTERS["best"](CRITERIA_REG["squared_error"](1, n),
                                           max(1, int(0.5 * features)), 1, 0.0, state, None)
        tree = Tree(features, np.ones(1, dtype=np.intp), 1)
        DepthFirstTreeBuilder(splitter, 2, 1, 0.0, np.iinfo(np.int32).max, 0.0).build(
            tree, x, np.ascontiguousarray(y, dtype=np.float64).reshape(-1, 1), weight, None)
        return tree

    probe = np.random.default_rng(0)
    x = probe.integers(0, 3, (40, 6)).astype(np.float32)
    y, xc = probe.random(40), probe.random((20, 6)).astype(np.float32)
    weight = np.bincount(probe.integers(0, 40, 40), minlength=40).astype(np.float64)
    try:
        same = np.array_equal(builder(x, y, weight, np.random.RandomState(7)).predict(xc),
                              estimator(x, y, weight, np.random.RandomState(7)).predict(xc))
    except Exception:  # another scikit-learn: its internals differ
        same = False
    return builder if same else estimator


def _ranks(values: list[float | None]) -> np.ndarray:
    """Each value's rank among the successful ones, scaled to [0, 1]; a failure gets 0 and
    the successes (0, 1]."""
    at = [i for i, v in enumerate(values) if v is not None]
    out = np.zeros(len(values))
    if at:
        got = np.array([values[i] for i in at])
        ok = np.sort(got)
        lo = np.searchsorted(ok, got, side="left")
        hi = np.searchsorted(ok, got, side="right")
        out[at] = (lo + hi + 1) / (2 * len(at))
    return out
