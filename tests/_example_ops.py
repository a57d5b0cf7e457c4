"""The user operations some examples need (examples/gnn.arch: examples/gnn_ops.py), for tests
that load every example: `with example_ops(): ...` imports examples/gnn_ops.py as
`examples.gnn_ops`, as `--ops examples.gnn_ops` does from the repository's root, and puts the
layer registries, sys.path and sys.modules back afterwards."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from archdsl.backends import ops as backend_ops

from archdsl.layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
MODULES = ("examples", "examples.gnn_ops")


@contextmanager
def example_ops() -> Iterator[ModuleType]:
    """examples.gnn_ops imported afresh (its operations registered) for the block's duration."""
    layers, ops, path = dict(LAYERS), dict(backend_ops.OPS), list(sys.path)
    sys.path.insert(0, str(ROOT))
    saved = {n: sys.modules.pop(n) for n in MODULES if n in sys.modules}
    try:
        yield importlib.import_module("examples.gnn_ops")
    finally:
        for registry, before in ((LAYERS, layers), (backend_ops.OPS, ops)):
            registry.clear()
            registry.update(before)
        sys.path[:] = path
        for n in MODULES:
            sys.modules.pop(n, None)
        sys.modules.update(saved)
