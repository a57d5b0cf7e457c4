"""`archdsl search`, `archdsl status` and `archdsl export`: run a study and look at it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ArchDSLError
from .runner import DEFAULT_BUDGET, DEFAULT_SEARCHER, Progress, default_study_dir, search
from .space import Space, load
from .study import Study, Trial

__all__ = ["register", "write_results", "leaderboard"]


def register(sub: Any) -> None:
    from .search import SEARCHERS

    c = sub.add_parser("search", help="search a space; every trial is kept in a study folder")
    c.add_argument("file", nargs="?", help="the .arch file (optional with --resume)")
    c.add_argument("--searcher", choices=None, metavar="NAME",
                   help=f"{', '.join(SEARCHERS)} (default {DEFAULT_SEARCHER})")
    c.add_argument("--evaluator", metavar="E",
                   help="digits (default: train on scikit-learn's digits), nb201 (look up "
                        "NAS-Bench-201), or module:function (yours)")
    c.add_argument("--budget", type=int, metavar="N",
                   help=f"trials in the study in all (default {DEFAULT_BUDGET}, or none "
                        "with --time)")
    c.add_argument("--time", type=float, metavar="SECONDS", dest="seconds",
                   help="stop starting trials after this long")
    c.add_argument("--seed", type=int, help="the searcher's seed (default 0)")
    c.add_argument("--workers", type=int, default=1, metavar="W",
                   help="trials evaluated at once, each in its own process (default 1)")
    c.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                   help="a trial running longer fails (default: no limit)")
    c.add_argument("--study", metavar="DIR",
                   help="the study folder (default studies/<file name>)")
    c.add_argument("--resume", action="store_true", help="continue the study in --study")
    c.add_argument("--allow-changed", action="store_true",
                   help="resume even though the .arch file has changed")
    c.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default 10)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_search)

    c = sub.add_parser("status", help="the leaderboard of a study")
    c.add_argument("--study", metavar="DIR", required=True)
    c.add_argument("--top", type=int, default=10, help="rows (default 10)")
    c.add_argument("--json", action="store_true", help="the study as JSON")
    c.set_defaults(func=cmd_status)

    c = sub.add_parser("export", help="write a trial's architecture as .arch, .py or .json")
    c.add_argument("--study", metavar="DIR", required=True)
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--best", action="store_true", help="the best trial")
    which.add_argument("--trial", type=int, metavar="N", help="trial N")
    c.add_argument("-o", "--output", required=True,
                   help="OUT.arch (the space with every decision fixed), OUT.py (PyTorch "
                        "source) or OUT.json (the configuration)")
    c.set_defaults(func=cmd_export)


# ---- search ------------------------------------------------------------------------------
class _Bar(Progress):
    """A rich progress bar: trials done, best so far, time left."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Any = None

    def start(self, done: int, budget: int | None, seconds: float | None) -> None:
        if self.quiet:
            return
        from rich import progress as rp

        self.by_time = budget is None
        self.t0 = time.monotonic()
        self.bar = rp.Progress(rp.TextColumn("search"), rp.BarColumn(),
                               rp.MofNCompleteColumn(), rp.TextColumn("best {task.fields[best]}"),
                               rp.TimeElapsedColumn(), rp.TextColumn("left"),
                               rp.TimeRemainingColumn(), console=_console(sys.stderr))
        total = float(seconds) if self.by_time else float(budget or 0)
        self.task = self.bar.add_task("search", total=total, best="-",
                                      completed=0 if self.by_time else done)
        self.bar.start()

    def update(self, done: int, best: float | None, trial: Trial) -> None:
        if self.bar is None:
            return
        done_value = time.monotonic() - self.t0 if self.by_time else done
        self.bar.update(self.task, completed=done_value,
                        best="-" if best is None else f"{best:.4g}")
        if trial.status == "failed":
            self.bar.console.print(f"trial {trial.id} failed: {trial.error}", style="yellow",
                                   markup=False, highlight=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def cmd_search(args: argparse.Namespace) -> int:
    def log(msg: str) -> None:
        print(f"archdsl: {msg}", file=sys.stderr)

    study_dir = args.study
    if study_dir is None and args.file:
        study_dir = str(default_study_dir(args.file))
    if args.resume and study_dir is None:
        raise ArchDSLError("--resume needs --study DIR (or the .arch file of the study)")
    try:
        r = search(args.file, searcher=args.searcher, evaluator=args.evaluator,
                   budget=args.budget, seconds=args.seconds, seed=args.seed,
                   workers=args.workers, study_dir=study_dir, resume=args.resume,
                   allow_changed=args.allow_changed, trial_timeout=args.trial_timeout,
                   progress=_Bar(args.quiet), log=log)
    except KeyboardInterrupt:
        print(f"archdsl: interrupted; finished trials are kept in {study_dir}; continue with "
              f"`archdsl search --study {study_dir} --resume`", file=sys.stderr)
        return 1
    with r.study as study:
        if r.stopped == "exhausted":
            log("the searcher has nothing more to propose (the space is exhausted)")
        leaderboard(study, args.top)
        paths = write_results(study, r.space)
        for p in paths:
            print(f"wrote {p}", file=sys.stderr)
    return 0


def write_results(study: Study, space: Space) -> list[Path]:
    """best.arch, best.py, best.json and progress.png in the study folder."""
    best = study.best(1)
    out: list[Path] = []
    if best:
        t = best[0]
        arch = space.materialize(t.config)
        out.append(_write(study.folder / "best.json", json.dumps(
            {"trial": t.id, "objective": t.objective, "config": t.config}, indent=2) + "\n"))
        out.append(_write(study.folder / "best.arch", arch.to_arch()))
        from .backends.pytorch import source

        out.append(_write(study.folder / "best.py", source(arch)))
    png = plot(study, study.folder / "progress.png")
    if png is not None:
        out.append(png)
    return out


def plot(study: Study, path: Path) -> Path | None:
    """Best-so-far against trials and against time, as a PNG (None without finished trials)."""
    trials = [t for t in study.trials() if t.status in ("ok", "failed")]
    if not trials:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min(t.started for t in trials)
    xs, ends, ys, best, bests = [], [], [], float("-inf"), []
    for i, t in enumerate(trials, 1):
        xs.append(i)
        ends.append((t.started + (t.duration or 0.0) - t0) / 60)
        ys.append(t.objective)
        if t.objective is not None:
            best = max(best, t.objective)
        bests.append(best if best > float("-inf") else None)
    order = sorted(range(len(trials)), key=lambda i: ends[i])
    run, tb = float("-inf"), []
    for i in order:
        if ys[i] is not None:
            run = max(run, ys[i])
        tb.append(run if run > float("-inf") else None)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    a.scatter(xs, [y if y is not None else float("nan") for y in ys], s=12, color="0.6",
              label="trial")
    a.step(xs, [y if y is not None else float("nan") for y in bests], where="post",
           color="C0", label="best so far")
    a.set_xlabel("trial")
    a.set_ylabel("objective")
    a.legend(loc="lower right")
    b.step([ends[i] for i in order], [y if y is not None else float("nan") for y in tb],
           where="post", color="C0")
    b.set_xlabel("minutes since the study began")
    b.set_ylabel("best objective so far")
    meta = study.meta()
    fig.suptitle(f"{Path(meta['space_file']).name}: {meta['searcher']} search, "
                 f"{meta['evaluator']} evaluator, {len(trials)} trials")
    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return path


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, "utf-8")
    except OSError as e:
        raise ArchDSLError(f"cannot write {path}: {e.strerror or e}") from None
    return path


# ---- status and export -------------------------------------------------------------------
def _console(file: Any = None) -> Any:
    from rich.console import Console

    return Console(file=file, soft_wrap=False, highlight=False)


def leaderboard(study: Study, top: int) -> None:
    from rich.table import Table

    meta, counts = study.meta(), study.counts()
    finished = counts.get("ok", 0) + counts.get("failed", 0)
    title = (f"{Path(meta['space_file']).name}: {finished} trials "
             f"({counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed"
             + (f", {counts['interrupted']} interrupted" if counts.get("interrupted") else "")
             + f"); searcher {meta['searcher']}, evaluator {meta['evaluator']}")
    t = Table(title=title, title_justify="left")
    for col, just in [("rank", "right"), ("trial", "right"), ("objective", "right"),
                      ("params", "right"), ("flops", "right"), ("seconds", "right"),
                      ("architecture", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for rank, tr in enumerate(study.best(top), 1):
        m = tr.metrics
        t.add_row(str(rank), str(tr.id), f"{tr.objective:.4f}", _num(m.get("params")),
                  _num(m.get("flops")), f"{tr.duration:.2f}" if tr.duration is not None else "",
                  tr.arch_hash)
    _console().print(t)
    failed = study.trials("failed")
    if failed:
        print(f"last failure (trial {failed[-1].id}): {failed[-1].error}")


def _num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else ("" if v is None else str(v))


def cmd_status(args: argparse.Namespace) -> int:
    with Study.open(args.study) as study:
        if args.json:
            print(json.dumps({"study": str(study.folder), "meta": study.meta(),
                              "counts": study.counts(),
                              "best": [t.to_json() for t in study.best(args.top)]}, indent=2))
        else:
            leaderboard(study, args.top)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix not in (".arch", ".py", ".json"):
        raise ArchDSLError(f"cannot export to '{args.output}'",
                           hint="the output must end in .arch, .py or .json")
    with Study.open(args.study) as study:
        if args.best:
            best = study.best(1)
            if not best:
                raise ArchDSLError(f"the study in {args.study} has no successful trial yet")
            t = best[0]
        else:
            t = study.trial(args.trial)
        meta = study.meta()
    if out.suffix == ".json":
        text = json.dumps(t.config, indent=2) + "\n"
    else:
        arch = load(meta["space_file"]).materialize(t.config)
        if out.suffix == ".arch":
            text = arch.to_arch()
        else:
            from .backends.pytorch import source

            text = source(arch)
    _write(out, text)
    print(f"wrote {out} (trial {t.id}, objective {t.objective})", file=sys.stderr)
    return 0
