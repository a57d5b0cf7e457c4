"""The `archdsl` command. Every user error is one `file:line:col: error: ...` report and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from .errors import ArchDSLError, ArchLimitError
from .space import load, read_config

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors are user errors: exit 1
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


@contextmanager
def _any_int_size() -> Iterator[None]:
    """Let int <-> decimal text conversions take any number of digits, for the duration.

    Python refuses (ValueError) beyond 4,300 digits by default; an exact count may have tens of
    thousands (counts are refused past 2**200,000 when counting, about 60,206 digits)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


def cmd_check(args: argparse.Namespace) -> int:
    space = load(args.file)
    decisions = space.decisions()
    n = space.count()
    cont = [d for d in decisions if d.continuous]
    deferred = [c for c in space.ir.constraints if _mentions_metric(c)]
    # exercise a few sampled architectures so value errors are found now, not later
    for cfg in space.samples(min(args.samples, 1_000), seed=0, uniform=False):
        space.materialize(cfg)
    space.materialize(space.default())
    _out(f"{args.file}: ok")
    _out(f"  decisions (default configuration): {len(decisions)}"
         + (f", {len(cont)} continuous" if cont else ""))
    with _any_int_size():
        count = f"{n:,}"
    _out(f"  architectures: {count}" + (" (continuous decisions counted once)" if cont else ""))
    if deferred:
        _out(f"  {len(deferred)} constraint(s) on params/flops are checked by the PyTorch "
             "backend")
    return 0


def _mentions_metric(c: Any) -> bool:
    from . import ast as A

    def walk(e: A.Node) -> bool:
        if isinstance(e, A.Name) and e.ref and e.ref[0] == "metric":
            return True
        return any(walk(v) for v in vars(e).values() if isinstance(v, A.Node))

    return walk(c.expr)


def cmd_count(args: argparse.Namespace) -> int:
    space = load(args.file)
    n = space.count()
    cont = [d for d in space.decisions() if d.continuous]
    with _any_int_size():
        text = str(n) if not args.json else \
            json.dumps({"count": n, "continuous": [d.name for d in cont]})
    if args.json:
        _out(text)
        return 0
    if cont:
        _out(f"# {len(cont)} continuous decision(s) counted once: "
             + ", ".join(d.name for d in cont[:5]) + (" ..." if len(cont) > 5 else ""))
    _out(text)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    space = load(args.file)
    if args.n < 0:
        raise ArchDSLError("-n must be at least 0")
    for i, cfg in enumerate(space.samples(args.n, seed=args.seed, uniform=not args.per_decision)):
        arch = space.materialize(cfg)
        if args.json:
            _out(json.dumps({"index": i, "config": cfg, "hash": arch.hash,
                             "layers": len(arch.layers())}))
        else:
            _out(f"# sample {i}  (architecture {arch.hash}, {len(arch.layers())} layers)")
            for k, v in cfg.items():
                _out(f"{k} = {json.dumps(v)}")
            _out()
    return 0


def cmd_fix(args: argparse.Namespace) -> int:
    space = load(args.file)
    cfg = read_config(args.config)
    text = space.fix(cfg)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    _write(args.output, text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _write(path: str, text: str) -> None:
    p = Path(path)
    try:
        p.write_text(text, "utf-8")
    except OSError as e:
        raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="archdsl", description="A language and compiler for neural-architecture "
                "search spaces.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("check", help="parse and check a .arch file")
    c.add_argument("file")
    c.add_argument("--samples", type=int, default=20,
                   help="sampled architectures to build while checking (default 20)")
    c.set_defaults(func=cmd_check)

    c = sub.add_parser("count", help="count the architectures of a space exactly")
    c.add_argument("file")
    c.add_argument("--json", action="store_true", help='print {"count": N}')
    c.set_defaults(func=cmd_count)

    c = sub.add_parser("sample", help="sample configurations")
    c.add_argument("file")
    c.add_argument("-n", type=int, default=1, help="how many (default 1)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--per-decision", action="store_true",
                   help="sample each decision on its own instead of uniformly over architectures")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.set_defaults(func=cmd_sample)

    c = sub.add_parser("fix", help="write the space with every decision fixed")
    c.add_argument("file")
    c.add_argument("--config", required=True, help="a JSON configuration")
    c.add_argument("-o", "--output", help="the .arch file to write (default: stdout)")
    c.set_defaults(func=cmd_fix)
    return p


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command: a user error is one report on stderr and status 1, never a traceback."""
    try:
        rc = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except ArchDSLError as e:
        print(e.format(), file=sys.stderr)
        return 1
    except RecursionError:
        print(ArchLimitError("the space nests too deeply to process").format(), file=sys.stderr)
        return 1
    except MemoryError:
        print(ArchLimitError("out of memory: the space is too large to process").format(),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("archdsl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `archdsl sample ... | head`: stop quietly
        _drop_stdout()
        return 0


def _drop_stdout() -> None:
    """Send what is left of stdout to /dev/null, so that the flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (e.g. captured output)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message="The hashes produced for directed graphs")
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5_000))
    # long int literals in .arch text convert (and are then refused past 2**4096 with a
    # report); printing counts lifts the limit itself (_any_int_size)
    sys.set_int_max_str_digits(400_000)
    parser = build_parser()
    args = parser.parse_args(argv)
    return run(args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
