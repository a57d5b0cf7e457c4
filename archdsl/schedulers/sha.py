"""The `sha` scheduler: synchronous successive halving in brackets (imports base).

Jamieson & Talwalkar 2016, "Non-stochastic Best Arm Identification and Hyperparameter
Optimization" (AISTATS), in the rung form of Li et al. 2020 (Algorithm 1): a bracket of n
trials trains each to the first rung and pauses; when every member has reached the rung (or
ended: finished, failed, stopped), the top floor(n_k / eta) by their value there are promoted to
the next rung, and so on; those promoted past the last rung below max_steps train to their own
last step. n_k = floor(n / eta**k) is the number meant to reach rung k.

The rungs are those of every scheduler here (`ladder`: min_steps * eta**k below max_steps,
then max_steps) and a bracket has n = eta**K trials, K the number of rungs below max_steps: with
min 1, eta 3 and max 5 (or 9) that is 9 trials at rung 1, 3 at rung 3 and 1 at the last step.
(When max_steps / min_steps is a power of eta, K = log_eta(max_steps / min_steps), the paper's
bracket; otherwise the last rung is max_steps rather than the next power.)

New trials fill the oldest bracket not yet full; when the last is full, a new one begins, so a
free worker is never idle while a trial may start. When no trial may start (`closed`: the
budget is spent) a bracket that is not full is decided with the members it has (n = its size),
so no paused trial waits for members that will never come. Ties: the older trial first.
"""

from __future__ import annotations

from .base import CONTINUE, PAUSE, PAUSED, PAUSING, RUNNING, Scheduler, ladder


class Bracket:
    """One synchronous successive-halving bracket: `size` trials, pausing at the rungs
    `rungs` (steps; the steps after the last are trained to the end)."""

    def __init__(self, size: int, rungs: list[int], eta: int):
        self.size = size
        self.rungs = rungs  # the pause rungs, in steps
        self.eta = eta
        self.members: list[int] = []
        self.values: list[dict[int, float]] = [{} for _ in rungs]  # level -> trial -> value
        self.promoted: list[set[int]] = [set() for _ in rungs]  # level -> promoted from it

    def full(self) -> bool:
        return len(self.members) >= self.size

    def top(self, level: int, n: int) -> list[int]:
        """The best floor(n / eta) trials at a level, best first."""
        values = self.values[level]
        return sorted(values, key=lambda t: (-values[t], t))[:n // self.eta]

    def promotion(self, state: dict[int, str], closed: bool) -> int | None:
        """A paused trial to promote (its level is decided and it is in the top), or None."""
        if not self.full() and not closed:
            return None
        n = self.size if self.full() else len(self.members)
        entrants = self.members
        for level in range(len(self.rungs)):
            if any(t not in self.values[level] and state[t] in (RUNNING, PAUSING)
                   for t in entrants):
                return None  # not decided: a member still trains towards this rung
            entrants = self.top(level, n // self.eta ** level)
            for t in entrants:
                if state[t] == PAUSED and t not in self.promoted[level]:
                    return t
        return None


class SuccessiveHalving(Scheduler):
    """Synchronous successive halving: brackets of eta**K trials, decided rung by rung."""

    name = "sha"
    pauses = True
    needs_max = True

    def __init__(self, min_steps: int = 1, reduction_factor: int = 3,
                 max_steps: int | None = None):
        super().__init__(min_steps, reduction_factor, max_steps)
        assert self.max_steps is not None
        self.ladder = ladder(min_steps, reduction_factor, self.max_steps)
        self.brackets: list[Bracket] = []
        self.bracket_of: dict[int, Bracket] = {}
        self.level: dict[int, int] = {}  # trial -> the level of its bracket it trains to

    def shape(self, index: int) -> tuple[int, int]:
        """The size and the first rung (an index into the ladder) of the index-th bracket."""
        return self.eta ** (len(self.ladder) - 1), 0

    def schedule(self, index: int = 0) -> list[tuple[int, int]]:
        """The index-th bracket as (trials, steps) pairs, one per rung, the last step last."""
        size, first = self.shape(index)
        return [(size // self.eta ** i, r) for i, r in enumerate(self.ladder[first:])]

    def added(self, trial: int) -> None:
        if not self.brackets or self.brackets[-1].full():
            size, first = self.shape(len(self.brackets))
            self.brackets.append(Bracket(size, self.ladder[first:-1], self.eta))
        bracket = self.brackets[-1]
        bracket.members.append(trial)
        self.bracket_of[trial] = bracket
        self.level[trial] = 0

    def decide(self, trial: int, step: int, value: float) -> str:
        bracket, level = self.bracket_of[trial], self.level[trial]
        if level >= len(bracket.rungs) or step < bracket.rungs[level]:
            return CONTINUE
        bracket.values[level][trial] = value
        return PAUSE

    def promoted(self, trial: int) -> None:
        level = self.level[trial]
        self.bracket_of[trial].promoted[level].add(trial)
        self.level[trial] = level + 1

    def promotion(self, closed: bool) -> int | None:
        for bracket in self.brackets:
            trial = bracket.promotion(self.state, closed)
            if trial is not None:
                return trial
        return None
