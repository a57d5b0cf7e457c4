"""Executors run trials. One interface, so that a cluster engine can replace the local one
without touching searchers or storage:

    ex.free()                 how many more jobs it takes now
    ex.submit(job)            start evaluating a Job (trial id + configuration)
    ex.results(timeout)       Outcomes of the jobs finished since the last call (waits up to
                              `timeout` seconds for at least one)
    ex.running()              ids of the jobs in progress
    ex.close()                stop every worker (jobs in progress are abandoned)

`LocalExecutor` runs W worker processes (fresh interpreters that never run the caller's
`__main__`); a job that runs past its time limit has its worker killed (and replaced) and fails
with that reason; a worker that dies fails its job. `SerialExecutor` evaluates in this process,
one job at a time (tests, notebooks, evaluators that cannot be pickled); it has no time limit,
and it takes a job only when the last one's result has been collected, so the searcher hears
every result before it proposes again.

An evaluator that takes a reporter (`archdsl.reporting`) reports steps as it trains: each report
goes to `executor.on_report(trial_id, step, value, metrics, last)` in the search's process, and
the decision it returns (continue, pause, stop) goes back to the evaluator. Worker i trains on
the device `resolve_device(device, i)` (GPUs round robin); every Outcome's `info` says which,
and how the job ended (`decision`: the answer to its last report; `saved`: whether that report's
state was saved as a checkpoint; `step`: the last step reported).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from .devices import resolve_device
from .errors import ArchDSLError
from .evaluators import Evaluator, get_evaluator, result_of
from .reporting import CONTINUE, Reporter, takes_reporter
from .space import Space, load
from .user_ops import import_ops

__all__ = ["Job", "Outcome", "Executor", "LocalExecutor", "SerialExecutor", "evaluate",
           "check_workers", "max_workers"]


def max_workers() -> int:
    """The most worker processes one search may start: 4 per CPU core, and at least 8."""
    return max(8, 4 * (os.cpu_count() or 1))


def check_workers(workers: int) -> None:
    """ArchDSLError unless 1 <= workers <= max_workers()."""
    if workers < 1:
        raise ArchDSLError(f"--workers must be at least 1, got {workers}")
    if workers > max_workers():
        raise ArchDSLError(f"--workers {workers} is too many: at most {max_workers()} on this "
                           f"machine (4 per CPU core, at least 8)",
                           hint="each worker is a process that loads the space and the "
                                "evaluator; more workers than cores only slow each other down")


@dataclass
class Job:
    trial_id: int
    config: dict[str, Any]
    checkpoint: str | None = None  # where the trial's state is saved (and restored from)
    keep_state: bool = False  # save it at every report (a scheduler is in use)
    latency: bool = False  # measure the model's latency on the worker's device (archdsl.latency)


@dataclass
class Outcome:
    trial_id: int
    result: dict[str, Any] | None  # {"objective": float, ...}; None when the trial failed
    error: str | None
    duration: float
    info: dict[str, Any] = field(default_factory=dict)


# deliver(trial_id, step, value, metrics, last) -> a decision; see archdsl.reporting
Deliver = Callable[[int, int, float, dict[str, Any], bool], str]


def evaluate(space: Space, evaluator: Evaluator, job: Job, deliver: Deliver | None = None,
             device: str = "cpu") -> Outcome:
    """Evaluate one job here; any exception (or a NaN objective) is a failed Outcome. An
    evaluator that takes a reporter gets one that delivers its reports through `deliver`."""
    t0 = time.perf_counter()
    reporter = None
    if deliver is not None and takes_reporter(evaluator):
        reporter = Reporter(job.trial_id, lambda *r: deliver(job.trial_id, *r), device,
                            job.checkpoint, job.keep_state)
    info: dict[str, Any] = {"device": device}
    try:
        arch = space.materialize(job.config)
        static = space.metrics(arch)  # params and flops from static shapes, for every trial
        out = evaluator.evaluate(arch) if reporter is None else \
            evaluator.evaluate(arch, reporter)  # type: ignore[call-arg]
        result = result_of(out)
        result = {"params": static["params"], "flops": static["flops"], **result}
        if job.latency:
            from .latency import measure

            result["latency"] = measure(arch, device)
        return Outcome(job.trial_id, result, None, time.perf_counter() - t0,
                       _ended(info, reporter))
    except ArchDSLError as e:
        return Outcome(job.trial_id, None, e.message, time.perf_counter() - t0,
                       _ended(info, reporter))
    except Exception as e:  # noqa: BLE001 - an evaluator's crash fails the trial, not the search
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        return Outcome(job.trial_id, None, f"{type(e).__name__}: {e}{where}",
                       time.perf_counter() - t0, _ended(info, reporter))


def _ended(info: dict[str, Any], reporter: Reporter | None) -> dict[str, Any]:
    """How a job ended, for the search: its device and, with a reporter, its last report."""
    if reporter is not None:
        info.update(decision=reporter.decision, saved=reporter.saved, step=reporter.step)
    else:
        info.update(decision=CONTINUE, saved=False, step=0)
    return info


def prepare(evaluator: Evaluator, space: Space) -> None:
    """The evaluator's `prepare(space)`, when it has one: its data loaded and checked once,
    before any trial."""
    fn = getattr(evaluator, "prepare", None)
    if callable(fn):
        fn(space)


def _no_reports(trial_id: int, step: int, value: float, metrics: dict[str, Any],
                last: bool) -> str:
    return CONTINUE


class Executor:
    """The interface (see the module doc)."""

    on_report: Deliver = staticmethod(_no_reports)  # set by the search

    def free(self) -> int:
        raise NotImplementedError

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def results(self, timeout: float) -> list[Outcome]:
        raise NotImplementedError

    def running(self) -> list[int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SerialExecutor(Executor):
    def __init__(self, space: Space, evaluator: Evaluator, device: str = "cpu"):
        self.space, self.evaluator = space, evaluator
        self.device = resolve_device(device, 0)
        prepare(evaluator, space)
        self._done: list[Outcome] = []

    def free(self) -> int:
        return 0 if self._done else 1  # the last result first, then the next job

    def submit(self, job: Job) -> None:
        self._done.append(evaluate(self.space, self.evaluator, job,
                                   lambda *r: self.on_report(*r), self.device))

    def results(self, timeout: float) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    def running(self) -> list[int]:
        return []



# The worker is started as `python -c _BOOT FD`: a fresh interpreter that imports this module
# and serves jobs on the socket FD. Nothing of the parent's __main__ runs in it, so a search
# started from a script needs no `if __name__ == "__main__":` guard, and one started from
# stdin or a notebook works the same.
_BOOT = ("import sys, json; sys.path[:0] = [p for p in json.loads(sys.argv[2]) "
         "if p not in sys.path]; from archdsl.executor import _serve; _serve(int(sys.argv[1]))")


def _serve(fd: int) -> None:
    """A worker's life: load the space and the evaluator, then evaluate jobs until told to
    stop (None) or the parent goes away. A worker whose parent is gone (killed, say) exits
    at once and quietly: no traceback, no job finished for nobody."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    conn = Connection(fd)
    try:
        _work(conn)
    except (EOFError, OSError):  # the parent closed the socket or is gone
        pass


def _exit_with(parent: int) -> None:
    """End this process as soon as its parent has died (it is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _work(conn: Connection) -> None:
    space_file, evaluator, import_paths, options, device, index, ops = conn.recv()
    try:
        import_ops(ops)  # the user's operations, then the evaluator: both before the space
        ev = get_evaluator(evaluator, **options)
        space = load(space_file, import_paths)
        device = resolve_device(device, index)
        prepare(ev, space)
    except ArchDSLError as e:
        conn.send(("init", e.message))
        return
    except Exception as e:  # noqa: BLE001
        conn.send(("init", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", device))

    def deliver(trial_id: int, step: int, value: float, metrics: dict[str, Any],
                last: bool) -> str:
        conn.send(("report", (trial_id, step, value, metrics, last)))
        answer = conn.recv()
        if not isinstance(answer, str):  # None: the search is closing
            raise EOFError
        return answer

    while (job := conn.recv()) is not None:
        conn.send(("done", evaluate(space, ev, job, deliver, device)))


class _Slot:
    """One worker process and the job it runs."""

    def __init__(self, space_file: str, evaluator: str, import_paths: list[str],
                 options: dict[str, Any] | None = None, device: str = "cpu", index: int = 0,
                 ops: Sequence[str] = ()):
        parent, child = Pipe()
        # one thread per worker: torch threads that outnumber free cores slow training down
        # many times over (torch reads this when it is first imported)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(child.fileno()), json.dumps(sys.path)],
            pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env,
            process_group=0)  # Ctrl-C at a terminal reaches the parent only
        child.close()
        self.conn: Connection = parent
        self.conn.send((space_file, evaluator, import_paths, options or {}, device, index,
                        list(ops)))
        self.device = "cpu"  # the device it resolved, once ready
        self.ready = False
        self.job: Job | None = None
        self.since = 0.0

    def exitcode(self) -> int | None:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.exitcode()
        self.conn.close()


class LocalExecutor(Executor):
    """W worker processes on this machine, each loading the space (with `import_paths`, as
    `archdsl.load`) and the evaluator (`get_evaluator(evaluator, **options)`, then its
    `prepare(space)`) once; worker i trains on `resolve_device(device, i)`. Made only when
    every worker has loaded them: a worker that cannot start is an ArchDSLError here, before
    any trial."""

    def __init__(self, space_file: str, evaluator: str, workers: int = 1,
                 time_limit: float | None = None, import_paths: Sequence[str | Path] = (),
                 options: dict[str, Any] | None = None, device: str = "cpu",
                 ops: Sequence[str] = ()):
        check_workers(workers)
        self.ops = list(ops)  # operations modules each worker imports before the space
        self.args = (space_file, evaluator, [str(p) for p in import_paths], options or {},
                     device)
        self.time_limit = time_limit
        self.slots: list[_Slot] = []
        self._failed: list[Outcome] = []  # jobs that could not be handed to a worker
        try:
            self.slots = [_Slot(*self.args, i, self.ops) for i in range(workers)]
            for i in range(workers):
                while not self.slots[i].ready:
                    self._receive(i)
        except BaseException:
            self.close()
            raise

    def free(self) -> int:
        return sum(1 for s in self.slots if s.job is None)

    def submit(self, job: Job) -> None:
        i = next(i for i, s in enumerate(self.slots) if s.job is None)
        slot = self.slots[i]
        slot.job, slot.since = job, time.monotonic()
        try:
            slot.conn.send(job)
        except OSError:  # the worker died waiting for it
            self._failed.append(Outcome(job.trial_id, None, "the worker process died "
                                        f"(exit code {slot.exitcode()})", 0.0,
                                        {"device": slot.device}))
            self._replace(i)

    def running(self) -> list[int]:
        return [s.job.trial_id for s in self.slots if s.job is not None]

    def results(self, timeout: float) -> list[Outcome]:
        out, self._failed = self._failed, []
        deadline = time.monotonic() + timeout
        while not out:
            now = time.monotonic()
            for i, s in enumerate(self.slots):
                if s.job is not None and self.time_limit and now - s.since > self.time_limit:
                    out.append(Outcome(s.job.trial_id, None,
                                       f"ran past the time limit of {self.time_limit:g} s",
                                       now - s.since, {"device": s.device}))
                    self._replace(i)
            if out or now >= deadline:
                break
            waits = [t for s in self.slots if s.job is not None and self.time_limit
                     for t in [s.since + self.time_limit - now]]
            ready = wait([s.conn for s in self.slots],
                         timeout=max(0.0, min([deadline - now, *waits])))
            for i, s in enumerate(self.slots):
                if s.conn in ready:
                    o = self._receive(i)
                    if o is not None:
                        out.append(o)
        return out

    def _receive(self, i: int) -> Outcome | None:
        """Read one message of worker i (waiting for it); the Outcome it ends, if any."""
        s = self.slots[i]
        try:
            kind, payload = s.conn.recv()
        except (EOFError, OSError):
            return self._died(i)
        if kind == "ready":
            s.ready, s.device = True, payload
            return None
        if kind == "init":
            raise ArchDSLError(f"a worker could not start: {payload}")
        if kind == "report":
            try:
                s.conn.send(self.on_report(*payload))
            except OSError:  # the worker died meanwhile: its end is read next
                pass
            return None
        s.job = None
        return payload

    def _died(self, i: int) -> Outcome | None:
        s = self.slots[i]
        job, code = s.job, s.exitcode()
        if not s.ready:
            raise ArchDSLError(f"a worker could not start: its process ended (exit code {code}) "
                               "before it had loaded the space and the evaluator",
                               hint="its error output above says why")
        self._replace(i)
        if job is None:
            return None
        return Outcome(job.trial_id, None, f"the worker process died (exit code {code})",
                       time.monotonic() - s.since, {"device": s.device})

    def _replace(self, i: int) -> None:
        self.slots[i].kill()
        self.slots[i] = _Slot(*self.args, i, self.ops)

    def close(self) -> None:
        for s in self.slots:
            try:
                if s.job is None and s.proc.poll() is None:
                    s.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 0.5
        for s in self.slots:
            try:
                s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            s.kill()
        self.slots = []
