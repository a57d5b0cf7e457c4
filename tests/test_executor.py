"""Executors (archdsl/executor.py): the serial one and the worker processes."""

from __future__ import annotations

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
