"""One test per kind of user error: the class, the exact line and column, the caret line that
`format()` draws under the source line, the key words of the message and the hint.

Every error must be an `archdsl.ArchDSLError`; anything else escaping (or a hang) is a bug.
Tests that expose a known bug are marked xfail(strict=True) with the reason "BUG: ...".
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import (
    ArchDSLError,
    ArchImportError,
    ArchLimitError,
    ArchNameError,
    ArchRecursionError,
    ArchSyntaxError,
    ArchTypeError,
    ArchValueError,
    ConfigError,
    ConstraintError,
)
from archdsl.errors import _window

# ---------------------------------------------------------------------------------------------
# helpers


class Hang(Exception):
    """Raised by `time_limit` when a call runs past its budget."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the body with `Hang` after `seconds` (SIGALRM; the main thread, POSIX only)."""
    if not hasattr(signal, "setitimer"):  # pragma: no cover - not POSIX
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def err_of(src: str, *, materialize: bool = True, file: str = "<string>",
           base_dir: str | Path | None = None, seconds: float = 5.0) -> ArchDSLError:
    """The ArchDSLError that loading `src` (then materializing its default) raises."""
    with time_limit(seconds), pytest.raises(ArchDSLError) as ei:
        space = archdsl.loads(src, file=file, base_dir=base_dir)
        if materialize:
            space.materialize(space.default())
    return ei.value


def load_err(path: Path, seconds: float = 5.0) -> ArchDSLError:
    with time_limit(seconds), pytest.raises(ArchDSLError) as ei:
        space = archdsl.load(path)
        space.materialize(space.default())
    return ei.value


def expect(err: ArchDSLError, cls: type, line: int, col: int, token: str, *,
           words: tuple[str, ...] = (), hint: str | None = None, file: str = "<string>",
           width: int | None = None) -> None:
    """Check the class, the place, the three-line `format()` report and the message words.

    `token` is the text the caret must start under (its length is the caret width unless
    `width` says otherwise); "" means the caret stands past the end of the line.
    """
    assert type(err) is cls, f"{type(err).__name__}: {err.format()}"
    span = err.span
    assert span is not None, err.format()
    assert (span.file, span.line, span.column) == (file, line, col), err.format()
    src_line = span.source_line()
    if token:
        assert src_line[col - 1:col - 1 + len(token)] == token, err.format()
    if width is None:
        width = max(1, len(token))
    out = err.format().splitlines()
    assert out[0] == f"{file}:{line}:{col}: error: {err.message}"
    shown, shown_col = _window(src_line.expandtabs(1), col)  # a long line: a window of it
    assert out[1] == "    " + shown
    assert out[2] == "    " + " " * (shown_col - 1) + "^" + "~" * (width - 1), err.format()
    for w in words:
        assert w in err.message, err.format()
    if hint is not None:
        assert err.hint is not None and hint in err.hint, err.format()
        assert out[3] == f"hint: {err.hint}"
        assert len(out) == 4
    else:
        assert len(out) == (4 if err.hint else 3)
    assert str(err) == err.format()


def expect_no_span(err: ArchDSLError, cls: type, *, words: tuple[str, ...] = (),
                   hint: str | None = None) -> None:
    assert type(err) is cls, f"{type(err).__name__}: {err.format()}"
    assert err.span is None
    out = err.format().splitlines()
    assert out[0] == f"error: {err.message}"
    for w in words:
        assert w in err.message, err.format()
    if hint is not None:
        assert err.hint is not None and hint in err.hint
        assert out[-1] == f"hint: {err.hint}"


# ---------------------------------------------------------------------------------------------
# syntax


def test_syntax_unexpected_token():
    err = err_of("input x: [4]\nnetwork { x -> linear(4) ) }\n")
    expect(err, ArchSyntaxError, 2, 26, ")", words=("unexpected ')'", "expected"))


def test_syntax_unexpected_token_after_arrow():
    err = err_of("input x: [4]\nnetwork { x -> linear(4) -> }\n")
    expect(err, ArchSyntaxError, 2, 29, "}", words=("unexpected '}'", "expected", "a name"),
           hint="closes a block")


def test_syntax_unclosed_parenthesis():
    err = err_of("input x: [4]\nnetwork { x -> linear(4 }\n")
    expect(err, ArchSyntaxError, 2, 25, "}", words=("unexpected '}'", "')'"),
           hint="the '(' opened at 2:22 is not closed")


def test_syntax_unclosed_parenthesis_at_end_of_file():
    err = err_of("input x: [4]\nnetwork { x -> linear(4")
    expect(err, ArchSyntaxError, 2, 24, "", words=("end of file", "')'"),
           hint="the '(' opened at 2:22 is not closed")


def test_syntax_unclosed_brace_at_end_of_file():
    err = err_of("input x: [4]\nnetwork { x -> linear(4)\n")
    expect(err, ArchSyntaxError, 2, 25, "", words=("end of file",),
           hint="the '{' opened at 2:9 is not closed")


def test_syntax_unexpected_dollar():
    err = err_of("input x: [4]\nnetwork { x -> $relu }\n")
    expect(err, ArchSyntaxError, 2, 16, "$", words=("unexpected character", "'$'"))


def test_syntax_single_quote():
    err = err_of("input x: [4]\nnetwork { x -> linear(4, bias = 'no') }\n")
    expect(err, ArchSyntaxError, 2, 33, "'", words=("unexpected character",),
           hint='double quotes')


def test_syntax_unterminated_string():
    err = err_of('input x: [4]\nparam s = "abc\nnetwork { x -> relu }\n')
    expect(err, ArchSyntaxError, 2, 11, '"', words=("unexpected character",))


def test_syntax_single_equals_in_comparison():
    err = err_of("input x: [4]\nparam w = choice(1, 2)\nnetwork { x -> linear(w) }\n"
                 "require w = 3\n")
    expect(err, ArchSyntaxError, 4, 11, "=", words=("unexpected '='",), hint="'=='")


def test_syntax_non_ascii_character_column():
    err = err_of("input x: [4]\n# caf\u00e9 \u00e9\u00e9\nnetwork { x -> linear(4) -> r\u00e9lu }\n")
    expect(err, ArchSyntaxError, 3, 30, "\u00e9", words=("unexpected character",))


def test_syntax_column_after_tab():
    err = err_of("input x: [4]\nnetwork { x -> linear(4)\n\t-> lienar(3) }\n")
    expect(err, ArchNameError, 3, 5, "lienar", words=("unknown layer",), hint="'linear'")


def test_syntax_chained_comparison():
    err = err_of("input x: [4]\nparam a = 1\nrequire 1 < a < 3\nnetwork { x -> relu }\n")
    expect(err, ArchSyntaxError, 3, 15, "<", words=("unexpected '<'",))


def test_syntax_second_network():
    err = err_of("input x: [4]\nnetwork { x -> linear(4) }\nnetwork { x -> relu }\n")
    expect(err, ArchSyntaxError, 3, 1, "network { x -> relu }", words=("second", "network"),
           hint="at most one network")


def test_syntax_two_pipelines_in_a_body():
    err = err_of("input x: [4]\nblock b {\n    relu\n    tanh\n}\nnetwork { x -> b }\n")
    expect(err, ArchSyntaxError, 4, 5, "tanh", words=("one pipeline",), hint="'->'")


@pytest.mark.parametrize("src", [
    "input x: [4]\n# a\x0cb\nnetwork { x -> lienar(4) }\n",
    "input x: [4]\n# a\u2028b\nnetwork { x -> lienar(4) }\n",
    'input x: [4]\nparam s = "a\x85b"\nnetwork { x -> lienar(4) }\n',
    "input x: [4]\rparam w = 3\rnetwork { x -> lienar(4) }\r",  # old Mac line ends
], ids=["form-feed", "u2028", "x85-in-string", "cr-only"])
def test_caret_stands_under_the_offending_token(src):
    err = err_of(src)
    assert isinstance(err, ArchNameError)
    col = err.span.column
    assert err.span.source_line()[col - 1:col - 1 + 6] == "lienar", err.format()


def test_crlf_line_ends():
    err = err_of("input x: [4]\r\nparam w = 3\r\nnetwork { x -> lienar(4) }\r\n")
    expect(err, ArchNameError, 3, 16, "lienar", words=("unknown layer",), hint="'linear'")


# ---------------------------------------------------------------------------------------------
# names, arguments and types


def test_unknown_layer_did_you_mean():
    err = err_of("input x: [4]\nnetwork { x -> lienar(4) }\n")
    expect(err, ArchNameError, 2, 16, "lienar", words=("unknown layer", "'lienar'"),
           hint="did you mean 'linear'?")


def test_unknown_layer_conv2():
    err = err_of("input x: [3, 8, 8]\nnetwork { x -> conv2 (16) -> relu }\n")
    expect(err, ArchNameError, 2, 16, "conv2", words=("unknown layer", "'conv2'"),
           hint="did you mean 'conv2d'?")


def test_unknown_argument_name():
    err = err_of("input x: [4]\nnetwork { x -> linear(4, biass = true) }\n")
    expect(err, ArchNameError, 2, 26, "biass = true", words=("linear", "no argument", "'biass'"),
           hint="did you mean 'bias'?")


def test_argument_given_twice():
    err = err_of("input x: [4]\nnetwork { x -> linear(4, out = 5) }\n")
    expect(err, ArchTypeError, 2, 26, "out = 5", words=("'out'", "twice"))


def test_too_many_positional_arguments():
    err = err_of("input x: [4]\nnetwork { x -> linear(4, true, 5) }\n")
    expect(err, ArchTypeError, 2, 32, "5", words=("linear", "takes 2 arguments", "3"),
           hint="out, bias")


def test_positional_argument_to_a_layer_without_arguments():
    err = err_of("input x: [4]\nnetwork { x -> relu(5) }\n")
    expect(err, ArchTypeError, 2, 21, "5", words=("relu", "takes 0 arguments"))


def test_missing_required_argument():
    err = err_of("input x: [4]\nnetwork { x -> linear() }\n")
    expect(err, ArchTypeError, 2, 16, "linear()", words=("linear", "needs argument", "'out'"))


def test_missing_block_argument_in_a_call():
    err = err_of("input x: [4]\nblock b(w) { linear(w) }\nnetwork { x -> b() }\n")
    expect(err, ArchTypeError, 3, 16, "b()", words=("block 'b'", "needs argument", "'w'"))


def test_missing_block_argument_in_a_bare_use():
    err = err_of("input x: [4]\nblock b(w) { linear(w) }\nnetwork { x -> b }\n")
    expect(err, ArchTypeError, 3, 16, "b", words=("block 'b'", "needs argument", "'w'"))


def test_wrong_argument_type_found_when_materializing():
    src = "input x: [3, 8, 8]\nnetwork {\n    x -> conv2d(16, padding = smae) -> relu\n}\n"
    space = archdsl.loads(src)  # a bare name is a symbol: checked when the layer is built
    with pytest.raises(ArchDSLError) as ei:
        space.materialize(space.default())
    expect(ei.value, ArchTypeError, 3, 31, "smae",
           words=("conv2d", "'padding'", "'smae'", "same", "valid"), hint="did you mean 'same'?")


def test_wrong_argument_type_string_for_int():
    err = err_of('input x: [4]\nnetwork { x -> linear("4") }\n')
    expect(err, ArchTypeError, 2, 23, '"4"', words=("linear", "'out'", "integer", "string"))


def test_wrong_argument_type_float_for_int():
    err = err_of("input x: [4]\nnetwork { x -> linear(2.5) }\n")
    expect(err, ArchTypeError, 2, 23, "2.5", words=("linear", "'out'", "integer"))


def test_argument_value_out_of_range():
    err = err_of("input x: [4]\nnetwork { x -> linear(0) }\n")
    expect(err, ArchValueError, 2, 23, "0", words=("'out'", "positive"))


def test_unknown_name_in_arithmetic():
    err = err_of("input x: [4]\nparam w = 8\nnetwork { x -> linear(w * wdth) }\n")
    expect(err, ArchNameError, 3, 27, "wdth", words=("unknown name", "'wdth'"))


def test_duplicate_param():
    err = err_of("input x: [4]\nparam w = 8\nparam w = 16\nnetwork { x -> linear(w) }\n")
    expect(err, ArchNameError, 3, 1, "param w = 16", words=("'w'", "declared twice"))


def test_duplicate_local_param():
    err = err_of("input x: [4]\nblock b {\n    param k = 1\n    param k = 2\n    linear(k)\n}\n"
                 "network { x -> b }\n")
    expect(err, ArchNameError, 4, 5, "param k = 2", words=("'k'", "declared twice"))


def test_duplicate_block():
    err = err_of("input x: [4]\nblock b { relu }\nblock b { tanh }\nnetwork { x -> b }\n")
    expect(err, ArchNameError, 3, 1, "block b { tanh }", words=("block 'b'", "defined twice"),
           hint="earlier in this file")


def test_network_without_input():
    err = err_of("network { x -> linear(4) }\n")
    expect(err, ArchNameError, 1, 1, "network { x -> linear(4) }", words=("no input",),
           hint="input image")


# ---------------------------------------------------------------------------------------------
# decisions


def test_range_outside_int_or_float():
    err = err_of("input x: [4]\nnetwork { x -> linear(choice(1 .. 5)) }\n")
    expect(err, ArchSyntaxError, 2, 30, "1 .. 5", words=("range", "int(...)", "float(...)"),
           hint="int(1 .. 8)")


def test_range_as_a_param_value_is_a_syntax_error():
    err = err_of("input x: [4]\nparam w = 1 .. 5\nnetwork { x -> linear(w) }\n")
    expect(err, ArchSyntaxError, 2, 13, "..", words=("unexpected '..'",))


def test_empty_int_range():
    err = err_of("input x: [4]\nnetwork { x -> linear(int(5 .. 1)) }\n")
    expect(err, ArchValueError, 2, 27, "5 .. 1", words=("empty range", "5 .. 1"))


def test_empty_float_range():
    err = err_of("input x: [4]\nnetwork { x -> dropout(float(0.5 .. 0.1)) }\n")
    expect(err, ArchValueError, 2, 30, "0.5 .. 0.1", words=("empty range",))


def test_range_step_zero():
    err = err_of("input x: [4]\nnetwork { x -> linear(int(1 .. 8, step = 0)) }\n")
    expect(err, ArchValueError, 2, 42, "0", words=("step", "positive"))


def test_log_range_not_positive():
    err = err_of("input x: [4]\nnetwork { x -> linear(int(0 .. 8, log)) }\n")
    expect(err, ArchValueError, 2, 27, "0 .. 8", words=("log", "positive"))


def test_choice_option_duplicated():
    err = err_of("input x: [4]\nnetwork { x -> linear(choice(4, 8, 4)) }\n")
    expect(err, ArchValueError, 2, 36, "4", words=("option 4", "twice"))


def test_choice_without_options():
    err = err_of("input x: [4]\nnetwork { x -> linear(choice()) }\n")
    expect(err, ArchTypeError, 2, 23, "choice()", words=("at least one option",))


def test_choice_default_not_an_option():
    err = err_of("input x: [4]\nnetwork { x -> linear(choice(1, 2, default = 3)) }\n")
    expect(err, ArchValueError, 2, 46, "3", words=("default 3", "not one of"))


@pytest.mark.parametrize("option, token", [
    ("a -> linear(choice(2, 4))", "a -> linear(choice(2, 4))"),
    ("a -> one_of { relu | gelu }", "a -> one_of { relu | gelu }"),
])
@pytest.mark.parametrize("func", ["some"])  # a choice among computations decides first
def test_an_input_choice_option_that_decides(func, option, token):
    # every option of some(...) is evaluated whichever is chosen: its decisions would be wasted
    src = ("input x: [4]\nnetwork {\n    a = x -> linear(4)\n"
           f"    c = {func}({option}, x)\n    return c -> linear(2)\n}}\n")
    err = err_of(src)
    col = 10 + len(func)
    expect(err, ArchTypeError, 4, col, token, words=(f"{func}(...) among nodes",
                                                     "cannot make a decision"),
           hint="give it its own node")


def test_one_of_duplicate_alternatives():
    err = err_of("input x: [4]\nnetwork { x -> one_of { relu | relu } }\n")
    expect(err, ArchNameError, 2, 32, "relu", words=("two alternatives", "'relu'"),
           hint="label them")


def test_one_of_duplicate_labels():
    err = err_of("input x: [4]\nnetwork { x -> one_of { a: relu | a: tanh } }\n")
    expect(err, ArchNameError, 2, 35, "a: tanh", words=("two alternatives", "'a'"))


# ---------------------------------------------------------------------------------------------
# limits and arithmetic


def test_repeat_too_many_copies():
    t0 = time.perf_counter()
    err = err_of("input x: [4]\nnetwork { x -> repeat(10**9) { relu } }\n")
    assert time.perf_counter() - t0 < 1.0
    expect(err, ArchLimitError, 2, 23, "10**9",
           words=("repeat(1,000,000,000)", "limit", "10,000"))


def test_repeat_just_over_the_limit():
    err = err_of("input x: [4]\nnetwork { x -> repeat(10_001) { relu } }\n")
    expect(err, ArchLimitError, 2, 23, "10_001", words=("10,001", "10,000"))


def test_huge_power_is_an_error_not_a_hang():
    t0 = time.perf_counter()
    err = err_of("input x: [4]\nparam w = 10**10**10\nnetwork { x -> linear(w) }\n",
                 seconds=5)
    assert time.perf_counter() - t0 < 1.0
    expect(err, ArchLimitError, 2, 11, "10**10**10", words=("2**4096",))


def test_huge_float_power():
    err = err_of("input x: [4]\nparam w = 10.0**400\nnetwork { x -> dropout(w) }\n")
    expect(err, ArchLimitError, 2, 11, "10.0**400", words=("too large",))


@pytest.mark.parametrize("op", ["/", "//", "%"])
def test_division_by_zero(op):
    src = f"input x: [4]\nparam w = 8 {op} 0\nnetwork {{ x -> linear(w) }}\n"
    err = err_of(src)
    expect(err, ArchValueError, 2, 11, f"8 {op} 0", words=("division by zero",))


def test_zero_to_a_negative_power():
    err = err_of("input x: [4]\nparam w = 0 ** -1\nnetwork { x -> linear(w) }\n")
    expect(err, ArchValueError, 2, 11, "0 ** -1", words=("zero", "negative power"))


def test_deeply_nested_brackets():
    src = "input x: [4]\nparam w = " + "(" * 200 + "1" + ")" * 200 + "\nnetwork { x -> linear(w) }\n"
    t0 = time.perf_counter()
    err = err_of(src)
    assert time.perf_counter() - t0 < 1.0
    # the 101st bracket: "param w = " is 10 characters
    expect(err, ArchLimitError, 2, 111, "(", words=("nested", "100"), hint="split")


def test_deeply_nested_lists_and_blocks():
    src = "input x: [4]\nnetwork { x -> " + "optional { " * 120 + "relu" + " }" * 120 + " }\n"
    err = err_of(src)
    # "network { x -> " is 15 characters, each "optional { " 11: the 101st bracket
    expect(err, ArchLimitError, 2, 15 + 99 * 11 + 10, "{", words=("nested", "100"))


def test_nesting_at_the_limit_is_fine():
    src = "input x: [4]\nparam w = " + "(" * 99 + "4" + ")" * 99 + "\nnetwork { x -> linear(w) }\n"
    space = archdsl.loads(src)
    assert space.count() == 1


def test_nesting_limit_after_an_escaped_quote():
    src = ('input x: [4]\nparam s = "\\"" param w = ' + "[" * 3000 + "1" + "]" * 3000
           + "\nnetwork { x -> relu }\n")
    err = err_of(src)
    # 'param s = "\\"" param w = ' is 25 characters: the 101st '[' stands at column 126
    expect(err, ArchLimitError, 2, 126, "[", words=("nested", "100"))


def test_brackets_in_a_string_with_escapes_are_not_counted():
    src = ('input x: [4]\nparam s = "\\\\" param t = "\\"' + "(" * 200 + '"\n'
           "network { x -> relu }\n")
    assert archdsl.loads(src).count() == 1


def test_long_unary_chain_is_an_error_not_a_recursion_error():
    src = "input x: [4]\nparam w = " + "-" * 50_000 + "1\nnetwork { x -> linear(w) }\n"
    err = err_of(src, seconds=2.0)
    assert type(err) is ArchLimitError, err.format()
    assert err.span.line == 2 and "nested more than 256 levels" in err.message
    assert "split" in err.hint


@pytest.mark.parametrize("expr", [
    "-" * 990_000 + "1",  # the parse stops early
    "not " * 300 + "true",
    "1 ** " * 300 + "1",
    "shared " * 300 + "w",
    " + ".join(["1"] * 300),  # left-associative: reduced, not shifted
    "[1, -" * 90 + "-" * 200 + "2" + "]" * 90,  # brackets within their limit, operators too
], ids=["neg-990k", "not", "pow", "shared", "add", "mixed"])
def test_any_deep_nesting_is_a_limit_error(expr):
    src = "input x: [4]\nparam w = " + expr + "\nnetwork { x -> linear(4) }\n"
    err = err_of(src, seconds=2.0)
    assert type(err) is ArchLimitError, err.format()
    assert err.span.line == 2 and "nested more than 256 levels" in err.message, err.format()


def test_nesting_below_the_depth_limit_is_fine():
    src = "input x: [4]\nparam w = " + "-" * 200 + "3\nnetwork { x -> linear(w) }\n"
    space = archdsl.loads(src)
    assert space.count() == 1


def test_long_arithmetic_chain_is_fast():
    src = "input x: [4]\nparam w = " + " + ".join(["1"] * 40) + "\nnetwork { x -> linear(w) }\n"
    with time_limit(1.0):
        space = archdsl.loads(src)
    space.materialize(space.default())


def test_integer_literal_with_too_many_digits():
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)  # the default (the CLI raises it in-process)
    try:
        err = err_of("input x: [4]\nparam w = " + "9" * 5000 + "\nnetwork { x -> linear(w) }\n")
    finally:
        sys.set_int_max_str_digits(old)
    assert type(err) is ArchLimitError and "2**4096" in err.message, err.format()
    assert (err.span.line, err.span.column, err.span.end_column) == (2, 11, 5011)


@pytest.mark.parametrize("literal, ok", [
    (str(2 ** 4096 - 1), True),
    ("0" * 3000 + "7", True),
    (str(2 ** 4096), False),
    ("1_" + "0" * 1300, False),
])
def test_integer_literals_are_held_to_the_integer_limit(literal, ok):
    src = f"input x: [4]\nparam w = {literal}\nrequire w > 0\nnetwork {{ x -> relu }}\n"
    if ok:
        assert archdsl.loads(src).count() == 1
    else:
        expect(err_of(src), ArchLimitError, 2, 11, literal, words=("2**4096",))


def test_max_depth_with_too_many_digits():
    err = err_of("input x: [4]\nblock b max_depth " + "9" * 5000 + " { relu }\n"
                 "network { x -> b }\n")
    assert type(err) is ArchLimitError and err.span.column == 19, err.format()


def test_huge_int_range():
    err_of("input x: [4]\nnetwork { x -> linear(int(1 .. 10**100)) }\n")


def test_bad_string_escape():
    err = err_of('input x: [4]\nparam s = "\\x"\nnetwork { x -> relu }\n')
    expect(err, ArchSyntaxError, 2, 12, "\\x", words=("unknown escape", "'\\x'"),
           hint="\\uXXXX")


@pytest.mark.parametrize("string, col, bad, words", [
    ('"ab\\q"', 14, "\\q", ("unknown escape",)),
    ('"\u00e9\\u12"', 13, "\\u12", ("four hex digits",)),
    ('"\\u12g4"', 12, "\\u12", ("four hex digits",)),
    ('"\\udc00"', 12, "\\udc00", ("surrogate",)),
    ('"\\\\\\U0001f600"', 14, "\\U", ("unknown escape",)),
])
def test_bad_string_escapes_stand_at_the_escape(string, col, bad, words):
    err = err_of(f"input x: [4]\nparam s = {string}\nnetwork {{ x -> relu }}\n")
    expect(err, ArchSyntaxError, 2, col, bad, words=words, hint="escapes")


def test_bad_escape_in_an_import_path():
    err = err_of('import "lib\\common.arch"\ninput x: [4]\nnetwork { x -> relu }\n')
    expect(err, ArchSyntaxError, 1, 12, "\\c", words=("unknown escape",), hint="backslash")


# ---------------------------------------------------------------------------------------------
# recursion, imports, train, graphs


def test_recursion_without_max_depth():
    err = err_of("input x: [4]\nblock t { one_of { relu | t -> t } }\nnetwork { x -> t }\n")
    expect(err, ArchRecursionError, 2, 27, "t", words=("'t'", "calls itself", "no depth bound"),
           hint="max_depth")


def test_max_depth_out_of_bounds():
    err = err_of("input x: [4]\nblock t max_depth 0 { one_of { relu | t } }\nnetwork { x -> t }\n")
    expect(err, ArchTypeError, 2, 1, "block t max_depth 0 { one_of { relu | t } }",
           words=("max_depth", "between 1 and 64"))


def test_count_of_deep_recursion_is_an_error_not_a_hang():
    src = "input x: [4]\nblock t max_depth 40 { one_of { relu | t -> t } }\nnetwork { x -> t }\n"
    space = archdsl.loads(src)
    with time_limit(1.5), pytest.raises(ArchLimitError):
        space.count()


def test_missing_import(tmp_path):
    main = tmp_path / "main.arch"
    main.write_text('import "nope.arch"\ninput x: [4]\nnetwork { x -> relu }\n')
    err = load_err(main)
    expect(err, ArchImportError, 1, 1, 'import "nope.arch"', file=str(main),
           words=("cannot import", "'nope.arch'", "no such file"), hint="relative")


def test_import_of_a_missing_block(tmp_path):
    (tmp_path / "lib.arch").write_text("block a { relu }\n")
    main = tmp_path / "main.arch"
    main.write_text('from "lib.arch" import zz\ninput x: [4]\nnetwork { x -> relu }\n')
    err = load_err(main)
    expect(err, ArchImportError, 1, 1, 'from "lib.arch" import zz', file=str(main),
           words=("'lib.arch'", "no block 'zz'"))


def test_import_cycle(tmp_path):
    (tmp_path / "a.arch").write_text('import "b.arch"\nblock ba { relu }\n')
    (tmp_path / "b.arch").write_text('\nimport "a.arch"\nblock bb { tanh }\n')
    main = tmp_path / "main.arch"
    main.write_text('import "a.arch"\ninput x: [4]\nnetwork { x -> ba }\n')
    err = load_err(main)
    expect(err, ArchImportError, 2, 1, 'import "a.arch"', file=str(tmp_path / "b.arch"),
           words=("import cycle", "a.arch -> b.arch -> a.arch"))


def test_import_of_itself(tmp_path):
    main = tmp_path / "self.arch"
    main.write_text('import "self.arch"\ninput x: [4]\nnetwork { x -> relu }\n')
    err = load_err(main)
    expect(err, ArchImportError, 1, 1, 'import "self.arch"', file=str(main),
           words=("import cycle",))


def test_import_of_a_bad_file(tmp_path):
    (tmp_path / "lib.arch").write_text("block a { relu ) }\n")
    main = tmp_path / "main.arch"
    main.write_text('\n\nimport "lib.arch"\ninput x: [4]\nnetwork { x -> a }\n')
    err = load_err(main)
    # reported where the mistake is: in the imported file
    expect(err, ArchSyntaxError, 1, 16, ")", file=str(tmp_path / "lib.arch"),
           words=("unexpected ')'",))


def test_train_entry_typo():
    err = err_of("input x: [4]\nnetwork { x -> relu }\ntrain {\n    epcohs = 5\n}\n")
    expect(err, ArchNameError, 4, 5, "epcohs = 5", words=("unknown train entry", "'epcohs'"),
           hint="did you mean 'epochs'?")


def test_train_entry_twice():
    err = err_of("input x: [4]\nnetwork { x -> relu }\ntrain {\n    epochs = 3\n    epochs = 4\n}\n")
    expect(err, ArchNameError, 5, 5, "epochs = 4", words=("'epochs'", "twice"))


def test_graph_body_without_return():
    src = ("input x: [4]\nblock c {\n    input n0\n    n1 = n0 -> relu\n}\n"
           "network { x -> c }\n")
    err = err_of(src)
    # the body spans two lines, so the caret is one character wide
    expect(err, ArchSyntaxError, 3, 5, "input n0", width=1, words=("graph body", "`return`"))


def test_graph_body_with_a_bare_expression():
    src = ("input x: [4]\nblock c {\n    input n0\n    n0 -> relu\n    return n0\n}\n"
           "network { x -> c }\n")
    err = err_of(src)
    expect(err, ArchSyntaxError, 4, 5, "n0 -> relu", words=("graph body",), hint="node name")


def test_graph_node_used_before_definition():
    src = ("input x: [4]\nblock c {\n    input n0\n    n1 = n2 -> relu\n    n2 = n0 -> tanh\n"
           "    return n1\n}\nnetwork { x -> c }\n")
    err = err_of(src)
    # the message says "unknown layer 'n2'" (n2 is not a node yet at this point)
    expect(err, ArchNameError, 4, 10, "n2", words=("unknown", "'n2'"))


def test_graph_return_of_an_unknown_node():
    src = ("input x: [4]\nblock c {\n    input n0\n    n1 = n0 -> relu\n    return n3\n}\n"
           "network { x -> c }\n")
    err = err_of(src)
    expect(err, ArchTypeError, 5, 12, "n3", words=("`return`", "node"))


def test_graph_node_defined_twice():
    src = ("input x: [4]\nblock c {\n    input n0\n    n1 = n0 -> relu\n    n1 = n0 -> tanh\n"
           "    return n1\n}\nnetwork { x -> c }\n")
    err = err_of(src)
    expect(err, ArchNameError, 5, 5, "n1 = n0 -> tanh", words=("'n1'", "twice"))


def test_tensor_in_arithmetic():
    src = ("input x: [4]\nblock c {\n    input n0\n    n1 = n0 * 2\n    return n1\n}\n"
           "network { x -> c }\n")
    err = err_of(src)
    expect(err, ArchTypeError, 4, 10, "n0 * 2", words=("'*'", "tensor", "value"))


def test_tensor_in_subtraction():
    src = ("input x: [4]\nblock c {\n    input n0\n    n1 = n0 - n0\n    return n1\n}\n"
           "network { x -> c }\n")
    err = err_of(src)
    expect(err, ArchTypeError, 4, 10, "n0 - n0", words=("'-'", "tensors"))


def test_layer_in_arithmetic():
    err = err_of("input x: [4]\nparam w = relu + 1\nnetwork { x -> linear(w) }\n")
    expect(err, ArchTypeError, 2, 11, "relu", words=("layer", "arithmetic"))


def test_constraint_that_nothing_satisfies():
    err = err_of("input x: [4]\nparam w = choice(1, 2)\nnetwork { x -> linear(w) }\n"
                 "require w == 3\n")
    expect(err, archdsl.EmptySpaceError, 3, 1, "network { x -> linear(w) }",
           words=("no configuration", "constraints"))


# ---------------------------------------------------------------------------------------------
# files


def test_missing_file(tmp_path):
    err = load_err(tmp_path / "nope.arch")
    expect_no_span(err, ArchDSLError, words=("nope.arch", "no such file"))


def test_directory_instead_of_a_file(tmp_path):
    err = load_err(tmp_path)
    expect_no_span(err, ArchDSLError, words=("directory",))


def expect_location_only(err: ArchDSLError, cls: type, file: str, line: int, col: int,
                         words: tuple[str, ...]) -> None:
    """A located error that quotes nothing of the file (it is not .arch text)."""
    assert type(err) is cls, f"{type(err).__name__}: {err.format()}"
    assert (err.span.file, err.span.line, err.span.column) == (file, line, col), err.format()
    assert err.format().splitlines() == [f"{file}:{line}:{col}: error: {err.message}"]
    for w in words:
        assert w in err.message, err.format()


def test_non_utf8_file(tmp_path):
    p = tmp_path / "latin1.arch"
    p.write_bytes(b"input x: [4]\n# caf\xe9\nnetwork { x -> relu }\n")
    err = load_err(p)
    expect_location_only(err, ArchSyntaxError, str(p), 2, 6, ("not UTF-8", "0xe9"))


def test_binary_garbage_file_with_nul(tmp_path):
    p = tmp_path / "garbage.arch"
    p.write_bytes(bytes(range(256)) * 4)
    t0 = time.perf_counter()
    err = load_err(p)
    assert time.perf_counter() - t0 < 1.0
    expect_location_only(err, ArchSyntaxError, str(p), 1, 1, ("binary", "NUL"))


def test_binary_garbage_file_without_nul(tmp_path):
    p = tmp_path / "garbage.arch"
    rnd = bytes((b * 97 + 13) % 256 or 1 for b in range(2000))
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + rnd)
    err = load_err(p)
    expect_location_only(err, ArchSyntaxError, str(p), 1, 1, ("not UTF-8", "0x89"))


def test_nul_in_text():
    err = err_of("input x: [4]\nnetwork { x -> relu }\0\n")
    assert isinstance(err, ArchSyntaxError) and "NUL" in err.message


def test_ten_megabyte_file_fails_fast(tmp_path):
    p = tmp_path / "big.arch"
    with open(p, "w") as f:
        f.write("input x: [4]\nnetwork { x -> relu }\n")
        line = "# " + "x" * 1022 + "\n"
        for _ in range(10 * 1024):
            f.write(line)
    assert os.path.getsize(p) > 10_000_000
    t0 = time.perf_counter()
    err = load_err(p)
    took = time.perf_counter() - t0
    assert took < 1.0, f"took {took:.2f} s"
    expect_no_span(err, ArchLimitError, words=("bytes", "1,000,000"))


def test_ten_megabyte_string_fails_fast():
    text = "input x: [4]\nnetwork { x -> relu }\n" + ("# " + "x" * 1022 + "\n") * 10 * 1024
    t0 = time.perf_counter()
    err = err_of(text)
    took = time.perf_counter() - t0
    assert took < 1.0, f"took {took:.2f} s"
    expect_no_span(err, ArchLimitError, words=("1,000,000",))


# ---------------------------------------------------------------------------------------------
# configurations

CFG_SRC = ("input x: [4]\nparam w = choice(8, 16)\nparam use = bool()\n"
           "network { x -> linear(w) -> optional { relu } -> dropout(float(0.0 .. 0.5)) }\n"
           "forbid w == 16 and use\n")


@pytest.fixture(scope="module")
def cfg_space():
    return archdsl.loads(CFG_SRC)


def _good():
    return {"w": 8, "use": True, "network/optional": True, "network/dropout/p": 0.25}


def test_good_configuration(cfg_space):
    assert cfg_space.validate(_good()) == _good()
    cfg_space.materialize(_good())


def test_config_unknown_decision_name(cfg_space):
    cfg = _good() | {"network/optinal": False}
    with pytest.raises(ConfigError) as ei:
        cfg_space.validate(cfg)
    expect_no_span(ei.value, ConfigError, words=("unknown decision", "'network/optinal'"),
                   hint="did you mean 'network/optional'?")


def test_config_unknown_decision_name_when_materializing(cfg_space):
    with pytest.raises(ConfigError) as ei:
        cfg_space.materialize(_good() | {"wdith": 8})
    expect_no_span(ei.value, ConfigError, words=("unknown decision", "'wdith'"))


def test_config_value_outside_the_domain(cfg_space):
    with pytest.raises(ConfigError) as ei:
        cfg_space.validate(_good() | {"w": 12})
    expect(ei.value, ConfigError, 2, 11, "choice(8, 16)", words=("'w'", "12", "not one of"))


def test_config_float_outside_the_range(cfg_space):
    with pytest.raises(ConfigError) as ei:
        cfg_space.validate(_good() | {"network/dropout/p": 0.9})
    expect(ei.value, ConfigError, 4, 58, "float(0.0 .. 0.5)",
           words=("'network/dropout/p'", "0.9", "outside"))


@pytest.mark.parametrize("value", ["8", 8.5, True, None, [8], {"a": 8}])
def test_config_value_of_the_wrong_type(cfg_space, value):
    with pytest.raises(ConfigError) as ei:
        cfg_space.validate(_good() | {"w": value})
    assert ei.value.span is not None and ei.value.span.line == 2


@pytest.mark.parametrize("value", ["x", None, float("nan"), float("inf"), [0.1]])
def test_config_float_of_the_wrong_type(cfg_space, value):
    with pytest.raises(ConfigError):
        cfg_space.validate(_good() | {"network/dropout/p": value})


def test_config_huge_integer_for_a_float(cfg_space):
    with pytest.raises(ConfigError):
        cfg_space.validate(_good() | {"network/dropout/p": 10**400})


def test_config_missing_decision(cfg_space):
    cfg = _good()
    del cfg["w"]
    with pytest.raises(ConfigError) as ei:
        cfg_space.validate(cfg)
    expect(ei.value, ConfigError, 2, 11, "choice(8, 16)", words=("no value for", "'w'"),
           hint="{8, 16}")


def test_config_not_an_object(cfg_space):
    with pytest.raises(ConfigError) as ei:
        cfg_space.validate([1, 2])
    expect_no_span(ei.value, ConfigError, words=("JSON object",))
    with pytest.raises(ConfigError):
        cfg_space.materialize("w=8")


def test_config_breaks_a_constraint(cfg_space):
    cfg = _good() | {"w": 16, "use": True}
    with pytest.raises(ConstraintError) as ei:
        cfg_space.validate(cfg)
    expect(ei.value, ConstraintError, 5, 1, "forbid w == 16 and use",
           words=("forbid", "not satisfied"))
    with pytest.raises(ConstraintError):
        cfg_space.materialize(cfg)
    with pytest.raises(ConstraintError):
        cfg_space.fix(cfg)


def test_config_breaks_a_block_constraint():
    src = ("input x: [4]\nblock b(k = choice(1, 3)) {\n    require k != 3\n    conv1d(4, kernel = k)\n"
           "}\nnetwork { x -> b }\n")
    space = archdsl.loads(src)
    (name,) = space.default()
    with pytest.raises(ConstraintError) as ei:
        space.validate({name: 3})
    expect(ei.value, ConstraintError, 3, 5, "require k != 3", words=("require", "not satisfied"))


# ---------------------------------------------------------------------------------------------
# numbers too large for a float, decisions where none may stand (issue 11, item 5)


@settings(max_examples=25, deadline=None)
@given(st.integers(1024, 4000))
def test_an_integer_too_large_for_a_float_argument(e):
    err = err_of(f"input x: [16]\nnetwork {{ x -> dropout(2 ** {e}) }}\n")
    expect(err, ArchValueError, 2, 24, f"2 ** {e}", words=("dropout", "'p'", "too large"))


@pytest.mark.parametrize("text,token,words", [
    ("linear(choice(8, 16, prior = [2 ** 4000, 1]))", "[2 ** 4000, 1]", ("prior", "finite")),
    ("linear(choice(8, 16, prior = [1e308, 1e308]))", "[1e308, 1e308]", ("prior", "add up")),
    ("dropout(float(0.0 .. 0.5, default = 2 ** 4000))", "2 ** 4000", ("default", "finite")),
], ids=["prior", "prior-sum", "float-default"])
def test_numbers_too_large_for_a_float_in_a_decision(text, token, words):
    src = f"input x: [16]\nnetwork {{ x -> {text} }}\n"
    for uniform in (True, False):
        with pytest.raises(ArchValueError) as ei:
            archdsl.loads(src).sample(0, uniform=uniform)
        expect(ei.value, ArchValueError, 2, src.splitlines()[1].index(token) + 1, token,
               words=words)


def test_shared_in_a_block_parameter_default_is_refused():
    err = err_of("input x: [16]\nblock b(w = shared choice(8, 16)) { linear(w) }\n"
                 "network { x -> repeat(2) { b } }\n")
    expect(err, ArchSyntaxError, 2, 13, "shared choice(8, 16)", words=("default",),
           hint="local param")


def test_a_default_outside_a_stepped_float_range():
    err = err_of("input x: [16]\nnetwork { x -> dropout(float(0.1 .. 0.5, step = 0.2, "
                 "default = 0.4)) }\n")
    expect(err, ArchValueError, 2, 64, "0.4", words=("default 0.4", "not one of"))
    space = archdsl.loads("input x: [16]\nnetwork { x -> dropout(float(0.1 .. 0.5, step = 0.2, "
                          "default = 0.30000000001)) }\n")
    assert space.default() == {"network/dropout/p": 0.3}


@pytest.mark.parametrize("src,token,words", [
    ("param q = choice(1, 2)\nrequire q == choice(1, 3)\nnetwork { x -> relu }",
     "choice(1, 3)", ("require",)),
    ("block b(w) { forbid w == shared choice(1, 2)\n linear(w) }\nnetwork { x -> b(3) }",
     "shared choice(1, 2)", ("forbid",)),
    ("input y: [choice(1, 2)]\nnetwork { x -> relu }", "choice(1, 2)", ("shape",)),
], ids=["require", "forbid-shared", "input-shape"])
def test_a_decision_where_none_can_stand(src, token, words):
    err = err_of("input x: [16]\n" + src + "\n")
    n, line = next((n, line) for n, line in enumerate(src.splitlines()) if token in line)
    expect(err, ArchTypeError, n + 2, line.index(token) + 1, token, words=words)


# ---------------------------------------------------------------------------------------------
# deep legal nesting: a clear "too large" error, not minutes and gigabytes (issue 11, item 6)

_TWICE = "input x: [8]\nblock t0 { linear(choice(8, 16)) -> relu }\n" + "".join(
    f"block t{i} {{ t{i - 1} -> t{i - 1} }}\n" for i in range(1, 17)) + "network { x -> t16 }\n"


@pytest.mark.parametrize("src,line,what", [
    (_TWICE, 2, "decisions"),
    ("input x: [8]\nblock twice(f) { f -> f }\nnetwork { x -> " + "twice(" * 16
     + "linear(choice(8, 16))" + ")" * 16 + " }\n", 3, "decisions"),
    ("input x: [8]\nblock tower max_depth 16 {\n    one_of { linear(choice(8, 16)) | tower -> tower }"
     "\n}\nnetwork { x -> tower }\n", 3, "decisions"),
    ("input x: [8]\nnetwork { x -> repeat(choice(10000, 1, 2)) { linear(choice(8, 16)) -> relu } }"
     "\n", 2, "layers"),
], ids=["twice-16", "higher-order-twice-16", "recursion-16", "repeat-10000"])
def test_deep_legal_nesting_stops_at_a_limit(src, line, what):
    space = archdsl.loads(src)
    with time_limit(20), pytest.raises(ArchLimitError) as ei:
        for cfg in [space.default(), *space.samples(3, seed=0)]:
            space.materialize(cfg)
    err = ei.value
    assert f"more than 20,000 {what} (the limit)" in err.message, err.format()
    assert err.span is not None and err.span.line == line, err.format()
    assert "network/" in err.message and "repeats, recursion" in err.hint


def test_every_error_class_is_an_archdsl_error():
    for name in archdsl.__all__:
        obj = getattr(archdsl, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ArchDSLError)
