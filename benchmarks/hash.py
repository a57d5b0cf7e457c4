"""The canonical architecture hash on NAS-Bench-201: per network, over the whole space, and
through the command line.

    python benchmarks/hash.py [--networks N] [--workers W] [--skip-warmup] [--skip-cli] [--json]

Figures, each the best of a few runs (the machine may be shared):

- hash: milliseconds per network for `canonical_hash(arch.graph)` over N networks of
  examples/nb201.arch (about 150 nodes each; uniform samples, seed 0, built before timing),
  beside the time to build each network (`space.materialize`);
- warm-up: seconds for the keys of all 15,625 configurations (`Searcher.key`: build the network
  and hash it) in W worker processes, in chunks of 500, the way `benchmarks/nb201_search.py`
  caches them before its runs (its searchers other than SMBO need nothing else), and the CPU
  seconds per worker (the wall time of an otherwise idle machine);
- sample: wall seconds of `archdsl sample examples/nb201.arch -n 1000 --json` in a fresh
  process (start-up and import included; each sample is built, planned and hashed).

Targets (issue 12): hash <= 1 ms per network, warm-up <= 20 s on 2 cores, sample <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import archdsl
from archdsl.graph import canonical_hash
from archdsl.search import make_searcher

SPACE = Path(__file__).resolve().parent.parent / "examples" / "nb201.arch"
_space: archdsl.Space | None = None  # set before the workers fork
_configs: list[dict] = []


def per_network(n: int, rounds: int = 5) -> dict[str, float]:
    """Milliseconds to build, and to hash, one network (best round of `rounds`)."""
    space = archdsl.load(SPACE)
    configs = space.samples(n, seed=0)
    t0 = time.perf_counter()
    archs = [space.materialize(c) for c in configs]
    build = (time.perf_counter() - t0) / n
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for a in archs:
            canonical_hash(a.graph)
        best = min(best, (time.perf_counter() - t0) / n)
    nodes = sum(a.graph.number_of_nodes() for a in archs) / n
    return {"hash_ms": best * 1e3, "build_ms": build * 1e3, "nodes": nodes}


def _keys(indices: list[int]) -> tuple[int, float]:
    assert _space is not None
    t0 = time.process_time()
    searcher = make_searcher("random", _space)
    for i in indices:
        searcher.key(_configs[i])
    return len(indices), time.process_time() - t0


def warm_up(workers: int) -> tuple[float, float]:
    """Wall seconds for the key of every configuration in `workers` processes, and the CPU
    seconds each worker spent on average (what the wall time would be on an idle machine)."""
    global _space, _configs
    _space = archdsl.load(SPACE)
    _configs = list(_space.enumerate())
    n = len(_configs)
    chunks = [list(range(i, min(i + 500, n))) for i in range(0, n, 500)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(workers) as pool:
        got = list(pool.imap_unordered(_keys, chunks))
    assert sum(k for k, _ in got) == n
    return time.perf_counter() - t0, sum(cpu for _, cpu in got) / workers


def sample_cli(rounds: int = 3) -> float:
    """Wall seconds of `archdsl sample examples/nb201.arch -n 1000 --json` (best of rounds)."""
    cmd = [sys.executable, "-c", "import sys; from archdsl.cli import main; sys.exit(main())",
           "sample", str(SPACE), "-n", "1000", "--json"]
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        best = min(best, time.perf_counter() - t0)
        assert len(out.splitlines()) == 1000
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=500)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-warmup", action="store_true")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    figures: dict[str, float] = dict(per_network(args.networks))
    if not args.skip_warmup:
        figures["warmup_s"], figures["warmup_cpu_s"] = warm_up(args.workers)
    if not args.skip_cli:
        figures["sample_1000_json_s"] = sample_cli()
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"nb201 network ({figures['nodes']:.0f} nodes on average, {args.networks} networks): "
          f"hash {figures['hash_ms']:.3f} ms (target <= 1 ms), "
          f"build {figures['build_ms']:.2f} ms")
    if "warmup_s" in figures:
        print(f"keys of all 15,625 configurations, {args.workers} worker(s): "
              f"{figures['warmup_s']:.1f} s (target <= 20 s); CPU {figures['warmup_cpu_s']:.1f} s "
              f"per worker")
    if "sample_1000_json_s" in figures:
        print(f"archdsl sample examples/nb201.arch -n 1000 --json: "
              f"{figures['sample_1000_json_s']:.2f} s (target <= 3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
