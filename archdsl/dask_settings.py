"""The settings of a search on a Dask cluster, checked before anything starts: which
executor, the scheduler's address or a local cluster's size, the worker resources a trial asks
for, and what the workers have (resources, archdsl version). Plain logic, no cluster: used by
archdsl.runner and archdsl.executor_dask.

Imports archdsl.errors, archdsl.executor (its worker limit) and archdsl.version;
`distributed` only to say whether it is installed.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ArchDSLError, did_you_mean
from .executor import max_workers
from .version import installed_version as archdsl_version

__all__ = ["DaskSettings", "dask_settings", "require_distributed", "parse_address",
           "parse_cluster", "trial_resources", "missing_resources", "capacity",
           "version_problem", "archdsl_version", "ENV_SCHEDULER", "EXECUTORS"]

ENV_SCHEDULER = "ARCHDSL_DASK_SCHEDULER"
EXECUTORS = ("local", "dask")
_ADDRESS = re.compile(r"(?:(tcp|tls)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
_HINT_ADDRESS = "give the address `dask scheduler` prints, e.g. tcp://10.0.0.5:8786"


def require_distributed() -> None:
    """ArchDSLError saying what to install when `distributed` is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ArchDSLError('the dask executor needs the dask extra: pip install "archdsl[dask]"',
                           hint="or run the search on this machine: leave --executor dask "
                                "out") from None


def parse_address(text: str) -> str:
    """A scheduler address as Dask takes it (tcp://HOST:PORT; tls:// kept; no scheme: tcp)."""
    m = _ADDRESS.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None or not 0 < int(m.group(3)) < 65536:
        raise ArchDSLError(f"--dask-scheduler {text!r} is not a scheduler address",
                           hint=_HINT_ADDRESS)
    return f"{m.group(1) or 'tcp'}://{m.group(2)}:{int(m.group(3))}"


def parse_cluster(text: str) -> int:
    """The number of workers of `--cluster local:N`."""
    m = re.fullmatch(r"local:(\d{1,6})", text.strip()) if isinstance(text, str) else None
    if m is None:
        raise ArchDSLError(f"--cluster {text!r}: the only cluster archdsl starts itself is "
                           "local:N (N worker processes on this machine)",
                           hint="for other clusters, start a Dask scheduler and workers and "
                                "give --dask-scheduler tcp://HOST:PORT (docs/distributed.md)")
    n = int(m.group(1))
    if not 1 <= n <= max_workers():
        raise ArchDSLError(f"--cluster local:{n}: between 1 and {max_workers()} workers on "
                           "this machine (4 per CPU core, at least 8)")
    return n


def trial_resources(gpus: float | None, cpus: float | None) -> dict[str, float]:
    """The worker resources each trial asks for: {"GPU": g, "CPU": c}, those given and > 0."""
    out: dict[str, float] = {}
    for option, name, value in (("--gpus-per-trial", "GPU", gpus),
                                ("--cpus-per-trial", "CPU", cpus)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ArchDSLError(f"{option} must be a number of at least 0, got {value!r}")
        if value > 0:
            out[name] = float(value)
    return out


@dataclass(frozen=True)
class DaskSettings:
    """Where a Dask search runs: a scheduler's address, or a local cluster of N workers."""

    address: str | None = None
    cluster: int | None = None
    resources: dict[str, float] = field(default_factory=dict)
    connect_timeout: float = 30.0


def dask_settings(executor: str | None, dask_scheduler: str | None, cluster: str | None,
                  gpus_per_trial: float | None, cpus_per_trial: float | None,
                  connect_timeout: float | None,
                  env: dict[str, str] | None = None) -> DaskSettings | None:
    """The Dask settings of a search, checked; None for the local executor. --dask-scheduler or
    --cluster alone imply --executor dask; ARCHDSL_DASK_SCHEDULER is read with --executor dask
    only."""
    env = os.environ if env is None else env
    if executor is None:
        executor = "dask" if dask_scheduler is not None or cluster is not None else "local"
    if executor not in EXECUTORS:
        raise ArchDSLError(f"unknown executor {executor!r}",
                           hint=did_you_mean(executor, EXECUTORS) or "executors: local "
                                "(worker processes on this machine), dask (a Dask cluster)")
    given = [o for o, v in (("--dask-scheduler", dask_scheduler), ("--cluster", cluster),
                            ("--gpus-per-trial", gpus_per_trial),
                            ("--cpus-per-trial", cpus_per_trial),
                            ("--connect-timeout", connect_timeout)) if v is not None]
    if executor == "local":
        if given:
            raise ArchDSLError(f"{given[0]} is for --executor dask",
                               hint="add --executor dask to run the trials on a Dask cluster")
        return None
    if dask_scheduler is not None and cluster is not None:
        raise ArchDSLError("give --dask-scheduler or --cluster, not both",
                           hint="--dask-scheduler joins a running cluster; --cluster local:N "
                                "starts one on this machine")
    timeout = 30.0 if connect_timeout is None else connect_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise ArchDSLError(f"--connect-timeout must be a positive number of seconds, "
                           f"got {timeout!r}")
    resources = trial_resources(gpus_per_trial, cpus_per_trial)
    if cluster is not None:
        n = parse_cluster(cluster)
        require_distributed()
        return DaskSettings(None, n, resources, float(timeout))
    address = dask_scheduler if dask_scheduler is not None else env.get(ENV_SCHEDULER)
    if not address:
        raise ArchDSLError("--executor dask needs a cluster: --dask-scheduler tcp://HOST:PORT "
                           f"(or {ENV_SCHEDULER}), or --cluster local:N",
                           hint="start one with `dask scheduler` and `dask worker "
                                "tcp://HOST:PORT` (docs/distributed.md)")
    address = parse_address(address)
    require_distributed()
    return DaskSettings(address, None, resources, float(timeout))


def missing_resources(workers: dict[str, dict[str, Any]],
                      wanted: dict[str, float]) -> str | None:
    """Why no worker can run a trial that asks for `wanted` (None when one can)."""
    if not wanted or any(all(w.get("resources", {}).get(k, 0) >= v for k, v in wanted.items())
                         for w in workers.values()):
        return None
    ask = " ".join(f"{k}={v:g}" for k, v in wanted.items())
    have = sorted({" ".join(f"{k}={v:g}" for k, v in sorted(w.get("resources", {}).items()))
                   or "none" for w in workers.values()})
    return (f"no Dask worker has the resources a trial asks for ({ask}); the workers have: "
            + ", ".join(have))


def capacity(workers: dict[str, dict[str, Any]], wanted: dict[str, float]) -> int:
    """How many trials the workers can run at once (threads, and resources per trial)."""
    total = 0
    for w in workers.values():
        n = int(w.get("nthreads", 1))
        for k, v in wanted.items():
            n = min(n, int(w.get("resources", {}).get(k, 0) // v))
        total += n
    return max(1, total)


def version_problem(versions: dict[str, Any], mine: str) -> str | None:
    """Why a worker cannot run this search's trials: another archdsl version (or none)."""
    for address, v in sorted(versions.items()):
        if isinstance(v, BaseException) or not isinstance(v, str):
            return f"the Dask worker {address} has no archdsl installed"
        if v != mine:
            return (f"the Dask worker {address} has archdsl {v}, and this search runs archdsl "
                    f"{mine}")
    return None
