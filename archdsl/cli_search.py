"""`archdsl search`, `archdsl status` and `archdsl export`: run a study and look at it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, printable
from .runner import DEFAULT_BUDGET, DEFAULT_SEARCHER, Progress, default_study_dir, search
from .sources import add_import_path_option
from .space import load
from .study import Study, Trial
from .study_view import (
    console,
    curves_table,
    leaderboard,
    study_json,
    write_results,
    write_text,
)
from .user_ops import add_ops_option, import_study_ops, requested

__all__ = ["register"]


def register(sub: Any) -> None:
    from .search import SEARCHERS

    c = sub.add_parser("search", help="search a space; every trial is kept in a study folder")
    c.add_argument("file", nargs="?", help="the .arch file (optional with --resume)")
    c.add_argument("--searcher", choices=None, metavar="NAME",
                   help=f"{', '.join(SEARCHERS)} (default {DEFAULT_SEARCHER})")
    c.add_argument("--evaluator", metavar="E",
                   help="digits (default: train on scikit-learn's digits), train (train on "
                        "--data), nb201 (look up NAS-Bench-201), supernet:CHECKPOINT "
                        "(inherited weights of `archdsl supernet`; the default searcher is then "
                        "evolution), or module:function (yours)")
    c.add_argument("--data", metavar="DATA",
                   help="the train evaluator's data (implies --evaluator train): a .npz file "
                        "with x_train, y_train, x_valid, y_valid, or module:function "
                        "returning (train, valid)")
    c.add_argument("--device", metavar="D",
                   help="auto (default: a GPU when there is one), cpu, cuda, cuda:N or mps; "
                        "with W workers and G GPUs, worker i trains on GPU i mod G")
    c.add_argument("--scheduler", metavar="S",
                   help="stop poor trials early: none (default), median, sha, asha or "
                        "hyperband (docs/schedulers.md)")
    c.add_argument("--min-epochs", type=int, metavar="N",
                   help="the schedulers' first rung: epochs every trial trains (default 1)")
    c.add_argument("--reduction-factor", type=int, metavar="F",
                   help="the schedulers' eta: 1 in F trials goes on to the next rung "
                        "(default 3)")
    c.add_argument("--max-epochs", type=int, metavar="N",
                   help="the most epochs a trial trains, for sha and hyperband (default: "
                        "the epochs of the space's default architecture)")
    c.add_argument("--epoch-budget", type=int, metavar="E",
                   help="stop starting trials once E epochs were trained in all")
    c.add_argument("--objective", action="append", metavar="DIRECTION:NAME",
                   help="an objective, maximize:NAME or minimize:NAME (repeat for several: "
                        "the search keeps the Pareto front); NAME: objective, a metric of the "
                        "evaluator (accuracy, c10_valid_12, ...), params, flops or latency "
                        "(default: maximize:objective)")
    c.add_argument("--budget", type=int, metavar="N",
                   help=f"trials in the study in all (default {DEFAULT_BUDGET}, or none "
                        "with --time)")
    c.add_argument("--time", type=float, metavar="SECONDS", dest="seconds",
                   help="stop starting trials after this long")
    c.add_argument("--seed", type=int, help="the searcher's seed (default 0)")
    c.add_argument("--workers", type=int, metavar="W",
                   help="trials evaluated at once, each in its own process (default 1; at "
                        "most 4 per CPU core, and at least 8 are allowed; with --executor "
                        "dask, by default what the cluster's workers can run at once)")
    c.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                   help="a trial running longer fails (default: no limit)")
    c.add_argument("--executor", metavar="X",
                   help="local (default: worker processes on this machine) or dask (the "
                        "trials run on a Dask cluster; docs/distributed.md)")
    c.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="the Dask scheduler, tcp://HOST:PORT (default: $ARCHDSL_DASK_SCHEDULER"
                        "; implies --executor dask)")
    c.add_argument("--cluster", metavar="local:N",
                   help="start a Dask cluster of N worker processes on this machine for the "
                        "search (implies --executor dask)")
    c.add_argument("--gpus-per-trial", type=float, metavar="G",
                   help="the Dask worker resource GPU each trial takes (workers started with "
                        '--resources "GPU=1")')
    c.add_argument("--cpus-per-trial", type=float, metavar="C",
                   help="the Dask worker resource CPU each trial takes (workers started with "
                        '--resources "CPU=4")')
    c.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler and its first worker "
                        "(default 30)")
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
    add_ops_option(c)
    c.set_defaults(func=cmd_search)

    c = sub.add_parser("status", help="the leaderboard of a study")
    c.add_argument("--study", metavar="DIR", required=True)
    c.add_argument("--top", type=int, default=10, help="rows (default 10)")
    c.add_argument("--json", action="store_true",
                   help="the study as JSON (each listed trial with its reports)")
    c.add_argument("--curves", nargs="*", type=int, metavar="TRIAL",
                   help="the reports (trial, step, value) of these trials, or of the "
                        "leaderboard's when none is named")
    c.set_defaults(func=cmd_status)

    c = sub.add_parser("export", help="write a trial's architecture as .arch, .py, .json, "
                                      ".onnx or .pt")
    c.add_argument("--study", metavar="DIR", required=True)
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--best", action="store_true", help="the best trial")
    which.add_argument("--trial", type=int, metavar="N", help="trial N")
    which.add_argument("--pareto", action="store_true",
                       help="every trial of the Pareto front (several objectives), as "
                            "OUT/trial-N.arch and .py")
    c.add_argument("-o", "--output", required=True,
                   help="OUT.arch (the space with every decision fixed), OUT.py (PyTorch "
                        "source), OUT.json (the configuration), OUT.onnx or OUT.pt "
                        "(TorchScript)")
    c.add_argument("--seed", type=int, default=0,
                   help="the torch seed of the weights written to .onnx and .pt (default 0)")
    add_ops_option(c)
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

        self.t0 = time.monotonic()
        self.bar = rp.Progress(rp.TextColumn("search"), rp.BarColumn(),
                               rp.MofNCompleteColumn(), rp.TextColumn("best {task.fields[best]}"),
                               rp.TimeElapsedColumn(), rp.TextColumn("left"),
                               rp.TimeRemainingColumn(), console=console(sys.stderr))
        # by trials, else by time; with an --epoch-budget alone, no total (the bar pulses)
        total = (float(budget) if budget is not None else
                 float(seconds) if seconds is not None else None)
        self.by_time = budget is None and seconds is not None
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
                   progress=_Bar(args.quiet), import_paths=args.import_path, log=log,
                   data=args.data, device=args.device, scheduler=args.scheduler,
                   min_epochs=args.min_epochs, reduction_factor=args.reduction_factor,
                   max_epochs=args.max_epochs, epoch_budget=args.epoch_budget,
                   objectives=args.objective, ops=requested(args.ops),
                   executor=args.executor, dask_scheduler=args.dask_scheduler,
                   cluster=args.cluster, gpus_per_trial=args.gpus_per_trial,
                   cpus_per_trial=args.cpus_per_trial, connect_timeout=args.connect_timeout)
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
        if len(study.meta().get("objectives", [])) > 1:
            from .pareto_view import pareto_table

            pareto_table(study, args.top)
        paths = write_results(study, r.space)
        for p in paths:
            print(f"wrote {p}")
    return 0


# ---- status and export -------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    with Study.open(args.study) as study:
        several = len(study.meta().get("objectives", [])) > 1
        if args.json:
            shown = study_json(study, args.top)
            if several:
                from .pareto_view import pareto_json

                shown["pareto"] = pareto_json(study)
            print(json.dumps(shown, indent=2))
        elif args.curves is not None:
            curves_table(study, args.curves or None, args.top)
        else:
            leaderboard(study, args.top)
            if several:
                from .pareto_view import pareto_table

                pareto_table(study, args.top)
    return 0


_EXPORTS = (".arch", ".py", ".json", ".onnx", ".pt")


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if args.pareto:
        import_study_ops(Path(args.study), requested(args.ops))  # never from inside the study
        return _export_pareto(args.study, out)
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
            write_text(out, json.dumps(t.config, indent=2) + "\n")
        else:
            import_study_ops(Path(args.study), requested(args.ops))  # never from inside it
            arch = _architecture(study, t)
            if out.suffix.lower() == ".arch":
                write_text(out, arch.to_arch())
            else:
                _export(arch, out, args.seed)
    print(f"wrote {out} (trial {t.id}, objective {t.objective})")
    return 0


def _export_pareto(folder: str, out: Path) -> int:
    """Every front member as OUT/trial-N.arch and .py, from the study's own copy of its space."""
    from .pareto_view import export_pareto

    with Study.open(folder) as study:
        if len(study.meta().get("objectives", [])) < 2:
            raise ArchDSLError(f"the study in {folder} has one objective: it has no Pareto "
                               "front", hint="export its best with --best")
        space_file = study.space_path()
        space = load(space_file, study.import_paths_for(space_file, ()))
        for p in export_pareto(study, space, out):
            print(f"wrote {p}")
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
