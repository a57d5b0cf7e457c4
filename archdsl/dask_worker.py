"""What runs on a Dask worker for archdsl.executor_dask: the search's sources and settings (a
`Bundle`, sent once per worker inside a WorkerPlugin), a pool of trial processes per worker, and
the task that evaluates one job in one of them.

A worker may not share the search's files, so the bundle carries the TEXT of the searched .arch
file and of every file it imports, laid out as they are relative to their common folder; the
plugin writes them to a temporary folder the first time a trial needs them. Each trial runs in a
process of archdsl.executor's own kind (it loads the space and the evaluator once, then
evaluates job after job), so a trial that runs past its time limit has its process killed, and
a crash of the evaluator loses the trial, not the Dask worker.

The task tells the search when it starts (an event on the topic `<run>-starts`: which worker,
so a trial whose worker died is run again once only), sends each report (with the checkpoint
saved with it, as bytes) on the queue `<run>-reports`, and waits for the search's decision on
the queue `<run>-<nonce>`. Imports archdsl.executor, archdsl.dask_settings (the version),
archdsl.errors and distributed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path, PurePosixPath
from typing import Any

from distributed import Queue, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .dask_settings import archdsl_version
from .errors import ArchDSLError
from .executor import Job, Outcome, _Slot

__all__ = ["Bundle", "make_bundle", "write_bundle", "TrialPlugin", "run_trial", "warm",
           "still_running"]

_POLL = 1.0  # seconds between checks that a task is still wanted
# an idle trial process ends after this long unused: a search whose driver was killed never
# takes its settings back from the workers
IDLE_LIMIT = 300.0


@dataclass(frozen=True)
class Bundle:
    """Everything a worker needs to evaluate the search's trials."""

    files: tuple[tuple[str, str], ...]  # (path relative to the common folder, text); searched first
    import_dirs: tuple[str, ...]  # the --import-path folders, relative to the same folder
    evaluator: str
    options: tuple[tuple[str, Any], ...]
    device: str
    ops: tuple[str, ...]
    version: str = ""  # the search's archdsl

    @property
    def key(self) -> str:
        """A digest of the bundle (names the folder its files are written to)."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_bundle(files: Sequence[str | Path], import_paths: Sequence[str | Path],
                evaluator: str, options: dict[str, Any], device: str,
                ops: Sequence[str], version: str = "") -> Bundle:
    """The bundle of a space whose source is `files` (the searched file first)."""
    paths = [Path(f).resolve() for f in files]
    dirs = [Path(d).resolve() for d in import_paths]
    root = Path(os.path.commonpath([*(p.parent for p in paths), *dirs]))
    return Bundle(tuple((p.relative_to(root).as_posix(), p.read_text(encoding="utf-8"))
                        for p in paths),
                  tuple(d.relative_to(root).as_posix() for d in dirs),
                  evaluator, tuple(sorted(options.items())), device, tuple(ops), version)


def write_bundle(bundle: Bundle, folder: Path) -> tuple[Path, list[Path]]:
    """Write the bundle's files under `folder`; the searched file's path and the import
    folders' paths there."""
    for rel, text in bundle.files:
        parts = PurePosixPath(rel).parts
        if not parts or ".." in parts or PurePosixPath(rel).is_absolute():
            raise ArchDSLError(f"the search sent a source path that leaves its folder: {rel!r}")
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    dirs = [folder.joinpath(*PurePosixPath(d).parts) for d in bundle.import_dirs]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return folder.joinpath(*PurePosixPath(bundle.files[0][0]).parts), dirs


def _ready(slot: _Slot) -> None:
    """Wait until a new trial process has loaded the space and the evaluator."""
    try:
        kind, payload = slot.conn.recv()
    except (EOFError, OSError):
        code = slot.exitcode()
        slot.kill()
        raise ArchDSLError(f"its trial process ended (exit code {code}) before it had loaded "
                           "the space and the evaluator") from None
    if kind != "ready":
        slot.kill()
        raise ArchDSLError(str(payload))
    slot.ready, slot.device = True, payload


class TrialPlugin(WorkerPlugin):
    """The search's bundle on one worker, with its idle trial processes."""

    def __init__(self, name: str, bundle: Bundle):
        self.name = name
        self.bundle = bundle

    def setup(self, worker: Any) -> None:
        self.worker = worker
        self.lock = threading.Lock()
        self.idle: list[tuple[_Slot, float]] = []  # with when each was given back
        self.made = 0
        self.closed = False
        self.folder: Path | None = None
        self.space: tuple[Path, list[Path]] | None = None
        threading.Thread(target=self._reap, daemon=True).start()

    def teardown(self, worker: Any) -> None:
        with self.lock:
            self.closed, idle, self.idle = True, self.idle, []
        for s, _ in idle:
            s.kill()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _reap(self) -> None:
        """End the trial processes left idle longer than IDLE_LIMIT."""
        while True:
            time.sleep(min(30.0, IDLE_LIMIT / 2))
            now = time.monotonic()
            with self.lock:
                if self.closed:
                    return
                old = [s for s, t in self.idle if now - t > IDLE_LIMIT]
                self.idle = [(s, t) for s, t in self.idle if now - t <= IDLE_LIMIT]
            for s in old:
                s.kill()

    def scratch(self) -> Path:
        """This search's temporary folder on the worker (the sources, the checkpoints)."""
        with self.lock:
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix=f"archdsl-{self.bundle.key}-"))
            return self.folder

    def take(self) -> _Slot:
        """An idle trial process, or a new one (ArchDSLError if it cannot start)."""
        mine = archdsl_version()
        if self.bundle.version and mine != self.bundle.version:  # a worker that joined late
            raise ArchDSLError(f"the Dask worker {self.worker.address} has archdsl {mine}, and "
                               f"this search runs archdsl {self.bundle.version}")
        folder = self.scratch()
        with self.lock:
            if self.idle:
                return self.idle.pop()[0]
            if self.space is None:
                self.space = write_bundle(self.bundle, folder / "space")
            space_file, dirs = self.space
            index = self.made + _number(str(self.worker.name))
            self.made += 1
        b = self.bundle
        slot = _Slot(str(space_file), b.evaluator, [str(d) for d in dirs], dict(b.options),
                     b.device, index, b.ops)
        _ready(slot)
        return slot

    def give(self, slot: _Slot) -> None:
        with self.lock:
            if not self.closed:
                self.idle.append((slot, time.monotonic()))
                return
        slot.kill()


def _number(name: str) -> int:
    """A worker's number from its name ("3", "gpu-node-3": 3; an address: 0): with `--device
    auto|cuda`, worker i's first trial process trains on GPU i mod G, as LocalExecutor's
    worker i does (one worker per GPU, each seeing its own through CUDA_VISIBLE_DEVICES,
    needs none of this)."""
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m and "://" not in name else 0


def _plugin(name: str) -> tuple[Any, TrialPlugin]:
    worker = get_worker()
    plugin = worker.plugins.get(name)
    if not isinstance(plugin, TrialPlugin):
        raise ArchDSLError(f"the worker {worker.address} has not got the search's settings "
                           "(it joined after the search ended?)")
    return worker, plugin


def warm(name: str) -> str | None:
    """Start one trial process on this worker: None, or why it cannot start."""
    try:
        _, plugin = _plugin(name)
        plugin.give(plugin.take())
    except ArchDSLError as e:
        return e.message
    return None


def still_running(worker: Any, key: str | None) -> bool:
    """Whether the task `key` is still wanted on `worker` (not cancelled or released)."""
    if key is None:
        return True
    ts = worker.state.tasks.get(key)
    return ts is not None and ts.state in ("executing", "long-running")


def run_trial(name: str, job: Job, checkpoint: bytes | None, run: str,
              time_limit: float | None) -> Outcome | None:
    """Evaluate one job on this worker (the Dask task of a trial); None when the search no
    longer wants it (cancelled)."""
    worker, plugin = _plugin(name)
    key = worker.get_current_task()
    nonce = uuid.uuid4().hex
    worker.log_event(f"{run}-starts", {"trial": job.trial_id, "key": key,
                                       "nonce": nonce, "worker": worker.address})
    info: dict[str, Any] = {"device": plugin.bundle.device, "worker": worker.address}
    try:
        slot = plugin.take()
    except ArchDSLError as e:
        return Outcome(job.trial_id, None, f"a worker could not start: {e.message}", 0.0,
                       info)
    info["device"] = slot.device
    local = None
    if job.checkpoint is not None:  # the trial's checkpoint, here: what it continues from
        local = plugin.scratch() / "checkpoints" / f"{nonce}.pt"
        local.parent.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            local.write_bytes(checkpoint)
        job = dataclasses.replace(job, checkpoint=str(local))
    t0 = time.monotonic()  # its time limit counts from here, as LocalExecutor's from its start
    trial = _Trial(worker, key, slot, run, nonce, local, t0, time_limit)
    try:
        slot.conn.send(job)
        out = trial.follow(job.trial_id, info)
    except OSError:
        out = trial.died(job.trial_id, info)
    except BaseException:  # the process may still wait on an answer: never reused
        trial._kill()
        raise
    finally:
        if trial.slot is not None:
            plugin.give(trial.slot)
        if local is not None:
            local.unlink(missing_ok=True)
        trial.close()
    if out is not None:
        out.info.update(worker=worker.address)
    return out


class _Trial:
    """One job in one trial process: its reports relayed, its time limit kept."""

    def __init__(self, worker: Any, key: str | None, slot: _Slot, run: str, nonce: str,
                 local: Path | None, t0: float, time_limit: float | None):
        self.worker, self.key, self.slot = worker, key, slot
        self.run, self.nonce, self.local = run, nonce, local
        self.t0, self.time_limit = t0, time_limit
        self.sent: tuple[int, int] | None = self._stamp()
        self.answers: Queue | None = None
        self.reports: Queue | None = None

    def follow(self, trial_id: int, info: dict[str, Any]) -> Outcome | None:
        assert self.slot is not None
        while True:
            if not self._wait(self.slot.conn):
                return self._gave_up(trial_id, info)
            try:
                kind, payload = self.slot.conn.recv()
            except (EOFError, OSError):
                return self.died(trial_id, info)
            if kind == "done":
                return payload  # type: ignore[no-any-return]
            if kind == "report":
                answer = self._relay(list(payload))
                if answer is None:
                    return self._gave_up(trial_id, info)
                self.slot.conn.send(answer)

    def _wait(self, conn: Any) -> bool:
        """Wait for the trial process to say something; False when out of time or no longer
        wanted."""
        while True:
            left = None
            if self.time_limit is not None:
                left = self.t0 + self.time_limit - time.monotonic()
                if left <= 0:
                    return False
            if wait([conn], timeout=_POLL if left is None else min(_POLL, left)):
                return True
            if not still_running(self.worker, self.key):
                return False

    def _gave_up(self, trial_id: int, info: dict[str, Any]) -> Outcome | None:
        """The trial ran out of time (a failed Outcome) or was cancelled (None); its process
        is killed either way."""
        self._kill()
        now = time.monotonic()
        if self.time_limit is not None and now - self.t0 >= self.time_limit:
            return Outcome(trial_id, None, f"ran past the time limit of {self.time_limit:g} s",
                           now - self.t0, info)
        return None

    def died(self, trial_id: int, info: dict[str, Any]) -> Outcome:
        code = self.slot.exitcode() if self.slot is not None else None
        self._kill()
        return Outcome(trial_id, None, f"the trial's process died (exit code {code})",
                       time.monotonic() - self.t0, info)

    def _kill(self) -> None:
        if self.slot is not None:
            self.slot.kill()
            self.slot = None

    def _stamp(self) -> tuple[int, int] | None:
        if self.local is None or not self.local.is_file():
            return None
        st = self.local.stat()
        return st.st_mtime_ns, st.st_size

    def _relay(self, report: list[Any]) -> str | None:
        """Send a report (and the checkpoint saved with it) to the search; its decision, or
        None when the task is no longer wanted or out of time."""
        stamp = self._stamp()
        state = None
        if stamp is not None and stamp != self.sent:
            assert self.local is not None
            state, self.sent = self.local.read_bytes(), stamp
        if self.answers is None:  # made first: the search's answer waits in it
            self.answers = Queue(f"{self.run}-{self.nonce}")
        if self.reports is None:
            self.reports = Queue(f"{self.run}-reports")
        self.reports.put({"nonce": self.nonce, "key": self.key,
                          "report": report, "state": state})
        while True:
            left = _POLL
            if self.time_limit is not None:
                left = min(left, self.t0 + self.time_limit - time.monotonic())
                if left <= 0:
                    return None
            try:
                return str(self.answers.get(timeout=left))
            except TimeoutError:
                if not still_running(self.worker, self.key):
                    return None

    def close(self) -> None:
        for q in (self.answers, self.reports):
            if q is not None:
                try:
                    q.close()
                except Exception:  # noqa: BLE001 - the scheduler may be gone: nothing to free
                    pass
