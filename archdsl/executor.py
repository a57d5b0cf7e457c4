"""Executors run trials. One interface, so that a cluster engine can replace the local one
without touching searchers or storage:

    ex.free()                 how many more jobs it takes now
    ex.submit(job)            start evaluating a Job (trial id + configuration)
    ex.results(timeout)       Outcomes of the jobs finished since the last call (waits up to
                              `timeout` seconds for at least one)
    ex.running()              ids of the jobs in progress
    ex.close()                stop every worker (jobs in progress are abandoned)

`LocalExecutor` runs W worker processes; a job that runs past its time limit has its worker
killed (and replaced) and fails with that reason; a worker that dies fails its job.
`SerialExecutor` evaluates in this process, one job at a time (tests, notebooks, evaluators
that cannot be pickled); it has no time limit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .errors import ArchDSLError
from .evaluators import Evaluator, get_evaluator, result_of
from .space import Space, load

__all__ = ["Job", "Outcome", "Executor", "LocalExecutor", "SerialExecutor", "evaluate"]


@dataclass
class Job:
    trial_id: int
    config: dict[str, Any]


@dataclass
class Outcome:
    trial_id: int
    result: dict[str, Any] | None  # {"objective": float, ...}; None when the trial failed
    error: str | None
    duration: float
    info: dict[str, Any] = field(default_factory=dict)


def evaluate(space: Space, evaluator: Evaluator, job: Job) -> Outcome:
    """Evaluate one job here; any exception (or a NaN objective) is a failed Outcome."""
    t0 = time.perf_counter()
    try:
        arch = space.materialize(job.config)
        static = space.metrics(arch)  # params and flops from static shapes, for every trial
        result = result_of(evaluator.evaluate(arch))
        result = {"params": static["params"], "flops": static["flops"], **result}
        return Outcome(job.trial_id, result, None, time.perf_counter() - t0)
    except ArchDSLError as e:
        return Outcome(job.trial_id, None, e.message, time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - an evaluator's crash fails the trial, not the search
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        return Outcome(job.trial_id, None, f"{type(e).__name__}: {e}{where}",
                       time.perf_counter() - t0)


class Executor:
    """The interface (see the module doc)."""

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
    def __init__(self, space: Space, evaluator: Evaluator):
        self.space, self.evaluator = space, evaluator
        self._done: list[Outcome] = []

    def free(self) -> int:
        return 1

    def submit(self, job: Job) -> None:
        self._done.append(evaluate(self.space, self.evaluator, job))

    def results(self, timeout: float) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    def running(self) -> list[int]:
        return []


def _worker(conn: Connection, space_file: str, evaluator: str, sys_path: list[str],
            threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # one thread per worker: torch threads that outnumber free cores slow training down many
    # times over (torch reads this when it is first imported)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    try:
        space, ev = load(space_file), get_evaluator(evaluator)
    except ArchDSLError as e:
        conn.send(("init", e.message))
        return
    except Exception as e:  # noqa: BLE001
        conn.send(("init", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(("done", evaluate(space, ev, job)))


class _Slot:
    """One worker process and the job it runs."""

    def __init__(self, ctx: Any, args: tuple):
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc = ctx.Process(target=_worker, args=(child, *args), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.job: Job | None = None
        self.since = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class LocalExecutor(Executor):
    """W worker processes on this machine, each loading the space and the evaluator once."""

    def __init__(self, space_file: str, evaluator: str, workers: int = 1,
                 time_limit: float | None = None):
        if workers < 1:
            raise ArchDSLError(f"--workers must be at least 1, got {workers}")
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["archdsl.executor"])
        self.args = (space_file, evaluator, list(sys.path), 1)
        self.time_limit = time_limit
        self.slots = [_Slot(self.ctx, self.args) for _ in range(workers)]

    def free(self) -> int:
        return sum(1 for s in self.slots if s.job is None)

    def submit(self, job: Job) -> None:
        slot = next(s for s in self.slots if s.job is None)
        slot.job, slot.since = job, time.monotonic()
        slot.conn.send(job)

    def running(self) -> list[int]:
        return [s.job.trial_id for s in self.slots if s.job is not None]

    def results(self, timeout: float) -> list[Outcome]:
        out: list[Outcome] = []
        deadline = time.monotonic() + timeout
        while not out:
            now = time.monotonic()
            for i, s in enumerate(self.slots):
                if s.job is not None and self.time_limit and now - s.since > self.time_limit:
                    out.append(Outcome(s.job.trial_id, None,
                                       f"ran past the time limit of {self.time_limit:g} s",
                                       now - s.since))
                    self._replace(i)
            if out or now >= deadline:
                break
            waits = [t for s in self.slots if s.job is not None and self.time_limit
                     for t in [s.since + self.time_limit - now]]
            ready = wait([c for s in self.slots for c in (s.conn, s.proc.sentinel)],
                         timeout=max(0.0, min([deadline - now, *waits])))
            for i, s in enumerate(self.slots):
                if s.conn in ready or s.proc.sentinel in ready:
                    o = self._receive(i)
                    if o is not None:
                        out.append(o)
        return out

    def _receive(self, i: int) -> Outcome | None:
        s = self.slots[i]
        try:
            if s.conn.poll():
                kind, payload = s.conn.recv()
                if kind == "ready":
                    s.ready = True
                    return None
                if kind == "init":
                    self.close()
                    raise ArchDSLError(f"a worker could not start: {payload}")
                s.job = None
                return payload
        except (EOFError, OSError):
            pass
        if s.proc.is_alive():
            return None
        job, code = s.job, s.proc.exitcode
        self._replace(i)
        if job is None:
            return None
        return Outcome(job.trial_id, None, f"the worker process died (exit code {code})",
                       time.monotonic() - s.since)

    def _replace(self, i: int) -> None:
        self.slots[i].kill()
        self.slots[i] = _Slot(self.ctx, self.args)

    def close(self) -> None:
        for s in self.slots:
            try:
                if s.job is None and s.proc.is_alive():
                    s.conn.send(None)
            except OSError:
                pass
        for s in self.slots:
            s.proc.join(timeout=0.5)
            s.kill()
