"""Fast tests of the Dask executor's own logic, without a cluster: settings and addresses,
resources, versions, the bundle of sources a worker gets, and how the driver counts a trial's
runs when workers are lost (tests/test_executor_dask.py runs a real cluster)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from archdsl.dask_settings import (
    capacity,
    dask_settings,
    missing_resources,
    parse_address,
    parse_cluster,
    require_distributed,
    trial_resources,
    version_problem,
)
from archdsl.errors import ArchDSLError
from archdsl.executor import Job, Outcome
from archdsl.executor_dask import DaskExecutor, SchedulerLost, _Live
from archdsl.runner import search

ROOT = Path(__file__).resolve().parent.parent
NB201 = ROOT / "examples" / "nb201.arch"


# ---- settings ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("tcp://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
    ("127.0.0.1:8786", "tcp://127.0.0.1:8786"),
    ("tls://node-3.cluster:9000", "tls://node-3.cluster:9000"),
    (" tcp://[::1]:8786 ", "tcp://[::1]:8786"),
])
def test_addresses(text: str, want: str) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["", "tcp://", "http://host:8786", "host", "host:0",
                                  "host:70000", "tcp://a b:1", "none"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ArchDSLError, match="not a scheduler address") as e:
        parse_address(text)
    assert "tcp://" in (e.value.hint or "")


def test_clusters() -> None:
    assert parse_cluster("local:2") == 2
    for bad in ("local", "local:0", "local:x", "slurm:4", "local:100000"):
        with pytest.raises(ArchDSLError, match="--cluster"):
            parse_cluster(bad)


def test_resources() -> None:
    assert trial_resources(None, None) == {}
    assert trial_resources(1, 0) == {"GPU": 1.0}
    assert trial_resources(0.5, 4) == {"GPU": 0.5, "CPU": 4.0}
    for bad in (-1, float("nan"), float("inf"), True):
        with pytest.raises(ArchDSLError, match="--gpus-per-trial must be"):
            trial_resources(bad, None)


def test_settings_local_by_default() -> None:
    assert dask_settings(None, None, None, None, None, None, env={}) is None
    assert dask_settings("local", None, None, None, None, None, env={}) is None
    # the environment's scheduler is read with --executor dask only
    assert dask_settings(None, None, None, None, None, None,
                         env={"ARCHDSL_DASK_SCHEDULER": "tcp://127.0.0.1:1"}) is None


def test_settings_dask() -> None:
    s = dask_settings(None, "127.0.0.1:8786", None, 1, None, 5, env={})
    assert s is not None and (s.address, s.cluster, s.resources, s.connect_timeout) == \
        ("tcp://127.0.0.1:8786", None, {"GPU": 1.0}, 5.0)
    s = dask_settings("dask", None, None, None, None, None,
                      env={"ARCHDSL_DASK_SCHEDULER": "tcp://127.0.0.1:9"})
    assert s is not None and s.address == "tcp://127.0.0.1:9" and s.connect_timeout == 30.0
    s = dask_settings(None, None, "local:3", None, 2, None, env={})
    assert s is not None and (s.address, s.cluster, s.resources) == (None, 3, {"CPU": 2.0})


@pytest.mark.parametrize("args, message", [
    (("dusk", None, None, None, None, None), "unknown executor 'dusk'"),
    (("local", "tcp://127.0.0.1:1", None, None, None, None),
     "--dask-scheduler is for --executor dask"),
    (("local", None, None, 1, None, None), "--gpus-per-trial is for --executor dask"),
    (("dask", None, None, None, None, None), "--executor dask needs a cluster"),
    (("dask", "tcp://127.0.0.1:1", "local:2", None, None, None), "not both"),
    (("dask", None, "local:2", None, None, 0), "--connect-timeout must be"),
])
def test_bad_settings(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ArchDSLError, match=message):
        dask_settings(*args, env={})


def test_unknown_executor_hint() -> None:
    with pytest.raises(ArchDSLError) as e:
        dask_settings("dsk", None, None, None, None, None, env={})
    assert "dask" in (e.value.hint or "")


def test_without_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(ArchDSLError, match=r'pip install "archdsl\[dask\]"'):
        require_distributed()
    with pytest.raises(ArchDSLError, match="needs the dask extra"):
        dask_settings(None, None, "local:2", None, None, None, env={})


# ---- the search refuses before anything is made ------------------------------------------
def test_scheduler_address_in_the_wrong_option(tmp_path: Path) -> None:
    with pytest.raises(ArchDSLError, match="early-stopping scheduler") as e:
        search(NB201, evaluator="nb201", study_dir=tmp_path / "s",
               scheduler="tcp://127.0.0.1:8786")
    assert "--dask-scheduler tcp://127.0.0.1:8786" in (e.value.hint or "")
    assert not (tmp_path / "s").exists()


def test_evaluator_object_cannot_go_to_dask(tmp_path: Path) -> None:
    with pytest.raises(ArchDSLError, match="cannot run on a Dask cluster"):
        search(NB201, study_dir=tmp_path / "s", evaluator_object=lambda arch: 1.0,
               cluster="local:1")
    assert not (tmp_path / "s").exists()


def test_unreachable_scheduler(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ArchDSLError, match=f"cannot reach the Dask scheduler at "
                                           f"tcp://127.0.0.1:{port}") as e:
        search(NB201, evaluator="nb201", study_dir=tmp_path / "s",
               dask_scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=1)
    assert "--connect-timeout" in (e.value.hint or "")
    assert not (tmp_path / "s").exists()


# ---- workers: resources, versions, capacity ----------------------------------------------
WORKERS = {"tcp://127.0.0.1:1": {"nthreads": 4, "resources": {"GPU": 1, "CPU": 8}},
           "tcp://127.0.0.1:2": {"nthreads": 2, "resources": {}}}


def test_missing_resources() -> None:
    assert missing_resources(WORKERS, {}) is None
    assert missing_resources(WORKERS, {"GPU": 1}) is None
    why = missing_resources(WORKERS, {"GPU": 2})
    assert why == ("no Dask worker has the resources a trial asks for (GPU=2); the workers "
                   "have: CPU=8 GPU=1, none")


def test_capacity() -> None:
    assert capacity(WORKERS, {}) == 6  # every thread
    assert capacity(WORKERS, {"GPU": 1}) == 1
    assert capacity(WORKERS, {"CPU": 2}) == 4
    assert capacity(WORKERS, {"GPU": 4}) == 1  # at least one, though none fits


def test_versions() -> None:
    assert version_problem({"tcp://h:1": "0.1.0", "tcp://h:2": "0.1.0"}, "0.1.0") is None
    assert version_problem({"tcp://h:1": "0.1.0", "tcp://h:2": "0.0.9"}, "0.1.0") == \
        "the Dask worker tcp://h:2 has archdsl 0.0.9, and this search runs archdsl 0.1.0"
    assert version_problem({"tcp://h:1": ModuleNotFoundError("archdsl")}, "0.1.0") == \
        "the Dask worker tcp://h:1 has no archdsl installed"


# ---- the sources a worker gets -----------------------------------------------------------
def test_bundle_carries_the_sources_and_imports(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from archdsl.dask_worker import make_bundle, write_bundle
    from archdsl.space import load

    space = load(ROOT / "examples" / "resnet.arch")  # it imports lib/common.arch
    b = make_bundle(space.ir.files, [ROOT / "examples" / "lib"], "nb201", {}, "cpu", ())
    assert [rel for rel, _ in b.files] == ["resnet.arch", "lib/common.arch"]
    assert b.import_dirs == ("lib",)
    assert b.key == make_bundle(space.ir.files, [ROOT / "examples" / "lib"], "nb201", {},
                                "cpu", ()).key
    assert b.key != make_bundle(space.ir.files, [ROOT / "examples" / "lib"], "digits", {},
                                "cpu", ()).key
    main, dirs = write_bundle(b, tmp_path / "worker")
    assert main == tmp_path / "worker" / "resnet.arch"
    assert dirs == [tmp_path / "worker" / "lib"]
    copy = load(main)
    assert copy.count() == space.count() == 3456


def test_worker_numbers() -> None:
    pytest.importorskip("distributed")
    from archdsl.dask_worker import _number

    assert [_number(n) for n in ("0", "3", "gpu-node-12", "w", "tcp://127.0.0.1:8786")] == \
        [0, 3, 12, 0, 0]


def test_bundle_refuses_paths_out_of_its_folder(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from archdsl.dask_worker import Bundle, write_bundle

    for rel in ("../evil.arch", "/etc/evil.arch"):
        b = Bundle(((rel, "x"),), (), "nb201", (), "cpu", ())
        with pytest.raises(ArchDSLError, match="leaves its folder"):
            write_bundle(b, tmp_path / "w")
    assert not (tmp_path / "evil.arch").exists()


# ---- lost workers: one more run, then a failure --------------------------------------------
class _Future:
    def __init__(self, key: str, status: str = "pending", exc: BaseException | None = None,
                 result: Any = None):
        self.key, self.status, self._exc, self._result = key, status, exc, result
        self.cancelled = False

    def exception(self) -> BaseException | None:
        return self._exc

    def result(self) -> Any:
        return self._result

    def cancel(self) -> None:
        self.cancelled = True


class KilledWorker(Exception):  # named as Dask's, which the executor recognises by name
    pass


class _Client:
    status = "running"


def _executor() -> DaskExecutor:
    """A DaskExecutor's driver logic, with no cluster: submissions are recorded."""
    ex = DaskExecutor.__new__(DaskExecutor)
    ex.live, ex.ready, ex.client, ex.address = {}, [], _Client(), "tcp://127.0.0.1:1"
    ex.sent = []

    class _Plugin:
        class bundle:
            device = "cpu"

    ex.plugin = _Plugin()  # type: ignore[assignment]

    def send(job: Job, tries: int) -> None:
        ex.sent.append((job.trial_id, tries))
        ex.live[job.trial_id] = _Live(job, _Future(f"k-{job.trial_id}-{tries}"), 0.0, tries)

    ex._send = send  # type: ignore[method-assign]
    return ex


def test_killed_worker_runs_the_trial_once_more() -> None:
    ex = _executor()
    ex._send(Job(7, {}), 1)
    f = ex.live[7].future
    assert ex._started({"trial": 7, "key": f.key, "worker": "tcp://a"}) is None
    f.status, f._exc = "error", KilledWorker("lost")
    assert ex._done(f) is None  # sent again, on another worker
    assert ex.sent == [(7, 1), (7, 2)]
    g = ex.live[7].future
    assert ex._started({"trial": 7, "key": g.key, "worker": "tcp://b"}) is None
    g.status, g._exc = "error", KilledWorker("lost")
    o = ex._done(g)
    assert isinstance(o, Outcome) and o.result is None
    assert o.error == "worker lost twice: tcp://a and tcp://b went away while running it"
    assert ex.live == {}


def test_a_third_run_by_dask_is_cancelled() -> None:
    ex = _executor()  # a scheduler that reruns a task after a lost worker (allowed-failures)
    ex._send(Job(3, {}), 1)
    f = ex.live[3].future
    for w in ("tcp://a", "tcp://b"):
        assert ex._started({"trial": 3, "key": f.key, "worker": w}) is None
    o = ex._started({"trial": 3, "key": f.key, "worker": "tcp://c"})
    assert isinstance(o, Outcome) and o.error is not None and o.error.startswith(
        "worker lost twice: tcp://a and tcp://b")
    assert f.cancelled and ex.live == {}
    assert ex._done(f) is None  # its end, when Dask reports it, is nobody's


def test_results_and_errors() -> None:
    ex = _executor()
    ex._send(Job(1, {}), 1)
    ex._send(Job(2, {}), 1)
    f1, f2 = ex.live[1].future, ex.live[2].future
    f1.status, f1._result = "finished", Outcome(1, {"objective": 1.0}, None, 0.1)
    f2.status, f2._exc = "error", ValueError("cannot unpickle")
    assert ex._done(f1).result == {"objective": 1.0}  # type: ignore[union-attr]
    assert ex._done(f2).error == "ValueError: cannot unpickle"  # type: ignore[union-attr]
    assert ex.live == {} and ex.sent == [(1, 1), (2, 1)]
    ex._send(Job(3, {}), 1)
    f3 = ex.live[3].future
    f3.status, f3._result = "finished", None  # the task saw itself cancelled
    assert ex._done(f3).error == "its Dask task was cancelled while it ran"  # type: ignore[union-attr]
    assert ex.live == {}


def test_a_lost_scheduler_stops_the_search() -> None:
    ex = _executor()
    ex._send(Job(1, {}), 1)
    f = ex.live[1].future
    f.status = "cancelled"
    ex.client.status = "connecting"  # type: ignore[misc]
    with pytest.raises(SchedulerLost, match="lost the Dask scheduler at tcp://127.0.0.1:1"):
        ex._done(f)


# ---- a worker's idle trial processes -------------------------------------------------------
class _Slot:
    def __init__(self) -> None:
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def test_idle_trial_processes_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    import time

    from archdsl import dask_worker
    from archdsl.dask_worker import Bundle, TrialPlugin

    monkeypatch.setattr(dask_worker, "IDLE_LIMIT", 0.2)
    plugin = TrialPlugin("n", Bundle((("s.arch", ""),), (), "nb201", (), "cpu", ()))

    class Worker:
        name = "0"

    plugin.setup(Worker())
    old, kept = _Slot(), _Slot()
    plugin.give(old)  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while not old.killed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old.killed and plugin.idle == []  # unused too long: ended
    plugin.give(kept)  # type: ignore[arg-type]
    folder = plugin.scratch()
    assert folder.is_dir()
    plugin.teardown(Worker())
    assert kept.killed and not folder.exists()
    late = _Slot()
    plugin.give(late)  # type: ignore[arg-type]
    assert late.killed  # given back after the search ended


def test_a_trial_process_left_waiting_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error while a trial's report is relayed (not the process dying) leaves the process
    waiting for an answer: it is killed, never given back to run the next job."""
    pytest.importorskip("distributed")
    from archdsl import dask_worker

    class Conn:
        def send(self, _: object) -> None:
            pass

    slot = _Slot()
    slot.conn = Conn()  # type: ignore[attr-defined]
    slot.device = "cpu"  # type: ignore[attr-defined]
    given: list[object] = []

    class Plugin:
        bundle = type("B", (), {"device": "cpu"})()

        def take(self) -> _Slot:
            return slot

        def give(self, s: object) -> None:
            given.append(s)

    class Worker:
        address = "tcp://127.0.0.1:1"

        def get_current_task(self) -> str:
            return "k"

        def log_event(self, *_: object) -> None:
            pass

    def broken(self: object, *_: object) -> None:
        raise RuntimeError("the report could not be relayed")

    monkeypatch.setattr(dask_worker, "_plugin", lambda name: (Worker(), Plugin()))
    monkeypatch.setattr(dask_worker._Trial, "follow", broken)
    monkeypatch.setattr(dask_worker._Trial, "close", lambda self: None)
    with pytest.raises(RuntimeError, match="relayed"):
        dask_worker.run_trial("n", Job(1, {}), None, "r", None)
    assert slot.killed and given == []


# ---- the workers check the device ----------------------------------------------------------
def test_the_workers_check_the_device(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from archdsl.devices import cuda_count

    if cuda_count():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ArchDSLError, match="no CUDA GPU"):
        search(NB201, evaluator="nb201", study_dir=tmp_path / "here", device="cuda")
    with pytest.raises(ArchDSLError, match="unknown device 'gpu'"):  # spelling: checked here
        search(NB201, evaluator="nb201", study_dir=tmp_path / "s", device="gpu",
               cluster="local:1")
    # on a cluster the workers train: each checks the device as it starts (here, in-process)
    with pytest.raises(ArchDSLError, match=r"a worker could not start \(.*\): --device cuda: "
                                           "this machine has no CUDA GPU"):
        search(NB201, evaluator="nb201", study_dir=tmp_path / "s", device="cuda",
               cluster="local:1")
    assert not (tmp_path / "s").exists() and not (tmp_path / "here").exists()
    with pytest.raises(ArchDSLError, match=r"--gpus-per-trial 1 with --cluster local:2: this "
                                           "machine has no CUDA GPU"):
        search(NB201, evaluator="nb201", study_dir=tmp_path / "s", cluster="local:2",
               gpus_per_trial=1)
    assert not (tmp_path / "s").exists()


def test_a_worker_of_another_version_refuses_trials(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from archdsl.dask_worker import Bundle, TrialPlugin

    plugin = TrialPlugin("n", Bundle((("s.arch", ""),), (), "nb201", (), "cpu", (), "0.0.0"))

    class Worker:
        name, address = "0", "tcp://127.0.0.1:5"

    plugin.setup(Worker())
    with pytest.raises(ArchDSLError, match=r"the Dask worker tcp://127.0.0.1:5 has archdsl "
                                           r"\S+, and this search runs archdsl 0.0.0"):
        plugin.take()
    plugin.teardown(Worker())


def test_trials_in_flight_follow_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl import executor_dask

    monkeypatch.setattr(executor_dask, "_RECOUNT", 0.0)
    ex = _executor()
    ex.resources = {"GPU": 1.0}
    workers = {"tcp://a": {"nthreads": 1, "resources": {"GPU": 1}}}
    ex.client.scheduler_info = lambda n_workers: {"workers": dict(workers)}  # type: ignore[attr-defined]
    ex.bound, ex.capacity, ex.counted = None, 1, 0.0
    assert ex.free() == 1
    ex._send(Job(1, {}), 1)
    assert ex.free() == 0
    workers["tcp://b"] = {"nthreads": 2, "resources": {"GPU": 2}}  # a worker joined
    assert ex.free() == 2
    ex.bound = 2  # --workers 2
    assert ex.free() == 1


# ---- the command line ------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--executor", "local", "--dask-scheduler", "tcp://127.0.0.1:1"],
     "error: --dask-scheduler is for --executor dask"),
    (["--executor", "dask"], "error: --executor dask needs a cluster"),
    (["--cluster", "local:0"], "error: --cluster local:0: between 1 and"),
    (["--dask-scheduler", "nowhere"], "error: --dask-scheduler 'nowhere' is not a scheduler "
                                      "address"),
    (["--cluster", "local:1", "--cpus-per-trial", "-2"],
     "error: --cpus-per-trial must be a number of at least 0, got -2.0"),
])
def test_cli_refuses(args: list[str], message: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str],
                     monkeypatch: pytest.MonkeyPatch) -> None:
    from archdsl.cli import main

    monkeypatch.delenv("ARCHDSL_DASK_SCHEDULER", raising=False)
    assert main(["search", str(NB201), "--evaluator", "nb201", "--study",
                 str(tmp_path / "s"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()
