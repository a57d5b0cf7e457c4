"""Syntax errors worth reading: where, what was expected, and hints (a bracket not closed and
where it was opened, `=` for `==`, single quotes); and the bracket nesting limit, checked
before parsing."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import ArchLimitError, ArchSyntaxError, Span

__all__ = ["MAX_NESTING", "TOP_LEVEL", "check_nesting", "syntax_error"]

MAX_NESTING = 100  # brackets nested deeper than this are refused before parsing
_NESTING_CHARS = re.compile(r'[\n#"\\()\[\]{}]')  # what check_nesting looks at
_COMMENT = re.compile(r"#[^\n]*")
_NOT_BRACKET = re.compile(r"[^()\[\]{}]+")


def _brackets(text: str) -> Iterator[tuple[str, int, int]]:
    """Each bracket of the text outside strings and comments: (the bracket, its line, its
    column), columns counted in characters as lark counts them."""
    line, line_start = 1, 0
    in_comment = in_string = False
    escaped_at = -1  # the position of the character after a backslash in a string
    for m in _NESTING_CHARS.finditer(text):
        ch, i = m.group(), m.start()
        if ch == "\n":
            line, line_start, in_comment, in_string = line + 1, i + 1, False, False
        elif in_comment or i == escaped_at:
            continue
        elif in_string and ch == "\\":
            escaped_at = i + 1
        elif ch == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif ch == "#":
            in_comment = True
        elif ch != "\\":  # a backslash outside a string is no bracket (a syntax error)
            yield ch, line, i - line_start + 1


def _deep_at_most(text: str, limit: int) -> bool:
    """Whether the text's brackets surely nest at most `limit` deep: a quick look for text
    with no strings (their brackets do not count) whose comments a pattern can remove."""
    if '"' in text:
        return False
    if "#" in text:
        text = _COMMENT.sub("", text)
    depth = 0
    for ch in _NOT_BRACKET.sub("", text):
        if ch in "([{":
            depth += 1
            if depth > limit:
                return False
        elif depth:
            depth -= 1
    return True


def check_nesting(text: str, file: str) -> None:
    if _deep_at_most(text, MAX_NESTING):
        return
    depth = 0
    for ch, line, col in _brackets(text):
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ArchLimitError(
                    f"brackets nested more than {MAX_NESTING} deep",
                    Span(file, line, col, line, col + 1, text),
                    hint="split the expression into named blocks or params",
                )
        else:
            depth = max(0, depth - 1)


def _open_at(text: str, line: int, col: int) -> list[tuple[str, int, int]]:
    """The brackets still open before (line, col), innermost last: (the bracket, its line, its
    column). A closer pairs with the innermost opener, whichever kind it is."""
    stack: list[tuple[str, int, int]] = []
    for ch, ln, c in _brackets(text):
        if (ln, c) >= (line, col):
            break
        if ch in "([{":
            stack.append((ch, ln, c))
        elif stack:
            stack.pop()
    return stack


def _bracket_hint(text: str, tok: Token, line: int, col: int) -> str | None:
    """"the '{' opened at 3:12 is not closed" where the parse stopped inside brackets: at the
    end of the file, at a closer of another kind than the innermost open bracket, or at a
    line that starts a top-level declaration."""
    stack = _open_at(text, line, col)
    if not stack:
        return None
    inner = stack[-1]
    if tok.value in _OPENER and tok.type != "$END":  # a closer
        if tok.value == _CLOSER[inner[0]]:
            return None
        if not any(b == _OPENER[tok.value] for b, _, _ in stack):
            return f"this '{tok.value}' closes nothing: no '{_OPENER[tok.value]}' is open"
    elif tok.type != "$END" and tok.type not in TOP_LEVEL and not TOP_LEVEL_LINE.match(
            text.split("\n", line)[line - 1] if line >= 1 else ""):
        return None
    return f"the '{inner[0]}' opened at {inner[1]}:{inner[2]} is not closed"


_CLOSER = {"(": ")", "[": "]", "{": "}"}
_OPENER = {v: k for k, v in _CLOSER.items()}
# tokens that stand only at the top level of a file: met inside brackets, a bracket is open
TOP_LEVEL = frozenset({"IMPORT", "FROM", "BLOCK", "CELL", "OP", "NETWORK", "TRAIN"})
_KEYWORDS = "|".join(sorted(k.lower() for k in TOP_LEVEL))
TOP_LEVEL_LINE = re.compile(rf"\s*({_KEYWORDS})\b")


_PUNCT_HINTS = {
    "EQUAL": "to compare two values, write '=='",
    "RBRACE": "a '}' closes a block, network or train section",
}


def _describe_expected(names: set[str], lark: Lark) -> str:
    shown = set()
    for n in names:
        if n == "$END":
            shown.add("end of file")
            continue
        try:
            term = lark.get_terminal(n)
        except KeyError:
            shown.add(n.lower())
            continue
        if term.pattern.type == "str":
            shown.add(f"'{term.pattern.value}'")
        else:
            shown.add({"NAME": "a name", "INT": "an integer", "FLOAT": "a number",
                       "STRING": "a string", "COMPARE": "a comparison"}.get(n, n.lower()))
    items = sorted(shown)
    if len(items) > 8:
        items = items[:8] + ["..."]
    return ", ".join(items)


def syntax_error(e: UnexpectedInput, text: str, file: str, lark: Lark) -> ArchSyntaxError:
    """lark's syntax error as an ArchSyntaxError: the place, what was expected, a hint."""
    line, col = max(e.line, 1), max(e.column, 1)
    hint = None
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        msg = f"unexpected character {ch!r}"
        if ch == "'":
            hint = 'strings use double quotes: "text"'
        width = 1
    elif isinstance(e, UnexpectedEOF):
        line, col = _end_of_text(text)
        msg = f"unexpected end of file; expected {_describe_expected(set(e.expected), lark)}"
        width = 1
        stack = _open_at(text, line, col + 1)
        if stack:
            hint = f"the '{stack[-1][0]}' opened at {stack[-1][1]}:{stack[-1][2]} is not closed"
    elif isinstance(e, UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            line, col = _end_of_text(text)
            msg = "unexpected end of file"
            width = 1
        else:
            msg = f"unexpected {tok.value!r}"
            width = max(1, len(str(tok.value)))
            hint = _PUNCT_HINTS.get(tok.type)
        hint = _bracket_hint(text, tok, line, col) or hint
        expected = _describe_expected(set(e.expected), lark)
        if expected:
            msg += f"; expected {expected}"
    else:  # pragma: no cover - lark has no other kinds
        msg, width = str(e), 1
    return ArchSyntaxError(msg, Span(file, line, col, line, col + width, text), hint=hint)


def _end_of_text(text: str) -> tuple[int, int]:
    """Line and column just after the last character, counting lines by '\\n' as lark does
    (a final line end is not a line of its own)."""
    text = text.removesuffix("\n").removesuffix("\r")
    start = text.rfind("\n") + 1
    return text.count("\n") + 1, len(text) - start + 1
