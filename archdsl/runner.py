"""A search from its settings: check them all, open or create the study, start the workers,
then run the loop (archdsl.search_loop).

    from archdsl.runner import search
    study = search("examples/digits.arch", searcher="smbo", budget=20, study_dir="runs/d")

Trials are written to the study as they start and end. Stopping (budget reached, time up,
space exhausted, Ctrl-C) leaves the study consistent: finished trials are kept, trials in
progress when Ctrl-C came are marked `interrupted` and evaluated again on `resume`.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dask_settings import dask_settings
from .devices import check_device
from .errors import ArchDSLError, EvaluationError, StudyError, did_you_mean
from .evaluators import Evaluator, as_evaluator, get_evaluator
from .executor import Executor, LocalExecutor, SerialExecutor, check_workers, prepare
from .executor_dask import DaskExecutor, SchedulerLost
from .objectives import DEFAULT as DEFAULT_OBJECTIVES
from .objectives import Objective, from_json, parse_objectives, to_json
from .reach import reach_warnings
from .reporting import takes_reporter
from .schedulers import make_scheduler
from .search import make_searcher, searcher_class
from .search_loop import Loop, Progress
from .space import Space, load
from .study import Study, space_hash
from .study_checks import EVALUATOR_NAME
from .user_ops import check_resumed_ops, import_ops, refuse_inside, stored_ops

__all__ = ["search", "default_study_dir", "Progress", "DEFAULT_BUDGET", "DEFAULT_SEARCHER",
           "SearchResult"]

DEFAULT_BUDGET = 20  # trials, when neither a budget nor a time is given
DEFAULT_SEARCHER = "smbo"  # the best of them on NAS-Bench-201 (README, "Search benchmark")
ONE_SHOT_SEARCHER = "evolution"  # with a supernet's inherited weights (docs/one_shot.md)


@dataclass
class SearchResult:
    study: Study
    space: Space
    new_trials: int
    stopped: str  # budget, time, exhausted, interrupted


def search(file: str | Path | None = None, searcher: str | None = None,
           evaluator: str | None = None, budget: int | None = None,
           seconds: float | None = None, seed: int | None = None, workers: int | None = None,
           study_dir: str | Path | None = None, resume: bool = False,
           allow_changed: bool = False, trial_timeout: float | None = None,
           progress: Progress | None = None,
           evaluator_object: Evaluator | Callable[..., Any] | None = None,
           import_paths: Sequence[str | Path] = (),
           log: Callable[[str], None] = lambda s: None, *,
           data: str | None = None, device: str | None = None, scheduler: str | None = None,
           min_epochs: int | None = None, reduction_factor: int | None = None,
           max_epochs: int | None = None, epoch_budget: int | None = None,
           objectives: Sequence[str] | None = None,
           ops: Sequence[str] | None = None, executor: str | None = None,
           dask_scheduler: str | None = None, cluster: str | None = None,
           gpus_per_trial: float | None = None, cpus_per_trial: float | None = None,
           connect_timeout: float | None = None) -> SearchResult:
    """Run (or resume) a search; see `archdsl search --help` for the meaning of each setting.

    `evaluator_object` evaluates in this process instead of in worker processes: an object
    with an `evaluate(arch)` method, or a plain function `fn(arch)`; either gets an
    `archdsl.Architecture` and returns a number or a dict holding "objective" (`workers` and
    `trial_timeout` are then ignored). One that takes a second argument, `evaluate(arch,
    reporter)`, reports as it trains (`archdsl.reporting`). Each result is told to the
    searcher before it proposes the next configuration. `import_paths` are folders the
    space's imports may read besides its own folder tree (`archdsl.load`'s), for this process
    and the workers alike.

    `data` (with the `train` evaluator, which it implies) is a .npz file or `module:function`;
    `device` is auto (the default), cpu, cuda, cuda:N or mps; `scheduler` (none, median, sha,
    asha, hyperband) stops poor trials early, with `min_epochs`, `reduction_factor` and
    `max_epochs`; `epoch_budget` stops starting trials once that many epochs were trained.
    `objectives` (`["maximize:accuracy", "minimize:params"]`; archdsl.objectives) makes the
    search multi-objective: the searchers are told every objective, the study keeps the Pareto
    front. `ops` names modules that register operations (archdsl.user_ops), imported here and
    in every worker before the space is loaded; the study keeps them, and resuming it needs
    each named again.

    `executor` is local (the default: `workers` processes here) or dask: the trials run on a
    Dask cluster (docs/distributed.md), the scheduler at `dask_scheduler` (tcp://HOST:PORT;
    else the environment's ARCHDSL_DASK_SCHEDULER) or a `cluster` of N worker processes
    started here ("local:N"); each trial asks for the worker resources `gpus_per_trial` (GPU)
    and `cpus_per_trial` (CPU); `workers` bounds the trials in flight (by default, what the
    cluster's workers can run at once); `connect_timeout` is how long to wait for the
    scheduler and its first worker (default 30 s). Giving `dask_scheduler` or `cluster`
    implies dask. These settings are not stored: give them again with `resume`.

    Nothing is written until the search can start: settings, the space, the searcher (`grid`
    refuses a continuous space), the scheduler, the device and the workers (each loads the
    space and the evaluator, and checks the data) are checked first. A search in which every
    trial failed raises EvaluationError naming the first failure (the trials are kept in the
    study)."""
    if study_dir is None:
        if file is None:
            raise ArchDSLError("give a .arch file to search, or --study DIR --resume")
        study_dir = default_study_dir(file)
    study_dir = Path(study_dir)
    for option, n in (("--budget", budget), ("--epoch-budget", epoch_budget)):
        if n is not None and n < 1:
            raise ArchDSLError(f"{option} must be at least 1, got {n}")
    for option, value in (("--time", seconds), ("--trial-timeout", trial_timeout)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ArchDSLError(f"{option} must be a positive number of seconds, got {value:g}")
    dask = dask_settings(executor, dask_scheduler, cluster, gpus_per_trial, cpus_per_trial,
                         connect_timeout)
    if dask is None:
        workers = 1 if workers is None else workers
        check_workers(workers)
    elif workers is not None and workers < 1:
        raise ArchDSLError(f"--workers must be at least 1, got {workers}")
    if isinstance(scheduler, str) and "://" in scheduler:
        raise ArchDSLError(f"--scheduler {scheduler}: --scheduler names the early-stopping "
                           "scheduler (none, median, sha, asha or hyperband)",
                           hint=f"a Dask scheduler's address goes in --dask-scheduler "
                                f"{scheduler} (with --executor dask)")
    if not resume and file is None:
        raise ArchDSLError("give a .arch file to search")
    objs = parse_objectives(objectives) if objectives else None
    own = as_evaluator(evaluator_object) if evaluator_object is not None else None
    if own is not None and dask is not None:
        raise ArchDSLError("an evaluator object runs in this process, so it cannot run on a "
                           "Dask cluster", hint="name it as evaluator='module:function' (a "
                           "module the workers can import), or leave the dask executor out")
    modules = list(dict.fromkeys(ops or ()))
    study = Study.open(study_dir) if resume else None
    ex: Executor | None = None
    try:
        given = {"evaluator": evaluator, "seed": seed, "data": data, "scheduler": scheduler,
                 "min_epochs": min_epochs, "reduction_factor": reduction_factor,
                 "max_epochs": max_epochs}
        if study is not None:
            study.lock()
            meta = study.meta()
            _check_resumed_evaluator(study_dir, meta["evaluator"], evaluator, own is not None)
            check_resumed_ops(study_dir, stored_ops(meta, study_dir), modules)
            refuse_inside(modules, study_dir)
            import_ops(modules)  # before the study's space is loaded
            _check_resumed_data(study_dir, meta.get("data"), data)
            study._refuse_own_module(meta.get("data") or "")  # never imported from inside it
            file = study.resume_space(file, allow_changed, log, import_paths)  # its copy
            import_paths = study.import_paths_for(file, import_paths)  # the copy's, for it
            stored = {**_OLD_STUDY, **meta}
            kept = from_json(meta.get("objectives"))
            if objs is not None and objs != kept:
                raise StudyError(f"the study in {study_dir} was run with the objectives "
                                 f"{' '.join(to_json(kept))}, not {' '.join(to_json(objs))}",
                                 hint="leave --objective out to resume it as it was")
            objs = kept
            if meta["evaluator"].startswith("supernet:"):
                _check_supernet_scores(study_dir, study)
            for key, value in given.items():
                if value is not None and value != stored[key]:
                    option = "--" + key.replace("_", "-")
                    raise StudyError(f"the study in {study_dir} was run with {option} "
                                     f"{stored[key]}, not {value}",
                                     hint=f"leave {option} out to resume it as it was")
            evaluator, seed, data = meta["evaluator"], meta["seed"], stored["data"]
            scheduler, min_epochs = stored["scheduler"], stored["min_epochs"]
            reduction_factor, max_epochs = stored["reduction_factor"], stored["max_epochs"]
            searcher = searcher or meta["searcher"]
            budget = budget if budget is not None else meta.get("budget")
            epoch_budget = epoch_budget if epoch_budget is not None else meta.get("epoch_budget")
            device = device or stored["device"]
            if trial_timeout is None:
                trial_timeout = meta.get("trial_timeout")
        else:
            import_ops(modules)  # before the evaluator and the space
            if data is not None and evaluator is None:
                evaluator = "train"  # --data names the train evaluator's data
            evaluator = evaluator or "digits"
            searcher = searcher or (ONE_SHOT_SEARCHER if evaluator.startswith("supernet:")
                                    else DEFAULT_SEARCHER)
            seed = 0 if seed is None else seed
            scheduler = scheduler or "none"
            min_epochs = 1 if min_epochs is None else min_epochs
            reduction_factor = 3 if reduction_factor is None else reduction_factor
            device = device or "auto"
            objs = objs or DEFAULT_OBJECTIVES
            if budget is None and seconds is None and epoch_budget is None:
                budget = DEFAULT_BUDGET
        _check_data(evaluator, data, own is not None)
        options = {"data": data} if evaluator == "train" and own is None else {}
        searcher_class(searcher)  # an unknown name fails before anything is made or stored
        make_scheduler(scheduler, min_steps=min_epochs, reduction_factor=reduction_factor,
                       max_steps=max_epochs)  # as does a scheduler's bad option
        _check_device(device, dask is not None)
        if own is None:
            if evaluator.startswith("__main__:"):
                raise ArchDSLError(f"evaluator '{evaluator}': worker processes do not run your "
                                   "script, so they cannot find a function in its __main__",
                                   hint="pass the function itself: search(..., "
                                        "evaluator_object=fn), or move it to a module")
            ev = get_evaluator(evaluator, **options)  # as does one that cannot be found
        else:
            ev = own
        space = load(file, import_paths)
        for w in reach_warnings(space):  # its options all build one architecture: say so
            log(w.format().split("\n")[0] + "; the search sees one architecture for them all")
        sh = space_hash(space.ir.files)
        if study is not None:
            _check_space(study.meta(), sh, allow_changed, file)
        _check_objectives(objs, ev, evaluator if own is None else None)
        if own is None:
            prepare(ev, space)  # the data checked here, where an error keeps its hint and span
        if scheduler != "none":
            _check_scheduled(scheduler, searcher, evaluator if own is None else None, ev)
            if max_epochs is None:
                max_epochs = _default_max_epochs(scheduler, ev, space)
        sched = make_scheduler(scheduler, min_steps=min_epochs,
                               reduction_factor=reduction_factor, max_steps=max_epochs)
        s = make_searcher(searcher, space, seed=seed,
                          **({"objectives": len(objs)} if len(objs) > 1 else {}))
        if own is not None:
            ex = SerialExecutor(space, own, device)
        elif dask is not None:
            ex = DaskExecutor(space.file, evaluator, workers, trial_timeout, import_paths,
                              options, device, modules, address=dask.address,
                              cluster=dask.cluster, connect_timeout=dask.connect_timeout,
                              gpus_per_trial=dask.resources.get("GPU", 0),
                              cpus_per_trial=dask.resources.get("CPU", 0), log=log)
        else:
            ex = LocalExecutor(space.file, evaluator, workers or 1, trial_timeout,
                               import_paths, options, device, modules)
        settings = {"searcher": searcher, "budget": budget, "trial_timeout": trial_timeout,
                    "epoch_budget": epoch_budget, "device": device, "ops": modules}
        if study is None:
            study = Study.create(study_dir, {"space_file": str(Path(file).resolve()),
                                             "space_hash": sh, "evaluator": evaluator,
                                             "seed": seed, "data": data,
                                             "scheduler": scheduler, "min_epochs": min_epochs,
                                             "reduction_factor": reduction_factor,
                                             "max_epochs": max_epochs,
                                             "objectives": to_json(objs), **settings},
                                 sources=space.ir.files,  # locked; on failure, removed
                                 import_paths=import_paths)
        else:
            meta = study.meta()
            changed = {k: v for k, v in {**settings, "space_hash": sh,
                                         "max_epochs": max_epochs}.items()
                       if meta.get(k) != v}
            if changed:
                study.set_meta(**changed)
            study.keep_sources(space.ir.files, import_paths)  # a changed space is copied
        loop = Loop(study, space, sh, s, sched, ex, budget, seconds, epoch_budget,
                    keep_state=scheduler != "none", objectives=objs,
                    progress=progress or Progress(), log=log)
        stopped = loop.run()
        if stopped == "exhausted" and s.gave_up:
            log(s.gave_up)
        _check_some_succeeded(study)
        return SearchResult(study, space, loop.new, stopped)
    except SchedulerLost as e:
        if ex is not None:
            ex.close()
        if study is not None:
            study.close()
        raise SchedulerLost(e.message, hint="continue with `archdsl search --study "
                            f"{shlex.quote(str(study_dir))} --resume` and the same --executor "
                            "settings, once the scheduler is back") from None
    except BaseException:
        if ex is not None:
            ex.close()
        if study is not None:
            study.close()
        raise


# what a study made before issue 13 ran with
_OLD_STUDY: dict[str, Any] = {"data": None, "scheduler": "none", "min_epochs": 1,
                              "reduction_factor": 3, "max_epochs": None, "device": "cpu",
                              "epoch_budget": None}


# what every trial's results hold besides the evaluator's own
_ALWAYS = ("objective", "params", "flops", "latency")


def _check_objectives(objs: tuple[Objective, ...], ev: Evaluator, name: str | None) -> None:
    """Objectives the evaluator is known not to return are refused before anything runs."""
    known = getattr(ev, "metrics", None)
    if known is None:
        return
    have = sorted({*known, *_ALWAYS})
    for o in objs:
        if o.name not in have:
            who = f"the evaluator '{name}'" if name else "your evaluator"
            raise ArchDSLError(f"--objective {o}: {who} does not return '{o.name}'",
                               hint=did_you_mean(o.name, have) or "it returns: "
                               + ", ".join(have))


def _check_device(device: str, remote: bool) -> None:
    """The device must be one this machine has; on a Dask cluster, where the workers train,
    only its spelling is checked here (each worker checks the rest as it starts)."""
    try:
        check_device(device)
    except ArchDSLError as e:
        if not remote or e.message.startswith("unknown device"):
            raise


def _check_data(evaluator: str, data: str | None, own: bool) -> None:
    """--data goes with the train evaluator, which needs it."""
    if own:
        if data is not None:
            raise ArchDSLError("data= is for the train evaluator; your evaluator object "
                               "loads its own data")
        return
    if evaluator == "train" and data is None:
        raise ArchDSLError("--evaluator train needs --data: a .npz file (x_train, y_train, "
                           "x_valid, y_valid), module:function, or digits")
    if evaluator != "train" and data is not None:
        raise ArchDSLError(f"--data is for the train evaluator, not '{evaluator}'",
                           hint="leave --evaluator out (--data implies train), or give "
                                "--evaluator train")


def _check_scheduled(scheduler: str, searcher: str, evaluator: str | None,
                     ev: Evaluator) -> None:
    """A scheduler needs an evaluator that reports as it trains, and a searcher that can
    learn from trials stopped early."""
    if not searcher_class(searcher).schedulers:
        raise ArchDSLError(f"--searcher {searcher} cannot be used with --scheduler "
                           f"{scheduler}: it evaluates every architecture fully, in order",
                           hint="use random (or another searcher) with a scheduler, or "
                                "leave --scheduler out")
    if not takes_reporter(ev):
        name = f"the evaluator '{evaluator}'" if evaluator else "your evaluator"
        raise ArchDSLError(f"--scheduler {scheduler} needs an evaluator that reports as it "
                           f"trains; {name} does not",
                           hint="an evaluator reports when it takes a reporter: "
                                "evaluate(arch, reporter) calling reporter.report(step, value)"
                                " (docs/training.md); train and digits do")


def _default_max_epochs(scheduler: str, ev: Evaluator, space: Space) -> int | None:
    """--max-epochs by default: the epochs of the space's default architecture, where the
    evaluator says (`steps(arch)`); sha and hyperband need one."""
    steps = getattr(ev, "steps", None)
    if callable(steps):
        try:
            n = steps(space.materialize(space.default()))
        except ArchDSLError:
            n = None
        if isinstance(n, int) and n >= 1:
            return n
    if scheduler in ("sha", "hyperband"):
        raise ArchDSLError(f"--scheduler {scheduler} needs --max-epochs: the evaluator does "
                           "not say how many epochs a trial trains")
    return None


def default_study_dir(file: str | Path) -> Path:
    """Where a search of `file` keeps its study unless told: studies/<file name>."""
    return Path("studies") / Path(file).stem


def _check_resumed_evaluator(folder: Path, stored: str, given: str | None,
                             own: bool) -> None:
    """A study folder may come from anyone: resuming one whose evaluator is `module:function`
    (code it names) runs that code only if the caller names the same evaluator again (or
    passes their own evaluator object). A stored name that is no evaluator's is refused
    later, by Study.resume_space."""
    if ":" not in stored or own or given is not None or not EVALUATOR_NAME.fullmatch(stored):
        return
    raise _name_it_again(folder, "evaluator", stored, f"runs the evaluator '{stored}': Python "
                         "code it names, which resuming would import and run",
                         f" (in Python: search(..., resume=True, evaluator={stored!r}))")


def _check_supernet_scores(folder: Path, study: Study) -> None:
    """A supernet study whose trials were scored by their inherited accuracy (the supernet
    evaluator's objective before it became minus the validation loss) is refused: old and new
    scores would be ranked together."""
    for t in study.trials("ok"):
        loss = t.metrics.get("valid_loss")
        if t.objective is not None and isinstance(loss, int | float) and t.objective != -loss:
            raise StudyError(f"the study in {folder} scored its trials by their inherited "
                             "accuracy (an earlier archdsl); the supernet evaluator's objective "
                             "is now minus the validation loss, and the two do not compare",
                             hint="start a new study with --evaluator supernet:CHECKPOINT "
                                  "(--objective maximize:accuracy ranks by the accuracy)")
        return


def _check_resumed_data(folder: Path, stored: str | None, given: str | None) -> None:
    """Data a study names (a file to read, or Python code to run) is used only when the
    caller names it again."""
    if stored is None or stored == "digits" or given is not None:
        return
    raise _name_it_again(folder, "data", stored, f"trains on the data '{stored}', which "
                         "resuming would read (or run, for module:function)", "")


def _name_it_again(folder: Path, option: str, stored: str, what: str,
                   python: str) -> StudyError:
    command = shlex.join(["archdsl", "search", "--study", str(folder), "--resume",
                          f"--{option}", stored])
    return StudyError(f"the study in {folder} {what}; a study folder may come from anyone, "
                      f"so name the {option} yourself",
                      hint=f"if you trust it, run `{command}`{python}")


def _check_space(meta: dict[str, Any], sh: str, allow_changed: bool,
                 file: str | Path) -> None:
    if sh != meta["space_hash"] and not allow_changed:
        raise StudyError(f"{file} (or a file it imports) has changed since the study began",
                         hint="add --allow-changed to resume on the changed space; trials "
                              "that no longer fit it are left out")


def _check_some_succeeded(study: Study) -> None:
    """EvaluationError, naming the first failure, if every finished trial failed."""
    counts = study.counts()
    failed = counts.get("failed", 0)
    if failed and not counts.get("ok"):
        first = study.trials("failed")[0]
        raise EvaluationError(f"every trial failed ({failed} of {failed}); the first, trial "
                              f"{first.id}: {first.error}",
                              hint=f"the trials are kept in {study.folder}; fix the evaluator "
                                   "and start again with another --study (or remove that one)")
