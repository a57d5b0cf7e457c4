"""Parameter counts of examples/nb201.arch against all 15,625 rows of NAS-Bench-201.

    python benchmarks/nb201_params.py [--csv PATH]

For every row the configuration comes from the row's cell string (`from_arch_string`), the
architecture is materialized and planned statically (no model is built), and its parameter count is
compared with `params_m`. Prints the number of exact matches, and for the rows that differ, by how
much relative to one operation's parameters across the 15 cells (nor_conv_1x1: 28,000,
nor_conv_3x3: 243,040). Reads the table shipped with archdsl (or --csv PATH, .csv or .csv.xz).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

from archdsl.backends.plan import plan

import archdsl
from archdsl.errors import ArchDSLError
from archdsl.evaluators.nb201 import SHIPPED, Table, from_arch_string

ROOT = Path(__file__).resolve().parent.parent
ONE_OP = {"nor_conv_1x1": 28_000, "nor_conv_3x3": 243_040}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=None, help="another copy of the table")
    args = ap.parse_args()
    try:
        rows = list(Table(args.csv or SHIPPED).rows.values())
    except ArchDSLError as e:
        print(e.format(), file=sys.stderr)
        return 1
    space = archdsl.load(ROOT / "examples" / "nb201.arch")
    t = time.perf_counter()
    exact, off = 0, []
    for row in rows:
        got = plan(space.materialize(from_arch_string(row["arch"]))).params
        want = round(float(row["params_m"]) * 1e6)
        if got == want:
            exact += 1
        else:
            off.append((row, got, want))
    secs = time.perf_counter() - t
    print(f"{exact:,} of {len(rows):,} rows: parameter count equal to params_m "
          f"({secs:.1f} s, {secs / len(rows) * 1e3:.2f} ms a row)")
    if off:
        kinds: Counter[str] = Counter()
        for row, got, want in off:
            near = {op: Fraction(got - want, n).limit_denominator(6) for op, n in ONE_OP.items()}
            fracs = [f"{f} x {op}" for op, f in near.items()
                     if op in row["arch"] and abs((got - want) - f * ONE_OP[op]) < 1]
            kinds[fracs[0] if fracs else "other"] += 1
        print(f"{len(off):,} rows differ; built minus listed, in units of one operation's "
              "parameters across the 15 cells:")
        for k, n in kinds.most_common():
            print(f"  {k:>24}: {n} rows")
        row, got, want = off[0]
        print(f"  e.g. row {row['index']} {row['arch']}: built {got:,}, listed {want:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
