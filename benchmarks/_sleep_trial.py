"""The trial of benchmarks/distributed.py's speed-up figure: sleeps `ARCHDSL_BENCH_SLEEP`
seconds (default 1), then scores nothing in particular. Imported by the workers by name
(`_sleep_trial:sleep`); imports only the standard library."""

from __future__ import annotations

import os
import time
from typing import Any


def sleep(arch: Any) -> float:
    time.sleep(float(os.environ.get("ARCHDSL_BENCH_SLEEP", "1")))
    return float(len(arch.config))
