"""The search loop: a searcher proposes, an executor evaluates, a study keeps every trial.

    from archdsl.runner import search
    study = search("examples/digits.arch", searcher="smbo", budget=20, study_dir="runs/d")

Trials are written to the study as they start and end. Stopping (budget reached, time up,
space exhausted, Ctrl-C) leaves the study consistent: finished trials are kept, trials in
progress when Ctrl-C came are marked `interrupted` and evaluated again on `resume`.
"""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArchDSLError, EvaluationError, StudyError
from .evaluators import Evaluator, as_evaluator, get_evaluator, result_of
from .executor import Executor, Job, LocalExecutor, Outcome, SerialExecutor, check_workers
from .search import Candidate, Searcher, make_searcher, searcher_class
from .space import Space, load
from .study import Study, Trial, space_hash
from .study_checks import EVALUATOR_NAME

__all__ = ["search", "default_study_dir", "Progress", "DEFAULT_BUDGET", "DEFAULT_SEARCHER", "SearchResult"]

DEFAULT_BUDGET = 20  # trials, when neither a budget nor a time is given
DEFAULT_SEARCHER = "smbo"  # the best of them on NAS-Bench-201 (README, "Search benchmark")


class Progress:
    """What the loop reports as it goes (the CLI draws a progress bar from it)."""

    def start(self, done: int, budget: int | None, seconds: float | None,
              best: float | None = None) -> None:
        pass

    def update(self, done: int, best: float | None, trial: Trial) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class SearchResult:
    study: Study
    space: Space
    new_trials: int
    stopped: str  # budget, time, exhausted, interrupted


def search(file: str | Path | None = None, searcher: str | None = None,
           evaluator: str | None = None, budget: int | None = None,
           seconds: float | None = None, seed: int | None = None, workers: int = 1,
           study_dir: str | Path | None = None, resume: bool = False,
           allow_changed: bool = False, trial_timeout: float | None = None,
           progress: Progress | None = None,
           evaluator_object: Evaluator | Callable[[Any], Any] | None = None,
           import_paths: Sequence[str | Path] = (),
           log: Callable[[str], None] = lambda s: None) -> SearchResult:
    """Run (or resume) a search; see `archdsl search --help` for the meaning of each setting.

    `evaluator_object` evaluates in this process instead of in worker processes: an object
    with an `evaluate(arch)` method, or a plain function `fn(arch)`; either gets an
    `archdsl.Architecture` and returns a number or a dict holding "objective" (`workers` and
    `trial_timeout` are then ignored). Each result is told to the searcher before it proposes
    the next configuration. `import_paths` are folders the space's imports may read besides
    its own folder tree (`archdsl.load`'s), for this process and the workers alike.

    Nothing is written until the search can start: settings, the space, the searcher (`grid`
    refuses a continuous space) and the workers (each loads the space and the evaluator) are
    checked first. A search in which every trial failed raises EvaluationError naming the
    first failure (the trials are kept in the study)."""
    if study_dir is None:
        if file is None:
            raise ArchDSLError("give a .arch file to search, or --study DIR --resume")
        study_dir = default_study_dir(file)
    study_dir = Path(study_dir)
    if budget is not None and budget < 1:
        raise ArchDSLError(f"--budget must be at least 1, got {budget}")
    for option, value in (("--time", seconds), ("--trial-timeout", trial_timeout)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ArchDSLError(f"{option} must be a positive number of seconds, got {value:g}")
    check_workers(workers)
    if not resume and file is None:
        raise ArchDSLError("give a .arch file to search")
    own = as_evaluator(evaluator_object) if evaluator_object is not None else None
    study = Study.open(study_dir) if resume else None
    ex: Executor | None = None
    try:
        meta: dict[str, Any] = {}
        if study is not None:
            study.lock()
            meta = study.meta()
            _check_resumed_evaluator(study_dir, meta["evaluator"], evaluator, own is not None)
            file = study.resume_space(file, allow_changed, log, import_paths)  # its copy
            import_paths = study.import_paths_for(file, import_paths)  # the copy's, for it
            for key, given in (("evaluator", evaluator), ("seed", seed)):
                if given is not None and given != meta[key]:
                    raise StudyError(f"the study in {study_dir} was run with --{key} "
                                     f"{meta[key]}, not {given}",
                                     hint=f"leave --{key} out to resume it as it was")
            evaluator, seed = meta["evaluator"], meta["seed"]
            searcher = searcher or meta["searcher"]
            budget = budget if budget is not None else meta.get("budget")
            if trial_timeout is None:
                trial_timeout = meta.get("trial_timeout")
        else:
            searcher, evaluator = searcher or DEFAULT_SEARCHER, evaluator or "digits"
            seed = 0 if seed is None else seed
            if budget is None and seconds is None:
                budget = DEFAULT_BUDGET
        searcher_class(searcher)  # an unknown name fails before anything is made or stored
        if own is None:
            if evaluator.startswith("__main__:"):
                raise ArchDSLError(f"evaluator '{evaluator}': worker processes do not run your "
                                   "script, so they cannot find a function in its __main__",
                                   hint="pass the function itself: search(..., "
                                        "evaluator_object=fn), or move it to a module")
            get_evaluator(evaluator)  # as does an evaluator that cannot be found
        space = load(file, import_paths)
        sh = space_hash(space.ir.files)
        if study is not None:
            _check_space(meta, sh, allow_changed, file)
        s = make_searcher(searcher, space, seed=seed)
        ex = (SerialExecutor(space, own) if own is not None
              else LocalExecutor(space.file, evaluator, workers, trial_timeout, import_paths))
        settings = {"searcher": searcher, "budget": budget, "trial_timeout": trial_timeout}
        if study is None:
            study = Study.create(study_dir, {"space_file": str(Path(file).resolve()),
                                             "space_hash": sh, "evaluator": evaluator,
                                             "seed": seed, **settings},
                                 sources=space.ir.files,  # locked; on failure, removed
                                 import_paths=import_paths)
        else:
            changed = {k: v for k, v in {**settings, "space_hash": sh}.items()
                       if meta.get(k) != v}
            if changed:
                study.set_meta(**changed)
            study.keep_sources(space.ir.files, import_paths)  # a changed space is copied
        result = _loop(study, space, sh, s, ex, budget, seconds, progress or Progress(), log)
        _check_some_succeeded(study)
        return result
    except BaseException:
        if ex is not None:
            ex.close()
        if study is not None:
            study.close()
        raise


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
    command = shlex.join(["archdsl", "search", "--study", str(folder), "--resume",
                          "--evaluator", stored])
    raise StudyError(f"the study in {folder} runs the evaluator '{stored}': Python code it "
                     "names, which resuming would import and run; a study folder may come "
                     "from anyone, so name the evaluator yourself",
                     hint=f"if you trust that code, run `{command}` (in Python: "
                          f"search(..., resume=True, evaluator={stored!r}))")


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


def _loop(study: Study, space: Space, sh: str, s: Searcher, ex: Executor,
          budget: int | None, seconds: float | None, progress: Progress,
          log: Callable[[str], None]) -> SearchResult:
    study.mark_interrupted()  # a killed search left these running
    done, retry = _replay(study, space, s, log)
    best = s.best[0] if s.best else None
    progress.start(done, budget, seconds, best=best)
    t0 = time.monotonic()
    cands: dict[int, Candidate] = {}
    stopped = "budget"
    new = 0
    try:
        while True:
            out_of_time = seconds is not None and time.monotonic() - t0 >= seconds
            while ex.free() and not out_of_time and (budget is None
                                                      or done + len(cands) < budget):
                cand = retry.pop(0) if retry else s.ask()
                if cand is None:
                    stopped = "exhausted"
                    break
                tid = study.start(cand.config, cand.key, sh, s.name)
                cands[tid] = cand
                ex.submit(Job(tid, cand.config))
            if not cands:
                if out_of_time:
                    stopped = "time"
                break
            for o in ex.results(timeout=1.0):
                cand = cands.pop(o.trial_id)
                _finish(study, s, cand, o)
                done, new = done + 1, new + 1
                t = study.trial(o.trial_id)
                if t.objective is not None and (best is None or t.objective > best):
                    best = t.objective
                progress.update(done, best, t)
    except KeyboardInterrupt:
        # every running trial: the search holds the folder's lock, so they are all its own,
        # including one Ctrl-C caught between its start and its entry in `cands`, or between
        # its result and its row
        study.mark_interrupted()
        stopped = "interrupted"
        raise
    finally:
        ex.close()
        progress.stop()
    return SearchResult(study, space, new, stopped)


def _finish(study: Study, s: Searcher, cand: Candidate, o: Outcome) -> None:
    """Store an outcome and tell the searcher; a result that is not a valid one (from an
    executor that did not check it) fails the trial."""
    result, error = o.result, o.error or "failed"
    if result is not None:
        try:
            result = result_of(result)
        except EvaluationError as e:
            result, error = None, e.message
    if result is None:
        study.finish(o.trial_id, None, {}, error, o.duration)
        s.tell(cand, None)
    else:
        metrics = {k: v for k, v in result.items() if k != "objective"}
        study.finish(o.trial_id, result["objective"], metrics, None, o.duration)
        s.tell(cand, result["objective"])


def _replay(study: Study, space: Space, s: Searcher,
            log: Callable[[str], None]) -> tuple[int, list[Candidate]]:
    """Tell the searcher every finished trial; return how many, and the interrupted
    configurations to evaluate again (those not finished since)."""
    done = 0
    finished: set[str] = set()
    interrupted: list[Trial] = []
    skipped = 0
    current = space_hash(space.ir.files)
    for t in study.trials():
        if t.status == "interrupted":
            interrupted.append(t)
            continue
        if t.status not in ("ok", "failed"):
            continue
        done += 1
        try:
            cand = s.candidate(space.validate(t.config))
        except ArchDSLError as e:
            if t.space_hash == current:
                raise study.misfit(t, e) from None  # run on this very space: a corrupt row
            skipped += 1  # the space changed (resumed with --allow-changed)
            continue
        finished.add(cand.key)
        s.tell(cand, t.objective if t.status == "ok" else None)
    if skipped:
        log(f"{skipped} stored trial(s) do not fit the changed space; the searcher ignores them")
    retry: list[Candidate] = []
    for t in interrupted:
        try:
            cand = s.candidate(space.validate(t.config))
        except ArchDSLError:
            continue
        if cand.key not in finished and all(c.key != cand.key for c in retry):
            s.outstanding[cand.key] = cand
            retry.append(cand)
    return done, retry
