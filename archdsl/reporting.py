"""What an evaluator gets to report intermediate results, keep a checkpoint and be told to stop.

An evaluator whose `evaluate` takes a second argument (`evaluate(arch, reporter)`, or a
function `fn(arch, reporter)`: a second positional parameter without a default, or one named
`reporter`) is handed a `Reporter`:

    state = reporter.restore()            # a promoted or resumed trial: what it saved; else None
    start = state["epoch"] if state else 0
    for epoch in range(start, epochs):
        ...train one epoch...
        if not reporter.report(epoch + 1, accuracy, state=lambda: {...}, last=epoch + 1 == epochs):
            break                         # told to stop (or to pause): return the result now
    return {"objective": accuracy, ...}

- `report(step, value, state=None, last=False, **metrics)`: `value` is the objective at that
  step (higher is better), `step` counts up (epochs, say). Every report is stored in the study.
  It returns True to go on, False to stop now and return the result as of this step.
- `state`: a function giving what resuming needs (model, optimizer and schedule state dicts,
  the epoch; tensors, numbers, text, lists and dicts of them). It is called only when a
  checkpoint is wanted (a scheduler is in use: at every report, so a killed search repeats no
  reported step) and saved atomically in the study folder. An evaluator that gives no state
  cannot be paused: a scheduler's pause stops it instead.
- `last=True` says this is the final step: the answer is then always True.
- `device`: the torch device this worker trains on ("cpu", "cuda:1", "mps").

The Reporter knows nothing of schedulers or studies: it is given a function that delivers a
report and answers with a decision (in a worker process, a round trip to the search).
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import EvaluationError

__all__ = ["Reporter", "takes_reporter", "CONTINUE", "PAUSE", "STOP", "DECISIONS"]

CONTINUE, PAUSE, STOP = "continue", "pause", "stop"
DECISIONS = (CONTINUE, PAUSE, STOP)

# deliver(step, value, metrics, last) -> a decision: CONTINUE, PAUSE or STOP
Deliver = Callable[[int, float, dict[str, Any], bool], str]


class Reporter:
    """One trial's reporter (see the module doc)."""

    def __init__(self, trial_id: int, deliver: Deliver, device: str = "cpu",
                 checkpoint: str | Path | None = None, keep_state: bool = False):
        self.trial_id = trial_id
        self.device = device
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.keep_state = keep_state and self.checkpoint is not None  # save at every report
        self.step = 0  # the last step reported (or restored)
        self.value: float | None = None  # its value
        self.decision = CONTINUE  # the answer to the last report
        self.saved = False  # whether the last report's state was saved
        self._deliver = deliver

    def restore(self) -> dict[str, Any] | None:
        """The state the trial saved at its last checkpoint, or None (a fresh trial)."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return None
        import torch

        try:
            state = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        except Exception as e:  # noqa: BLE001 - a study folder is untrusted: any fault is one error
            raise EvaluationError(f"the checkpoint {self.checkpoint} cannot be read: "
                                  f"{type(e).__name__}: {e}") from None
        if not isinstance(state, dict):
            raise EvaluationError(f"the checkpoint {self.checkpoint} holds no saved state")
        step, value, metrics = state.get("step"), state.get("value"), state.get("metrics")
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            self.step = step
            if isinstance(value, float) and math.isfinite(value) and isinstance(metrics, dict):
                # the checkpoint's own report, in case a kill came between the two: stored
                # once (a report the study holds is not stored or decided again)
                self.value = value
                self._deliver(step, value, metrics, True)
        return state.get("state") if isinstance(state.get("state"), dict) else None

    def report(self, step: int, value: float, state: Callable[[], dict[str, Any]] | None = None,
               last: bool = False, **metrics: Any) -> bool:
        """Report `value` at `step`; True to go on, False to stop now (see the module doc)."""
        if isinstance(step, bool) or not isinstance(step, int) or step <= self.step:
            raise EvaluationError(f"reported step {step!r} after step {self.step}: steps are "
                                  "integers that count up")
        v = float(value)
        if not math.isfinite(v):
            raise EvaluationError(f"the value reported at step {step} is {v}")
        from .evaluators import _plain

        plain = {k: _plain(x, k) for k, x in metrics.items()}  # stored as JSON
        self.saved = False
        if state is not None and self.keep_state and not last:
            self._save({"step": step, "value": v, "metrics": plain, "state": state()})
        self.step, self.value = step, v
        self.decision = self._deliver(step, v, plain, last)
        if last:
            self.decision = CONTINUE
        return self.decision == CONTINUE

    def _save(self, state: dict[str, Any]) -> None:
        """Write the checkpoint atomically: a temporary file beside it, then a rename."""
        import torch

        assert self.checkpoint is not None
        tmp = self.checkpoint.with_name(self.checkpoint.name + f".{os.getpid()}.tmp")
        try:
            self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)  # never written through a link planted there
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.checkpoint)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise EvaluationError(f"cannot write the checkpoint {self.checkpoint}: "
                                  f"{e.strerror or e}") from None
        self.saved = True


def takes_reporter(evaluator: Any) -> bool:
    """Whether an evaluator (an object with `evaluate`, or a function) takes a reporter: a
    second positional parameter without a default, or one named `reporter`."""
    fn = getattr(evaluator, "fn", None)  # a FunctionEvaluator's function
    if fn is None:
        fn = getattr(evaluator, "evaluate", evaluator)  # a bound method: no `self`
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        return False
    second = positional[1]  # required, or named so (`fn(arch, sign=1)` takes no reporter)
    return second.default is second.empty or second.name == "reporter"
