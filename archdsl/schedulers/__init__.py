"""Early-stopping schedulers: which trials go on, pause at a rung, or stop; one file each.

    from archdsl.schedulers import make_scheduler, NEW
    s = make_scheduler("asha", min_steps=1, reduction_factor=3, max_steps=5)
    if s.next(can_start=True) == NEW: s.add(0)
    s.report(0, 1, 0.42)   # -> "pause": trial 0 waits at rung 1
    s.end(0, "paused")

The contract they share is documented in `archdsl.schedulers.base` (imports: its modules and
`archdsl.errors`).
"""

from __future__ import annotations

from ..registry import named_class
from .base import CONTINUE, NEW, PAUSE, STOP, Scheduler, ladder

__all__ = ["Scheduler", "SCHEDULERS", "NEW", "CONTINUE", "PAUSE", "STOP", "make_scheduler",
           "scheduler_class", "ladder"]

# name -> "module:class", imported when first used
SCHEDULERS: dict[str, str] = {
    "none": "none:NoScheduler",
    "median": "median:MedianStopping",
    "sha": "sha:SuccessiveHalving",
    "asha": "asha:ASHA",
    "hyperband": "hyperband:Hyperband",
}


def scheduler_class(name: str) -> type[Scheduler]:
    return named_class(SCHEDULERS, name, __name__, "scheduler")


def make_scheduler(name: str, min_steps: int = 1, reduction_factor: int = 3,
                   max_steps: int | None = None) -> Scheduler:
    """A scheduler by name (`none`, `median`, `sha`, `asha`, `hyperband`); ArchDSLError for an
    unknown name or a bad option (naming --min-epochs, --reduction-factor or --max-epochs)."""
    return scheduler_class(name)(min_steps, reduction_factor, max_steps)
