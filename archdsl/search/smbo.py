"""Sequential model-based optimisation: a random-forest surrogate and expected improvement."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from ..errors import ArchDSLError
from ..graph import canonical_graph
from ..space import Config, Space
from .base import Candidate, Searcher, config_text, space_cache

__all__ = ["SMBO", "encode"]


def encode(space: Space, config: Config) -> dict[str, float]:
    """Features of a configuration, all known without training it.

    The decisions: one column per option of a discrete decision (1 where taken), plus the
    option's position scaled to [0, 1] where the options are numbers in order; a continuous
    decision's value scaled to [0, 1] (on its log scale where it has one). Decisions the
    configuration does not reach are 0. The architecture: how many layers of each operation
    (with its kernel size, where it has one) the canonical graph holds (the graph with zero
    branches, dead nodes and identities dropped, so that an operation on a path that is never
    used does not count), its depth (longest path) and size, and log10 of the parameter count
    and the FLOPs (static shapes: -1 where the shapes do not fit)."""
    f: dict[str, float] = {}
    for d in space.decisions(config):
        value = config[d.name]
        if d.continuous:
            lo, hi = (math.log(d.lo), math.log(d.hi)) if d.log else (d.lo, d.hi)
            x = math.log(value) if d.log else value
            f[d.name] = (x - lo) / (hi - lo) if hi > lo else 0.0
            continue
        if d.size < 2:
            continue
        i = d.index_of_json(value)
        f[f"{d.name}#{i}"] = 1.0
        labels = d.labels()
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels):
            f[d.name] = i / (d.size - 1)
    arch = space.materialize(config)
    g = canonical_graph(arch.graph)
    for _, a in g.nodes(data=True):
        if a["op"] in ("input", "output"):
            continue
        k = a.get("args", {}).get("kernel")
        name = f"op:{a['op']}" + (f"/k{k}" if k is not None else "")
        f[name] = f.get(name, 0.0) + 1.0
    f["graph:depth"] = float(nx.dag_longest_path_length(g))
    f["graph:layers"] = float(g.number_of_nodes())
    try:
        m = space.metrics(arch)
        f["graph:log_params"] = math.log10(1 + m["params"])
        f["graph:log_flops"] = math.log10(1 + m["flops"])
    except ArchDSLError:
        f["graph:log_params"] = f["graph:log_flops"] = -1.0
    return f


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
    uniform samples (exploration anywhere; a quarter of them drawn afresh at each refit, the
    rest kept from before), half mutations (`Space.mutate`, one or two decisions) of the best
    `parents` configurations so far (refinement near the best; made once per parent).
    Configurations proposed or told before are left out of the pool. The pool's ranking is
    kept for proposals made before the next result (several outstanding proposals take the
    next best candidates). Encodings are cached per space and configuration.

    Defaults: initial 10, candidates 256, parents 5, trees 24 (see docs/searchers.md).
    """

    name = "smbo"

    def __init__(self, space: Space, seed: int = 0, repeats: bool = False,
                 initial: int = 10, candidates: int = 256, parents: int = 5, trees: int = 24):
        super().__init__(space, seed, repeats)
        if initial < 1 or candidates < 2 or parents < 1 or trees < 2:
            raise ArchDSLError("smbo: need initial >= 1, candidates >= 2, parents >= 1, "
                               "trees >= 2")
        self.initial, self.candidates, self.parents, self.trees = \
            initial, candidates, parents, trees
        self._codes: dict[str, dict[str, float]] = space_cache(space, "smbo-encode")
        self.columns: dict[str, int] = {}  # feature name -> column
        self.data: list[tuple[Config, float | None]] = []  # every result told
        self.taken: set[str] = set()  # configurations proposed or told (JSON text)
        self.queue: list[Config] = []  # the pool, best first, for the current model
        self.reserve: list[Config] = []  # uniform samples kept in the pool
        self.children: dict[str, list[Config]] = {}  # parent (JSON text) -> its mutations
        self.fresh = False  # the queue was ranked with every result told so far
        self.started = False  # the default configuration was proposed

    # ---- features -------------------------------------------------------------------------
    def encode(self, config: Config) -> dict[str, float]:
        text = config_text(config)
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = encode(self.space, config)
        return code

    def matrix(self, configs: list[Config]) -> np.ndarray:
        codes = [self.encode(c) for c in configs]
        for code in codes:
            for name in code:
                self.columns.setdefault(name, len(self.columns))
        x = np.zeros((len(codes), len(self.columns)), dtype=np.float32)
        for row, code in zip(x, codes, strict=True):
            for name, v in code.items():
                row[self.columns[name]] = v
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
            self.queue = self.rank()
            self.fresh = True
        while self.queue:
            config = self.queue.pop(0)
            if config_text(config) not in self.taken:
                return config
        return self.space.sample(self.rng)  # every candidate taken: a tiny space

    def pending(self, cand: Candidate) -> None:
        self.taken.add(config_text(cand.config))

    def repeated(self, cand: Candidate) -> None:
        self.taken.add(config_text(cand.config))

    def observe(self, cand: Candidate, value: float | None) -> None:
        self.taken.add(config_text(cand.config))
        self.data.append((cand.config, value))
        self.fresh = False

    # ---- the model ------------------------------------------------------------------------
    def scored(self) -> bool:
        """Enough successful results to fit a model (two different values)."""
        return len({v for _, v in self.data if v is not None}) >= 2

    def rank(self) -> list[Config]:
        """The candidate pool, highest expected improvement first."""
        from scipy.special import ndtr

        pool = self.pool()
        if not pool:
            return []
        y = _ranks([v for _, v in self.data])
        x = self.matrix([c for c, _ in self.data])
        xc = self.matrix(pool)
        x = np.pad(x, ((0, 0), (0, xc.shape[1] - x.shape[1])))
        preds = _forest(x, y, xc, self.trees, self.rng.randrange(2**31))
        mu, sd = preds.mean(axis=0), preds.std(axis=0) + 1e-9
        z = (mu - y.max()) / sd
        ei = (mu - y.max()) * ndtr(z) + sd * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        order = np.lexsort((-mu, -ei))  # highest EI; ties (EI 0) by the higher mean
        return [pool[i] for i in order]

    def pool(self) -> list[Config]:
        """The candidates, none taken before: uniform samples (`candidates / 2` of them, a
        quarter renewed at each refit) and mutations of the best `parents` configurations
        (made when a configuration becomes a parent)."""
        rng, space, half = self.rng, self.space, self.candidates // 2
        taken = self.taken
        self.reserve = [c for c in self.reserve if config_text(c) not in taken]
        for _ in range(max(half - len(self.reserve), half // 4, 1)):
            self.reserve.append(self.fresh_code(space.sample(rng)))
        self.reserve = self.reserve[-half:]
        best = sorted((d for d in self.data if d[1] is not None), key=lambda d: -d[1])
        parents = {config_text(c): c for c, _ in best[:self.parents]}
        self.children = {t: kids for t, kids in self.children.items() if t in parents}
        for text, parent in parents.items():
            if text not in self.children:
                self.children[text] = self.mutations(parent, max(1, half // self.parents))
        pool, seen = [], set(taken)
        for c in self.reserve + [c for kids in self.children.values() for c in kids]:
            text = config_text(c)
            if text not in seen:
                seen.add(text)
                pool.append(c)
        return pool

    def mutations(self, parent: Config, n: int) -> list[Config]:
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

    def fresh_code(self, config: Config) -> Config:
        """Encode a configuration just made: in a space with params/flops constraints the
        architecture the space has just built and checked is reused."""
        self.encode(config)
        return config


def _forest(x: np.ndarray, y: np.ndarray, xc: np.ndarray, trees: int,
            seed: int) -> np.ndarray:
    """Predictions for `xc` of each tree of a random forest fitted to (x, y): regression trees
    of scikit-learn, each on a bootstrap sample, half the features tried at each split. The
    trees are fitted one by one rather than through RandomForestRegressor, whose overhead is
    several times the fitting on a few hundred rows."""
    from sklearn import config_context
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(seed)
    n = len(y)
    preds = np.empty((trees, len(xc)))
    with config_context(assume_finite=True, skip_parameter_validation=True):
        for t in range(trees):
            weight = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
            tree = DecisionTreeRegressor(max_features=0.5, random_state=int(rng.integers(2**31)))
            tree.fit(x, y, sample_weight=weight, check_input=False)
            preds[t] = tree.tree_.predict(xc).ravel()
    return preds


def _ranks(values: list[float | None]) -> np.ndarray:
    """Each value's rank among the successful ones, scaled to [0, 1]; a failure gets 0 and
    the successes (0, 1]."""
    ok = sorted(v for v in values if v is not None)
    n = len(ok)
    out = []
    for v in values:
        if v is None:
            out.append(0.0)
        else:
            lo = np.searchsorted(ok, v, side="left")
            hi = np.searchsorted(ok, v, side="right")
            out.append((lo + hi + 1) / (2 * n) if n else 0.0)
    return np.array(out)
