"""`archdsl supernet`: train one weight-sharing supernet of a search space (archdsl.one_shot),
with a progress bar, and save it as a checkpoint for `--evaluator supernet:CHECKPOINT` and
`archdsl compile --weights-from CHECKPOINT`. Imports archdsl.one_shot lazily."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, printable
from .sources import add_import_path_option
from .space import load
from .user_ops import add_ops_option, import_ops, requested

__all__ = ["register", "cmd_supernet"]


def register(sub: Any) -> None:
    """Add the `supernet` subcommand to the CLI's subparsers."""
    c = sub.add_parser("supernet", help="train one weight-sharing supernet of a space",
                       description="Train one supernet holding every architecture of the space "
                       "(weights shared: docs/one_shot.md) and save it; then search with "
                       "`archdsl search FILE --evaluator supernet:CHECKPOINT` and export with "
                       "`archdsl compile FILE --config CFG --weights-from CHECKPOINT -o OUT.pt`.")
    c.add_argument("file")
    c.add_argument("--strategy", default="spos", metavar="S",
                   help="spos (default): single-path one-shot, one uniformly sampled "
                        "architecture per step; darts: every option mixed by softmax weights "
                        "learned by gradient (first-order), the derived configuration printed "
                        "as JSON")
    c.add_argument("--sandwich", action="store_true",
                   help="each step trains the largest, the smallest and a sampled architecture")
    c.add_argument("--data", metavar="DATA", default="digits",
                   help="digits (default), a .npz file with x_train, y_train, x_valid, y_valid, "
                        "or module:function returning (train, valid) (docs/training.md)")
    c.add_argument("--epochs", type=int, metavar="N",
                   help="epochs (default: the space's train section's, at its default)")
    c.add_argument("--lr", type=float, help="learning rate (default: the train section's)")
    c.add_argument("--batch", type=int, help="batch size (default: the train section's)")
    c.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after N optimizer steps in all")
    c.add_argument("--device", metavar="D", default="auto",
                   help="auto (default: a GPU when there is one), cpu, cuda, cuda:N or mps")
    c.add_argument("--threads", type=int, metavar="N",
                   help="torch's CPU threads (default: torch's own; 1 is fastest on a busy "
                        "machine)")
    c.add_argument("--seed", type=int, default=0, help="the seed of weights and paths "
                   "(default 0)")
    c.add_argument("-o", "--output", required=True, metavar="CHECKPOINT",
                   help="the checkpoint to write (e.g. supernet.pt)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_import_path_option(c)
    add_ops_option(c)
    c.set_defaults(func=cmd_supernet)


class _Bar:
    """A rich progress bar: steps done, the epoch, its mean training loss, time left."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.task = quiet, None, None

    def __call__(self, step: int, total: int, loss: float, epoch: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from rich import progress as rp

            from .study_view import console

            self.bar = rp.Progress(rp.TextColumn("supernet"), rp.BarColumn(),
                                   rp.MofNCompleteColumn(),
                                   rp.TextColumn("epoch {task.fields[epoch]} loss "
                                                 "{task.fields[loss]}"),
                                   rp.TimeElapsedColumn(), rp.TextColumn("left"),
                                   rp.TimeRemainingColumn(), console=console(sys.stderr))
            self.task = self.bar.add_task("supernet", total=total, epoch=epoch, loss="-")
            self.bar.start()
        self.bar.update(self.task, completed=step, epoch=epoch, loss=f"{loss:.4f}")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def cmd_supernet(args: argparse.Namespace) -> int:
    from .one_shot import train_supernet

    out = Path(args.output)
    if out.is_dir():
        raise ArchDSLError(f"-o {args.output} is a folder; give the checkpoint's file name")
    import_ops(requested(args.ops))
    space = load(args.file, args.import_path)
    bar = _Bar(args.quiet)
    try:
        run = train_supernet(space, data=args.data, strategy=args.strategy,
                             epochs=args.epochs, sandwich=args.sandwich, device=args.device,
                             seed=args.seed, lr=args.lr, batch=args.batch,
                             max_steps=args.max_steps, threads=args.threads, progress=bar,
                             log=lambda m: print(f"archdsl: {m}", file=sys.stderr))
    finally:
        bar.stop()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        run.supernet.save(out)
    except OSError as e:
        raise ArchDSLError(f"cannot write {args.output}: {e.strerror or e}") from None
    m = run.meta
    if "derived" in m:  # darts: the architecture it derives, as a configuration file takes it
        print(json.dumps(m["derived"], indent=2))
    print(f"wrote {printable(str(out), False)} ({m['steps']} step{'s' if m['steps'] != 1 else ''} "
          f"in {m['epochs']} epoch"
          f"{'s' if m['epochs'] != 1 else ''}, last epoch's training loss "
          f"{m['train_loss']:.4f}, {m['seconds']:.1f} s)", file=sys.stderr)
    return 0
