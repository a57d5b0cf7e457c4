"""Text -> syntax tree. Knows the grammar and nothing about tensors or decisions."""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from . import ast as A
from .errors import ArchDSLError, ArchLimitError, ArchSyntaxError, ArchValueError, Span
from .gc_pause import no_gc
from .lalr import Driver
from .literals import digits, int_literal, string_literal
from .sources import MAX_SOURCE_BYTES, read_source, shows_lines
from .syntax_errors import MAX_NESTING, TOP_LEVEL, check_nesting, syntax_error

__all__ = ["parse", "read_source", "MAX_SOURCE_BYTES", "MAX_NESTING", "MAX_DEPTH"]

# Syntax nested deeper than this (operators, calls, structures and statements together) is
# refused while parsing: every later stage walks the tree recursively.
MAX_DEPTH = 256
# Parser stack entries per level of nesting are at most a few (`repeat ( n ) {`), so a stack
# this deep means nesting beyond MAX_DEPTH: it stops a long chain of prefix operators
# (`- - - ... 1`, reduced only at its end) before the rest of the file is read.
_MAX_STACK = 8 * MAX_DEPTH


class _TooDeep(Exception):
    def __init__(self, where: Token | Span):
        super().__init__()
        self.where = where  # a token, or the span of a syntax node, at the limit


class _Part:
    """What the reduction of one grammar rule gave: the AST value, the first and last tokens of
    the text the rule covered (brackets and keywords included; None where it covered nothing),
    its own span, and its height among the rules that make a node (so that the parse stops at
    MAX_DEPTH). A parenthesized expression keeps its inner value, span and height but covers
    the brackets: the span of an enclosing rule takes them in."""

    __slots__ = ("value", "first", "last", "span", "height")

    def __init__(self, value: Any, first: Token | None, last: Token | None, span: Span,
                 height: int):
        self.value, self.first, self.last, self.span, self.height = (
            value, first, last, span, height)


def _height(children: list) -> int:
    """1 + the height of the tallest child; _TooDeep at that child beyond MAX_DEPTH."""
    height, tallest = 0, None
    for c in children:
        if isinstance(c, _Part) and c.height > height:
            height, tallest = c.height, c
    if height >= MAX_DEPTH:
        raise _TooDeep(tallest.span)
    return height + 1


# The most children a reduction of an inlined rule adds to its list (checked in `_lark`).
_NEW_CHILDREN = 2


# The longest list of each kind: what one repeated item of a rule is, and the limit.
MAX_STAGES = 20_000  # stages in one pipeline (an architecture has at most 20,000 layers)
MAX_ITEMS = 100_000  # items in any other list: list items, arguments, alternatives, ...
_REPEATED = {"or_test": "stages in one pipeline", "expr": "items in one list",
             "arg": "arguments in one call", "alt": "alternatives in one one_of or parallel",
             "param": "parameters of one block", "train_entry": "entries in one train section",
             "_stmt": "statements in one body", "_item": "declarations in one file",
             "NAME": "names in one import"}
# the name of a repetition rule -> (children per item, the limit, what an item is): from _lark
_REPEATS: dict[str, tuple[int, int, str]] = {}


class _TooLong(Exception):
    def __init__(self, what: str, limit: int, where: Token | Span):
        super().__init__()
        self.what, self.limit, self.where = what, limit, where


class _Tree(Tree):
    """A rule lark inlines into its parent (`_stmt`, `_item`, a repetition): a level of the
    tree for MAX_DEPTH too, before its children are spliced into the parent's.

    A repetition (`a -> b -> c`, `x, y, z`) is left-recursive: lark extends the children list of
    the previous reduction in place, so only its last children are new. Checking only those
    keeps a list of n items linear to parse (checking them all was quadratic)."""

    def __init__(self, data: str, children: list, meta: Any = None):
        self.data, self.children, self._meta = data, children, meta  # as Tree.__init__
        for c in children[-_NEW_CHILDREN:]:  # _TooDeep if a new child stands at MAX_DEPTH
            if c.__class__ is _Part and c.height >= MAX_DEPTH:
                _height(children[-_NEW_CHILDREN:])
        repeat = _REPEATS.get(data)
        if repeat is not None and len(children) > repeat[0] * repeat[1]:
            last = children[-1]
            limit = repeat[1] + (repeat[0] == 2)
            raise _TooLong(repeat[2], limit, last if isinstance(last, Token) else last.span)


def _rule(method: Callable[[_ToAst, Span, list], Any]) -> Callable[[_ToAst, list], _Part]:
    """The callback lark calls when it reduces a rule: `method` gets the rule's span (first to
    last token) and the values of its children, punctuation and keywords left out."""

    def callback(self: _ToAst, children: list, token: type = Token,
                 value_terminals: frozenset = _VALUE_TERMINALS) -> _Part:
        first = last = tallest = None
        values = []
        height = 0  # of the tallest child (what _height computes, in the same loop)
        for c in children:
            if c.__class__ is token:
                if first is None:
                    first = c
                last = c
                if c.type in value_terminals:
                    values.append(c)
            else:
                if c.first is not None:
                    if first is None:
                        first = c.first
                    last = c.last
                values.append(c.value)
                if c.height > height:
                    height, tallest = c.height, c
        if height >= MAX_DEPTH:
            raise _TooDeep(tallest.span)
        height += 1
        if first is not None and first.type in _DECLARATION_KEYWORDS:
            self.declared = True  # the text is .arch: an error may quote its lines
        if first is None:
            span = Span(self.file, 1, 1, 1, 1, self.text)
        else:
            span = Span(self.file, first.line, first.column, last.end_line, last.end_column,
                        self.text)
        value = None
        if self.error is None:
            self.first = first
            try:
                value = method(self, span, values)
            except ArchDSLError as e:
                self.error = e
        return _Part(value, first, last, span, height)

    return callback


# The grammar's named terminals: their tokens are values (a name, a number); lark leaves the
# others (punctuation, keywords) out of a rule's children unless keep_all_tokens.
_VALUE_TERMINALS = frozenset({"NAME", "INT", "FLOAT", "STRING", "COMPARE"})
# the keywords a declaration or statement starts with (their terminals' names)
_DECLARATION_KEYWORDS = frozenset({
    "IMPORT", "FROM", "INPUT", "PARAM", "SHARED", "BLOCK", "CELL", "OP", "NETWORK", "TRAIN",
    "REQUIRE", "FORBID", "RETURN"})
_LOCK = threading.Lock()


@functools.cache
def _lark() -> tuple[Lark, _ToAst]:
    """The LALR parser, running `_ToAst` as it reduces (no parse tree). Every token is kept in
    the children so that a rule's span runs from its first token to its last; an optional part
    left out is left out of the children (no None in its place)."""
    text = resources.files("archdsl.grammar").joinpath("archdsl.lark").read_text("utf-8")
    builder = _ToAst()
    lark = Lark(text, parser="lalr", transformer=builder, keep_all_tokens=True,
                maybe_placeholders=False, tree_class=_Tree)
    for r in lark.rules:  # what _Tree relies on: an inlined rule adds few children at a time
        grows = [s for s in r.expansion if s != r.origin]
        assert not r.origin.name.startswith("_") or len(grows) <= _NEW_CHILDREN, r
        if r.origin.name.startswith("__") and r.origin in r.expansion:  # `x: x "," item`
            item = grows[-1].name
            limit = MAX_STAGES if item == "or_test" else MAX_ITEMS
            if len(grows) == 2:  # `a ("," a)*`: the first item stands before the repetition
                limit -= 1
            _REPEATS[r.origin.name] = (len(grows), limit, _REPEATED[item])
    named = {t.name for t in lark.terminals if not t.name.startswith("__")
             and t.pattern.type == "re" and t.name not in lark.ignore_tokens}
    assert named == _VALUE_TERMINALS, named
    assert _DECLARATION_KEYWORDS | TOP_LEVEL <= {t.name for t in lark.terminals}
    return lark, builder


def parse(text: str, file: str = "<string>") -> A.Module:
    """Parse .arch source text into a `Module`; raise `ArchSyntaxError` with a caret on failure.

    An error shows the text (a quoted line, a token) only if the text is .arch: a `.arch` file,
    text not read from a file, or a file of which a declaration parsed before the error.
    Otherwise (`archdsl check /etc/shadow`) it says where, and nothing of what is there."""
    looks_like_arch = [shows_lines(file)]
    try:
        with no_gc():
            return _parse(text, file, looks_like_arch)
    except ArchDSLError as e:
        if looks_like_arch[0]:
            raise
        span = dataclasses.replace(e.span, text="") if e.span is not None else None
        raise ArchSyntaxError(
            "not .arch text: the file does not start with a declaration", span,
            hint="a .arch file holds declarations such as `input`, `param`, `block` and "
                 "`network`") from None


def _parse(text: str, file: str, looks_like_arch: list[bool]) -> A.Module:
    if len(text) > MAX_SOURCE_BYTES:
        raise ArchLimitError(
            f"{file}: source is {len(text):,} characters; the limit is {MAX_SOURCE_BYTES:,}"
        )
    if "\0" in text:
        i = text.index("\0")
        line, col = text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i)
        raise ArchSyntaxError("binary data (a NUL character), not .arch text",
                              Span(file, line, col, line, col + 1))
    check_nesting(text, file)
    with _LOCK:
        _, builder = _lark()
        builder.file, builder.text, builder.error, builder.declared = file, text, None, False
        try:
            module = _parse_tree(text)
        except UnexpectedInput as e:
            raise syntax_error(e, text, file, _lark()[0]) from None
        except _TooLong as e:
            w = e.where
            raise ArchLimitError(
                f"too large: more than {e.limit:,} {e.what}",
                Span(file, w.line, w.column, w.end_line, w.end_column, text),
                hint="split it into smaller parts; docs/language.md (section 20) lists the limits"
            ) from None
        except _TooDeep as e:
            w = e.where
            raise ArchLimitError(
                f"nested more than {MAX_DEPTH} levels deep",
                Span(file, w.line, w.column, w.end_line, w.end_column, text),
                hint="split the expression into named params or blocks",
            ) from None
        finally:
            error, builder.error, builder.text = builder.error, None, ""
            looks_like_arch[0] = looks_like_arch[0] or builder.declared
    if error is not None:
        raise error
    return module


@functools.cache
def _driver() -> Driver:
    return Driver(_lark()[0])


def _parse_tree(text: str) -> A.Module:
    """Parse and build the AST, stopped with _TooDeep as soon as the nesting is too deep."""
    return _driver().parse(text, _MAX_STACK, _TooDeep).value


def _decl_options(c: list) -> tuple[list[A.Param], int | None]:
    """The optional parameter list and max_depth of a block or op declaration."""
    params = next((x for x in c if isinstance(x, list)), [])
    return params, next((x for x in c if isinstance(x, int)), None)


class _ToAst:
    """One small method per construct, run by lark as it reduces the rule (no parse tree is
    built); each gets the rule's span and its children without punctuation (see `_rule`).

    One instance serves every parse (lark binds its methods once): `parse` holds `_LOCK` and
    sets `file` and `text` first. The first error a method raises is kept in `error` and the
    parse goes on, so that a syntax error or a nesting limit further on is reported first, as
    when the tree was transformed after parsing."""

    def __init__(self) -> None:
        self.file, self.text = "", ""
        self.error: ArchDSLError | None = None
        self.first: Token | None = None  # the first token of the rule being reduced
        self.declared = False  # whether a declaration or statement has been reduced

    def _tspan(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column, self.text)

    def _int(self, tok: Token) -> int:
        return int_literal(tok, lambda: self._tspan(tok))

    def _string(self, tok: Token) -> str:
        return string_literal(tok, lambda k, n: Span(self.file, tok.line, tok.column + k,
                                                     tok.line, tok.column + k + n, self.text))

    def atom(self, children: list) -> _Part:
        """`( expr )`: the expression itself (its span and height), covering the brackets."""
        lpar, inner, rpar = children
        return _Part(inner.value, lpar, rpar, inner.span, inner.height)

    # ---- literals and names
    @_rule
    def int_lit(self, span, c):
        return A.Lit(span, self._int(c[0]))

    @_rule
    def float_lit(self, span, c):
        value = float(digits(c[0]))
        if math.isinf(value):
            raise ArchValueError(f"the number {c[0]} is too large for a float",
                                 span, hint="floats reach about 1.8e308")
        return A.Lit(span, value)

    @_rule
    def string_lit(self, span, c):
        return A.Lit(span, self._string(c[0]))

    @_rule
    def true_lit(self, span, c):
        return A.Lit(span, True)

    @_rule
    def false_lit(self, span, c):
        return A.Lit(span, False)

    @_rule
    def name(self, span, c):
        return A.Name(span, str(c[0]))

    @_rule
    def list_lit(self, span, c):
        return A.ListLit(span, c)

    # ---- calls
    @_rule
    def call(self, span, c):
        args = []
        for a in c[1:]:
            args.append(a if isinstance(a, A.Arg) else A.Arg(a.span, None, a))
        return A.Call(span, str(c[0]), self._tspan(c[0]), args)

    @_rule
    def kwarg(self, span, c):
        return A.Arg(span, str(c[0]), c[1])

    @_rule
    def labelled_arg(self, span, c):
        return A.Arg(span, None, c[1], str(c[0]))

    @_rule
    def range_arg(self, span, c):
        return A.Range(span, c[0], c[1])

    # ---- operators
    def _bin(op):  # noqa: N805 - a method factory
        @_rule
        def f(self, span, c):
            return A.BinOp(span, op, c[0], c[1])

        return f

    add, sub, mul, div, floordiv, mod, pow = (
        _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("//"), _bin("%"), _bin("**"))

    @_rule
    def neg(self, span, c):
        return A.Neg(span, c[0])

    @_rule
    def compare(self, span, c):
        return A.Compare(span, str(c[1]), c[0], c[2])

    @_rule
    def and_op(self, span, c):
        return A.BoolOp(span, "and", c[0], c[1])

    @_rule
    def or_op(self, span, c):
        return A.BoolOp(span, "or", c[0], c[1])

    @_rule
    def not_op(self, span, c):
        return A.Not(span, c[0])

    @_rule
    def pipeline(self, span, c):
        return A.Pipeline(span, list(c))

    @_rule
    def shared(self, span, c):
        return A.Shared(span, c[0])

    # ---- structures
    @_rule
    def repeat(self, span, c):
        return A.Repeat(span, c[0], c[1])

    @_rule
    def alt(self, span, c):
        return A.Alt(span, str(c[0]) if len(c) == 2 else None, c[-1])

    @_rule
    def one_of(self, span, c):
        return A.OneOf(span, list(c))

    @_rule
    def optional(self, span, c):
        return A.Optional(span, c[0])

    @_rule
    def residual(self, span, c):
        return A.Residual(span, c[0], c[1] if len(c) == 2 else None)

    @_rule
    def parallel(self, span, c):
        return A.Parallel(span, str(c[0]), self._tspan(c[0]), list(c[1:]))

    # ---- statements
    @_rule
    def param_decl(self, span, c):
        return A.ParamDecl(span, str(c[0]), c[1])

    @_rule
    def shared_decl(self, span, c):
        return A.SharedDecl(span, str(c[0]), c[1])

    @_rule
    def require(self, span, c):
        return A.Constraint(span, "require", c[0])

    @_rule
    def forbid(self, span, c):
        return A.Constraint(span, "forbid", c[0])

    @_rule
    def graph_input(self, span, c):
        return ("input", span, [str(t) for t in c])

    @_rule
    def node_stmt(self, span, c):
        return A.NodeStmt(span, str(c[0]), c[1])

    @_rule
    def return_stmt(self, span, c):
        return ("return", span, c[0])

    @_rule
    def expr_stmt(self, span, c):
        return ("expr", span, c[0])

    @_rule
    def body(self, span, stmts):
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

    @_rule
    def params(self, span, c):
        return c

    @_rule
    def param(self, span, c):
        return A.Param(span, str(c[0]), c[1] if len(c) == 2 else None)

    @_rule
    def max_depth(self, span, c):
        return self._int(c[0])

    @_rule
    def block_decl(self, span, c):
        keyword = "cell" if self.first == "cell" else "block"
        params, depth = _decl_options(c[1:-1])
        return A.BlockDecl(span, str(c[0]), params, depth, c[-1], keyword, self.file)

    @_rule
    def op_decl(self, span, c):
        params, depth = _decl_options(c[1:-1])
        body = A.Body(c[-1].span, [], [], [], [], c[-1], False)
        return A.BlockDecl(span, str(c[0]), params, depth, body, "op", self.file)

    @_rule
    def network_decl(self, span, c):
        return ("network", span, c[0])

    @_rule
    def train_entry(self, span, c):
        return A.TrainEntry(span, str(c[0]), c[1])

    @_rule
    def train_decl(self, span, c):
        return ("train", span, list(c))

    @_rule
    def input_decl(self, span, c):
        return A.InputDecl(span, str(c[0]), c[1], c[2] if len(c) > 2 else None)

    @_rule
    def input_kind(self, span, c):
        """`index(N)` after an input's shape: the input holds integers from 0 to N - 1."""
        if str(c[0]) != "index":
            raise ArchSyntaxError(f"unknown input kind '{c[0]}'", self._tspan(c[0]),
                                  hint="the one kind is index(N), integers from 0 to N - 1: "
                                  "`input edges: [2, 48] index(12)`")
        return c[1]

    @_rule
    def import_all(self, span, c):
        return A.Import(span, self._string(c[0]), None, None)

    @_rule
    def import_names(self, span, c):
        return A.Import(span, self._string(c[0]), None, [str(t) for t in c[1:]])

    @_rule
    def start(self, span, items):
        m = A.Module(span, self.file, [], [], [], [], None, None, [], [])
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
