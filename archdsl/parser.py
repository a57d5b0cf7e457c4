"""Text -> syntax tree. Knows the grammar and nothing about tensors or decisions."""

from __future__ import annotations

import functools
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.visitors import Transformer_NonRecursive

from . import ast as A
from .errors import ArchDSLError, ArchLimitError, ArchSyntaxError, ArchValueError, Span
from .values import MAX_INT_BITS

__all__ = ["parse", "read_source", "MAX_SOURCE_BYTES", "MAX_NESTING", "MAX_DEPTH"]

MAX_SOURCE_BYTES = 2_000_000  # a .arch file larger than this is refused before parsing
MAX_NESTING = 100  # brackets nested deeper than this are refused before parsing
# Syntax nested deeper than this (operators, calls, structures and statements together) is
# refused while parsing: every later stage walks the tree recursively.
MAX_DEPTH = 256
# Parser stack entries per level of nesting are at most a few (`repeat ( n ) {`), so a stack
# this deep means nesting beyond MAX_DEPTH: it stops a long chain of prefix operators
# (`- - - ... 1`, reduced only at its end) before the rest of the file is read.
_MAX_STACK = 8 * MAX_DEPTH
_MAX_INT_DIGITS = math.ceil(MAX_INT_BITS * math.log10(2))  # the digits of 2**MAX_INT_BITS
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9a-fA-F]{0,4}")


class _TooDeep(Exception):
    def __init__(self, where: Any):
        super().__init__()
        self.where = where  # a token, or the meta of a tree, at the limit


class _Tree(Tree):
    """A parse-tree node that knows its height, so that the parse stops at MAX_DEPTH."""

    def __init__(self, data: str, children: list, meta: Any = None):
        super().__init__(data, children, meta)
        inner = [c for c in children if isinstance(c, _Tree)]
        self.height: int = 1 + max((c.height for c in inner), default=0)
        if self.height > MAX_DEPTH:
            raise _TooDeep(max(inner, key=lambda c: c.height).meta)


@functools.cache
def _lark() -> Lark:
    text = resources.files("archdsl.grammar").joinpath("archdsl.lark").read_text("utf-8")
    return Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                tree_class=_Tree)


def read_source(path: str | Path) -> str:
    """Read a .arch file as UTF-8 text, refusing binary, oversized and undecodable input."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise ArchLimitError(
                f"{p}: file is {size:,} bytes; .arch files are limited to {MAX_SOURCE_BYTES:,}"
            )
        data = p.read_bytes()
    except ArchDSLError:
        raise
    except IsADirectoryError:
        raise ArchDSLError(f"{p}: is a directory, not a .arch file") from None
    except FileNotFoundError:
        raise ArchDSLError(f"{p}: no such file") from None
    except OSError as e:
        raise ArchDSLError(f"{p}: cannot read: {e.strerror or e}") from None
    return decode_source(data, str(p))


def decode_source(data: bytes, file: str) -> str:
    if b"\0" in data[:MAX_SOURCE_BYTES]:
        off = data.index(b"\0")
        raise ArchSyntaxError(f"{file}: binary data (a NUL byte at offset {off}), not .arch text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        text = data.decode("utf-8", errors="replace")
        raise ArchSyntaxError(
            f"the file is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
            Span(file, line, col, line, col + 1, text),
        ) from None


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse .arch source text into a `Module`; raise `ArchSyntaxError` with a caret on failure."""
    if len(text) > MAX_SOURCE_BYTES:
        raise ArchLimitError(
            f"{file}: source is {len(text):,} characters; the limit is {MAX_SOURCE_BYTES:,}"
        )
    if "\0" in text:
        raise ArchSyntaxError(f"{file}: binary data (a NUL character), not .arch text")
    _check_nesting(text, file)
    try:
        tree = _parse_tree(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, file) from None
    except _TooDeep as e:
        w = e.where
        raise ArchLimitError(
            f"nested more than {MAX_DEPTH} levels deep",
            Span(file, w.line, w.column, w.end_line, w.end_column, text),
            hint="split the expression into named params or blocks",
        ) from None
    try:
        return _ToAst(file, text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, ArchDSLError):
            raise e.orig_exc from None
        raise


def _parse_tree(text: str) -> _Tree:
    """The lark tree, stopped with _TooDeep as soon as the nesting is too deep."""
    ip = _lark().parse_interactive(text)
    tok = None
    for tok in ip.iter_parse():
        if len(ip.parser_state.state_stack) > _MAX_STACK:
            raise _TooDeep(tok)
    return ip.feed_eof(tok)


def _check_nesting(text: str, file: str) -> None:
    depth = 0
    line, col = 1, 0
    in_comment = in_string = escaped = False
    for ch in text:
        col += 1
        if ch == "\n":
            line, col, in_comment, in_string, escaped = line + 1, 0, False, False, False
        elif in_comment:
            continue
        elif escaped:  # the character after a backslash in a string
            escaped = False
        elif in_string and ch == "\\":
            escaped = True
        elif ch == '"':
            in_string = not in_string
        elif in_string:
            continue
        elif ch == "#":
            in_comment = True
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ArchLimitError(
                    f"brackets nested more than {MAX_NESTING} deep",
                    Span(file, line, col, line, col + 1, text),
                    hint="split the expression into named blocks or params",
                )
        elif ch in ")]}":
            depth = max(0, depth - 1)


_PUNCT_HINTS = {
    "EQUAL": "to compare two values, write '=='",
    "RBRACE": "a '}' closes a block, network or train section",
}


def _describe_expected(names: set[str]) -> str:
    lark = _lark()
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


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> ArchSyntaxError:
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
        msg = f"unexpected end of file; expected {_describe_expected(set(e.expected))}"
        width = 1
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
        if "RPAR" in e.expected and tok.type in ("RBRACE", "$END", "RSQB"):
            hint = "a '(' is not closed"
        expected = _describe_expected(set(e.expected))
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


def _num(s: str) -> str:
    return s.replace("_", "")


class _ToAst(Transformer_NonRecursive):
    """One small method per construct; each node gets the span lark recorded for it.

    Not recursive: the tree may be up to MAX_DEPTH deep wherever `parse` is called from."""

    def __init__(self, file: str, text: str):
        super().__init__()
        self.file, self.text = file, text

    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", False):
            return Span(self.file, 1, 1, 1, 1, self.text)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column, self.text)

    def _tspan(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column, self.text)

    def _int(self, tok: Token) -> int:
        """An integer literal, held to the limit of computed integers (2**MAX_INT_BITS)."""
        digits = _num(tok).lstrip("0") or "0"
        if len(digits) > _MAX_INT_DIGITS or int(digits).bit_length() > MAX_INT_BITS:
            raise ArchLimitError(f"an integer literal larger than 2**{MAX_INT_BITS}",
                                 self._tspan(tok))
        return int(digits)

    def _string(self, tok: Token) -> str:
        """The text of a string literal, its escapes decoded (docs/language.md, Literals)."""
        raw = tok[1:-1]
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
                raise self._bad_escape(tok, j, raw[j:j + 2] + hex4)
            i = j + 2 + len(hex4)
        out.append(raw[i:])
        return "".join(out)

    def _bad_escape(self, tok: Token, j: int, seq: str) -> ArchSyntaxError:
        if seq[1] != "u":
            msg = (f"unknown escape '{seq}' in a string" if seq[1].isprintable()
                   else f"unknown escape in a string: a backslash before {seq[1]!r}")
        elif len(seq) < 6:
            msg = f"'{seq}' needs four hex digits"
        else:
            msg = f"'{seq}' is a surrogate code, not a character"
        col = tok.column + 1 + j
        return ArchSyntaxError(
            msg, Span(self.file, tok.line, col, tok.line, col + len(seq), self.text),
            hint='the escapes are \\" \\\\ \\n \\r \\t and \\uXXXX; '
                 "write \\\\ for a backslash")

    # ---- literals and names
    @v_args(meta=True)
    def int_lit(self, meta, c):
        return A.Lit(self._span(meta), self._int(c[0]))

    @v_args(meta=True)
    def float_lit(self, meta, c):
        value = float(_num(c[0]))
        if math.isinf(value):
            raise ArchValueError(f"the number {c[0]} is too large for a float",
                                 self._span(meta), hint="floats reach about 1.8e308")
        return A.Lit(self._span(meta), value)

    @v_args(meta=True)
    def string_lit(self, meta, c):
        return A.Lit(self._span(meta), self._string(c[0]))

    @v_args(meta=True)
    def true_lit(self, meta, c):
        return A.Lit(self._span(meta), True)

    @v_args(meta=True)
    def false_lit(self, meta, c):
        return A.Lit(self._span(meta), False)

    @v_args(meta=True)
    def name(self, meta, c):
        return A.Name(self._span(meta), str(c[0]))

    @v_args(meta=True)
    def list_lit(self, meta, c):
        return A.ListLit(self._span(meta), [x for x in c if x is not None])

    # ---- calls
    @v_args(meta=True)
    def call(self, meta, c):
        args = []
        for a in c[1:]:
            if a is None:
                continue
            args.append(a if isinstance(a, A.Arg) else A.Arg(a.span, None, a))
        return A.Call(self._span(meta), str(c[0]), self._tspan(c[0]), args)

    @v_args(meta=True)
    def kwarg(self, meta, c):
        return A.Arg(self._span(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def range_arg(self, meta, c):
        return A.Range(self._span(meta), c[0], c[1])

    # ---- operators
    def _bin(op):  # noqa: N805 - a method factory
        @v_args(meta=True)
        def f(self, meta, c):
            return A.BinOp(self._span(meta), op, c[0], c[1])

        return f

    add, sub, mul, div, floordiv, mod, pow = (
        _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("//"), _bin("%"), _bin("**"))

    @v_args(meta=True)
    def neg(self, meta, c):
        return A.Neg(self._span(meta), c[0])

    @v_args(meta=True)
    def compare(self, meta, c):
        return A.Compare(self._span(meta), str(c[1]), c[0], c[2])

    @v_args(meta=True)
    def and_op(self, meta, c):
        return A.BoolOp(self._span(meta), "and", c[0], c[1])

    @v_args(meta=True)
    def or_op(self, meta, c):
        return A.BoolOp(self._span(meta), "or", c[0], c[1])

    @v_args(meta=True)
    def not_op(self, meta, c):
        return A.Not(self._span(meta), c[0])

    @v_args(meta=True)
    def pipeline(self, meta, c):
        return A.Pipeline(self._span(meta), list(c))

    @v_args(meta=True)
    def shared(self, meta, c):
        return A.Shared(self._span(meta), c[0])

    # ---- structures
    @v_args(meta=True)
    def repeat(self, meta, c):
        return A.Repeat(self._span(meta), c[0], c[1])

    @v_args(meta=True)
    def alt(self, meta, c):
        return A.Alt(self._span(meta), str(c[0]) if c[0] is not None else None, c[1])

    @v_args(meta=True)
    def one_of(self, meta, c):
        return A.OneOf(self._span(meta), list(c))

    @v_args(meta=True)
    def optional(self, meta, c):
        return A.Optional(self._span(meta), c[0])

    @v_args(meta=True)
    def residual(self, meta, c):
        return A.Residual(self._span(meta), c[0], c[1])

    @v_args(meta=True)
    def parallel(self, meta, c):
        return A.Parallel(self._span(meta), str(c[0]), self._tspan(c[0]), list(c[1:]))

    # ---- statements
    @v_args(meta=True)
    def param_decl(self, meta, c):
        return A.ParamDecl(self._span(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def shared_decl(self, meta, c):
        return A.SharedDecl(self._span(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def require(self, meta, c):
        return A.Constraint(self._span(meta), "require", c[0])

    @v_args(meta=True)
    def forbid(self, meta, c):
        return A.Constraint(self._span(meta), "forbid", c[0])

    @v_args(meta=True)
    def graph_input(self, meta, c):
        return ("input", self._span(meta), [str(t) for t in c])

    @v_args(meta=True)
    def node_stmt(self, meta, c):
        return A.NodeStmt(self._span(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def return_stmt(self, meta, c):
        return ("return", self._span(meta), c[0])

    @v_args(meta=True)
    def expr_stmt(self, meta, c):
        return ("expr", self._span(meta), c[0])

    @v_args(meta=True)
    def body(self, meta, stmts):
        span = self._span(meta)
        params, constraints, inputs, nodes = [], [], [], []
        exprs, returns = [], []
        for s in stmts:
            if isinstance(s, A.ParamDecl):
                params.append(s)
            elif isinstance(s, A.Constraint):
                constraints.append(s)
            elif isinstance(s, A.NodeStmt):
                nodes.append(s)
            elif s[0] == "input":
                inputs.extend(s[2])
            elif s[0] == "return":
                returns.append(s)
            else:
                exprs.append(s)
        is_graph = bool(nodes or inputs or returns)
        if is_graph:
            if exprs:
                raise ArchSyntaxError(
                    "a graph body holds only `name = ...`, `input`, `param`, `require`, "
                    "`forbid` and `return` statements",
                    exprs[0][1],
                    hint="give this expression a node name, or return it",
                )
            if len(returns) != 1:
                where = returns[1][1] if returns else span
                raise ArchSyntaxError(
                    "a graph body needs exactly one `return`" if returns
                    else "a graph body needs a `return` statement", where)
            result = returns[0][2]
        else:
            if len(exprs) != 1:
                raise ArchSyntaxError(
                    "a body holds one pipeline" if exprs else "empty body: expected a pipeline",
                    exprs[1][1] if exprs else span,
                    hint="join layers with '->'" if exprs else None,
                )
            result = exprs[0][2]
        return A.Body(span, params, constraints, inputs, nodes, result, is_graph)

    @v_args(meta=True)
    def params(self, meta, c):
        return [p for p in c if p is not None]

    @v_args(meta=True)
    def param(self, meta, c):
        return A.Param(self._span(meta), str(c[0]), c[1])

    def max_depth(self, c):
        return self._int(c[0])

    @v_args(meta=True)
    def block_decl(self, meta, c):
        kw = self.text[meta.start_pos:meta.start_pos + 4]
        keyword = "cell" if kw == "cell" else "block"
        return A.BlockDecl(self._span(meta), str(c[0]), c[1] or [], c[2], c[3], keyword, self.file)

    @v_args(meta=True)
    def op_decl(self, meta, c):
        span = self._span(meta)
        body = A.Body(c[3].span, [], [], [], [], c[3], False)
        return A.BlockDecl(span, str(c[0]), c[1] or [], c[2], body, "op", self.file)

    @v_args(meta=True)
    def network_decl(self, meta, c):
        return ("network", self._span(meta), c[0])

    @v_args(meta=True)
    def train_entry(self, meta, c):
        return A.TrainEntry(self._span(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def train_decl(self, meta, c):
        return ("train", self._span(meta), list(c))

    @v_args(meta=True)
    def input_decl(self, meta, c):
        return A.InputDecl(self._span(meta), str(c[0]), c[1])

    @v_args(meta=True)
    def import_all(self, meta, c):
        return A.Import(self._span(meta), self._string(c[0]), None, None)

    @v_args(meta=True)
    def import_names(self, meta, c):
        return A.Import(self._span(meta), self._string(c[0]), None, [str(t) for t in c[1:]])

    @v_args(meta=True)
    def start(self, meta, items):
        m = A.Module(self._span(meta), self.file, [], [], [], [], None, None, [], [])
        for it in items:
            if isinstance(it, A.Import):
                m.imports.append(it)
            elif isinstance(it, A.InputDecl):
                m.inputs.append(it)
            elif isinstance(it, (A.ParamDecl, A.SharedDecl)):
                m.params.append(it)
            elif isinstance(it, A.BlockDecl):
                m.blocks.append(it)
            elif isinstance(it, A.Constraint):
                m.constraints.append(it)
            elif it[0] == "network":
                if m.network is not None:
                    raise ArchSyntaxError("a second `network` section", it[1],
                                          hint="a file has at most one network")
                m.network, m.network_span = it[2], it[1]
            elif it[0] == "train":
                if m.train:
                    raise ArchSyntaxError("a second `train` section", it[1])
                m.train = it[2]
        return m
