"""Robustness: how long large or deep .arch files take to load and check (issue 11, item 6).

    python benchmarks/robustness.py [--only NAME ...] [--timeout SECONDS] [--repeat N] [--list]

Each case generates one .arch file (long pipelines, long lists, many blocks, 1 MB files of each
kind...) and runs, in a fresh process with a time limit:
  - load:  `archdsl.load` (read, parse, resolve names, static checks);
  - check: `archdsl check FILE` (the above, then the default and a few sampled architectures
           built and shape-checked);
  - count: `archdsl count FILE`; sample: `archdsl sample FILE -n 20` (each under 5 s or a
           limit error).
Times are CPU seconds of the process (`time.process_time`: steadier than wall time on a shared
machine; "wall s" is the check's wall time); with --repeat N, each figure is the least of N
runs. Targets: parse + check linear in file size; a 1 MB file in under 2 s; any file up to the size
limit (1,000,000 bytes) either checks in under 5 s or stops with a clear "too large" error
(ArchLimitError) naming the construct and the limit. A case passes when `check` ends in time
with status 0, or with status 1 and a limit error; "target" says which.

To add a case, append a `Case(name, make, note)` to CASES: `make(size)` returns the .arch text
(about `size` bytes where the case scales with the size; SIZE is 1 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

SIZE = 1_000_000 - 1_000  # just under the size limit
TARGET_1MB = 2.0  # seconds, parse + check of a 1 MB file
TARGET_ANY = 5.0  # seconds, any file up to the limit (or a "too large" error)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[int], str]  # size in bytes -> .arch text
    note: str = ""
    size: int = SIZE


def _fill(head: str, item: Callable[[int], str], tail: str, size: int, sep: str = "") -> str:
    """head + item(0) + sep + item(1) + ... + tail, about `size` bytes."""
    parts, n, i = [head], len(head) + len(tail), 0
    while n < size:
        s = item(i) + sep
        parts.append(s)
        n += len(s)
        i += 1
    if sep and parts[-1].endswith(sep):
        parts[-1] = parts[-1][: -len(sep)]
    return "".join(parts) + tail


def pipeline(stages: int) -> Callable[[int], str]:
    return lambda size: ("input a: [4]\nnetwork { a " + "-> relu " * stages + "}\n")


def many_blocks(size: int) -> str:
    """Realistic text: small blocks with decisions, a network calling some of them."""
    head = ("input image: [3, 32, 32]\nparam width = choice(16, 32, 64)\n"
            "param act = choice(relu, gelu, silu)\n")
    block = ("block b{0}(c, k = choice(1, 3, 5)) {{\n    conv2d(c, kernel = k, padding = same)\n"
             "        -> batchnorm\n        -> act\n"
             "        -> optional {{ dropout(float(0.0 .. 0.3)) }}\n}}\n")
    tail = ("network {\n    image\n" + "".join(f"    -> b{i}(choice(width, width * 2))\n"
                                               for i in range(20))
            + "    -> global_avg_pool\n    -> linear(10)\n}\n")
    return _fill(head, block.format, tail, size)


CASES: list[Case] = [
    Case("pipeline-40k", pipeline(40_000), "the issue's 40,000-stage pipeline (320 KB)"),
    Case("pipeline-1MB", lambda size: _fill("input a: [4]\nnetwork { a", lambda i: " -> relu",
                                            " }\n", size), "about 125,000 stages"),
    Case("pipeline-dense-1MB", lambda size: _fill("input x: [4]\nblock a { relu }\nnetwork { x",
                                                  lambda i: "->a", " }\n", size),
         "`x->a->a->...`: about as many tokens as a byte can hold"),
    Case("blocks-1MB", many_blocks, "about 5,000 blocks of 6 lines"),
    Case("list-1MB", lambda size: _fill("input x: [4]\nparam s = [", lambda i: str(i % 1000),
                                        "]\nnetwork { x -> relu }\n", size, ", "),
         "a list literal of about 250,000 numbers"),
    Case("choice-1MB", lambda size: _fill("input x: [4]\nparam w = choice(", lambda i: str(i + 1),
                                          ")\nnetwork { x -> linear(w) }\n", size, ", "),
         "one choice of about 150,000 options"),
    Case("params-1MB", lambda size: _fill("input x: [4]\n",
                                          lambda i: f"param p{i} = choice(1, 2, 3)\n",
                                          "network { x -> relu }\n", size),
         "about 35,000 top-level params"),
    Case("one-of-1MB", lambda size: _fill("input x: [4]\nnetwork { x -> one_of { ",
                                          lambda i: f"linear({i + 1})", " } }\n", size, " | "),
         "one one_of of about 60,000 alternatives"),
    Case("arguments-1MB", lambda size: _fill("input x: [4]\nblock b(", lambda i: f"a{i} = {i}",
                                             ") { relu }\nnetwork { x -> b }\n", size, ", "),
         "one block of about 100,000 parameters"),
    Case("sum-1MB", lambda size: _fill("input x: [4]\nparam w = 1", lambda i: " + 1",
                                       "\nnetwork { x -> linear(w) }\n", size),
         "a sum of about 250,000 terms"),
    Case("graph-1MB", lambda size: _fill("input x: [4]\ncell c {\n    input n0\n",
                                         lambda i: f"    n{i + 1} = n{i} -> relu\n",
                                         "    return n0\n}\nnetwork { x -> c }\n", size),
         "a cell of about 40,000 nodes"),
    Case("comments-1MB", lambda size: _fill("input x: [4]\nnetwork { x -> relu }\n",
                                            lambda i: "# " + "x" * 60 + "\n", "", size),
         "one network and 1 MB of comments"),
    # small files whose walks are large: the interpreter's limits and caches (issue 11, item 6)
    Case("twice-16", lambda size: "input x: [8]\nblock t0 { linear(choice(8, 16)) -> relu }\n"
         + "".join(f"block t{i} {{ t{i - 1} -> t{i - 1} }}\n" for i in range(1, 17))
         + "network { x -> t16 }\n", "blocks applying blocks twice, 16 deep: 65,536 decisions"),
    Case("twice-param-16", lambda size: "input x: [4]\nblock twice(body) { body -> body }\n"
         "network { x -> " + "twice(" * 16 + "relu" + ")" * 16 + " }\n",
         "a block applying its sub-network parameter twice, 16 deep: 65,536 layers"),
    Case("twice-param-16-decisions", lambda size: "input x: [4]\nblock twice(f) { f -> f }\n"
         "network { x -> " + "twice(" * 16 + "linear(choice(8, 16))" + ")" * 16 + " }\n",
         "the same over a layer with a decision: 65,536 decisions"),
    Case("repeat-choice-10000", lambda size: "input x: [8]\nnetwork { x -> repeat(choice(10000, "
         "1, 2)) { linear(choice(8, 16)) -> relu } }\n", "20,000 layers in a third of samples"),
    Case("recursion-16", lambda size: "input x: [8]\nblock tower max_depth 16 {\n    one_of { "
         "linear(choice(8, 16)) | tower -> tower }\n}\nnetwork { x -> tower }\n",
         "a recursive block, max_depth 16: uniform samples are near-full trees"),
    Case("tight-constraint", lambda size: "input x: [4]\nparam a = int(1 .. 141)\n"
         "param b = int(1 .. 141)\nrequire a + b == 282\nnetwork { x -> linear(a) }\n",
         "one configuration of 19,881 satisfies the constraint"),
    Case("inputs-1000", lambda size: "".join(f"input x{i}: [4]\n" for i in range(1000))
         + "network {\n" + "".join(f"    n{i} = x{i} -> linear(choice(4, 8))\n"
                                   for i in range(1000))
         + "    return concat(" + ", ".join(f"n{i}" for i in range(1000)) + ")\n}\n",
         "1,000 inputs, each with a decision"),
    Case("some-1000", lambda size: "".join(f"input x{i}: [4]\n" for i in range(1000))
         + "network {\n    y = some(" + ", ".join(f"x{i}" for i in range(1000))
         + ") -> linear(4)\n    return y\n}\n", "some(...) of 1,000 nodes: 2**1000 - 1 subsets"),
]


def run_case(case: Case) -> dict:
    """Generate the case's file and time load and check in this process (the child)."""
    import archdsl
    from archdsl.cli import build_parser

    text = case.make(case.size)
    out: dict = {"bytes": len(text.encode()), "error": None, "message": ""}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{case.name}.arch")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        archdsl.loads("input x: [4]\nnetwork { x -> relu }\n")  # the grammar, built once
        t = time.process_time()
        try:
            archdsl.load(path)
        except archdsl.ArchDSLError:
            pass
        out["load"] = time.process_time() - t
        for command in (["check"], ["count"], ["sample", "-n", "20"]):
            what = command[0]
            args = build_parser().parse_args([*command, path])
            old, sys.stdout = sys.stdout, open(os.devnull, "w")
            t, wall = time.process_time(), time.perf_counter()
            try:
                args.func(args)  # what `archdsl check` (...) runs, its errors caught here
            except archdsl.ArchDSLError as e:
                if what == "check":
                    out["error"], out["message"] = type(e).__name__, e.message[:150]
                else:
                    out[f"{what}_error"] = type(e).__name__
            finally:
                out[what] = time.process_time() - t
                if what == "check":
                    out["wall"] = time.perf_counter() - wall
                sys.stdout = old
    return out


def _run_child(case: Case, timeout: float) -> dict:
    """One run of a case in a fresh process: its figures, or {"verdict": why it failed}."""
    try:
        p = subprocess.run([sys.executable, __file__, "--child", case.name], capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"verdict": f"MISSED (over {timeout:.0f} s)"}
    if p.returncode != 0:  # a traceback: never acceptable
        return {"verdict": "MISSED (" + (p.stderr.strip().splitlines() or ["?"])[-1][:80] + ")"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(case: Case, timeout: float, repeat: int = 1) -> dict:
    """Run one case `repeat` times, each in a fresh process, keeping the least time of each
    figure (the least disturbed by other work on the machine); a failed run is reported."""
    r: dict = {}
    for _ in range(repeat):
        got = _run_child(case, timeout)
        if "verdict" in got:
            return got
        r = got if not r else {k: min(v, got[k]) if isinstance(v, float) else v
                               for k, v in r.items()}
    if r["error"] is None:
        limit, what = (TARGET_1MB if r["bytes"] >= SIZE // 2 else TARGET_ANY), "ok"
    elif r["error"] == "ArchLimitError":
        limit, what = TARGET_ANY, "too large"
    else:
        limit, what = 0.0, f"unexpected {r['error']}"
    # count and sample: under TARGET_ANY, or a limit error
    bad = [c for c in ("count", "sample") if r.get(f"{c}_error") not in (None, "ArchLimitError")
           or r[c] >= TARGET_ANY]
    met = r["check"] < limit and not bad
    r["verdict"] = (f"{'met' if met else 'MISSED'} ({what}, target < {limit:.0f} s"
                    + (f"; {', '.join(bad)} missed" if bad else "") + ")")
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run only these cases")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    ap.add_argument("--list", action="store_true", help="list the cases and stop")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per case, each figure the least of them (default 1)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    by_name = {c.name: c for c in CASES}
    if args.child:
        print(json.dumps(run_case(by_name[args.child])))
        return 0
    if args.list:
        for c in CASES:
            print(f"{c.name:24} {c.note}")
        return 0
    chosen = [by_name[n] for n in args.only] if args.only else CASES
    print(f"{'case':24} {'bytes':>9} {'load s':>7} {'check s':>8} {'wall s':>7} {'count s':>8} "
          f"{'sample s':>8}  target / result")
    missed = 0
    for c in chosen:
        r = measure(c, args.timeout, max(1, args.repeat))
        missed += r["verdict"].startswith("MISSED")
        if "bytes" in r:
            print(f"{c.name:24} {r['bytes']:>9,} {r['load']:>7.2f} {r['check']:>8.2f} "
                  f"{r['wall']:>7.2f} {r['count']:>8.2f} {r['sample']:>8.2f}  {r['verdict']}")
            if r["error"]:
                print(f"{'':24} {r['error']}: {r['message']}")
        else:
            print(f"{c.name:24} {'':>9} {'':>7} {'':>8} {'':>7} {'':>8} {'':>8}  {r['verdict']}")
    print(f"{len(chosen) - missed} of {len(chosen)} cases met their target")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
