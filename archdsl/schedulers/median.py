"""The `median` scheduler: the median stopping rule (imports base and the standard library).

Golovin et al. 2017 ("Google Vizier", section 3.2.2), in the form of Optuna's MedianPruner and
Ray Tune's MedianStoppingRule: at a step s >= min_steps, a trial whose best value so far is
below the median of the values the other trials reported at step s is stopped, once at least
MIN_TRIALS other trials have reported step s. Every other trial counts, whatever it is doing
now (running, paused, finished, stopped: its value at step s is a measurement like any other),
so a search with several workers can stop trials before any trial has finished. It never
pauses; reduction_factor and max_steps are not used.
"""

from __future__ import annotations

from statistics import median

from .base import CONTINUE, STOP, Scheduler

MIN_TRIALS = 3  # other trials that must have reported a step before it stops anything there


class MedianStopping(Scheduler):
    """STOP a trial whose best value so far is below the median of the others' at this step."""

    name = "median"
    pauses = False

    def __init__(self, min_steps: int = 1, reduction_factor: int = 3,
                 max_steps: int | None = None):
        super().__init__(min_steps, reduction_factor, max_steps)
        self.at_step: dict[int, dict[int, float]] = {}  # step -> trial -> value

    def decide(self, trial: int, step: int, value: float) -> str:
        here = self.at_step.setdefault(step, {})
        here[trial] = value
        if step < self.min_steps or len(here) - 1 < MIN_TRIALS:
            return CONTINUE
        others = [v for t, v in here.items() if t != trial]
        best = max(v for s, v in self.values[trial].items() if s <= step)
        return STOP if best < median(others) else CONTINUE
