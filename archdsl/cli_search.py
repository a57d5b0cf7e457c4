"""`archdsl search`, `archdsl status` and `archdsl export`: run a study and look at it."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, printable
from .runner import DEFAULT_BUDGET, DEFAULT_SEARCHER, Progress, default_study_dir, search
from .sources import add_import_path_option
from .space import Space, load
from .study import Study, Trial
from .study_sources import os_error

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
                   help="trials evaluated at once, each in its own process (default 1; at "
                        "most 4 per CPU core, and at least 8 are allowed)")
    c.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                   help="a trial running longer fails (default: no limit)")
    c.add_argument("--study", metavar="DIR",
                   help="the study folder (default studies/<file name>)")
    c.add_argument("--resume", action="store_true",
                   help="continue the study in --study (a study whose evaluator is "
                        "module:function needs --evaluator naming it again)")
    c.add_argument("--allow-changed", action="store_true",
                   help="resume even though the .arch file has changed")
    c.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default 10)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_import_path_option(c)
    c.set_defaults(func=cmd_search)

    c = sub.add_parser("status", help="the leaderboard of a study")
    c.add_argument("--study", metavar="DIR", required=True)
    c.add_argument("--top", type=int, default=10, help="rows (default 10)")
    c.add_argument("--json", action="store_true", help="the study as JSON")
    c.set_defaults(func=cmd_status)

    c = sub.add_parser("export", help="write a trial's architecture as .arch, .py, .json, "
                                      ".onnx or .pt")
    c.add_argument("--study", metavar="DIR", required=True)
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--best", action="store_true", help="the best trial")
    which.add_argument("--trial", type=int, metavar="N", help="trial N")
    c.add_argument("-o", "--output", required=True,
                   help="OUT.arch (the space with every decision fixed), OUT.py (PyTorch "
                        "source), OUT.json (the configuration), OUT.onnx or OUT.pt "
                        "(TorchScript)")
    c.add_argument("--seed", type=int, default=0,
                   help="the torch seed of the weights written to .onnx and .pt (default 0)")
    c.set_defaults(func=cmd_export)


# ---- search ------------------------------------------------------------------------------
class _Bar(Progress):
    """A rich progress bar: trials done, best so far, time left."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Any = None

    def start(self, done: int, budget: int | None, seconds: float | None,
              best: float | None = None) -> None:
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
        self.task = self.bar.add_task("search", total=total, best=_best(best),
                                      completed=0 if self.by_time else done)
        self.bar.start()

    def update(self, done: int, best: float | None, trial: Trial) -> None:
        if self.bar is None:
            return
        done_value = time.monotonic() - self.t0 if self.by_time else done
        self.bar.update(self.task, completed=done_value, best=_best(best))
        if trial.status == "failed":
            self.bar.console.print(f"trial {trial.id} failed: {printable(trial.error or '', False)}",
                                   style="yellow", markup=False, highlight=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _best(best: float | None) -> str:
    return "-" if best is None else f"{best:.4g}"


def cmd_search(args: argparse.Namespace) -> int:
    def log(msg: str) -> None:
        print(f"archdsl: {printable(msg)}", file=sys.stderr)  # names from the study, escaped

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
                   progress=_Bar(args.quiet), import_paths=args.import_path, log=log)
    except KeyboardInterrupt:
        if study_dir is not None and (Path(study_dir) / "study.db").exists():
            print(f"archdsl: interrupted; finished trials are kept in {study_dir}; continue "
                  f"with `archdsl search --study {study_dir} --resume`", file=sys.stderr)
        else:
            print("archdsl: interrupted before the search started; nothing was written",
                  file=sys.stderr)
        return 1
    with r.study as study:
        if r.stopped == "exhausted":
            log("the searcher has nothing more to propose (the space is exhausted)")
        leaderboard(study, args.top)
        paths = write_results(study, r.space)
        for p in paths:
            print(f"wrote {p}")
    return 0


def write_results(study: Study, space: Space) -> list[Path]:
    """best.arch, best.py, best.json and progress.png in the study folder."""
    out: list[Path] = []
    fitting = _best_fitting(study, space)
    if fitting is not None:
        t, arch = fitting
        out.append(_write(study.folder / "best.json", json.dumps(
            {"trial": t.id, "objective": t.objective, "config": t.config}, indent=2) + "\n"))
        out.append(_write(study.folder / "best.arch", arch.to_arch()))
        from .backends.pytorch import source

        out.append(_write(study.folder / "best.py", source(arch)))
    png = plot(study, study.folder / "progress.png")
    if png is not None:
        out.append(png)
    return out


def _best_fitting(study: Study, space: Space) -> tuple[Trial, Any] | None:
    """The best trial whose configuration fits `space` (after --allow-changed the best ones
    may not), with its architecture."""
    for t in study.best(study.counts().get("ok", 0)):
        try:
            return t, space.materialize(t.config)
        except ArchDSLError:
            continue
    return None


def plot(study: Study, path: Path) -> Path | None:
    """progress.png: `progress_figure` saved to `path` (None without a successful trial)."""
    fig = progress_figure(study)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise os_error("write", path, e) from None  # a full disk says so
    finally:
        plt.close(fig)
    return path


def progress_figure(study: Study) -> Any:
    """Each trial and the best so far, against trials and against time (a matplotlib Figure;
    None without a successful trial). The time is the evaluator's simulated `cost` where
    every successful trial reports one (NAS-Bench-201 lookups), else the wall clock."""
    trials = [t for t in study.trials() if t.status in ("ok", "failed")]
    if not any(t.objective is not None for t in trials):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    nan = float("nan")
    xs = list(range(1, len(trials) + 1))
    ys = [nan if t.objective is None else t.objective for t in trials]
    times, time_label = _times(trials)
    bests = _best_so_far(ys)
    order = sorted(range(len(trials)), key=lambda i: times[i])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, constrained_layout=True)
    a.scatter(xs, ys, s=12, color="0.6", label="trial")
    a.step(xs, bests, where="post", color="C0", label="best so far")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_xlabel("trial")
    meta = study.meta()
    a.set_ylabel(_SHOWN.get(meta["evaluator"], ("objective",))[0])
    a.legend(loc="best")
    b.scatter(times, ys, s=12, color="0.6")
    b.step([times[i] for i in order], _best_so_far([ys[i] for i in order]), where="post",
           color="C0")
    b.set_xlabel(time_label)
    values = [y for y in ys if y == y]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or abs(hi) * 0.06 or 0.05
    a.set_ylim(lo - pad, hi + pad)  # every trial's value in view, the worst included
    # stored names are shown as text: a '$' in a file name is not mathtext
    fig.suptitle(printable(f"{Path(meta['space_file']).name}: {meta['searcher']} search, "
                           f"{meta['evaluator']} evaluator, {len(trials)} trials", False),
                 parse_math=False)
    return fig


def _best_so_far(ys: list[float]) -> list[float]:
    out, best = [], float("nan")
    for y in ys:
        if y == y and not best > y:
            best = y
        out.append(best)
    return out


def _times(trials: list[Trial]) -> tuple[list[float], str]:
    """When each trial ended: the evaluator's simulated cost added up (in trial order) where
    every successful trial reports a `cost` in seconds, else the wall clock; in minutes, or
    hours past two of them."""
    costs = [t.metrics.get("cost") for t in trials]
    simulated = all(_is_number(c) for c, t in zip(costs, trials, strict=True) if t.status == "ok")
    if simulated:
        ends, total = [], 0.0
        for c in costs:
            total += c if _is_number(c) else 0.0
            ends.append(total)
        what = "simulated training time (the evaluator's cost)"
    else:
        t0 = min(t.started for t in trials)
        ends = [t.started + (t.duration or 0.0) - t0 for t in trials]
        what = "time since the study began"
    if max(ends) > 2 * 3600:
        return [e / 3600 for e in ends], f"{what}, hours"
    return [e / 60 for e in ends], f"{what}, minutes"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _write(path: Path, text: str) -> Path:
    try:
        path.write_text(text, "utf-8")
    except OSError as e:
        raise os_error("write", path, e) from None  # a full disk says so
    return path


# ---- status and export -------------------------------------------------------------------
def _console(file: Any = None) -> Any:
    """A rich console; where output is not a terminal (a file, a pipe), wide enough that no
    column of the leaderboard is cut short."""
    from rich.console import Console

    console = Console(file=file, soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 200)
    return console


# the name of the objective, and the metrics worth a column, for the evaluators archdsl ships;
# another evaluator's numeric metrics are shown as they come (up to _MAX_METRICS)
_SHOWN: dict[str, tuple[str, list[str]]] = {
    "digits": ("accuracy", ["valid_loss", "train_seconds"]),
    "nb201": ("c10_valid_12", ["c10_valid_200", "c10_test_200", "cost"]),
}
_MAX_METRICS = 4
_STATIC = ("params", "flops")  # from static shapes, for every trial: columns of their own


def leaderboard(study: Study, top: int) -> None:
    """The best `top` trials as a table: objective, the evaluator's own metrics, params,
    flops, seconds and the architecture's hash."""
    from rich.table import Table
    from rich.text import Text

    meta, counts = study.meta(), study.counts()
    finished = counts.get("ok", 0) + counts.get("failed", 0)
    title = (f"{Path(meta['space_file']).name}: {finished} trials "
             f"({counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed"
             + (f", {counts['interrupted']} interrupted" if counts.get("interrupted") else "")
             + f"); searcher {meta['searcher']}, evaluator {meta['evaluator']}")
    best = study.best(top)
    objective, metrics = _columns(meta["evaluator"], best)
    t = Table()
    for col, just in [("rank", "right"), ("trial", "right"), (objective, "right"),
                      *[(m, "right") for m in metrics], ("params", "right"),
                      ("flops", "right"), ("seconds", "right"), ("architecture", "left")]:
        t.add_column(Text(printable(col, False)), justify=just)  # type: ignore[arg-type]
    largest = {k: max((abs(t.metrics[k]) for t in best if _is_number(t.metrics.get(k))),
                      default=0.0) for k in metrics}
    for rank, tr in enumerate(best, 1):
        m = tr.metrics
        cells = [str(rank), str(tr.id), f"{tr.objective:.4f}",
                 *[_num(m.get(k), largest[k]) for k in metrics],
                 _num(m.get("params")), _num(m.get("flops")),
                 f"{tr.duration:.2f}" if tr.duration is not None else "", tr.arch_hash]
        t.add_row(*[Text(printable(c, False)) for c in cells])
    console = _console()
    console.print(Text(printable(title, False)))  # above the table, never wrapped to its width
    console.print(t)
    failed = study.trials("failed")
    if failed:
        print(f"last failure (trial {failed[-1].id}): {printable(failed[-1].error or '', False)}")


def _columns(evaluator: str, trials: list[Trial]) -> tuple[str, list[str]]:
    """The objective's column name and the metric columns for these trials."""
    if evaluator in _SHOWN:
        name, wanted = _SHOWN[evaluator]
        return name, [k for k in wanted if any(k in t.metrics for t in trials)]
    keys: list[str] = []
    for t in trials:
        keys += [k for k, v in t.metrics.items() if k not in keys and k not in _STATIC
                 and _is_number(v)]
    return "objective", keys[:_MAX_METRICS]


def _num(v: Any, largest: float = 0.0) -> str:
    """A figure for a cell; floats get the decimals that suit the column's `largest` value
    (four for fractions, two for figures like 93.65, none past 10,000)."""
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        top = max(abs(largest), abs(v)) if math.isfinite(v) else abs(largest)
        return f"{v:,.{4 if top < 1 else 2 if top < 10_000 else 0}f}"
    return str(v)


def cmd_status(args: argparse.Namespace) -> int:
    with Study.open(args.study) as study:
        if args.json:
            print(json.dumps({"study": str(study.folder), "meta": study.meta(),
                              "counts": study.counts(),
                              "best": [t.to_json() for t in study.best(args.top)]}, indent=2))
        else:
            leaderboard(study, args.top)
    return 0


_EXPORTS = (".arch", ".py", ".json", ".onnx", ".pt")


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix.lower() not in _EXPORTS:
        raise ArchDSLError(f"cannot export to '{args.output}'",
                           hint="the output must end in " + ", ".join(_EXPORTS[:-1])
                                + f" or {_EXPORTS[-1]}")
    with Study.open(args.study) as study:
        if args.best:
            best = study.best(1)
            if not best:
                raise ArchDSLError(f"the study in {args.study} has no successful trial yet")
            t = best[0]
        else:
            t = study.trial(args.trial)
        if out.suffix.lower() == ".json":
            _write(out, json.dumps(t.config, indent=2) + "\n")
        else:
            arch = _architecture(study, t)
            if out.suffix.lower() == ".arch":
                _write(out, arch.to_arch())
            else:
                _export(arch, out, args.seed)
    print(f"wrote {out} (trial {t.id}, objective {t.objective})")
    return 0


def _architecture(study: Study, t: Trial) -> Any:
    """Trial `t`'s architecture, from the study's own copy of its space."""
    space_file = study.space_path()
    space = load(space_file, study.import_paths_for(space_file, ()))
    try:
        return space.materialize(t.config)
    except ArchDSLError as e:
        raise study.misfit(t, e) from None


def _export(arch: Any, out: Path, seed: int) -> None:
    """`.py`, `.onnx` or `.pt` through the PyTorch backend, weights from torch seed `seed`."""
    from .backends import pytorch

    pytorch.export(arch, out, seed=seed)
