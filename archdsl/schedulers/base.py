"""The scheduler contract, shared by every early-stopping algorithm (pure logic: it imports
only the decisions of `archdsl.reporting` and the errors; no I/O, no torch, no study).

A scheduler decides, for a search whose trials report a value after every step (epoch), which
trials go on, which pause at a rung (their checkpoint kept, to be promoted later) and which
stop. The runner talks to it through four calls:

    d = sched.next(can_start)      # what a free worker does now:
                                   #   a paused trial's id: promote it (it continues from its
                                   #     checkpoint; the scheduler counts it as running again),
                                   #   NEW: start a new trial (only when can_start),
                                   #   None: nothing now (wait for running trials; when nothing
                                   #     runs and next() gives None, the search is over)
    sched.add(trial)               # a new trial began (after next() gave NEW)
    sched.report(trial, step, v)   # -> CONTINUE, PAUSE or STOP
    sched.end(trial, status)       # its job ended: "ok" (ran to its last step), "paused" (after
                                   # PAUSE), "stopped" (after STOP or a PAUSE it could not
                                   # honour), "failed" (never to run again)

- Values: higher is better. Steps are epochs, from 1, counting up within a trial.
- Rungs are r_k = min_steps * eta**k (eta: the reduction factor) below max_steps, and then
  max_steps itself: `ladder(1, 3, 5) == [1, 3, 5]`. A trial reaches rung r when it reports a
  step >= r.
- A trial may end "ok" at any step (its own epochs may come before the next rung), may end
  "failed" at any point (even before its first report), and may end "stopped" after a PAUSE
  (an evaluator that saves no state cannot be paused): no scheduler waits for such a trial.
- Replay: on --resume the runner rebuilds the scheduler from the study: add(t) for every trial
  in id order, report() for each stored report in step order, and end(t, status) for every
  finished, paused, stopped or failed trial; interrupted trials get no end (they run again from
  their checkpoint and report again from the step after it). The replayed scheduler then makes
  the same decisions as the one that lived through the search. That is why a report of a trial
  the scheduler holds as paused counts as its promotion (the replay does not call next()), and
  why no decision depends on the order of the replayed calls.
- `promote(trial)`: the runner runs a paused trial again by its own choice (not from next());
  the scheduler counts it as promoted. (A report from a paused trial does the same.)
- `pausing()`: the trials told to PAUSE whose job has not ended; after a replay these are the
  trials interrupted between that answer and their end (or promoted and interrupted before
  their next report).

An algorithm subclasses `Scheduler`, sets `name` and `pauses` (whether it ever answers PAUSE:
the runner then keeps checkpoints), and implements `decide(trial, step, value)` and, when it
promotes, `promotion(closed)`: a paused trial to run again or None (`closed`: no new trial may
start, so groups still waiting for members must be decided with those they have). It may
override `added(trial)`, `promoted(trial)` and `ended(trial, status)` to keep its own books.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import ArchDSLError
from ..reporting import CONTINUE, DECISIONS, PAUSE, STOP

__all__ = ["Scheduler", "NEW", "ENDINGS", "CONTINUE", "PAUSE", "STOP", "DECISIONS", "ladder",
           "check_options"]

NEW = "new"
ENDINGS = ("ok", "paused", "stopped", "failed")  # how a trial's job may end
RUNNING, PAUSING, PAUSED = "running", "pausing", "paused"  # the states of a live trial


def check_options(min_steps: int, reduction_factor: int, max_steps: int | None) -> None:
    """ArchDSLError naming the command-line option of a bad value."""
    for option, value, low in (("--min-epochs", min_steps, 1),
                               ("--reduction-factor", reduction_factor, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ArchDSLError(f"{option} must be an integer of at least {low}, got {value!r}")
    if max_steps is not None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ArchDSLError(f"--max-epochs must be an integer of at least 1, got {max_steps!r}")
        if max_steps < min_steps:
            raise ArchDSLError(f"--max-epochs ({max_steps}) must be at least --min-epochs "
                               f"({min_steps})")


def ladder(min_steps: int, eta: int, max_steps: int) -> list[int]:
    """The rungs: min_steps * eta**k while below max_steps, then max_steps."""
    rungs, r = [], min_steps
    while r < max_steps:
        rungs.append(r)
        r *= eta
    return [*rungs, max_steps]


class Scheduler:
    """Base class of every scheduler: see the module's documentation for the contract."""

    name: ClassVar[str] = ""
    pauses: ClassVar[bool] = False  # whether it ever answers PAUSE (checkpoints are needed)
    needs_max: ClassVar[bool] = False  # whether max_steps is required

    def __init__(self, min_steps: int = 1, reduction_factor: int = 3,
                 max_steps: int | None = None):
        check_options(min_steps, reduction_factor, max_steps)
        if self.needs_max and max_steps is None:
            raise ArchDSLError(f"the {self.name} scheduler needs --max-epochs (the epochs of "
                               "the longest trial)")
        self.min_steps = min_steps
        self.eta = reduction_factor
        self.max_steps = max_steps
        self.state: dict[int, str] = {}  # trial -> running, pausing, paused or how it ended
        self.values: dict[int, dict[int, float]] = {}  # trial -> step -> value

    # ---- the algorithm's part ----------------------------------------------------------
    def decide(self, trial: int, step: int, value: float) -> str:
        raise NotImplementedError

    def promotion(self, closed: bool) -> int | None:
        """A paused trial to promote now, or None (default: never)."""
        return None

    def added(self, trial: int) -> None:
        """A new trial began (default: nothing to note)."""

    def promoted(self, trial: int) -> None:
        """A paused trial runs again: by next(), or seen reporting in a replay."""

    def ended(self, trial: int, status: str) -> None:
        """A trial's job ended (default: nothing to note)."""

    # ---- the contract --------------------------------------------------------------------
    def add(self, trial: int) -> None:
        """A new trial began (after next() gave NEW, or in a replay)."""
        if trial in self.state:
            raise ValueError(f"trial {trial} was added before")
        self.state[trial] = RUNNING
        self.values[trial] = {}
        self.added(trial)

    def next(self, can_start: bool) -> int | str | None:
        """What a free worker does now: a paused trial to promote, NEW, or None."""
        trial = self.promotion(closed=not can_start)
        if trial is not None:
            if self.state.get(trial) != PAUSED:
                raise AssertionError(f"{self.name} promoted trial {trial}, which is not paused")
            self.promote(trial)
            return trial
        return NEW if can_start else None

    def promote(self, trial: int) -> None:
        """A paused trial runs again: by next(), or by the runner's own choice (the best paused
        trial trained to its end, say); counted as promoted from the rung it waits at."""
        if self.state.get(trial) not in (PAUSING, PAUSED):
            raise ValueError(f"trial {trial} is not paused")
        self.state[trial] = RUNNING
        self.promoted(trial)

    def report(self, trial: int, step: int, value: float) -> str:
        """The trial's value at a step: CONTINUE, PAUSE or STOP."""
        state = self.state.get(trial)
        if state is None:
            raise ValueError(f"report of trial {trial}, which was never added")
        if state in (PAUSING, PAUSED):  # it runs again: promoted (seen in a replay)
            self.promote(trial)
        elif state != RUNNING:
            raise ValueError(f"report of trial {trial}, which ended {state}")
        self.values[trial][step] = value
        decision = self.decide(trial, step, value)
        if decision not in DECISIONS or (decision == PAUSE and not self.pauses):
            raise AssertionError(f"{self.name} answered {decision!r}")
        if decision == PAUSE:
            self.state[trial] = PAUSING
        return decision

    def end(self, trial: int, status: str) -> None:
        """The trial's job ended with `status` (one of ENDINGS)."""
        if status not in ENDINGS:
            raise ValueError(f"unknown end status {status!r}: one of {', '.join(ENDINGS)}")
        if trial not in self.state:
            raise ValueError(f"end of trial {trial}, which was never added")
        self.state[trial] = status
        self.ended(trial, status)

    # ---- views -----------------------------------------------------------------------------
    def pausing(self) -> list[int]:
        """The trials told to PAUSE whose job has not ended (see the module doc)."""
        return [t for t, s in self.state.items() if s == PAUSING]

    def paused(self) -> list[int]:
        """The paused trials, in id order."""
        return sorted(t for t, s in self.state.items() if s == PAUSED)

    def running(self) -> list[int]:
        """The trials whose job is under way (told to pause or not), in id order."""
        return sorted(t for t, s in self.state.items() if s in (RUNNING, PAUSING))

    def finished(self, trial: int) -> bool:
        """Whether the trial will never run again (ended ok, stopped or failed)."""
        return self.state.get(trial) in ("ok", "stopped", "failed")

    def rung(self, k: int) -> int | None:
        """The k-th rung at which trials pause (from 0), or None past the last one."""
        r = self.min_steps * self.eta ** k
        return r if self.max_steps is None or r < self.max_steps else None
