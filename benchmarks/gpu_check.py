"""The GPU check: a search on digits with `--device cuda` and 2 workers, and its figures.

    python benchmarks/gpu_check.py [--budget N] [--workers W] [--device D]

Runs `archdsl search examples/digits.arch --device cuda --workers 2 --scheduler asha` into a
temporary study and prints: the GPUs torch sees, each trial's device, status, epochs and
training seconds, the wall time, and the same search on the CPU for comparison
(`--no-cpu` leaves that out). On a machine without CUDA it exits 1 with the message
`--device cuda` gives there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from archdsl.errors import ArchDSLError
from archdsl.runner import search

ROOT = Path(__file__).resolve().parent.parent


def run(device: str, budget: int, workers: int, folder: Path) -> float:
    t0 = time.perf_counter()
    r = search(ROOT / "examples" / "digits.arch", searcher="random", budget=budget,
               workers=workers, device=device, scheduler="asha", study_dir=folder / device)
    wall = time.perf_counter() - t0
    with r.study as st:
        for t in st.trials():
            m = t.metrics
            print(f"  trial {t.id:2d} {t.status:8s} device {m.get('device', '?'):7s} "
                  f"epochs {m.get('epochs', '?')} train {m.get('train_seconds', 0):.2f} s "
                  f"objective {t.objective if t.objective is not None else float('nan'):.4f}")
        print(f"  {device}: {len(st.trials())} trials, {Counter(t.metrics.get('device') for t in st.trials())}, "
              f"wall {wall:.1f} s")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--no-cpu", action="store_true")
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, "
          f"GPUs: {torch.cuda.device_count()}")
    for i in range(torch.cuda.device_count()):
        print(f"  cuda:{i} {torch.cuda.get_device_name(i)}")
    with tempfile.TemporaryDirectory(prefix="archdsl-gpu-") as tmp:
        try:
            gpu = run(args.device, args.budget, args.workers, Path(tmp))
            if not args.no_cpu:
                cpu = run("cpu", args.budget, args.workers, Path(tmp))
                print(f"wall: {args.device} {gpu:.1f} s, cpu {cpu:.1f} s")
        except ArchDSLError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
