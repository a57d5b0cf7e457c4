"""Parse, count and sample speed of the language core.

    python benchmarks/parse_sample.py [--quick]

Prints parse+check time (`archdsl.load`: parsing, name resolution and checks) per example and for a
generated 1,000-line file, samples per second (`Space.sample`, a configuration) on
examples/nb201.arch and examples/digits.arch (uniform over architectures and per decision), and the
time to count a space of more than 10**100 architectures from scratch. Every figure is the least
disturbed of several runs. Targets (issue 2): 1,000 lines < 200 ms, >= 5,000 samples/s on
nb201.arch, >= 30,000/s on digits.arch, counting < 100 ms.

Sampling speed is the language core's: digits.arch is loaded with its `require params` line taken
out (a params/flops constraint makes every sample plan the architecture, about 2 ms, which is the
backend's cost, not the interpreter's). Sampling caches the walks it has made (Interp.sample), so
three rates are printed, each from one seeded stream of samples:
  - "sustained": N fresh samples (100,000; 20,000 with --quick) from a freshly loaded space, the
    total time of all N: what a search that draws N architectures gets (the headline figure);
  - "first 1k": the first 1,000 samples of a freshly loaded space (the cache nearly empty);
  - "warm": once sampling has run for a while (the cache holds most of the space's structures).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import archdsl
from archdsl.parser import parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of `repeat` runs, in seconds (the least disturbed run); each run starts
    with no garbage left over from the one before."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def generated_source(lines: int = 1000) -> str:
    """A valid .arch file of exactly `lines` lines (>= 80): many small blocks, a long network."""
    out = ["input image: [3, 32, 32]", "param width = choice(16, 32, 64)",
           "param act = choice(relu, gelu, silu)"]
    n_blocks = (lines - 8 - 60) // 6  # 3 lines above, 6 per block, 5 + 60 for the network
    for i in range(n_blocks):
        out += [f"block b{i}(c, k = choice(1, 3, 5)) {{",
                "    conv2d(c, kernel = k, padding = same)",
                "        -> batchnorm",
                "        -> act",
                "        -> optional { dropout(float(0.0 .. 0.3)) }",
                "}"]
    out.append("network {")
    out.append("    image")
    for i in range(min(n_blocks, 60)):
        out.append(f"    -> b{i}(choice(width, width * 2))")
    out += ["    -> global_avg_pool", "    -> linear(10)", "}"]
    out += ["# padding"] * (lines - len(out))
    return "\n".join(out) + "\n"


def fresh_rate(path: Path, text: str, uniform: bool, n: int = 1000, repeat: int = 3) -> float:
    """Samples per second over the first `n` samples of a freshly loaded space, the total time
    of all `n` (the best of `repeat` fresh spaces)."""
    best = 0.0
    for _ in range(repeat):
        space = archdsl.loads(text, str(path), base_dir=path.parent)
        rng = random.Random(0)
        gc.collect()
        t = time.perf_counter()
        for _ in range(n):
            space.sample(rng, uniform)
        best = max(best, n / (time.perf_counter() - t))
    return best


def samples_per_second(space: archdsl.Space, uniform: bool, seconds: float,
                       windows: int = 5, warmup: float = 0.0) -> float:
    """Samples per second over `windows` windows of seconds / windows each, after sampling for
    `warmup` seconds; the best window."""
    rng = random.Random(0)
    for _ in range(20):
        space.sample(rng, uniform)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < warmup:
        for _ in range(50):
            space.sample(rng, uniform)
    rates = []
    for _ in range(windows):
        n = 0
        t0 = time.perf_counter()
        while True:
            for _ in range(50):
                space.sample(rng, uniform)
            n += 50
            dt = time.perf_counter() - t0
            if dt >= seconds / windows:
                rates.append(n / dt)
                break
    return max(rates)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter measurements")
    args = ap.parse_args()
    seconds = 0.5 if args.quick else 2.0
    warmup = 2.0 if args.quick else 10.0
    sustained_n = 20_000 if args.quick else 100_000

    print("parse + check (best of 5)")
    sys.path.insert(0, str(ROOT))
    importlib.import_module("examples.gnn_ops")  # gnn.arch's operations (--ops examples.gnn_ops)
    for path in sorted(EXAMPLES.glob("*.arch")):
        t = best_of(lambda p=path: archdsl.load(p))
        print(f"  {path.name:<22} {t * 1000:8.2f} ms")
    src = generated_source(1000)
    n_lines = src.count("\n")
    t_parse = best_of(lambda: parse(src, "generated.arch"))
    t_check = best_of(lambda: archdsl.loads(src, "generated.arch"))
    print(f"  generated, {n_lines} lines: parse {t_parse * 1000:.1f} ms, parse + check "
          f"{t_check * 1000:.1f} ms (target < 200 ms)")

    print(f"samples per second: sustained = {sustained_n:,} samples from a freshly loaded space, "
          "total time (best of 2); first 1k = the first 1,000 of a fresh space (best of 3); "
          f"warm = best of 5 windows after {warmup:.0f} s of sampling")
    for name, target in (("nb201.arch", 5_000), ("digits.arch", 30_000)):
        path = EXAMPLES / name
        if not path.exists():
            print(f"  {name}: missing")
            continue
        text = path.read_text("utf-8")
        stripped = re.sub(r"(?m)^require\s+(params|flops)\b.*$", "", text)
        if stripped != text:
            print(f"  {name}: its `require params/flops` lines taken out (they plan every "
                  "sample: backend time, not the language core's)")
        space = archdsl.loads(stripped, str(path), base_dir=path.parent)
        for uniform, what in ((True, "uniform"), (False, "per decision")):
            sustained = fresh_rate(path, stripped, uniform, sustained_n, repeat=2)
            first = fresh_rate(path, stripped, uniform)
            warm = samples_per_second(space, uniform, seconds, warmup=warmup)
            print(f"  {name:<12} {what:<13} sustained {sustained:8,.0f}/s   first 1k "
                  f"{first:8,.0f}/s   warm {warm:8,.0f}/s   (target >= {target:,}/s)")

    big = archdsl.loads("""
        input x: [3, 32, 32]
        param act = choice(relu, gelu, silu, tanh)
        block cell(c) {
            conv2d(c, kernel = choice(1, 3, 5, 7), stride = choice(1, 2)) -> batchnorm -> act
            -> optional { dropout(choice(0.1, 0.2, 0.3)) }
        }
        network {
            x -> repeat(int(1 .. 40)) { cell(int(8 .. 256, step = 8)) }
              -> one_of { global_avg_pool | global_max_pool } -> linear(10)
        }
    """)

    def count_fresh() -> int:
        return archdsl.Space(big.ir).count()

    n = count_fresh()
    assert n > 10**100, n
    runs = [best_of(count_fresh, 1) for _ in range(5)]
    print(f"counting a space of {n:.3e} architectures ({len(str(n))} digits): "
          f"{statistics.median(runs) * 1000:.1f} ms median (target < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
