"""Random search on digits with ASHA against random search without, for the same total epochs.

    nice -n 10 python benchmarks/early_stopping.py [--seeds N] [--epochs E] [--workers W]
                                                   [--scheduler S] [--json]

For each seed, two searches of examples/digits.arch with the digits evaluator (real training on
the CPU), the file's `epochs = 5` made `epochs = 9` (`--trial-epochs`) so that the rungs of
`--scheduler asha` (min 1 epoch, reduction factor 3; `--reduction-factor`) are 1, 3 and 9
epochs, the shape ASHA is made for; the other search has `--scheduler none`. Both are stopped by `--epoch-budget E` (no
trial is started or promoted once E epochs were trained; trials under way finish their rung).
Each search runs in a study folder of its own under a temporary folder.

Printed per arm, mean and std over the seeds: architectures tried (trials started), trials
trained to the end, epochs trained, the best validation accuracy among trials trained to the
end (the architecture a user would take), and wall time; then the ratio of architectures tried
and the verdict against the issue's target (>= 3x the architectures, a best accuracy at least
as high on average).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from archdsl.errors import ArchDSLError
from archdsl.runner import search

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "examples" / "digits.arch"


def space(folder: Path, epochs: int) -> Path:
    """examples/digits.arch (and the library it imports) in `folder`, training `epochs`."""
    shutil.copytree(ROOT / "examples" / "lib", folder / "lib")
    text = SPACE.read_text()
    if "    epochs    = 5 " not in text:
        raise SystemExit("examples/digits.arch no longer says `epochs    = 5`: update this script")
    out = folder / "digits.arch"
    out.write_text(text.replace("    epochs    = 5 ", f"    epochs    = {epochs} "))
    return out


def run(file: Path, seed: int, scheduler: str, epochs: int, workers: int, eta: int,
        folder: Path) -> dict[str, Any]:
    """One search; its figures."""
    t0 = time.perf_counter()
    r = search(file, searcher="random", evaluator="digits", seed=seed, workers=workers,
               study_dir=folder / f"{scheduler}-{seed}", scheduler=scheduler,
               min_epochs=1, reduction_factor=eta, epoch_budget=epochs, device="cpu")
    wall = time.perf_counter() - t0
    with r.study as st:
        trials = st.trials()
        reports = st.reports()
        complete = [t for t in trials if t.status == "ok"]
        return {"seed": seed, "scheduler": scheduler, "tried": len(trials),
                "complete": len(complete),
                "epochs": sum(len(v) for v in reports.values()),
                "best": max((t.objective for t in complete), default=float("nan")),
                "wall_s": round(wall, 2)}


def _mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.4g} ± {sd:.2g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=90, help="the epoch budget of each search")
    ap.add_argument("--trial-epochs", type=int, default=9, help="the epochs of a full trial")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scheduler", default="asha", help="the scheduler against none")
    ap.add_argument("--reduction-factor", type=int, default=3, help="its eta")
    ap.add_argument("--json", action="store_true", help="every run as JSON lines too")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="archdsl-es-") as tmp:
        file = space(Path(tmp), args.trial_epochs)
        for seed in range(args.seeds):
            for scheduler in ("none", args.scheduler):
                try:
                    row = run(file, seed, scheduler, args.epochs, args.workers,
                              args.reduction_factor, Path(tmp))
                except ArchDSLError as e:
                    print(f"error: {e.message}", file=sys.stderr)
                    return 1
                rows.append(row)
                if args.json:
                    print(json.dumps(row))
                print(f"seed {seed} {scheduler:>9}: {row['tried']:3d} tried, "
                      f"{row['complete']:2d} complete, best {row['best']:.4f}, "
                      f"{row['wall_s']:.1f} s", file=sys.stderr)
    print(f"random search on examples/digits.arch ({args.trial_epochs} epochs a trial), "
          f"{args.epochs} epochs per search, {args.seeds} seeds, {args.workers} worker(s); "
          f"{args.scheduler} with min 1 epoch, reduction factor {args.reduction_factor}")
    print(f"{'scheduler':>10} | {'tried':>12} | {'complete':>12} | {'epochs':>12} | "
          f"{'best accuracy':>16} | {'wall s':>12}")
    means: dict[str, dict[str, float]] = {}
    for scheduler in ("none", args.scheduler):
        arm = [r for r in rows if r["scheduler"] == scheduler]
        cols = {k: [float(r[k]) for r in arm] for k in ("tried", "complete", "epochs", "best",
                                                         "wall_s")}
        means[scheduler] = {k: statistics.fmean(v) for k, v in cols.items()}
        print(f"{scheduler:>10} | {_mean_std(cols['tried']):>12} | "
              f"{_mean_std(cols['complete']):>12} | {_mean_std(cols['epochs']):>12} | "
              f"{_mean_std(cols['best']):>16} | {_mean_std(cols['wall_s']):>12}")
    ratio = means[args.scheduler]["tried"] / means["none"]["tried"]
    better = means[args.scheduler]["best"] >= means["none"]["best"]
    print(f"architectures tried: {ratio:.2f}x with {args.scheduler} (target >= 3x); "
          f"best accuracy {'at least as high' if better else 'LOWER'} "
          f"({means[args.scheduler]['best']:.4f} against {means['none']['best']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
