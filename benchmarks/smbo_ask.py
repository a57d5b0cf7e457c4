"""How long SMBO's `ask` takes once a search has some results.

    nice -n 10 python benchmarks/smbo_ask.py [--told N] [--asks K] [--seed S] [--spaces a,b]

For each space, an SMBO search (default settings) is told N results (default 100), then asks
K more times (default 20), each ask told before the next; printed is the mean CPU time of those
K asks (of this process: steadier than the wall clock on a shared machine), and how much of it
went to encoding new candidates (build, plan and features), fitting the forest, and the
architecture keys (canonical hashes).

"cold" is one search in a fresh process: the per-configuration memos hold only what this
search met, which is what a study gets. "warm" is the same search (same seed, same results)
run again in the same process, so that every candidate's encoding and key are cached: what
the runs of benchmarks/nb201_search.py get after its warm-up.

The spaces: examples/nb201.arch (told NAS-Bench-201's c10_valid_12), examples/digits.arch
(with its `require params`) and a small GNN-like space (two 4-node cells whose nodes choose
their inputs and operation); the last two are told a made-up result (a fixed pseudo-random
number per configuration), as nothing is trained. Exits with status 1 and a message where a
space or the NAS-Bench-201 table cannot be read.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import archdsl
import archdsl.search.smbo as smbo
from archdsl.errors import ArchDSLError
from archdsl.search import make_searcher
from archdsl.search.base import Searcher

ROOT = Path(__file__).resolve().parent.parent

GNN = """
input x: [32]
param w = choice(16, 32, 64)
op node_op(c) = one_of {
    lin:  linear(c) -> relu
  | mlp:  linear(c) -> gelu -> linear(c)
  | skip: identity
  | none: zero
}
cell gnn(c) {
    input n0
    n1 = n0 -> node_op(c)
    n2 = some(n0, n1) -> node_op(c)
    n3 = some(n0, n1, n2) -> node_op(c)
    n4 = some(n1, n2, n3) -> node_op(c)
    return some(n2, n3, n4)
}
network { x -> linear(w) -> gnn(w) -> gnn(w) -> linear(2) }
"""

SPACES = ["nb201", "digits", "gnn"]


class Timers:
    """Seconds spent in the parts of `ask`, by wrapping them."""

    def __init__(self) -> None:
        self.spent = {"encode": 0.0, "forest": 0.0, "key": 0.0}
        self.on = False

    def wrap(self, part: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return f(*args, **kwargs)
            t0 = time.process_time()
            try:
                return f(*args, **kwargs)
            finally:
                self.spent[part] += time.process_time() - t0
        return timed


TIMERS = Timers()
smbo.SMBO._encode_new = TIMERS.wrap("encode", smbo.SMBO._encode_new)  # type: ignore[method-assign]
smbo._forest = TIMERS.wrap("forest", smbo._forest)
Searcher.key = TIMERS.wrap("key", Searcher.key)  # type: ignore[method-assign]


def load(name: str) -> tuple[archdsl.Space, Callable[[dict], float]]:
    """A space and the result its configurations are told."""
    if name == "nb201":
        from archdsl.evaluators.nb201 import table

        rows = table()
        return (archdsl.load(ROOT / "examples" / "nb201.arch"),
                lambda c: rows.row(c)["c10_valid_12"])
    space = (archdsl.load(ROOT / "examples" / "digits.arch") if name == "digits"
             else archdsl.loads(GNN, file="gnn.arch"))
    return space, lambda c: random.Random(json.dumps(c, sort_keys=True)).random()


def measure(space: archdsl.Space, score: Callable[[dict], float], told: int, asks: int,
            seed: int) -> dict[str, float]:
    """ms per ask (and per part) over `asks` asks after `told` results."""
    s = make_searcher("smbo", space, seed=seed)
    for _ in range(told):
        cand = s.ask()
        assert cand is not None
        s.tell(cand, score(cand.config))
    TIMERS.spent = dict.fromkeys(TIMERS.spent, 0.0)
    spent = 0.0
    for _ in range(asks):
        TIMERS.on = True
        t0 = time.process_time()
        cand = s.ask()
        spent += time.process_time() - t0
        TIMERS.on = False
        assert cand is not None
        s.tell(cand, score(cand.config))
    return {"ask": 1000 * spent / asks, **{k: 1000 * v / asks for k, v in TIMERS.spent.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--told", type=int, default=100, help="results told first (default 100)")
    ap.add_argument("--asks", type=int, default=20, help="asks timed (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spaces", default=",".join(SPACES), help="of " + ", ".join(SPACES))
    args = ap.parse_args()
    names = [n.strip() for n in args.spaces.split(",") if n.strip()]
    if any(n not in SPACES for n in names) or args.told < 0 or args.asks < 1:
        print(f"error: spaces are {', '.join(SPACES)}; need --told >= 0 and --asks >= 1",
              file=sys.stderr)
        return 1
    print(f"SMBO ask after {args.told} results told, mean of {args.asks} asks, seed {args.seed} "
          "(CPU ms; encode, forest, key: parts of the ask)")
    print(f"{'space':<8} {'cold':>8} {'encode':>8} {'forest':>8} {'key':>8} {'warm':>8} "
          f"{'forest':>8}")
    for name in names:
        try:
            space, score = load(name)
        except ArchDSLError as e:
            print(e.format(), file=sys.stderr)
            return 1
        cold = measure(space, score, args.told, args.asks, args.seed)
        warm = measure(space, score, args.told, args.asks, args.seed)
        print(f"{name:<8} {cold['ask']:>8.1f} {cold['encode']:>8.1f} {cold['forest']:>8.1f} "
              f"{cold['key']:>8.1f} {warm['ask']:>8.1f} {warm['forest']:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
