"""`archdsl render`: a search space or one of its architectures as a neural circuit diagram."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, printable
from .sources import add_import_path_option
from .space import load, read_config
from .user_ops import add_ops_option, import_ops, requested

__all__ = ["register", "cmd_render"]


def register(sub: Any) -> None:
    """Add the `render` subcommand to the CLI's subparsers."""
    c = sub.add_parser("render", help="draw a space or an architecture (SVG, PNG, PDF or DOT)",
                       description="Draw the chosen architecture (default: every decision at "
                       "its default) or, with --space, the whole search space, as a neural "
                       "circuit diagram. The output's suffix picks the format; images need "
                       "graphviz's `dot` program, the .dot text does not. An architecture too "
                       "wide for a screen (about 2000 pixels) is drawn with its deeper blocks "
                       "as boxes, and its title says so: --depth N or --expand draws more.")
    c.add_argument("file")
    add_import_path_option(c)
    add_ops_option(c)
    which = c.add_mutually_exclusive_group()
    which.add_argument("--config", help="a JSON configuration to draw")
    which.add_argument("--sample", action="store_true", help="draw a sampled configuration")
    c.add_argument("--seed", type=int, default=0, help="the seed of --sample (default 0)")
    c.add_argument("--space", action="store_true", help="draw the search space itself; with "
                   "--config or --sample, the chosen lanes are bold and the rest faded")
    c.add_argument("--expand", action="store_true",
                   help="draw every copy of a repeat and every block where it stands, however "
                   "wide the drawing")
    c.add_argument("--depth", type=int, help="draw blocks (and a cell's named nodes) nested "
                   "deeper than this as one box (default for an architecture: as deep as fits "
                   "a screen)")
    c.add_argument("--params", action="store_true", help="write parameter counts")
    c.add_argument("--layout", choices=["LR", "TB"], default="LR",
                   help="left to right (default) or top to bottom")
    c.add_argument("-o", "--output", required=True, help="OUT.svg, OUT.png, OUT.pdf or OUT.dot")
    c.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from .backends.diagram import FORMATS, INSTALL_HINT, GraphvizMissing, architecture_dot, render

    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ArchDSLError(f"cannot draw to '{out}': unknown format '{out.suffix or out.name}'",
                           hint="the output must end in .svg, .png, .pdf or .dot")
    if args.depth is not None and args.depth < 0:
        raise ArchDSLError(f"--depth must be at least 0, got {args.depth}")
    import_ops(requested(args.ops))
    space = load(args.file, args.import_path)
    cfg = read_config(args.config) if args.config else \
        space.sample(args.seed) if args.sample else None
    if args.space:
        from .backends.diagram_space import space_dot

        text = space_dot(space, cfg, depth=args.depth, layout=args.layout)
    else:
        arch = space.materialize(cfg if cfg is not None else space.default())
        text = architecture_dot(arch, expand=args.expand, depth=args.depth, params=args.params,
                                layout=args.layout)
    if fmt != "dot" and shutil.which("dot") is None:
        dot_path = render(text, out.with_suffix(".dot"))
        print(f"wrote {printable(str(dot_path), False)}", file=sys.stderr)
        raise GraphvizMissing(f"cannot draw {out}: graphviz's `dot` program was not found; the "
                              f"diagram is in {dot_path}", hint=INSTALL_HINT)
    render(text, out)
    print(f"wrote {printable(str(out), False)}", file=sys.stderr)
    return 0
