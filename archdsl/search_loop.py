"""The search loop: a searcher proposes, a scheduler decides what runs and for how long, an
executor evaluates, a study keeps every trial and every report.

A free worker asks the scheduler what to do (`archdsl.schedulers`): promote a paused trial (it
continues from its checkpoint), start a new trial (the searcher proposes it), or nothing yet.
Every report an evaluator makes is stored, then answered with the scheduler's decision. A job
ends `ok` (its last step), `paused` (at a rung, its state saved), `stopped` (told to stop, or
paused without a saved state) or `failed`. The searcher is told each trial once, when its first
job ends, with the value it reached then (docs/schedulers.md says why).

A resumed search replays the study: the searcher hears every trial that ended, the scheduler
every trial, report and end; an interrupted trial with a checkpoint continues from it (so no
reported step is trained again), one without runs again as a new trial. When the search ends
because nothing more can run, paused trials become `stopped` and their checkpoints are removed;
when it ends by time or Ctrl-C they stay paused, for `--resume`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ArchDSLError, EvaluationError
from .evaluators import result_of
from .executor import Executor, Job, Outcome
from .objectives import DEFAULT, Objective, values
from .reporting import CONTINUE, PAUSE, STOP
from .schedulers import NEW, Scheduler
from .search import Candidate, Searcher
from .space import Space
from .study import Study, Trial

__all__ = ["Progress", "Loop", "ENDED"]

ENDED = ("ok", "failed", "stopped")  # a trial that will never run again


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
class Loop:
    """One run of the loop over a study (see the module doc)."""

    study: Study
    space: Space
    space_hash: str
    searcher: Searcher
    scheduler: Scheduler
    ex: Executor
    budget: int | None = None  # trials in the study in all
    seconds: float | None = None  # stop starting jobs after this long
    epoch_budget: int | None = None  # stop starting jobs once this many steps were reported
    keep_state: bool = False  # checkpoint at every report (a scheduler that pauses or stops)
    objectives: tuple[Objective, ...] = DEFAULT  # what the searcher is told
    progress: Progress = field(default_factory=Progress)
    log: Callable[[str], None] = lambda s: None

    def __post_init__(self) -> None:
        self.cands: dict[int, Candidate] = {}  # trials waiting to be told to the searcher
        self.running: set[int] = set()
        self.decisions: dict[int, str] = {}  # the answer to each running job's last report
        self.retry: list[Candidate] = []  # interrupted configurations, run again as new trials
        self.resumable: list[int] = []  # interrupted trials that continue from a checkpoint
        self.trials = 0  # trials that count against the budget
        self.steps = 0  # reports stored, in all
        self.reported: set[tuple[int, int]] = set()  # (trial, step) of every stored report
        self.done = 0  # trials told to the searcher
        self.new = 0
        self.exhausted = False
        self.finishing: set[int] = set()  # trials run to their end whatever the scheduler says
        self.ex.on_report = self.on_report

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> str:
        """Run until the budget, the time or the space is spent; how it stopped: budget,
        time, exhausted or interrupted (Ctrl-C, re-raised)."""
        self.study.mark_interrupted()  # a killed search left these running
        self.replay()
        self.progress.start(self.done, self.budget, self.seconds, best=self._best())
        t0 = time.monotonic()
        try:
            while True:
                out_of_time = self.seconds is not None and time.monotonic() - t0 >= self.seconds
                while self.ex.free() and not out_of_time and not self._spent() \
                        and self._start_one():
                    pass
                if not self.running and (out_of_time or not self._finish_best()):
                    break
                for o in self.ex.results(timeout=1.0):
                    self.ended(o)
        except BaseException:  # Ctrl-C, or an error (a replaced worker that cannot start)
            # every running trial: the search holds the folder's lock, so they are all its
            # own, including one Ctrl-C caught between its start and its entry in `running`
            self.study.mark_interrupted()
            raise
        finally:
            self.ex.close()
            self.progress.stop()
        if out_of_time:
            return "time"
        self._stop_paused()
        return "exhausted" if self.exhausted else "budget"

    def _finish_best(self) -> bool:
        """Nothing more runs and no trial ran to its end: the best paused trial (the furthest
        trained, then the best value) continues to its end, whatever the scheduler says, so
        that the search ends with an architecture trained in full. False if there is none."""
        if self.study.best(1):
            return False
        paused = self.study.trials("paused")
        if not paused:
            return False
        reached = {t: len(rs) for t, rs in self.study.reports().items()}
        best = max(paused, key=lambda t: (reached.get(t.id, 0), t.objective or 0.0, -t.id))
        self.finishing.add(best.id)
        self.scheduler.promote(best.id)
        self._promote(best.id)
        return bool(self.running)

    def _spent(self) -> bool:
        return self.epoch_budget is not None and self.steps >= self.epoch_budget

    def _start_one(self) -> bool:
        """Hand one job to a free worker; False when there is none to give now."""
        if self.resumable:
            self._submit(self.resumable.pop(0))
            return True
        can_start = not self.exhausted and (self.budget is None or self.trials < self.budget)
        what = self.scheduler.next(can_start)
        if what is None or (what == NEW and not can_start):
            return False
        if what != NEW:
            self._promote(int(what))
            return True
        cand = self.retry.pop(0) if self.retry else self.searcher.ask()
        if cand is None:
            self.exhausted = True
            return True  # the scheduler may still promote a paused trial
        tid = self.study.start(cand.config, cand.key, self.space_hash, self.searcher.name)
        self.cands[tid] = cand
        self.trials += 1
        self.scheduler.add(tid)
        self._submit(tid, cand.config)
        return True

    def _promote(self, tid: int) -> None:
        t = self.study.trial(tid)
        if not self.study.checkpoint_path(tid).is_file():
            self.study.finish(tid, t.objective, t.metrics, "its checkpoint is gone, so it "
                              "cannot continue", t.duration or 0.0)
            self.scheduler.end(tid, "failed")
            return
        self.study.set_status(tid, "running")
        self._submit(tid, t.config)

    def _submit(self, tid: int, config: dict[str, Any] | None = None) -> None:
        if config is None:
            config = self.study.trial(tid).config
            self.study.set_status(tid, "running")
        path = str(self.study.checkpoint_path(tid)) if self.keep_state else None
        self.running.add(tid)
        self.decisions.pop(tid, None)
        latency = any(o.name == "latency" for o in self.objectives)
        self.ex.submit(Job(tid, config, path, self.keep_state, latency))

    # ---- reports and ends ------------------------------------------------------------------
    def on_report(self, tid: int, step: int, value: float, metrics: dict[str, Any],
                  last: bool) -> str:
        """Store a report and answer it: continue, pause or stop. A report the study holds
        already (a checkpoint's, delivered again as its trial continues) goes on."""
        if (tid, step) in self.reported:
            return CONTINUE
        self.study.report(tid, step, value, metrics)
        self.reported.add((tid, step))
        self.steps += 1
        if self.decisions.get(tid) in (PAUSE, STOP):  # it went on regardless: the same answer
            return self.decisions[tid]
        d = self.scheduler.report(tid, step, value)
        if last or tid in self.finishing:
            d = CONTINUE
        elif d == PAUSE and not self.keep_state:
            d = STOP  # nothing to continue from
        self.decisions[tid] = d
        return d

    def ended(self, o: Outcome) -> None:
        """Store a job's outcome, tell the scheduler and (the first time) the searcher."""
        tid = o.trial_id
        self.running.discard(tid)
        self.decisions.pop(tid, None)
        before = self.study.trial(tid)
        result, error = o.result, o.error or "failed"
        if result is not None:
            try:
                result = result_of(result)
            except EvaluationError as e:
                result, error = None, e.message
        device = {"device": o.info["device"]} if "device" in o.info else {}
        duration = (before.duration or 0.0) + o.duration
        if result is None:
            status = "failed"
            self.study.finish(tid, None, device, error, duration)
        else:
            status = _status(o.info)
            metrics = {**device, **{k: v for k, v in result.items() if k != "objective"}}
            self.study.finish(tid, result["objective"], metrics, None, duration, status=status)
        if status in ENDED:
            self.study.remove_checkpoint(tid)
        self.scheduler.end(tid, status)
        cand = self.cands.pop(tid, None)
        t = self.study.trial(tid)
        if cand is not None:  # its first job: the searcher hears of it now
            self.searcher.tell(cand, self._told(t))
            self.done += 1
            self.new += 1
        self.progress.update(self.done, self._best(), t)

    def _told(self, t: Trial) -> float | tuple[float, ...] | None:
        """What the searcher is told of a trial: its objective (None if it failed), or with
        objectives named, their values signed so that higher is better (a tuple for several).
        A result without a named objective ends the search (EvaluationError)."""
        if t.status == "failed" or t.objective is None:
            return None
        if self.objectives == DEFAULT:
            return t.objective
        try:
            got = values(self.objectives, {"objective": t.objective, **t.metrics})
        except EvaluationError as e:
            self.study.finish(t.id, None, t.metrics, e.message, t.duration or 0.0)
            raise EvaluationError(f"trial {t.id}: {e.message}", hint=e.hint) from None
        return got if len(got) > 1 else got[0]

    def _stop_paused(self) -> None:
        """Nothing more can run: paused trials end as stopped; their checkpoints go."""
        for t in self.study.trials("paused"):
            self.study.set_status(t.id, "stopped")
            self.study.remove_checkpoint(t.id)

    def _best(self) -> float | None:
        best = self.study.best(1)
        return best[0].objective if best else None

    # ---- resuming ------------------------------------------------------------------------
    def _settle(self, t: Trial, decision: str) -> Trial:
        """An interrupted trial whose last report was answered pause (its checkpoint is that
        step's) or stop: it ends as it was told, with that report's value."""
        last = self.study.reports(t.id)[t.id][-1]
        status = _settled(decision)
        self.study.finish(t.id, last.value, t.metrics, None, t.duration or 0.0, status=status)
        if status in ENDED:
            self.study.remove_checkpoint(t.id)
        return self.study.trial(t.id)

    def replay(self) -> None:
        """Tell the searcher every trial that ended, and the scheduler every trial, report and
        end; note interrupted trials to continue (from a checkpoint) or run again."""
        current = self.space_hash
        reports = self.study.reports()
        finished: set[str] = set()
        skipped = 0
        again: list[Trial] = []
        for t in self.study.trials():
            self.steps += len(reports.get(t.id, []))
            resumable = (t.status == "interrupted" and self.keep_state
                         and self.study.checkpoint_path(t.id).is_file())
            if t.status == "interrupted" and not resumable:
                again.append(t)
                continue
            self.trials += 1
            self.scheduler.add(t.id)
            decision = CONTINUE
            for r in reports.get(t.id, []):
                decision = self.scheduler.report(t.id, r.step, r.value)
                self.reported.add((t.id, r.step))
            if resumable and decision in (PAUSE, STOP):
                t = self._settle(t, decision)  # told to pause or stop, killed before its end
                resumable = False
            if resumable:  # told to the searcher when it ends (the searcher is new)
                self.resumable.append(t.id)
                self.cands[t.id] = self.searcher.candidate(t.config)
                self.searcher.outstanding[self.cands[t.id].key] = self.cands[t.id]
                continue
            if t.status != "running":
                self.scheduler.end(t.id, t.status)
            self.done += 1
            try:
                cand = self.searcher.candidate(self.space.validate(t.config))
            except ArchDSLError as e:
                if t.space_hash == current:
                    raise self.study.misfit(t, e) from None  # run on this very space: corrupt
                skipped += 1  # the space changed (resumed with --allow-changed)
                continue
            finished.add(cand.key)
            self.searcher.tell(cand, self._told(t))
        if skipped:
            self.log(f"{skipped} stored trial(s) do not fit the changed space; the searcher "
                     "ignores them")
        for t in again:
            try:
                cand = self.searcher.candidate(self.space.validate(t.config))
            except ArchDSLError:
                continue
            if cand.key not in finished and all(c.key != cand.key for c in self.retry):
                self.searcher.outstanding[cand.key] = cand
                self.retry.append(cand)


def _settled(decision: str) -> str:
    return "paused" if decision == PAUSE else "stopped"


def _status(info: dict[str, Any]) -> str:
    """How a job that returned a result ended: ok, paused or stopped."""
    decision = info.get("decision", CONTINUE)
    if decision == PAUSE:
        return "paused" if info.get("saved") else "stopped"
    return "stopped" if decision == STOP else "ok"
