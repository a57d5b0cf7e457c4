"""Evaluators for the Dask cluster tests (tests/test_executor_dask.py), run by the cluster's
worker processes: each says which processes ran it (`pid`, and `ppid`, its parent: a Dask
worker runs each trial in a process of its own), and `held` waits while a file exists, so that a
test can kill the worker (or the scheduler) in the middle of a trial.

The folder they write in is $ARCHDSL_TEST_DASK_DIR, set when the test's workers start. Imports
only the standard library, archdsl and tests/_search_evaluators.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _search_evaluators import score

from archdsl import Architecture


def _folder() -> Path:
    return Path(os.environ["ARCHDSL_TEST_DASK_DIR"])


def where(arch: Architecture) -> dict:
    """score(arch), with the process that ran it and its parent (metrics `pid`, `ppid`);
    sleeps 0.2 s so that trials in flight overlap and every worker gets some."""
    time.sleep(0.2)
    return {"objective": score(arch), "pid": os.getpid(), "ppid": os.getppid()}


def held(arch: Architecture) -> dict:
    """Writes `started/PID-N` (a file per start, holding `PID PPID`), then waits while `hold`
    exists (at most 120 s); score(arch), pid and ppid."""
    started = _folder() / "started"
    started.mkdir(exist_ok=True)
    n = len(list(started.iterdir()))
    tmp = started.parent / f"{os.getpid()}.tmp"  # then renamed: the test never reads half
    tmp.write_text(f"{os.getpid()} {os.getppid()}")
    tmp.rename(started / f"{os.getpid()}-{n}")
    deadline = time.monotonic() + 120
    while (_folder() / "hold").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"objective": score(arch), "pid": os.getpid(), "ppid": os.getppid()}
