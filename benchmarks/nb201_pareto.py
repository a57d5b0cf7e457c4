"""Multi-objective search on NAS-Bench-201: maximize c10_valid_12, minimize params.

    nice -n 10 python benchmarks/nb201_pareto.py [--seeds N] [--evals E] [--searchers a,b,...]
                                                 [--workers W] [--json]

Over examples/nb201.arch, each searcher is made with two objectives and run once per seed
through ask/tell only, for E evaluations (default 100): it is told (c10_valid_12, -params_m)
of each cell it proposes, both from the NAS-Bench-201 table (params_m: the table's parameter
count, in millions). The hypervolume of the points it evaluated is measured against the
reference point (the table's worst c10_valid_12, its largest params_m): the nadir of the whole
table, so every cell counts. Printed per searcher: the mean and std of that hypervolume over
the seeds, as a share of the true front's (the front of all 15,625 cells), and a one-sided
Mann-Whitney U test against random search (scipy). The issue's target: NSGA-II (evolution) and
ParEGO (smbo) above random with p < 0.01, the best of them at >= 98% of the true front's
hypervolume.

Before the runs, the keys and encodings the searchers cache for each configuration are
computed once for all 15,625 configurations, as benchmarks/nb201_search.py does.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import nb201_search as base

import archdsl
from archdsl.errors import ArchDSLError
from archdsl.evaluators.nb201 import table
from archdsl.pareto import hypervolume, pareto_front
from archdsl.search import SEARCHERS, make_searcher
from archdsl.search.base import space_memos

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "examples" / "nb201.arch"
_reference: tuple[float, float] = (0.0, 0.0)


def _point(row: dict[str, Any]) -> tuple[float, float]:
    return (float(row["c10_valid_12"]), -float(row["params_m"]))


def run(name: str, seed: int, evals: int) -> dict[str, Any]:
    """One search of `evals` evaluations: the hypervolume it reaches."""
    assert base._space is not None
    rows = table()
    t0 = time.process_time()
    s = make_searcher(name, base._space, seed=seed, objectives=2)
    points: list[tuple[float, float]] = []
    while len(points) < evals:
        cand = s.ask()
        if cand is None:
            break
        p = _point(rows.row(cand.config))
        s.tell(cand, p)
        points.append(p)
    return {"searcher": name, "seed": seed, "evaluations": len(points),
            "hypervolume": hypervolume(points, _reference),
            "front": len(pareto_front(points)), "cpu_s": time.process_time() - t0}


def _run(args: tuple[str, int, int]) -> dict[str, Any]:
    return run(*args)


def main() -> int:
    global _reference
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=30, help="runs per searcher (default 30)")
    ap.add_argument("--evals", type=int, default=100, help="evaluations per run (default 100)")
    ap.add_argument("--searchers", default="random,evolution,smbo,mcts",
                    help="comma-separated names (default: random, evolution, smbo, mcts)")
    ap.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--json", action="store_true", help="print the figures and runs as JSON")
    args = ap.parse_args()
    names = [n.strip() for n in args.searchers.split(",") if n.strip()]
    if any(n not in SEARCHERS for n in names) or "random" not in names:
        print(f"error: searchers must be among {', '.join(SEARCHERS)} and include random",
              file=sys.stderr)
        return 1
    try:
        rows = table()
        base._space = archdsl.load(SPACE)
    except ArchDSLError as e:
        print(e.format(), file=sys.stderr)
        return 1
    every = [_point(r) for r in rows.rows.values()]
    _reference = (min(p[0] for p in every), min(p[1] for p in every))
    true_hv = hypervolume(every, _reference)

    t0 = time.perf_counter()
    ctx = mp.get_context("fork")
    n = len(base._space_configs())
    chunks = [(list(range(i, min(i + 500, n))), names) for i in range(0, n, 500)]
    print(f"caching keys and encodings of {n:,} configurations", file=sys.stderr)
    with ctx.Pool(args.workers) as pool:
        for got in pool.imap_unordered(base._warm, chunks):
            for memo, values in got.items():
                space_memos(base._space).setdefault(memo, {}).update(values)
    tasks = [(name, seed, args.evals) for name in names for seed in range(args.seeds)]
    runs: list[dict[str, Any]] = []
    with ctx.Pool(args.workers) as pool:
        for r in pool.imap(_run, tasks):
            runs.append(r)
    from scipy.stats import mannwhitneyu

    hv = {name: [r["hypervolume"] for r in runs if r["searcher"] == name] for name in names}
    stats: dict[str, Any] = {}
    for name in names:
        xs = hv[name]
        p = None if name == "random" else float(
            mannwhitneyu(xs, hv["random"], alternative="greater").pvalue)
        stats[name] = {"mean": statistics.fmean(xs),
                       "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
                       "share_of_true": statistics.fmean(xs) / true_hv,
                       "best_share": max(xs) / true_hv, "p_vs_random": p,
                       "cpu_s_per_run": statistics.fmean(
                           r["cpu_s"] for r in runs if r["searcher"] == name)}
    if args.json:
        print(json.dumps({"seeds": args.seeds, "evals": args.evals, "reference": _reference,
                          "true_hypervolume": true_hv, "searchers": stats, "runs": runs},
                         indent=1))
        return 0
    print(f"NAS-Bench-201, maximize c10_valid_12 and minimize params_m: {args.evals} "
          f"evaluations, {args.seeds} seeds; reference {_reference}, true front's "
          f"hypervolume {true_hv:.3f}")
    print(f"{'searcher':>10} | {'hypervolume':>16} | {'of true front':>13} | "
          f"{'best run':>8} | {'p vs random':>11} | {'cpu s/run':>9}")
    for name in names:
        st = stats[name]
        p = "" if st["p_vs_random"] is None else f"{st['p_vs_random']:.2g}"
        print(f"{name:>10} | {st['mean']:9.3f} ± {st['std']:<4.2f} | "
              f"{100 * st['share_of_true']:12.2f}% | {100 * st['best_share']:7.2f}% | "
              f"{p:>11} | {st['cpu_s_per_run']:9.2f}")
    print(f"\n{time.perf_counter() - t0:.0f} s wall, {args.workers} worker(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
