"""Stable decision names, derived from where a decision stands in the text.

A name is a path of segments: the section (`network`, a shared or param name, `train`), then one
segment per stage (`conv_bn`, `repeat`, `one_of`, a graph node name), `[i]` for the i-th copy of a
repeat or the i-th alternative of a choice, and the argument a decision fills (`kernel`). A segment
that occurs twice in one scope becomes `name#2`, `name#3`...: e.g. `network/repeat[2]/conv_bn/k`.
"""

from __future__ import annotations

__all__ = ["Scope"]


class Scope:
    __slots__ = ("path", "_counts")

    def __init__(self, path: str = ""):
        self.path = path
        self._counts: dict[str, int] | None = None

    def key(self, segment: str) -> str:
        """The path of the next occurrence of `segment` in this scope."""
        counts = self._counts
        if counts is None:
            counts = self._counts = {}
        k = counts.get(segment, 0) + 1
        counts[segment] = k
        seg = segment if k == 1 else f"{segment}#{k}"
        return f"{self.path}/{seg}" if self.path else seg

    def child(self, segment: str) -> Scope:
        return Scope(self.key(segment))

    def index(self, i: int) -> Scope:
        return Scope(f"{self.path}[{i}]")

    def __repr__(self) -> str:
        return f"Scope({self.path!r})"
