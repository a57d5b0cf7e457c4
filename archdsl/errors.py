"""One exception family for every stage, each carrying the source span it is about."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Span",
    "EvaluationError",
    "StudyError",
    "ArchDSLError",
    "ArchSyntaxError",
    "ArchNameError",
    "ArchTypeError",
    "ArchImportError",
    "ArchRecursionError",
    "ArchLimitError",
    "ArchValueError",
    "ConfigError",
    "ConstraintError",
    "EmptySpaceError",
    "ShapeError",
    "SpaceWarning",
    "did_you_mean",
    "amount",
    "printable",
]


@dataclass(slots=True, unsafe_hash=True)
class Span:
    """Where a construct stands in its source: 1-based line and column, end exclusive.

    A value: never changed once made (not frozen only because a frozen dataclass takes four
    times as long to make, and parsing a large file makes hundreds of thousands)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    text: str = ""  # the whole source, so a message can quote the line

    def __repr__(self) -> str:
        return f"Span({self.file}:{self.line}:{self.column})"

    def source_line(self) -> str:
        """The span's first line, counted the parser's way: lines end at '\\n' only."""
        lines = self.text.split("\n")
        if 1 <= self.line <= len(lines):
            return lines[self.line - 1].removesuffix("\r")
        return ""


# characters a terminal may take as a line break (or worse): shown as a space under a caret
_SHOWN_AS_SPACE = {ord(c): " " for c in "\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class ArchDSLError(Exception):
    """Base class: a user's mistake, reported as ``file:line:col: error: message``."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        return self.format()

    def format(self) -> str:
        """The compiler convention: location, message, the source line with a caret, a hint."""
        span = self.span
        head = f"{self.kind}: {printable(self.message, False)}"  # one line, whatever names it holds
        if span is None:
            out = [head]
        else:
            out = [f"{printable(span.file, False)}:{span.line}:{span.column}: {head}"]
            line = span.source_line()
            if line:
                shown = line.expandtabs(1).translate(_SHOWN_AS_SPACE)
                if not shown.isprintable():  # ESC, NUL...: one '?' each, so the caret stays put
                    shown = "".join(c if c.isprintable() else "?" for c in shown)
                width = 1
                if span.end_line == span.line and span.end_column > span.column:
                    width = span.end_column - span.column
                shown, col = _window(shown, span.column)
                width = max(1, min(width, len(shown) - col + 1))
                out.append(f"    {shown}")
                out.append("    " + " " * (col - 1) + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"hint: {printable(self.hint)}")
        return "\n".join(out)


class SpaceWarning(ArchDSLError):
    """Not an error: something suspicious about a space, printed like one
    (``file:line:col: warning: message``) and never raised by the library."""

    kind = "warning"


def printable(text: str, lines: bool = True) -> str:
    """`text` safe to print on a terminal: every non-printable character (an escape sequence
    in a file name or an imported path, a carriage return, NUL; a line break too unless
    `lines`) written as a Python escape, so a message can never move the cursor, clear the
    screen or pass for another line."""
    text = str(text)
    if text.isprintable():
        return text
    if lines:
        return "\n".join(printable(line, False) for line in text.split("\n"))
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_MAX_SHOWN = 2_000  # a longer source line is shown as a window around the column


def _window(line: str, col: int) -> tuple[str, int]:
    """A line of at most about _MAX_SHOWN characters around 1-based `col` ("..." where cut),
    and the column within it."""
    if len(line) <= _MAX_SHOWN:
        return line, col
    start = max(0, min(col - 1 - _MAX_SHOWN // 3, len(line) - _MAX_SHOWN))
    head = "..." if start else ""
    tail = "..." if start + _MAX_SHOWN < len(line) else ""
    return head + line[start:start + _MAX_SHOWN] + tail, col - start + len(head)


class ArchSyntaxError(ArchDSLError):
    """The text does not follow the grammar."""


class ArchNameError(ArchDSLError):
    """A name that is not defined, or defined twice."""


class ArchTypeError(ArchDSLError):
    """A value, layer or argument of the wrong kind, or a wrong number of arguments."""


class ArchValueError(ArchDSLError):
    """A value of the right kind but out of range (an empty range, a negative count...)."""


class ArchImportError(ArchDSLError):
    """A missing, unreadable or cyclic import."""


class ArchRecursionError(ArchDSLError):
    """A block that calls itself without a declared depth bound."""


class ArchLimitError(ArchDSLError):
    """Input or expansion beyond the tool's safety limits."""


class ConfigError(ArchDSLError):
    """A configuration that does not fit its space."""


class ConstraintError(ArchDSLError):
    """A configuration that breaks a `require` or `forbid`."""


class EmptySpaceError(ArchDSLError):
    """No architecture satisfies the space's constraints."""


class ShapeError(ArchDSLError):
    """Tensor shapes that do not fit together."""


class EvaluationError(ArchDSLError):
    """An evaluator could not score an architecture (the trial fails; the search goes on)."""


class StudyError(ArchDSLError):
    """A study folder that cannot be used: another space, a corrupt or locked database."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def amount(n: int) -> str:
    """A count for a message: exact with thousands separators when short, a power of ten
    otherwise (a 1,200-digit parameter count is no use to anyone in full)."""
    if n < 10**15:
        return f"{n:,}"
    return f"about 10^{len(str(n)) - 1}" if n < 10**4000 else f"about 2^{n.bit_length() - 1}"
