"""The fuzz tests' worker: runs `archdsl` commands on given files, many cases in one process.

Started by tests/test_fuzz.py as `python tests/_fuzz_worker.py MEMORY_BYTES`. Once archdsl is
imported, it limits its address space (RLIMIT_AS) to what it holds then plus MEMORY_BYTES, and
reads one JSON request a line from stdin: {"files": {name: text}, "argv": [...], "seconds": S},
writes the files into a fresh folder, runs
`archdsl.cli.main(argv)` there with an alarm after S seconds of CPU time (so that the
limit does not depend on how busy the machine is), and answers one JSON line on its
original stdout: {"rc", "out", "err", "escaped", "hang"}. `escaped` is the traceback of anything
that got out of `main` (a bug: the CLI must turn every error into a report); `hang` is true when
the alarm went off. Whatever the command prints goes into "out"/"err", never onto the protocol.
If a case kills the process or never returns (a C loop the alarm cannot stop, a read that
waits), the parent sees no answer in time, records it, and starts a new worker.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` swallows it."""


def on_alarm(signum: int, frame: object) -> None:
    raise Hang()


def run_case(req: dict, root: Path, main) -> dict:
    folder = Path(tempfile.mkdtemp(dir=root))
    for name, text in req["files"].items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    answer = {"rc": None, "escaped": None, "hang": False}
    old = os.getcwd()
    os.chdir(folder)
    signal.setitimer(signal.ITIMER_PROF, req["seconds"])
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            answer["rc"] = main(req["argv"])
    except Hang:
        answer["hang"] = True
    except SystemExit as e:
        answer["rc"] = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - reported to the parent as a bug
        answer["escaped"] = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        os.chdir(old)
        shutil.rmtree(folder, ignore_errors=True)
    answer["out"] = out.getvalue()[:4000]  # the start: where the report's first line is
    answer["err"] = err.getvalue()[:4000]
    return answer


def vm_size() -> int:
    """This process's address space now, in bytes (0 where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def serve(memory: int) -> None:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # stray writes to fd 1 cannot corrupt the protocol
    os.dup2(devnull, 2)
    from archdsl.cli import main  # imported before the limit: its own memory is not the case's

    limit = vm_size() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, on_alarm)
    root = Path(tempfile.mkdtemp(prefix="archdsl-fuzz-"))
    try:
        for line in sys.stdin:
            answer = run_case(json.loads(line), root, main)
            proto.write(json.dumps(answer) + "\n")
            proto.flush()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
