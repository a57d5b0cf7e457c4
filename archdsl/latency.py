"""Latency: the compiled model's forward time for one input batch on a device.

    measure(arch, device="cpu", batch=1)     # milliseconds: the median of REPEATS timed runs

The model is built from the architecture (fresh weights, eval mode, no gradients), given one
random batch of each declared input (`pytorch.example_inputs`: integers below N for an
`index(N)` input, token ids below its embedding's vocabulary for an embedding's), run WARMUP
times untimed, then REPEATS times timed; on a GPU each run is synchronised before the clock stops. What a search records as the `latency`
metric of a trial when an objective names it (archdsl.objectives).
"""

from __future__ import annotations

import statistics
import time

from .graph import Architecture

__all__ = ["measure", "WARMUP", "REPEATS"]

WARMUP = 3
REPEATS = 15


def measure(arch: Architecture, device: str = "cpu", batch: int = 1,
            repeats: int = REPEATS) -> float:
    """Milliseconds, the median of `repeats` forward passes of one batch (see the module doc)."""
    import torch

    from .backends.plan import plan
    from .backends.pytorch import build, example_inputs

    p = plan(arch)
    model = build(p).to(device).eval()
    xs = tuple(x.to(device) for x in
               example_inputs(p, batch=batch, generator=torch.Generator().manual_seed(0)))
    times: list[float] = []
    with torch.no_grad():
        for i in range(WARMUP + repeats):
            t0 = time.perf_counter()
            model(*xs)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            if i >= WARMUP:
                times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000.0, 4)
