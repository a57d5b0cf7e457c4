"""The `asha` scheduler: asynchronous successive halving (imports base).

Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning" (MLSys), Algorithm 2,
promotion-based: a new trial trains to the first rung r_0 = min_steps and pauses there. Each
time a worker is free, the rungs are looked at from the highest down: in rung k, the top
floor(|rung k| / eta) trials by their value at that rung (ties: the older trial first) are the
candidates, and the best candidate not yet promoted and paused is promoted to train on to rung
k+1. When no rung has one, a new trial starts (when the budget allows). Nobody waits for a rung
to fill: a worker is never idle while a trial may start.

Rungs are min_steps * eta**k below max_steps; a trial promoted past the last of them trains to
its own last step. Without max_steps the rungs go on for ever (each trial still ends at its own
last step). A candidate that cannot run on (it finished, failed or was stopped at the rung)
keeps its place in the ranking; it is simply not promoted.
"""

from __future__ import annotations

from .base import CONTINUE, PAUSE, PAUSED, Scheduler


class ASHA(Scheduler):
    """Asynchronous successive halving: promote the best of a rung's top 1/eta, else NEW."""

    name = "asha"
    pauses = True

    def __init__(self, min_steps: int = 1, reduction_factor: int = 3,
                 max_steps: int | None = None):
        super().__init__(min_steps, reduction_factor, max_steps)
        self.target: dict[int, int] = {}  # trial -> the rung it trains to (index)
        self.rungs: list[dict[int, float]] = []  # rung k: trial -> its value there
        self.promoted_at: list[set[int]] = []  # rung k: the trials promoted from it

    def added(self, trial: int) -> None:
        self.target[trial] = 0

    def decide(self, trial: int, step: int, value: float) -> str:
        k = self.target[trial]
        r = self.rung(k)
        if r is None or step < r:
            return CONTINUE
        while len(self.rungs) <= k:
            self.rungs.append({})
            self.promoted_at.append(set())
        self.rungs[k][trial] = value
        return PAUSE

    def promoted(self, trial: int) -> None:
        k = self.target[trial]
        self.promoted_at[k].add(trial)
        self.target[trial] = k + 1

    def candidates(self, k: int) -> list[int]:
        """The top floor(|rung k| / eta) trials of rung k, best first."""
        rung = self.rungs[k]
        ranked = sorted(rung, key=lambda t: (-rung[t], t))
        return ranked[:len(rung) // self.eta]

    def promotion(self, closed: bool) -> int | None:
        for k in range(len(self.rungs) - 1, -1, -1):
            for t in self.candidates(k):
                if self.state[t] == PAUSED and t not in self.promoted_at[k]:
                    return t
        return None
