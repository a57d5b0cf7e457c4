"""Which torch device a worker trains on: `--device auto|cpu|cuda|cuda:N|mps`.

`check_device(spec)` refuses a spec that is malformed or that this machine cannot honour (an
ArchDSLError saying what torch sees), before anything runs; `resolve_device(spec, worker)` is
the device worker number `worker` (0, 1, ...) uses. With W workers and G GPUs, `auto` and
`cuda` pin worker i to GPU i mod G (round robin), so every GPU is used and no two workers of
one GPU fight over another. Imports torch (lazily) and archdsl.errors only.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ArchDSLError

__all__ = ["DEVICES", "check_device", "resolve_device", "cuda_count", "mps_available"]

DEVICES = ("auto: a GPU when there is one (CUDA, then Apple's mps), else the CPU; "
           "cpu; cuda: the GPUs, one per worker in turn; cuda:N: GPU N only; mps")
_SPEC = re.compile(r"auto|cpu|mps|cuda(:(\d+))?")


def _torch() -> Any:
    import torch

    return torch


def cuda_count() -> int:
    """The number of CUDA GPUs torch sees (0 without CUDA)."""
    torch = _torch()
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def mps_available() -> bool:
    """Whether torch can use Apple's GPU (mps)."""
    mps = getattr(_torch().backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _sees() -> str:
    """What torch sees, for an error message."""
    torch = _torch()
    n = cuda_count()
    gpus = f"{n} CUDA GPU{'s' if n != 1 else ''}" if n else "no CUDA GPU"
    build = ("built without CUDA" if torch.version.cuda is None
             else f"built for CUDA {torch.version.cuda}")
    return f"torch {torch.__version__} ({build}) sees {gpus}" + (", and mps" if mps_available()
                                                                 else "")


def check_device(spec: str) -> None:
    """ArchDSLError when `spec` is not a device spec, or names a device this machine lacks."""
    m = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if m is None:
        raise ArchDSLError(f"unknown device {spec!r}", hint="devices: " + DEVICES)
    if spec.startswith("cuda"):
        n = cuda_count()
        if n == 0:
            raise ArchDSLError(f"--device {spec}: this machine has no CUDA GPU: {_sees()}",
                               hint="use --device auto (a GPU when there is one) or cpu")
        if m.group(2) is not None and int(m.group(2)) >= n:
            raise ArchDSLError(f"--device {spec}: there is no GPU {m.group(2)}: {_sees()} "
                               f"(cuda:0 to cuda:{n - 1})")
    elif spec == "mps" and not mps_available():
        raise ArchDSLError(f"--device mps: Apple's mps is not available: {_sees()}",
                           hint="use --device auto or cpu")


def resolve_device(spec: str, worker: int = 0) -> str:
    """The torch device worker number `worker` trains on (checked as `check_device` does)."""
    check_device(spec)
    if spec in ("auto", "cuda"):
        n = cuda_count()
        if n:
            return f"cuda:{worker % n}"
        if spec == "auto":
            return "mps" if mps_available() else "cpu"
    if spec.startswith("cuda:"):
        return f"cuda:{int(spec[5:])}"  # cuda:01 -> cuda:1
    return spec
