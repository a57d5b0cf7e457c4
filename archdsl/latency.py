"""Latency: the compiled model's forward time for one input batch on a device.

    measure(arch, device="cpu", batch=1)     # milliseconds: the median of REPEATS timed runs

The model is built from the architecture (fresh weights, eval mode, no gradients), given one
random batch of its declared input shape (integer token ids below its embedding's vocabulary
where the input feeds an embedding), run WARMUP times untimed, then REPEATS times timed; on a
GPU each run is synchronised before the clock stops. What a search records as the `latency`
metric of a trial when an objective names it (archdsl.objectives).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from .errors import EvaluationError
from .graph import Architecture

__all__ = ["measure", "WARMUP", "REPEATS"]

WARMUP = 3
REPEATS = 15


def measure(arch: Architecture, device: str = "cpu", batch: int = 1,
            repeats: int = REPEATS) -> float:
    """Milliseconds, the median of `repeats` forward passes of one batch (see the module doc)."""
    import torch

    from .backends.plan import plan
    from .backends.pytorch import build

    ins = arch.inputs()
    if len(ins) != 1:
        raise EvaluationError(f"latency is measured on networks of one input; this one has "
                              f"{len(ins)}")
    shape = [int(n) for n in arch.graph.nodes[ins[0]]["args"]["shape"]]
    p = plan(arch)
    model = build(p).to(device).eval()
    x = _batch(model, arch, shape, batch, device)
    times: list[float] = []
    with torch.no_grad():
        for i in range(WARMUP + repeats):
            t0 = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            if i >= WARMUP:
                times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000.0, 4)


def _batch(model: Any, arch: Architecture, shape: list[int], batch: int, device: str) -> Any:
    """A random input batch: floats, or token ids where the first layer is an embedding."""
    import torch

    embedding = next((m for m in model.modules() if isinstance(m, torch.nn.Embedding)), None)
    gen = torch.Generator().manual_seed(0)
    if embedding is not None and _feeds_embedding(arch):
        x = torch.randint(0, embedding.num_embeddings, (batch, *shape), generator=gen)
    else:
        x = torch.randn((batch, *shape), generator=gen)
    return x.to(device)


def _feeds_embedding(arch: Architecture) -> bool:
    """Whether the input goes straight into an embedding layer."""
    (node,) = arch.inputs()
    return any(arch.graph.nodes[v].get("op") == "embedding"
               for v in arch.graph.successors(node))
