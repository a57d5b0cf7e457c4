"""Executors (archdsl/executor.py): the serial one and the worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import archdsl
from archdsl.errors import ArchDSLError
from archdsl.evaluators import as_evaluator
from archdsl.executor import Job, LocalExecutor, SerialExecutor

ROOT = Path(__file__).resolve().parents[1]
NB201 = str(ROOT / "examples" / "nb201.arch")


def test_serial_takes_a_job_only_after_the_last_result_was_collected() -> None:
    space = archdsl.load(NB201)
    ex = SerialExecutor(space, as_evaluator(lambda arch: 1.0))
    assert ex.free() == 1
    ex.submit(Job(1, space.default()))
    assert ex.free() == 0  # its result is waiting: the searcher hears it before asking again
    [o] = ex.results(timeout=0)
    assert o.trial_id == 1 and o.result is not None and o.result["objective"] == 1.0
    assert ex.free() == 1


def test_workers_that_cannot_load_the_space_fail_at_once(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ArchDSLError, match="a worker could not start: .*no-such.arch"):
        LocalExecutor(str(tmp_path / "no-such.arch"), "_search_evaluators:score", workers=2)
    assert time.monotonic() - t0 < 60


def test_workers_evaluate_and_a_dead_one_is_replaced() -> None:
    space = archdsl.load(NB201)
    ex = LocalExecutor(NB201, "_search_evaluators:die", workers=1)
    try:
        procs = [s.proc for s in ex.slots]
        ex.submit(Job(1, space.default()))
        out = []
        while not out:
            out = ex.results(timeout=5)
        assert [(o.trial_id, o.error) for o in out] == [(1, "the worker process died "
                                                            "(exit code 3)")]
        assert ex.free() == 1 and ex.slots[0].proc is not procs[0]
    finally:
        ex.close()
    assert all(p.poll() is not None for p in procs)


_PARENT = """
import sys, time
import archdsl
from archdsl.executor import Job, LocalExecutor, _Slot
if sys.argv[1] == "loading":  # the worker is still importing its evaluator
    slot = _Slot(sys.argv[2], "_slow_import:score", [])
else:  # the worker is in the middle of a long trial
    ex = LocalExecutor(sys.argv[2], "_search_evaluators:slow", workers=1)
    ex.submit(Job(1, archdsl.load(sys.argv[2]).default()))
    slot = ex.slots[0]
print(slot.proc.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"  # exited, not yet reaped
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("when", ["loading", "evaluating"])
def test_a_worker_whose_parent_is_killed_exits_quietly(tmp_path: Path, when: str) -> None:
    """One worker, its parent killed with SIGKILL: the worker is gone within seconds and
    writes no traceback (no BrokenPipeError), whatever it was doing."""
    (tmp_path / "_slow_import.py").write_text(
        "import time\ntime.sleep(2)\n\ndef score(arch):\n    return 1.0\n")
    env = {**os.environ, "ARCHDSL_TEST_SLEEP": "60",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "tests"),
                                          os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, when, NB201], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = 0
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 8
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(worker), "the worker outlived its parent"
        _, err = parent.communicate(timeout=10)  # EOF once the worker has closed stderr too
        assert "Traceback" not in err and "Error" not in err, err
    finally:
        if worker and not _gone(worker):
            os.kill(worker, signal.SIGKILL)
        parent.kill()
        parent.communicate()
