"""Constraints over decisions on NAS-Bench-201: what checking them on each configuration costs.

    python benchmarks/decision_constraints.py [--samples N] [--repeat R]

The space is examples/nb201.arch with `require count(edge == none) <= 1` and `require
count(edge == skip_connect) <= 2` added (8,910 of the 15,625 cells: C(6, n) C(6 - n, s) 3^(6-n-s)
summed over n <= 1 none edges and s <= 2 skips). Figures, each the best of R runs (the machine
may be shared):

- load: milliseconds to load the space, with and without the constraints (with them, the walks
  that check that each reference names a decision);
- sample: microseconds per uniform sample (N samples, seed 0), with and without (with them, a
  walk per sample checks the configuration and a failing one is drawn again); and with the
  same constraints written with globs (`decision("cell/*") == none`), which are checked on the
  configuration alone, without a walk;
- count --metrics: seconds for the exact count under the constraints (every configuration of
  the decisions they read is walked), and the count, checked against the formula above.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from math import comb
from pathlib import Path

import archdsl

SPACE = Path(__file__).resolve().parent.parent / "examples" / "nb201.arch"
EXTRA = "\nrequire count(edge == none) <= 1\nrequire count(edge == skip_connect) <= 2\n"
GLOBS = EXTRA.replace("edge", 'decision("cell/*")')  # the same, read from configurations alone


def best(f: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    text = SPACE.read_text()
    base = SPACE.parent
    for label, src in (("without", text), ("with", text + EXTRA), ("globs", text + GLOBS)):
        ms = best(lambda src=src: archdsl.loads(src, str(SPACE), base), args.repeat) * 1e3
        space = archdsl.loads(src, str(SPACE), base)
        us = best(lambda space=space: list(space.samples(args.samples, seed=0)),
                  args.repeat) / args.samples * 1e6
        print(f"{label:>7}: load {ms:7.1f} ms   sample {us:7.1f} us each")
    space = archdsl.loads(text + EXTRA, str(SPACE), base)
    want = sum(comb(6, n) * comb(6 - n, s) * 3 ** (6 - n - s) for n in (0, 1) for s in (0, 1, 2))
    got = 0

    def count() -> None:
        nonlocal got
        got = space.count(metrics=True)

    secs = best(count, args.repeat)
    print(f"count --metrics: {got:,} of {space.count():,} in {secs:.2f} s "
          f"({'equals' if got == want else 'DIFFERS FROM'} the formula's {want:,})")


if __name__ == "__main__":
    main()
