"""Loading without the cycle collector: a large space is millions of objects and no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["no_gc"]


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Python's cycle collector paused for the duration: building a large syntax tree makes
    millions of objects and no cycles, and each full collection walks every object made so far
    (a third of the time of parsing a 1 MB file).

    At the end, what was made joins the oldest generation (gc.freeze then gc.unfreeze: no
    walk), so the next young collection does not walk the whole new tree, nor the next middle
    one again; a full collection still sees it all."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
