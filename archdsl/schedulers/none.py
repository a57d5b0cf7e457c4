"""The `none` scheduler: no early stopping; every trial runs to its last step (imports base)."""

from __future__ import annotations

from .base import CONTINUE, Scheduler


class NoScheduler(Scheduler):
    """Every report is answered CONTINUE; next() starts a new trial while the budget allows."""

    name = "none"
    pauses = False

    def decide(self, trial: int, step: int, value: float) -> str:
        return CONTINUE
