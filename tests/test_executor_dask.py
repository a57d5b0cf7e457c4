"""`archdsl search --executor dask` against a real Dask cluster: a scheduler and worker
processes started here on 127.0.0.1 (ephemeral ports, never another address) with the `dask`
command line, the way a user starts them, and stopped at the end.

Searches run as `archdsl search` subprocesses (exit status, output and the study are what is
checked): the nb201 evaluator, a training evaluator, ASHA's promotions from checkpoints, a
worker killed with kill -9 in the middle of a trial (once: it runs again on another worker;
twice: it fails saying why), the scheduler killed (the search stops, its running trials are
interrupted, `--resume` on a new cluster finishes them), the search itself killed (no
finished trial lost; `--resume` reconnects), determinism (one trial in flight, the
same seed: the same trials as the local executor), a trial past its time limit, and clusters that
cannot run the search (unreachable, no worker, no GPU): one error, no study. Skipped when the
dask extra (distributed) is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="the dask extra is not installed: "
                    "pip install -e '.[dask]' (scripts/setup.sh installs it)")

from archdsl.evaluators import get_evaluator  # noqa: E402
from archdsl.space import load  # noqa: E402
from archdsl.study import Study  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
NB201 = ROOT / "examples" / "nb201.arch"
HOST = "127.0.0.1"


class Cluster:
    """`dask scheduler` and `dask worker` processes (each worker with its nanny, as `dask
    worker` starts it) on 127.0.0.1, in a folder of their own. Workers run with tests/ on their
    path (the test evaluators), one thread each, and $ARCHDSL_TEST_DASK_DIR (the folder)."""

    def __init__(self, folder: Path, workers: int):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "OMP_NUM_THREADS": "1", "ARCHDSL_TEST_DASK_DIR": str(folder),
            "ARCHDSL_TEST_STEPS": str(folder / "steps.log")}
        self.scheduler = self._start("scheduler", ["scheduler", "--host", HOST, "--port", "0",
                                                   "--no-dashboard", "--scheduler-file",
                                                   str(folder / "scheduler.json")])
        self.address = self._address()
        self.workers = [self._start(f"worker-{i}", [
            "worker", self.address, "--host", HOST, "--nthreads", "1", "--nworkers", "1",
            "--no-dashboard", "--name", f"w{i}", "--local-directory", str(folder / f"w{i}"),
            "--death-timeout", "30"]) for i in range(workers)]
        if workers:
            self.wait_for_workers(workers)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=self.folder,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _address(self) -> str:
        file = self.folder / "scheduler.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError("dask scheduler ended: "
                                   + (self.folder / "scheduler.log").read_text())
            try:
                address = json.loads(file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
                continue
            assert address.startswith(f"tcp://{HOST}:"), address
            return address
        raise RuntimeError("dask scheduler did not start within 60 s")

    def worker_pids(self) -> list[int]:
        """The worker processes (the nannies' children), as the scheduler knows them."""
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            return sorted(c.run(os.getpid).values())

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(n, timeout=90)

    def kill_scheduler(self) -> None:
        os.kill(self.scheduler.pid, signal.SIGKILL)
        self.scheduler.wait()

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)  # the worker with its nanny
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"), workers=2)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[list[Cluster]]:
    """Clusters of this test only (it may kill their scheduler): start with own_cluster.append
    (Cluster(...)); all are stopped at the end."""
    made: list[Cluster] = []
    try:
        yield made
    finally:
        for c in made:
            c.stop()


def start(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    """`archdsl search ARGS --quiet` in a subprocess (tests/ on its path: the evaluators)."""
    return subprocess.Popen([sys.executable, "-m", "archdsl.cli", "search", *args, "--quiet"],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(TESTS)})


def finish(p: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    """The search's stdout and stderr once it ends (killed, and its output shown, if it runs
    past `timeout`)."""
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"the search ran past {timeout} s:\n{out}\n{err}") from None


def archdsl(*args: str, cwd: Path = ROOT, timeout: float = 240) -> subprocess.CompletedProcess:
    p = start(*args, cwd=cwd)
    out, err = finish(p, timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def on(c: Cluster, workers: int = 2) -> list[str]:
    return ["--executor", "dask", "--dask-scheduler", c.address, "--workers", str(workers)]


def started(c: Cluster, n: int, timeout: float = 90) -> list[tuple[int, int]]:
    """The first n starts of `held` trials, each (pid, parent's pid) (waits for them)."""
    folder = c.folder / "started"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = sorted(folder.iterdir(), key=lambda p: int(p.name.split("-")[1])) \
            if folder.exists() else []
        if len(names) >= n:
            return [tuple(map(int, p.read_text().split())) for p in names[:n]]  # type: ignore
        time.sleep(0.05)
    raise AssertionError(f"{n} trials did not start within {timeout} s")


def worker_of(pids: tuple[int, int], workers: list[int]) -> int:
    """The Dask worker process that ran a trial: the trial's own process or its parent (a
    worker runs trials in a process of its own)."""
    (w,) = [p for p in pids if p in workers]
    return w


def holding(c: Cluster) -> None:
    """The next `held` trials wait until release(c)."""
    (c.folder / "hold").touch()
    for p in (c.folder / "started").glob("*"):
        p.unlink()


def release(c: Cluster) -> None:
    (c.folder / "hold").unlink(missing_ok=True)


def ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr


# ---------------------------------------------------------------------------------------------


def test_nb201_search_on_two_workers(cluster: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    ok(archdsl(str(NB201), "--evaluator", "nb201", "--searcher", "random", "--budget", "12",
               "--study", str(folder), *on(cluster)))
    space, ev = load(NB201), get_evaluator("nb201")
    with Study.open(folder) as st:
        trials = st.trials()
        assert [t.status for t in trials] == ["ok"] * 12
        for t in trials:  # what the workers computed is what the table says
            want = ev.evaluate(space.materialize(t.config))
            assert t.objective == pytest.approx(want["objective"])
            assert t.metrics["c10_test_200"] == pytest.approx(want["c10_test_200"])


def test_trials_run_on_every_worker_not_in_the_search(cluster: Cluster, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    ok(archdsl(str(NB201), "--evaluator", "_dask_evaluators:where", "--searcher", "random",
               "--budget", "8", "--study", str(folder), *on(cluster)))
    workers = cluster.worker_pids()
    with Study.open(folder) as st:
        ran = Counter(worker_of((t.metrics["pid"], t.metrics["ppid"]), workers)
                      for t in st.trials("ok"))
    assert sum(ran.values()) == 8
    assert set(ran) == set(workers)  # both workers, nothing in the driver


def test_a_training_evaluator_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    data = tmp_path / "blobs.npz"  # the workers read it by its absolute path
    np.savez(data, x_train=x[:150], y_train=y[:150], x_valid=x[150:], y_valid=y[150:])
    arch = tmp_path / "blobs.arch"
    arch.write_text("input x: [6]\n"
                    "network { x -> linear(choice(8, 16, 32)) -> relu -> linear(2) }\n"
                    "train { optimizer = adam(lr = float(1e-3 .. 1e-1, log))  epochs = 3 }\n")
    folder = tmp_path / "s"
    ok(archdsl(str(arch), "--data", str(data), "--device", "cpu", "--searcher", "random",
               "--budget", "4", "--study", str(folder), *on(cluster), cwd=tmp_path))
    with Study.open(folder) as st:
        trials = st.trials()
        reports = st.reports()
        assert [t.status for t in trials] == ["ok"] * 4
        for t in trials:  # each epoch's validation accuracy reached the driver as it came
            assert [r.step for r in reports[t.id]] == [1, 2, 3]
            assert t.objective == pytest.approx(reports[t.id][-1].value)
            assert 0.0 <= t.objective <= 1.0 and t.metrics["device"] == "cpu"


def test_asha_promotes_from_checkpoints_on_any_worker(cluster: Cluster, tmp_path: Path) -> None:
    log = cluster.folder / "steps.log"  # every step the workers trained: trial, step
    log.unlink(missing_ok=True)
    folder = tmp_path / "s"
    ok(archdsl(str(NB201), "--evaluator", "_search_evaluators:curve", "--searcher", "random",
               "--budget", "12", "--scheduler", "asha", "--min-epochs", "1",
               "--reduction-factor", "3", "--max-epochs", "9", "--study", str(folder),
               *on(cluster)))
    trained = [tuple(map(int, x.split())) for x in log.read_text().splitlines()]
    assert not [k for k, n in Counter(trained).items() if n > 1], "a step was trained twice"
    with Study.open(folder) as st:
        counts = st.counts()
        assert set(counts) <= {"ok", "stopped"} and sum(counts.values()) == 12
        assert counts.get("stopped")  # some were stopped early
        reports = st.reports()
        assert sorted((t, r.step) for t, rs in reports.items() for r in rs) == sorted(trained)
        reached = sorted(len(reports[t.id]) for t in st.trials())
        # a promoted trial went on from its checkpoint (steps after its rung, none repeated)
        assert reached[0] == 1 and reached[-1] > 1
        for t in st.trials():
            assert [r.step for r in reports[t.id]] == list(range(1, len(reports[t.id]) + 1))


def same_seed(folder: Path, *extra: str) -> list[tuple]:
    """The trials of an SMBO search of seed 7 (10 nb201 trials) with these settings."""
    ok(archdsl(str(NB201), "--evaluator", "nb201", "--searcher", "smbo", "--seed", "7",
               "--budget", "10", "--study", str(folder), *extra))
    with Study.open(folder) as st:
        return [(t.id, t.config, t.objective, t.status) for t in st.trials()]


@pytest.fixture(scope="module")
def local_trials(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    trials = same_seed(tmp_path_factory.mktemp("local") / "s", "--workers", "1")
    assert len(trials) == 10
    return trials


@pytest.mark.parametrize("where", ["one worker of two", "--cluster local:1"])
def test_determinism_one_trial_in_flight_as_the_local_executor(
        where: str, cluster: Cluster, local_trials: list[tuple], tmp_path: Path) -> None:
    extra = on(cluster, workers=1) if where == "one worker of two" else ["--cluster", "local:1"]
    assert same_seed(tmp_path / "s", *extra) == local_trials


@pytest.mark.parametrize("kills", [1, 2])
def test_a_worker_killed_mid_trial_runs_it_again_elsewhere_once(cluster: Cluster, tmp_path: Path,
                                                                kills: int) -> None:
    """kill -9 of the Dask worker process running the trial: it runs again on the other
    worker; killed there too, it fails saying why (and runs no third time)."""
    folder = tmp_path / "s"
    workers = cluster.worker_pids()
    holding(cluster)
    try:
        p = start(str(NB201), "--evaluator", "_dask_evaluators:held", "--searcher", "random",
                  "--budget", "1", "--study", str(folder), *on(cluster, workers=1))
        first = worker_of(started(cluster, 1)[0], workers)
        os.kill(first, signal.SIGKILL)  # the Dask worker process, in the middle of the trial
        again = started(cluster, 2)[1]
        second = worker_of(again, workers)
        assert second != first  # the other worker
        if kills == 2:
            os.kill(second, signal.SIGKILL)
            out, err = finish(p)
            assert len(list((cluster.folder / "started").iterdir())) == 2  # not a third time
    finally:
        release(cluster)
    if kills == 1:
        out, err = finish(p)
    assert "Traceback" not in err, err
    with Study.open(folder) as st:
        (t,) = st.trials()
        if kills == 1:
            assert p.returncode == 0, f"{out}\n{err}"
            assert t.status == "ok" and t.metrics["pid"] == again[0]
        else:
            assert p.returncode == 1, f"{out}\n{err}"  # its only trial failed
            assert t.status == "failed" and "worker lost twice" in t.error, t.error
            assert "worker lost twice" in err
    cluster.wait_for_workers(2)  # the nanny restarted the killed workers


def test_scheduler_lost_then_resume_finishes(own_cluster: list[Cluster],
                                             tmp_path: Path) -> None:
    first = Cluster(tmp_path / "c1", workers=2)
    own_cluster.append(first)
    folder = tmp_path / "s"
    holding(first)
    p = start(str(NB201), "--evaluator", "_dask_evaluators:held", "--searcher", "random",
              "--budget", "4", "--study", str(folder), *on(first))
    started(first, 2)  # two trials in flight
    first.kill_scheduler()
    out, err = finish(p)
    release(first)
    assert p.returncode == 1, f"{out}\n{err}"
    assert "Traceback" not in err and "scheduler" in err, err
    with Study.open(folder) as st:
        assert Counter(t.status for t in st.trials()) == {"interrupted": 2}
        lost = [t.config for t in st.trials()]
    second = Cluster(tmp_path / "c2", workers=2)
    own_cluster.append(second)
    ok(archdsl("--study", str(folder), "--resume", "--evaluator", "_dask_evaluators:held",
               *on(second)))
    with Study.open(folder) as st:  # the interrupted ones ran again (as new trials), and more
        assert Counter(t.status for t in st.trials()) == {"interrupted": 2, "ok": 4}
        done = [t.config for t in st.trials("ok")]
        assert all(config in done for config in lost)


def test_a_trial_past_its_time_limit_fails_and_its_worker_goes_on(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "s"
    workers = cluster.worker_pids()
    holding(cluster)
    try:
        r = archdsl(str(NB201), "--evaluator", "_dask_evaluators:held", "--searcher", "random",
                    "--budget", "2", "--trial-timeout", "3", "--study", str(folder),
                    *on(cluster))
    finally:
        release(cluster)
    assert r.returncode == 1 and "every trial failed" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    with Study.open(folder) as st:
        errors = [t.error for t in st.trials("failed")]
    assert errors == ["ran past the time limit of 3 s"] * 2
    assert cluster.worker_pids() == workers  # the trial's process was killed, not the worker


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("case", ["unreachable", "no workers", "no GPU"])
def test_a_cluster_that_cannot_run_the_search_is_one_error_and_no_study(
        case: str, cluster: Cluster, own_cluster: list[Cluster], tmp_path: Path) -> None:
    folder = tmp_path / "s"
    args = [str(NB201), "--evaluator", "nb201", "--study", str(folder),
            "--connect-timeout", "3"]
    if case == "unreachable":
        address = f"tcp://{HOST}:{free_port()}"  # nothing listens there
        args += ["--dask-scheduler", address]
        want = f"error: cannot reach the Dask scheduler at {address} (waited 3 s)"
    elif case == "no workers":
        empty = Cluster(tmp_path / "empty", workers=0)
        own_cluster.append(empty)
        args += ["--dask-scheduler", empty.address]
        want = f"error: no Dask worker joined the scheduler at {empty.address} within 3 s"
    else:
        args += [*on(cluster), "--gpus-per-trial", "1"]
        want = ("error: no Dask worker has the resources a trial asks for (GPU=1); the workers "
                "have: none")
    r = archdsl(*args)
    assert r.returncode == 1, f"{r.stdout}\n{r.stderr}"
    assert want in r.stderr and "Traceback" not in r.stderr, r.stderr
    if case == "no workers":
        assert "waiting for a Dask worker" in r.stdout + r.stderr
    assert not folder.exists()  # no study left half-made


def test_the_driver_killed_loses_no_finished_trial_and_resume_reconnects(
        cluster: Cluster, tmp_path: Path) -> None:
    import sqlite3

    folder = tmp_path / "s"
    p = start(str(NB201), "--evaluator", "_dask_evaluators:where", "--searcher", "random",
              "--budget", "16", "--study", str(folder), *on(cluster))

    def finished() -> list[tuple[int, float]]:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{folder / 'study.db'}?mode=ro",
                                                    uri=True)) as db:
                return db.execute("SELECT id, objective FROM trials WHERE status = 'ok' "
                                  "ORDER BY id").fetchall()
        except sqlite3.Error:  # not made yet
            return []

    deadline = time.monotonic() + 120
    while len(finished()) < 3 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.1)
    p.kill()  # kill -9 of the search in the middle
    p.communicate()
    before = finished()
    assert 3 <= len(before) < 16
    ok(archdsl("--study", str(folder), "--resume", "--evaluator", "_dask_evaluators:where",
               *on(cluster)))
    after = finished()
    assert len(after) == 16 and set(before) <= set(after)  # none lost, none changed
