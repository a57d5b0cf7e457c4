"""Running a lark LALR parser quickly: lark's grammar, tables, contextual lexer and callbacks,
driven by a tighter loop than lark's own (the parser's time is linear in the text, and about
half of what lark's loop takes): tokens are made without lark's per-token bookkeeping, and a
chain of reductions that only rename their one child (`?sum: product`: an atom climbs eleven
such rules) is one table look-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedToken
from lark.lexer import LexerState, LexerThread, LineCounter
from lark.parsers.lalr_analysis import Shift

try:  # lark >= 1.2 lexes a TextSlice; before, the text itself
    from lark.utils import TextSlice

    _as_text = TextSlice.cast_from
except ImportError:  # pragma: no cover - older lark
    def _as_text(text: str) -> Any:
        return text

__all__ = ["Driver"]

_MAX_MEMO = 200_000  # names whose keyword check is remembered, per lark callback

# a parse action: (0, state) shift or go to; (1, rule name) a renaming reduction;
# (2, size, callback, rule name) a reduction
Action = tuple


def _str(name: str) -> str:
    """`name` as a plain str (lark's symbol names may be Tokens, a str subclass)."""
    return str.__str__(name)


class _Position:
    """What lark's contextual lexer reads of the parser: the state on top of the stack."""

    __slots__ = ("position",)

    def __init__(self, state: int):
        self.position = state


class Driver:
    """Parses text with one lark LALR parser (built with a transformer: no parse tree)."""

    def __init__(self, lark: Lark):
        self.lark = lark
        parser = lark.parser.parser.parser
        table, callbacks = parser.parse_table, parser.callbacks
        assert not any(isinstance(k, str) for k in callbacks)  # no callbacks on tokens
        self.actions: dict[int, dict[str, Action]] = {}
        for state, row in table.states.items():
            self.actions[state] = out = {}
            for symbol, (action, arg) in row.items():
                # plain str keys: lark's names are Tokens, whose __eq__ is Python code
                if action is Shift:
                    out[_str(symbol)] = (0, arg)
                elif len(arg.expansion) == 1 and arg.options.expand1 and arg.alias is None:
                    out[_str(symbol)] = (1, _str(arg.origin.name))
                else:
                    out[_str(symbol)] = (2, len(arg.expansion), callbacks[arg],
                                         _str(arg.origin.name))
        self.start, self.end = table.start_states["start"], table.end_states["start"]
        # (state below, renaming rule, next token type) -> the state once every renaming is done
        self.climbs: dict[tuple[int, str, str], int] = {}
        self.contextual = lark.parser.lexer
        self.scanners: dict[int, tuple] = {}  # parser state -> its lexer's patterns and sets
        # id(lark's keyword check of a name) -> (the type it gave each text seen, the check)
        self.retypes: dict[int, tuple[dict[str, str], Callable[[Token], Token]]] = {}

    def _climb(self, below: int, name: str, ttype: str) -> int:
        """The state after a chain of renaming reductions over `below`, starting with the rule
        `name`, with `ttype` next: where it stops depends on nothing else."""
        actions = self.actions
        state = actions[below][name][1]
        while (act := actions[state].get(ttype)) is not None and act[0] == 1:
            state = actions[below][act[1]][1]
        return state

    def parse(self, text: str, max_stack: int, too_deep: Callable[[Token], Exception]) -> Any:
        """The value of the start rule; lark's UnexpectedInput on a syntax error, and
        `too_deep(token)` once the parser's stack holds more than `max_stack` states.

        lark's contextual lexer (the same tokens, positions and errors) and its LALR loop in
        one loop, without their per-token bookkeeping: the lexer reads the next token with the
        patterns of the state on top of the stack."""
        actions, climbs, end, scanners = self.actions, self.climbs, self.end, self.scanners
        for memo, _ in self.retypes.values():  # the memos stay small across many parses
            if len(memo) > _MAX_MEMO:
                memo.clear()
        stack, values = [self.start], []
        new_str = str.__new__
        i, n, line, line_start = 0, len(text), 1, 0
        tok, ttype = Token("$END", "", 0, 1, 1), ""
        while True:
            if i < n and text[i] == " ":  # one space, the commonest gap: ignored without
                i += 1  # a match (a longer gap's rest is matched as ignored as before)
            if i < n:
                state = stack[-1]
                mres, ignore, newline, callbacks = scanners.get(state) or self._scanner(state)
                for mre in mres:
                    m = mre.match(text, i)
                    if m:
                        break
                else:  # lark's own lexer, from here, raises its error
                    self._fail(text, _Position(state), i, line, line_start)
                value, ttype = m.group(), m.lastgroup
                start, i = i, i + len(value)
                end_line, end_start = line, line_start
                if ttype in newline and "\n" in value:
                    end_line += value.count("\n")
                    end_start = start + value.rindex("\n") + 1
                if ttype in ignore:
                    line, line_start = end_line, end_start
                    continue
                # a Token as lark's constructor makes it, without its calls
                tok = new_str(Token, value)
                tok.type, tok.value, tok.start_pos, tok.end_pos = ttype, value, start, i
                tok.line, tok.column = line, start - line_start + 1
                tok.end_line, tok.end_column = end_line, i - end_start + 1
                line, line_start = end_line, end_start
                if ttype in callbacks:  # a name that may be a keyword: its type, memoized
                    memo, check = callbacks[ttype]
                    kind = memo.get(value)
                    if kind is None:
                        kind = memo[value] = check(tok).type
                    ttype = tok.type = kind
            elif ttype != "$END":
                tok, ttype = Token.new_borrow_pos("$END", "", tok), "$END"
            else:  # pragma: no cover - $END always ends the start rule or is an error
                raise AssertionError("the parser did not end at $END")
            while True:  # feed `tok`: reduce what it ends, then shift it
                try:
                    act = actions[stack[-1]][ttype]
                except KeyError:
                    expected = {t for t in actions[stack[-1]] if t.isupper()}
                    raise UnexpectedToken(tok, expected) from None
                kind = act[0]
                if kind == 0:
                    stack.append(act[1])
                    values.append(tok)
                    if len(stack) > max_stack:
                        raise too_deep(tok)
                    break
                if kind == 1:  # the value stays; only the state changes, maybe many times
                    key = (stack[-2], act[1], ttype)
                    to = climbs.get(key)
                    if to is None:
                        to = climbs[key] = self._climb(stack[-2], act[1], ttype)
                    stack[-1] = to
                    continue
                size = act[1]
                if size:
                    children = values[-size:]
                    del stack[-size:]
                    del values[-size:]
                else:
                    children = []
                values.append(act[2](children))
                stack.append(actions[stack[-1]][act[3]][1])
                if stack[-1] == end:
                    return values[-1]

    def _scanner(self, state: int) -> tuple:
        """The patterns, ignored and multi-line token types and callbacks of the lexer lark's
        contextual lexer uses in a parser state."""
        lexer = self.contextual.lexers[state]
        scanner = lexer.scanner  # built on first use
        # compiled patterns, one named group per terminal (before lark 1.2: (pattern, names))
        mres = tuple(m[0] if isinstance(m, tuple) else m for m in scanner._mres)
        # per terminal with a callback (lark's keyword check of a name, which depends on the
        # name only): the type of each text seen, and the check
        retypes = {ttype: self.retypes.setdefault(id(cb), ({}, cb))
                   for ttype, cb in lexer.callback.items()}
        spec = (mres, lexer.ignore_types, lexer.newline_types, retypes)
        self.scanners[state] = spec
        return spec

    def _fail(self, text: str, pos: _Position, i: int, line: int, line_start: int) -> None:
        counter = LineCounter("\n")
        counter.char_pos, counter.line = i, line
        counter.column, counter.line_start_pos = i - line_start + 1, line_start
        state = LexerState(_as_text(text), counter)
        next(LexerThread(self.contextual, state).lex(pos))
        raise AssertionError("lark's lexer accepted what the fast lexer did not")  # pragma: no cover
