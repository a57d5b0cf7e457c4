"""Literal text -> values: integer literals held to the limit of computed integers, and string
literals with their escapes decoded (docs/language.md, Literals). Used by the parser; knows
nothing of the grammar beyond a literal's own text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from .errors import ArchLimitError, ArchSyntaxError, Span
from .values import MAX_INT_BITS

__all__ = ["digits", "int_literal", "string_literal"]

_MAX_INT_DIGITS = math.ceil(MAX_INT_BITS * math.log10(2))  # the digits of 2**MAX_INT_BITS
_SHORT_INT = 1_000  # digits: 10**1000 < 2**MAX_INT_BITS
assert 10 ** _SHORT_INT < 2 ** MAX_INT_BITS

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9a-fA-F]{0,4}")


def digits(text: str) -> str:
    """A number literal without its `_` separators."""
    return text.replace("_", "")


def int_literal(text: str, span: Callable[[], Span]) -> int:
    """An integer literal, held to the limit of computed integers (2**MAX_INT_BITS); `span`
    gives the literal's span for the error."""
    if len(text) <= _SHORT_INT and "_" not in text:  # the common case: surely in bounds
        return int(text)
    ds = digits(text).lstrip("0") or "0"
    if len(ds) > _MAX_INT_DIGITS or int(ds).bit_length() > MAX_INT_BITS:
        raise ArchLimitError(f"an integer literal larger than 2**{MAX_INT_BITS}", span())
    return int(ds)


def string_literal(text: str, span_at: Callable[[int, int], Span]) -> str:
    """The text of a string literal (quotes included in `text`), its escapes decoded;
    `span_at(offset, length)` gives the span of a bad escape at that offset in `text`."""
    raw = text[1:-1]
    out, i = [], 0
    while (j := raw.find("\\", i)) >= 0:
        out.append(raw[i:j])
        c = raw[j + 1]  # the STRING pattern puts a character after every backslash
        hex4 = _HEX4.match(raw, j + 2).group() if c == "u" else ""
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif len(hex4) == 4 and not 0xD800 <= int(hex4, 16) <= 0xDFFF:
            out.append(chr(int(hex4, 16)))
        else:
            seq = raw[j:j + 2] + hex4
            raise ArchSyntaxError(_bad_escape(seq), span_at(j + 1, len(seq)),
                                  hint='the escapes are \\" \\\\ \\n \\r \\t and \\uXXXX; '
                                       "write \\\\ for a backslash")
        i = j + 2 + len(hex4)
    out.append(raw[i:])
    return "".join(out)


def _bad_escape(seq: str) -> str:
    if seq[1] != "u":
        return (f"unknown escape '{seq}' in a string" if seq[1].isprintable()
                else f"unknown escape in a string: a backslash before {seq[1]!r}")
    if len(seq) < 6:
        return f"'{seq}' needs four hex digits"
    return f"'{seq}' is a surrogate code, not a character"
