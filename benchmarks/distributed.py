"""The Dask executor against the local one (issue 14):

    nice -n 10 python benchmarks/distributed.py [--trials N] [--sleep-trials M] [--sleep S]
                                                [--json]

1. Overhead per trial: N (default 1,000) configurations of examples/nb201.arch (seeds 0..N-1),
   evaluated by the nb201 evaluator (a table look-up, well under a millisecond), one trial in
   flight at a time, through the Executor interface (submit, results): by the LocalExecutor
   with one worker process; by the DaskExecutor on `--cluster local:1` (a scheduler and a
   worker in the search's process, trials in a process of their own); and by the DaskExecutor
   on a cluster of separate processes talking TCP on 127.0.0.1 (`dask scheduler` and one
   `dask worker`, as on several machines). Starting the executors (the processes, loading the
   space and the table) is not timed; 20 trials first warm each. The overhead is the
   difference of the wall time per trial with the local executor's; the target is <= 10 ms.
2. Speed-up: M (default 12) trials that each sleep S seconds (default 1), on one worker and
   then on two, as many trials in flight as workers, on both kinds of Dask cluster. The
   target is >= 1.8x.

The script is named as the issue asks, which is also the name of Dask's package: its own folder
is moved to the end of sys.path, so that `import distributed` finds Dask's (and the sleeping
trial, `_sleep_trial.py` beside it, is still found, here and in the trials' processes; the TCP
cluster's workers get a copy of it in a folder of their own).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE] + [str(HERE)]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402

from archdsl.executor import Executor, Job, LocalExecutor  # noqa: E402
from archdsl.executor_dask import DaskExecutor  # noqa: E402
from archdsl.space import load  # noqa: E402

ROOT = HERE.parent
NB201 = str(ROOT / "examples" / "nb201.arch")
SLEEP = "_sleep_trial:sleep"


def run(ex: Executor, jobs: list[Job]) -> float:
    """Evaluate the jobs, as many in flight as the executor takes; the wall time, seconds.
    A failed trial stops the benchmark (it would measure nothing)."""
    pending = list(reversed(jobs))
    left = len(jobs)
    t0 = time.perf_counter()
    while left:
        while pending and ex.free() > 0:
            ex.submit(pending.pop())
        for o in ex.results(60.0):
            if o.error is not None:
                raise SystemExit(f"trial {o.trial_id} failed: {o.error}")
            left -= 1
    return time.perf_counter() - t0


def jobs(n: int, start: int = 0) -> list[Job]:
    space = load(NB201)
    return [Job(i, space.sample(seed=i)) for i in range(start, start + n)]


def timed(make: Callable[[], Executor], todo: list[Job], warm: int = 20,
          others: Sequence[int] = ()) -> tuple[float, float]:
    """Wall seconds for `todo` on a new executor, after `warm` warm-up trials, and the CPU
    seconds all its processes spent meanwhile: this one and its children (workers, trial
    processes), and the process trees `others` (a TCP cluster's)."""
    ex = make()
    try:
        if warm:
            run(ex, jobs(warm, start=len(todo)))
        roots = [os.getpid(), *others]
        cpu = cpu_seconds(roots)
        wall = run(ex, todo)
        return wall, cpu_seconds(roots) - cpu
    finally:
        ex.close()


def cpu_seconds(roots: Sequence[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants, so far."""
    import psutil  # a dependency of distributed

    total = 0.0
    for pid in roots:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                total += c.user + c.system
    return total


@contextlib.contextmanager
def tcp_cluster(workers: int) -> Iterator[tuple[str, list[int]]]:
    """`dask scheduler` and `dask worker` processes (one thread each) on 127.0.0.1, ephemeral
    ports; the scheduler's address and the processes' ids. The workers' trials find `_sleep_trial` in a folder of
    their own (this folder on their path would hide Dask's `distributed`)."""
    folder = Path(tempfile.mkdtemp(prefix="archdsl-bench-"))
    shutil.copy(HERE / "_sleep_trial.py", folder / "_sleep_trial.py")
    env = {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1"}
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> None:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=folder, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(folder / "scheduler.json"))
        deadline = time.monotonic() + 60
        while not (folder / "scheduler.json").exists():
            if time.monotonic() > deadline:
                raise SystemExit("dask scheduler did not start within 60 s")
            time.sleep(0.1)
        time.sleep(0.2)  # written in full
        address = json.loads((folder / "scheduler.json").read_text())["address"]
        for i in range(workers):
            start("worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                  "--no-dashboard", "--name", f"w{i}", "--local-directory", str(folder / f"w{i}"))
        from distributed import Client

        with Client(address, timeout=60) as c:
            c.wait_for_workers(workers, timeout=120)
        yield address, [p.pid for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def dask(evaluator: str, workers: int, **where: object) -> Callable[[], Executor]:
    return lambda: DaskExecutor(NB201, evaluator, workers, None, (), {}, "cpu", (),
                                log=lambda s: None, **where)  # type: ignore[arg-type]


def overhead(n: int) -> dict[str, float]:
    """Per trial, ms: wall and CPU time of each executor, and the differences with the local
    executor's."""
    todo = jobs(n)
    f: dict[str, float] = {}
    f["local_ms"], f["local_cpu_ms"] = timed(lambda: LocalExecutor(NB201, "nb201", 1), todo)
    f["local1_ms"], f["local1_cpu_ms"] = timed(dask("nb201", 1, cluster="local:1"), todo)
    f["local1_round_trip_ms"] = round_trip(None, n)
    with tcp_cluster(1) as (address, pids):
        f["tcp_ms"], f["tcp_cpu_ms"] = timed(dask("nb201", 1, address=address), todo,
                                             others=pids)
        f["dask_round_trip_ms"] = round_trip(address, n)
    f = {k: v / n * 1e3 for k, v in f.items()}
    for kind in ("local1", "tcp"):
        f[f"{kind}_overhead_ms"] = f[f"{kind}_ms"] - f["local_ms"]
        f[f"{kind}_cpu_overhead_ms"] = f[f"{kind}_cpu_ms"] - f["local_cpu_ms"]
    return f


def round_trip(address: str | None, n: int) -> float:
    """Seconds for n bare Dask tasks, one at a time (submit a function returning its argument,
    wait for its result), on the cluster at `address`, or (None) on a cluster like `--cluster
    local:1`'s (in this process, one single-thread worker): Dask's own floor, which every trial
    pays."""
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        target: object = address if address is not None else stack.enter_context(LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None))
        c = stack.enter_context(Client(target, timeout=60))
        for i in range(20):
            c.submit(_same, i, pure=False).result()
        t0 = time.perf_counter()
        for i in range(n):
            c.submit(_same, i, pure=False).result()
        return time.perf_counter() - t0


def _same(x: int) -> int:
    return x


def speedup(m: int, seconds: float) -> dict[str, float]:
    os.environ["ARCHDSL_BENCH_SLEEP"] = str(seconds)  # the trials' processes inherit it
    todo = jobs(m)
    out: dict[str, float] = {}
    for w in (1, 2):
        out[f"local{w}_s"] = timed(dask(SLEEP, w, cluster=f"local:{w}"), todo, warm=0)[0]
        with tcp_cluster(w) as (address, _):
            out[f"tcp{w}_s"] = timed(dask(SLEEP, w, address=address), todo, warm=0)[0]
    out["local_speedup"] = out["local1_s"] / out["local2_s"]
    out["tcp_speedup"] = out["tcp1_s"] / out["tcp2_s"]
    return out


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000, help="nb201 trials (overhead)")
    ap.add_argument("--sleep-trials", type=int, default=12, help="sleeping trials (speed-up)")
    ap.add_argument("--sleep", type=float, default=1.0, help="seconds each sleeping trial takes")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    f = {**overhead(a.trials), **speedup(a.sleep_trials, a.sleep)}
    if a.json:
        print(json.dumps(f))
        return
    print(f"per trial, {a.trials} nb201 trials one at a time: wall, and CPU of every process "
          "involved (overhead: more than the local executor's; target <= 10 ms)")
    print(f"  local executor, 1 worker process  wall {f['local_ms']:6.2f} ms  "
          f"CPU {f['local_cpu_ms']:6.2f} ms")
    for kind, name in (("local1", "dask, --cluster local:1        "),
                       ("tcp", "dask, TCP cluster on 127.0.0.1  ")):
        print(f"  {name}  wall {f[kind + '_ms']:6.2f} ms  CPU {f[kind + '_cpu_ms']:6.2f} ms  "
              f"overhead: wall {f[kind + '_overhead_ms']:6.2f} ms "
              f"({verdict(f[kind + '_overhead_ms'] <= 10)}), CPU "
              f"{f[kind + '_cpu_overhead_ms']:6.2f} ms")
    print(f"  a bare Dask task (Dask's own floor): in this process as local:1, wall "
          f"{f['local1_round_trip_ms']:6.2f} ms; on that TCP cluster, wall "
          f"{f['dask_round_trip_ms']:6.2f} ms")
    print(f"speed-up of 2 workers over 1, {a.sleep_trials} trials of {a.sleep:g} s "
          "(target >= 1.8x):")
    for kind, name in (("local", "--cluster local:N"), ("tcp", "TCP cluster")):
        print(f"  {name:22s} 1 worker {f[kind + '1_s']:6.2f} s, 2 workers "
              f"{f[kind + '2_s']:6.2f} s: {f[kind + '_speedup']:.2f}x "
              f"({verdict(f[kind + '_speedup'] >= 1.8)})")


if __name__ == "__main__":
    main()
