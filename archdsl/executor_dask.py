"""The Dask executor: a search's trials run as Dask futures on a cluster (docs/distributed.md).

    ex = DaskExecutor("space.arch", "nb201", None, None, (), {}, "cpu", (),
                      address="tcp://10.0.0.5:8786")     # or cluster="local:2"

The search (the driver) stays the only writer of its study. The space's sources and the
evaluator's settings go to each worker once (archdsl.dask_worker's plugin), never with each
trial; each trial is a future asking for the worker resources `GPU` and `CPU` given by
`--gpus-per-trial` and `--cpus-per-trial`; `workers` bounds the trials in flight (by default,
what the workers can run at once: their threads and resources, counted again as they come and
go). Reports come back through a Dask queue and are answered per trial (`on_report` runs in
the driver, as with LocalExecutor); the state an evaluator saves with a report comes with it
and is written to the study's checkpoint, and a promoted trial carries it to whichever worker
runs it.

Faults: a worker lost while running a trial makes the trial run again once, on another worker
(then it fails, "worker lost twice"); a lost scheduler raises SchedulerLost from `results()`
(the search marks its running trials interrupted, and `--resume` finishes them).

Imports distributed only when an executor is made (archdsl.dask_settings's
`require_distributed` says what to install when it is missing); imports archdsl.executor,
archdsl.errors, archdsl.dask_settings, and when an executor is made archdsl.space and
archdsl.dask_worker.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dask_settings as settings
from .errors import ArchDSLError
from .executor import Executor, Job, Outcome

__all__ = ["DaskExecutor", "SchedulerLost"]

_RECOUNT = 2.0  # seconds between counts of what the workers can run at once


class SchedulerLost(ArchDSLError):
    """The connection to the Dask scheduler was lost while the search ran."""


@dataclass
class _Live:
    """A trial in flight."""

    job: Job
    future: Any
    since: float
    tries: int = 1  # futures made for it (a second after its worker was lost)
    workers: list[str] = field(default_factory=list)  # where each run of it started


class DaskExecutor(Executor):
    """Trials as Dask futures (see the module doc). Made only when the cluster is reachable,
    has a worker with the resources asked for, runs this archdsl version, and every worker
    can load the space and the evaluator: else an ArchDSLError, before any trial."""

    def __init__(self, space_file: str, evaluator: str, workers: int | None = None,
                 trial_timeout: float | None = None, import_paths: Sequence[str | Path] = (),
                 options: dict[str, Any] | None = None, device: str = "cpu",
                 ops: Sequence[str] = (), *, address: str | None = None,
                 cluster: int | str | None = None, gpus_per_trial: float = 0,
                 cpus_per_trial: float = 0, connect_timeout: float = 30.0,
                 log: Callable[[str], None] = print):
        settings.require_distributed()
        from .dask_worker import TrialPlugin, make_bundle
        from .space import load

        if workers is not None and workers < 1:
            raise ArchDSLError(f"--workers must be at least 1, got {workers}")
        self.time_limit = trial_timeout
        self.resources = settings.trial_resources(gpus_per_trial, cpus_per_trial)
        self.connect_timeout = connect_timeout
        self.log = log
        self.run = f"archdsl-{uuid.uuid4().hex[:12]}"
        self.live: dict[int, _Live] = {}
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client: Any = None
        self.cluster: Any = None
        self.closed = False
        self._logging = _quiet()
        self._reader: threading.Thread | None = None
        opts = _shared_options(options or {})
        files = load(space_file, import_paths).ir.files
        bundle = make_bundle(files, import_paths, evaluator, opts, device, ops,
                             settings.archdsl_version())
        self.plugin = TrialPlugin(self.run, bundle)
        self.address = address or "a local cluster"
        try:
            self.address = self._connect(address, cluster)
            info = self._workers()
            self.bound = workers  # None: what the workers can run, as they come and go
            self.capacity = settings.capacity(info, self.resources)
            self.counted = time.monotonic()
            self._start(info)
        except ArchDSLError:
            self.close()
            raise
        except Exception as e:  # noqa: BLE001 - Dask's own errors: the cluster went wrong
            lost = self.client is not None and self.client.status != "running"
            self.close()
            what = "lost the Dask scheduler" if lost else "the Dask cluster failed"
            raise ArchDSLError(f"{what} at {self.address} while the search was starting: "
                               f"{_reason(e)}", hint="nothing was run; try again once the "
                                                     "cluster is up") from None
        except BaseException:
            self.close()
            raise

    # ---- connecting ----------------------------------------------------------------------
    def _connect(self, address: str | None, cluster: int | str | None) -> str:
        from distributed import Client

        if cluster is not None:
            n = settings.parse_cluster(cluster) if isinstance(cluster, str) else cluster
            gpus = self.resources.get("GPU")
            if gpus:
                from .devices import cuda_count

                if not cuda_count():
                    raise ArchDSLError(f"--gpus-per-trial {gpus:g} with --cluster local:{n}: "
                                       "this machine has no CUDA GPU",
                                       hint="leave --gpus-per-trial out to train on the CPU")
            self.cluster = _local_cluster(n, self.resources)
            self.client = Client(self.cluster, set_as_default=False)
            return str(self.cluster.scheduler_address)
        if address is None:
            raise ArchDSLError("DaskExecutor needs address= or cluster=")
        address = settings.parse_address(address)
        try:
            self.client = Client(address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as e:
            raise ArchDSLError(f"cannot reach the Dask scheduler at {address} (waited "
                               f"{self.connect_timeout:g} s): {_reason(e)}",
                               hint="start it with `dask scheduler` on that machine and check "
                                    "the address; --connect-timeout S waits longer") from None
        return address

    def _workers(self) -> dict[str, dict[str, Any]]:
        """The workers, once there is one (waiting up to the connect timeout), checked."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        if not info:
            self.log(f"waiting for a Dask worker to join the scheduler at {self.address} (up "
                     f"to {self.connect_timeout:g} s, --connect-timeout)")
            try:
                self.client.wait_for_workers(1, timeout=self.connect_timeout)
            except (OSError, TimeoutError):
                raise ArchDSLError(f"no Dask worker joined the scheduler at {self.address} "
                                   f"within {self.connect_timeout:g} s",
                                   hint=f"start workers with `dask worker {self.address}` "
                                        "(docs/distributed.md)") from None
            info = self.client.scheduler_info(n_workers=-1)["workers"]
        versions = self.client.run(settings.archdsl_version, on_error="return")
        problem = settings.version_problem(versions, settings.archdsl_version())
        if problem:
            raise ArchDSLError(problem, hint="install the same archdsl on every worker as on "
                                             "this machine, then restart the workers")
        problem = settings.missing_resources(info, self.resources)
        if problem:
            raise ArchDSLError(problem, hint='start workers with `dask worker ADDRESS '
                               '--resources "GPU=1 CPU=4"` (what each has), or ask for less')
        return info

    def _start(self, info: dict[str, dict[str, Any]]) -> None:
        """Send the search's settings to every worker, start one trial process on each that
        can run trials (so that a space or evaluator they cannot load fails here), then
        listen for starts and reports."""
        from .dask_worker import warm

        self.client.register_plugin(self.plugin, name=self.run)
        able = [a for a, w in info.items()
                if settings.missing_resources({a: w}, self.resources) is None]
        futures = [self.client.submit(warm, self.run, workers=[a], allow_other_workers=False,
                                      pure=False, key=f"{self.run}-warm-{i}")
                   for i, a in enumerate(able)]
        for a, f in zip(able, futures, strict=True):
            why = f.result()
            if why is not None:
                raise ArchDSLError(f"a worker could not start ({a}): {why}")
        self.client.subscribe_topic(f"{self.run}-starts",
                                    lambda e: self.events.put(("start", e[1])))
        self._reader = threading.Thread(target=self._read_reports, daemon=True)
        self._reader.start()

    def _read_reports(self) -> None:
        from distributed import Queue

        try:
            reports = Queue(f"{self.run}-reports", client=self.client)
            while not self.closed:
                try:
                    self.events.put(("report", reports.get(timeout=0.5)))
                except TimeoutError:
                    continue
        except Exception as e:  # noqa: BLE001 - the connection is gone: results() says so
            if not self.closed:
                self.events.put(("lost", _reason(e)))

    # ---- the Executor interface ----------------------------------------------------------
    def free(self) -> int:
        if self.bound is not None:
            return max(0, self.bound - len(self.live))
        if time.monotonic() - self.counted > _RECOUNT and self.client.status == "running":
            self.counted = time.monotonic()  # workers that joined since (SLURM jobs, say)
            try:
                info = self.client.scheduler_info(n_workers=-1)["workers"]
                self.capacity = settings.capacity(info, self.resources)
            except Exception:  # noqa: BLE001 - the scheduler went away: results() says so
                pass
        return max(0, self.capacity - len(self.live))

    def running(self) -> list[int]:
        return list(self.live)

    def submit(self, job: Job) -> None:
        self._send(job, 1)

    def _send(self, job: Job, tries: int) -> None:
        from .dask_worker import run_trial

        state = None
        if job.checkpoint is not None and Path(job.checkpoint).is_file():
            state = Path(job.checkpoint).read_bytes()  # a promoted or resumed trial's
        future = self.client.submit(run_trial, self.run, job, state, self.run, self.time_limit,
                                    key=f"{self.run}-trial-{job.trial_id}-{tries}",
                                    resources=self.resources or None, pure=False)
        self.live[job.trial_id] = _Live(job, future, time.monotonic(), tries)
        future.add_done_callback(lambda f: self.events.put(("done", f)))

    def results(self, timeout: float) -> list[Outcome]:
        out: list[Outcome] = []
        deadline = time.monotonic() + timeout
        while True:
            self._check_connected()
            left = deadline - time.monotonic()
            try:
                kind, item = self.events.get(timeout=0 if out else max(0.0, min(left, 0.5)))
            except queue.Empty:
                if out or left <= 0:
                    return out
                continue
            o = self._handle(kind, item)
            if o is not None:
                out.append(o)

    def _check_connected(self) -> None:
        if self.client is not None and self.client.status != "running":
            raise SchedulerLost(f"lost the Dask scheduler at {self.address}; the running "
                                "trials are marked interrupted")

    def _handle(self, kind: str, item: Any) -> Outcome | None:
        if kind == "lost":
            self._check_connected()
            raise SchedulerLost(f"lost the Dask scheduler at {self.address} ({item}); the "
                                "running trials are marked interrupted")
        if kind == "start":
            return self._started(item)
        if kind == "report":
            self._report(item)
            return None
        return self._done(item)

    def _started(self, msg: dict[str, Any]) -> Outcome | None:
        live = self.live.get(msg.get("trial", -1))
        if live is None or live.future.key != msg.get("key"):
            return None
        live.workers.append(str(msg.get("worker")))
        if len(live.workers) <= 2:
            return None
        # Dask ran it a third time: the workers of its first two runs were lost
        live.future.cancel()
        del self.live[live.job.trial_id]
        return self._lost_twice(live)

    def _lost_twice(self, live: _Live) -> Outcome:
        where = " and ".join(live.workers[:2]) or "its workers"
        return Outcome(live.job.trial_id, None, f"worker lost twice: {where} went away while "
                       "running it", time.monotonic() - live.since,
                       {"device": self.plugin.bundle.device})

    def _report(self, msg: dict[str, Any]) -> None:
        from distributed import Queue

        nonce, report = msg.get("nonce"), msg.get("report")
        if not isinstance(report, (list, tuple)) or len(report) != 5:
            return
        tid, step, value, metrics, last = report
        live = self.live.get(tid)
        if live is None or live.future.key != msg.get("key"):
            return  # from a run that ended or was lost: nobody waits for its answer
        if msg.get("state") is not None and live.job.checkpoint is not None:
            _write_atomic(Path(live.job.checkpoint), msg["state"])
        decision = self.on_report(int(tid), int(step), float(value), dict(metrics), bool(last))
        try:
            answers = Queue(f"{self.run}-{nonce}", client=self.client)
            answers.put(decision)
            answers.close()
        except Exception as e:  # noqa: BLE001 - the scheduler went away
            self._check_connected()
            raise SchedulerLost(f"lost the Dask scheduler at {self.address} ({_reason(e)}); "
                                "the running trials are marked interrupted") from None

    def _done(self, future: Any) -> Outcome | None:
        tid = next((t for t, v in self.live.items() if v.future is future), None)
        if tid is None:
            return None  # one this executor gave up on (a third run, cancelled)
        live = self.live[tid]
        status = future.status
        if status == "cancelled":
            self._check_connected()
            raise SchedulerLost(f"the Dask scheduler at {self.address} cancelled trial {tid}; "
                                "the running trials are marked interrupted")
        if status == "finished":
            o = future.result()
            del self.live[tid]
            if isinstance(o, Outcome):
                return o
            return Outcome(tid, None, "its Dask task was cancelled while it ran",
                           time.monotonic() - live.since, {"device": self.plugin.bundle.device})
        exc = future.exception()
        del self.live[tid]
        if type(exc).__name__ == "KilledWorker":
            if live.tries == 1 and len(live.workers) <= 1:
                self._send(live.job, 2)  # once more, on another worker
                self.live[tid].workers = live.workers
                return None
            return self._lost_twice(live)
        why = exc.message if isinstance(exc, ArchDSLError) else f"{type(exc).__name__}: {exc}"
        return Outcome(tid, None, why, time.monotonic() - live.since,
                       {"device": self.plugin.bundle.device})

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self.client is not None and self.client.status == "running":
                futures = [v.future for v in self.live.values()]
                if futures:
                    self.client.cancel(futures, force=True)
                self.client.unsubscribe_topic(f"{self.run}-starts")
                try:
                    self.client.unregister_worker_plugin(self.run)
                except Exception:  # noqa: BLE001 - not registered yet
                    pass
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        finally:
            self.live.clear()
            if self._reader is not None:
                self._reader.join(timeout=2)
            for thing in (self.client, self.cluster):
                if thing is not None:
                    try:
                        thing.close(timeout=5)
                    except Exception:  # noqa: BLE001 - a lost scheduler: nothing to close
                        pass
            _quiet(self._logging)


def _local_cluster(n: int, resources: dict[str, float]) -> Any:
    """A LocalCluster of n single-threaded workers, each with the resources one trial asks
    for. The scheduler and the workers live in this process and talk within it (they only
    hand jobs over and relay reports; each worker's trials run in processes of their own,
    as LocalExecutor's do), so nothing re-runs the caller's `__main__`, as spawned worker
    processes would (a script needs no `if __name__ == "__main__":` guard), and their HTTP
    endpoints listen on 127.0.0.1 only."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=n, threads_per_worker=1, processes=False,
                        dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                        silence_logs=logging.CRITICAL,
                        resources=resources or None)


def _shared_options(options: dict[str, Any]) -> dict[str, Any]:
    """The evaluator's options as a worker takes them: a data file here by its full path."""
    data = options.get("data")
    if isinstance(data, str) and ":" not in data and Path(data).is_file():
        return {**options, "data": str(Path(data).resolve())}
    return dict(options)


def _write_atomic(path: Path, data: bytes) -> None:
    """A checkpoint from a worker, written as the Reporter writes one: a temporary file
    beside it, then a rename."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _quiet(saved: dict[str, int] | None = None) -> dict[str, int]:
    """Dask's own log lines (a lost worker, a closed connection) are the search's to report:
    silenced while an executor lives (every logger of distributed's: Dask's configuration
    gives some their own level), then restored."""
    if saved is not None:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
        return saved
    import distributed  # noqa: F401 - its loggers, as its configuration makes them

    names = ["distributed", "tornado", "asyncio",
             *(n for n in logging.root.manager.loggerDict
               if n.startswith(("distributed.", "tornado.")))]
    out = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return out
