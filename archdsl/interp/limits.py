"""The interpreter's limits, in one place: how large a walk, a count or a cache may grow, and the
checks that refuse a space past them (an `ArchLimitError` with the span that went too far).

May import: archdsl.errors only.
"""

from __future__ import annotations

from ..errors import ArchLimitError, Span

__all__ = ["MAX_REPEAT", "MAX_LAYERS", "MAX_NESTING", "MAX_TABLE", "MAX_DECISIONS",
           "MAX_COUNT_BITS", "MAX_DOMAIN", "MAX_TRIE", "MAX_TAPES", "MAX_SILENT", "TOO_LARGE",
           "held", "check_some"]

# a walk
MAX_REPEAT = 10_000  # copies in one repeat
MAX_LAYERS = 20_000  # layer nodes in one architecture (building and planning: ~0.1 ms each)
MAX_NESTING = 64  # nested block applications
MAX_DECISIONS = 20_000  # decisions in one configuration (a walk: ~0.05 ms each)
MAX_DOMAIN = 10_000_000  # options of one discrete decision
# counting
MAX_TABLE = 20_000  # rows when enumerating the joint values of structural decisions
MAX_COUNT_BITS = 200_000  # counts beyond 2**this are refused rather than computed
# the caches
MAX_TRIE = 400_000  # cells (nodes and leaf entries) kept by Interp.sample per chooser type
MAX_TAPES = 4096  # block applications whose layers a build keeps (Interp.run_body_taped)
MAX_SILENT = 100_000  # sub-networks remembered as deciding nothing (Interp.apply)

TOO_LARGE = ("repeats, recursion and blocks applied inside blocks multiply: fewer copies, a "
             "lower max_depth or a shallower nesting make it smaller")


def held(n: int, span: Span | None) -> int:
    """A count, refused once it passes 2**MAX_COUNT_BITS: every product and sum of counting
    goes through here, so no intermediate number grows much past the limit."""
    if n.bit_length() > MAX_COUNT_BITS:
        raise ArchLimitError(f"more than 2**{MAX_COUNT_BITS:,} architectures: too many to count "
                             "exactly", span,
                             hint="make the space smaller (a lower max_depth, fewer copies or "
                             "options)")
    return n


def check_some(n: int, span: Span) -> None:
    """some(...) of n nodes is one decision of 2**n - 1 options: refused past MAX_DOMAIN."""
    if (1 << n) - 1 > MAX_DOMAIN:
        raise ArchLimitError(f"some(...) of {n} nodes has 2**{n} - 1 subsets, more than the "
                             f"limit of {MAX_DOMAIN:,} options", span,
                             hint="choose among fewer nodes (at most 23)")
