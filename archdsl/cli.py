"""The `archdsl` command. Every user error is one `file:line:col: error: ...` report and exit 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from .cli_render import register as register_render
from .errors import ArchDSLError, ArchLimitError, amount, printable
from .sources import add_import_path_option
from .space import Space, load, read_config
from .user_ops import add_ops_option, import_ops, requested
from .version import installed_version

__all__ = ["main"]

CHECK_SECONDS = 1.5  # `check` builds sampled architectures for about this long at most


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


def load_space(args: argparse.Namespace) -> Space:
    """The space of `args.file` (with `args.import_path`), once the operations modules the user
    names (--ops, ./pyproject.toml's [tool.archdsl] ops) are imported."""
    import_ops(requested(args.ops))
    return load(args.file, args.import_path)


def cmd_check(args: argparse.Namespace) -> int:
    space = load_space(args)
    decisions = space.decisions()
    n = space.count()
    cont = [d for d in decisions if d.continuous]
    deferred = space.metric_constraints
    # exercise a few sampled architectures so value errors are found now, not later
    from .backends.plan import check_size, plan  # static shapes: no torch needed

    # the default always; then samples while the time allows (big architectures take ~0.1 ms
    # a layer to build and plan: a check stays within a few seconds)
    # (the default must also be small enough to build: `compile` builds it)
    start = time.monotonic()
    check_size(plan(space.materialize(space.default())))
    for cfg in space.samples(min(args.samples, 1_000), seed=0, uniform=False):
        plan(space.materialize(cfg))
        if time.monotonic() - start > CHECK_SECONDS:
            break
    _out(f"{printable(args.file, False)}: ok")
    _out(f"  decisions (default configuration): {len(decisions)}"
         + (f", {len(cont)} continuous" if cont else ""))
    with _any_int_size():
        count = f"{n:,}"
    _out(f"  architectures: {count}" + (" (continuous decisions counted once)" if cont else ""))
    if deferred:
        _out(f"  {len(deferred)} constraint(s) on params/flops, checked on each architecture's "
             "static shapes (not applied to the count)")
    if space.decision_constraints:
        _out(f"  {len(space.decision_constraints)} constraint(s) over decisions, checked on each "
             "configuration (not applied to the count)")
    from .reach import reach_warnings

    for w in reach_warnings(space):  # warnings, not errors: the status stays 0
        print(w.format(), file=sys.stderr)
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    space = load_space(args)
    n = space.count(metrics=args.metrics)
    cont = space.continuous_decisions()  # no walk unless the space has a continuous decision
    with _any_int_size():
        text = str(n) if not args.json else \
            json.dumps({"count": n, "continuous": [d.name for d in cont]})
    if args.json:
        _out(text)
        return 0
    if space.metric_constraints and not args.metrics:
        _out(f"# {len(space.metric_constraints)} constraint(s) on params/flops not applied; "
             "--metrics applies them by enumerating the space")
    if space.decision_constraints and not args.metrics:
        _out(f"# {len(space.decision_constraints)} constraint(s) over decisions not applied; "
             "--metrics applies them by enumerating the space")
    if cont:
        _out(f"# {len(cont)} continuous decision(s) counted once: "
             + ", ".join(d.name for d in cont[:5]) + (" ..." if len(cont) > 5 else ""))
    if args.metrics and (space.metric_constraints or space.decision_constraints):
        from .metric_count import caveat

        note = caveat(space)
        if note:
            _out(f"# {note}")
    _out(text)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    space = load_space(args)
    if args.n < 0:
        raise ArchDSLError("-n must be at least 0")
    from .backends.plan import metrics

    for i, cfg in enumerate(space.samples(args.n, seed=args.seed, uniform=not args.per_decision)):
        if args.json:  # only --json builds each architecture, for its figures and hash
            arch = space.materialize(cfg)
            _out(json.dumps({"index": i, "config": cfg, "hash": arch.hash,
                             "layers": len(arch.layers()), **metrics(arch)}))
        else:
            _out(f"# sample {i}")
            for k, v in cfg.items():
                _out(f"{k} = {json.dumps(v)}")
            _out()
    return 0


def cmd_fix(args: argparse.Namespace) -> int:
    space = load_space(args)
    cfg = read_config(args.config)
    text = space.fix(cfg)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    _write(args.output, text)
    print(f"wrote {printable(args.output, False)}", file=sys.stderr)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    if args.output and Path(args.output).suffix.lower() not in (".py", ".pt", ".onnx"):
        raise ArchDSLError(f"cannot compile to '{args.output}'",
                           hint="the output must end in .py, .pt or .onnx")
    if args.weights_from and (not args.output or Path(args.output).suffix.lower() == ".py"):
        raise ArchDSLError("--weights-from writes the inherited weights to -o OUT.pt or "
                           "OUT.onnx", hint="the .py source holds no weights")
    space = load_space(args)
    cfg = read_config(args.config) if args.config else space.default()
    arch = space.materialize(cfg)
    from .backends import plan as planning

    p = planning.plan(arch)  # shape errors are reported before torch is even imported
    if args.output and Path(args.output).suffix.lower() != ".py":
        planning.check_size(p)  # weights are made: too many is an error before anything else
    if args.summary:
        _summary_table(p)
    if args.json:
        _out(json.dumps({"params": p.params, "flops": p.flops, "output_shape": p.output_shape,
                         "input_shapes": {p.steps[n].name: list(p.steps[n].out.shape)
                                          for n in p.inputs},
                         "layers": len(p.layers()), "hash": arch.hash}))
    elif not args.summary:
        _out(f"{printable(args.file, False)}: {len(p.layers())} layers, {amount(p.params)} parameters, "
             f"{amount(p.flops)} multiply-accumulates per example, output {p.output_shape}")
    if args.output and args.weights_from:
        from .one_shot import export_inherited

        out = export_inherited(space, cfg, args.weights_from, args.output)
        print(f"wrote {printable(str(out), False)}", file=sys.stderr)
    elif args.output:
        from .backends import pytorch

        out = pytorch.export(arch, args.output, seed=args.seed)
        print(f"wrote {printable(str(out), False)}", file=sys.stderr)
    return 0


def _summary_table(p: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # rich reads [...] in text as markup: a file name is escaped
    name = escape(printable(Path(p.source_file).name, False)) or "architecture"
    t = Table(title=f"{name}: {p.params:,} parameters, {p.flops:,} MACs", title_justify="left")
    for col, just in [("layer", "left"), ("op", "left"), ("output shape", "left"),
                      ("params", "right"), ("MACs", "right"), ("source", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for s in p.steps.values():
        where = f"{printable(Path(s.span.file).name, False)}:{s.span.line}" if s.span else ""
        t.add_row(*(escape(c) for c in (s.name, s.op, str(list(s.out.shape)), f"{s.params:,}",
                                         f"{s.flops:,}", where)))
    Console(width=max(100, Console().width), soft_wrap=False).print(t)


def _write(path: str, text: str) -> None:
    p = Path(path)
    try:
        p.write_text(text, "utf-8")
    except OSError as e:
        raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None


def _seed(text: str) -> int:
    """A torch seed: an integer from 0 to 2**63 - 1."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer from 0 to 2**63 - 1")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="archdsl", description="A language and compiler for neural-architecture "
                "search spaces.")
    p.add_argument("--version", action="version", version=f"archdsl {installed_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("check", help="parse and check a .arch file")
    c.add_argument("file")
    add_import_path_option(c)
    add_ops_option(c)
    c.add_argument("--samples", type=int, default=20,
                   help="sampled architectures to build while checking (default 20)")
    c.set_defaults(func=cmd_check)

    c = sub.add_parser("count", help="count the architectures of a space exactly")
    c.add_argument("file")
    add_import_path_option(c)
    add_ops_option(c)
    c.add_argument("--json", action="store_true", help='print {"count": N}')
    c.add_argument("--metrics", action="store_true",
                   help="apply constraints on params/flops and over decisions too (enumerates: "
                   "small spaces only)")
    c.set_defaults(func=cmd_count)

    c = sub.add_parser("sample", help="sample configurations")
    c.add_argument("file")
    add_import_path_option(c)
    add_ops_option(c)
    c.add_argument("-n", type=int, default=1, help="how many (default 1)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--per-decision", action="store_true",
                   help="sample each decision on its own instead of uniformly over architectures")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.set_defaults(func=cmd_sample)

    c = sub.add_parser("compile", help="compile a chosen architecture to PyTorch")
    c.add_argument("file")
    add_import_path_option(c)
    add_ops_option(c)
    c.add_argument("--config", help="a JSON configuration (default: every decision at its "
                   "default)")
    c.add_argument("--summary", action="store_true",
                   help="a table of layers, output shapes, parameters and MACs")
    c.add_argument("--json", action="store_true",
                   help='print {"params", "flops", "output_shape", ...}')
    c.add_argument("-o", "--output", help="write OUT.py (standalone PyTorch source), OUT.pt "
                   "(TorchScript) or OUT.onnx")
    c.add_argument("--seed", type=_seed, default=0,
                   help="the seed of the weights written to .pt and .onnx (default 0)")
    c.add_argument("--weights-from", metavar="CHECKPOINT",
                   help="write .pt or .onnx with the weights the architecture inherits from "
                   "a trained supernet (`archdsl supernet`; docs/one_shot.md)")
    c.set_defaults(func=cmd_compile)

    c = sub.add_parser("fix", help="write the space with every decision fixed")
    c.add_argument("file")
    add_import_path_option(c)
    add_ops_option(c)
    c.add_argument("--config", required=True, help="a JSON configuration")
    c.add_argument("-o", "--output", help="the .arch file to write (default: stdout)")
    c.set_defaults(func=cmd_fix)
    register_render(sub)

    from .cli_search import register as register_search  # search, status, export

    register_search(sub)
    from .cli_supernet import register as register_supernet  # supernet (docs/one_shot.md)

    register_supernet(sub)
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
