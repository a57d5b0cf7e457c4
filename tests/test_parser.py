"""The parser (issue 11 item 6, issue 10 item 11): archdsl's own LALR loop builds exactly the
tree lark's loop builds, in time linear in the text, and a bracket left open is named with
where it was opened."""

from __future__ import annotations

import dataclasses
import gc
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_printer import module_text

import archdsl
from archdsl import ArchDSLError, ArchSyntaxError
from archdsl import ast as A
from archdsl.errors import Span
from archdsl.parser import _lark, parse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.arch"))


def full_shape(x):
    """A syntax tree as nested tuples, positions included."""
    if isinstance(x, Span):
        return (x.file, x.line, x.column, x.end_line, x.end_column)
    if isinstance(x, A.Node):
        return (type(x).__name__,) + tuple(
            (f.name, full_shape(getattr(x, f.name))) for f in dataclasses.fields(x))
    if isinstance(x, (list, tuple)):
        return tuple(full_shape(i) for i in x)
    if isinstance(x, float):
        return repr(x)
    return x


def lark_parse(text: str) -> A.Module:
    """The same grammar and tree building, run by lark's own parse loop and lexer."""
    lark, builder = _lark()
    builder.file, builder.text, builder.error, builder.declared = "<string>", text, None, False
    try:
        value = lark.parse(text).value
        if builder.error is not None:  # kept while parsing, raised at the end (as parse does)
            raise builder.error
        return value
    finally:
        builder.text, builder.error = "", None


def same_as_lark(text: str) -> None:
    try:
        expected = full_shape(lark_parse(text))
    except Exception as e:  # noqa: BLE001 - a syntax error: ours must be one too, at the place
        with pytest.raises(ArchDSLError) as ei:
            parse(text)
        line, col = getattr(e, "line", None), getattr(e, "column", None)
        if isinstance(e, ArchDSLError) and e.span is not None:
            line, col = e.span.line, e.span.column
        if line is not None and ei.value.span is not None and "end of file" not in str(ei.value):
            assert (ei.value.span.line, ei.value.span.column) == (line, col), ei.value.format()
        return
    assert full_shape(parse(text)) == expected


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse_as_with_lark(path):
    same_as_lark(path.read_text())


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(module_text())
def test_generated_modules_parse_as_with_lark(src):
    same_as_lark(src)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data())
def test_damaged_examples_fail_as_with_lark(data):
    """Cut a piece out of an example: the same tree, or a syntax error at the same place."""
    text = data.draw(st.sampled_from(EXAMPLES)).read_text()
    i = data.draw(st.integers(0, len(text) - 1))
    j = data.draw(st.integers(i, min(len(text), i + 12)))
    same_as_lark(text[:i] + text[j:])


# ---- linear time ---------------------------------------------------------------------------


def cpu_seconds(text: str) -> float:
    t = time.process_time()
    archdsl.loads(text)
    return time.process_time() - t


@pytest.mark.parametrize("name, text", [
    # each took 10 s to minutes (quadratic) before; under a second now, on a loaded machine
    ("pipeline", "input a: [4]\nnetwork { a " + "-> relu " * 19_999 + "}\n"),
    ("one_of", "input x: [4]\nnetwork { x -> one_of { "
     + " | ".join(f"linear({i + 1})" for i in range(40_000)) + " } }\n"),
    ("params", "input x: [4]\n" + "".join(f"param p{i} = choice(1, 2)\n" for i in range(30_000))
     + "network { x -> relu }\n"),
    ("block parameters", "input x: [4]\nblock b(" + ", ".join(f"a{i} = {i}" for i in range(60_000))
     + ") { relu }\nnetwork { x -> b }\n"),
], ids=lambda x: x if len(x) < 20 else "")
def test_long_lists_load_in_linear_time(name, text):
    assert cpu_seconds(text) < 8.0


# ---- brackets not closed -------------------------------------------------------------------


@pytest.mark.parametrize("src, at, hint", [
    ("input x: [4]\nnetwork { x -> linear(4)\n", (2, 25), "the '{' opened at 2:9 is not closed"),
    ("input x: [4]\nnetwork { x -> linear(4 }\n", (2, 25), "the '(' opened at 2:22 is not closed"),
    ("input x: [4\nnetwork { x -> relu }\n", (2, 1), "the '[' opened at 1:10 is not closed"),
    ("input x: [4]\nblock a {\n    relu\nnetwork { x -> a }\n", (4, 9),
     "the '{' opened at 2:9 is not closed"),
    ("input x: [4]\nnetwork {\n    x -> one_of { relu | tanh\n}\n", (4, 2),
     "the '{' opened at 2:9 is not closed"),
    ('input x: [4]\nparam s = "{(["  # ({[\nnetwork { x -> relu', (3, 20),
     "the '{' opened at 3:9 is not closed"),
    ("input x: [4]\nnetwork { x -> linear(4) ) }\n", (2, 26), "this ')' closes nothing"),
    ("input x: [4]\nnetwork { x -> linear(4]) }\n", (2, 24), "this ']' closes nothing"),
])
def test_a_bracket_not_closed_is_named(src, at, hint):
    with pytest.raises(ArchSyntaxError) as ei:
        archdsl.loads(src)
    err = ei.value
    assert (err.span.line, err.span.column) == at, err.format()
    assert err.hint is not None and hint in err.hint, err.format()
    assert err.format().splitlines()[-1] == f"hint: {err.hint}"


def test_a_closed_bracket_gets_no_such_hint():
    with pytest.raises(ArchSyntaxError) as ei:
        archdsl.loads("input x: [4]\nnetwork { x -> linear(4) -> }\n")
    assert "opened at" not in (ei.value.hint or "")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from([p for p in EXAMPLES if p.parent.name == "examples"]), st.data())
def test_deleting_the_last_brace_names_its_opener(path, data):
    """Take an example up to one of its top-level `}` (dropping that brace and the rest): the
    error is at the end of the file and names the `{` that brace closed."""
    text = path.read_text()
    closers = [m.start() for m in re.finditer(r"^\}", text, re.M)]
    end = data.draw(st.sampled_from(closers))
    depth, opener = 0, None
    for m in re.finditer(r'#[^\n]*|"(?:[^"\\\n]|\\.)*"|[{}]', text[:end]):
        if m.group() == "{":
            depth += 1
            if depth == 1:
                opener = m.start()
        elif m.group() == "}":
            depth -= 1
    line = text.count("\n", 0, opener) + 1
    col = opener - text.rfind("\n", 0, opener)
    with pytest.raises(ArchSyntaxError) as ei:
        archdsl.loads(text[:end], base_dir=path.parent)
    assert ei.value.hint == f"the '{{' opened at {line}:{col} is not closed", ei.value.format()


# ---- too large: a clear error, early -------------------------------------------------------


@pytest.mark.parametrize("make, n, what", [
    (lambda n: "input a: [4]\nnetwork { a" + " -> relu" * (n - 1) + " }\n", 20_000,
     "stages in one pipeline"),
    (lambda n: "input x: [4]\nparam s = [" + ", ".join(["1"] * n) + "]\nnetwork { x -> relu }\n",
     100_000, "items in one list"),
    (lambda n: "input x: [4]\n" + "forbid 0\n" * (n - 2) + "network { x -> relu }\n", 100_000,
     "declarations in one file"),
], ids=["pipeline", "list", "declarations"])
def test_a_list_past_its_limit_is_too_large(make, n, what):
    parse(make(n))  # at the limit: fine
    with pytest.raises(ArchDSLError) as ei:
        archdsl.loads(make(n + 1))
    err = ei.value
    assert type(err).__name__ == "ArchLimitError", err.format()
    assert err.message == f"too large: more than {n:,} {what}", err.format()
    assert err.span is not None and err.span.line >= 2


def test_a_long_line_is_shown_as_a_window_around_the_caret():
    src = "input x: [4]\nnetwork { x -> " + "relu -> " * 3_000 + "lienar(3)" + " -> relu" * 3_000 + " }\n"
    with pytest.raises(ArchDSLError) as ei:
        archdsl.loads(src)
    head, line, caret = ei.value.format().splitlines()[:3]
    assert head.startswith("<string>:2:24016: error: unknown layer 'lienar'")
    assert len(line) < 2_020 and line.startswith("    ...") and line.endswith("...")
    assert line[caret.index("^"):].startswith("lienar(3)")


def test_a_loaded_space_joins_the_oldest_gc_generation():
    """Loading makes its objects with the cycle collector paused; at the end they join the
    oldest generation, so the next young collections do not walk the whole new tree."""
    src = "input x: [4]\n" + "".join(f"block b{i}(k = choice(1, 2)) {{ linear(k) -> relu }}\n"
                                     for i in range(200)) + "network { x -> b0 }\n"
    assert gc.isenabled()
    space = archdsl.loads(src)
    assert gc.isenabled()
    young = {id(o) for g in (0, 1) for o in gc.get_objects(generation=g)}
    nodes = [*space.ir.blocks.values(), *(b.body for b in space.ir.blocks.values())]
    assert not any(id(n) in young for n in nodes)


def _exact_depth(text: str) -> int:
    """The deepest bracket nesting, strings and comments left out (check_nesting's rule)."""
    from archdsl.syntax_errors import _brackets

    depth = deepest = 0
    for ch, _, _ in _brackets(text):
        depth = depth + 1 if ch in "([{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='([{}])#"\\\n a', max_size=60), st.integers(0, 6))
@example("[\\[", 1)  # a backslash outside a string is no bracket
def test_quick_nesting_check_never_passes_a_deeper_text(text: str, limit: int) -> None:
    from archdsl.syntax_errors import _deep_at_most

    if _deep_at_most(text, limit):
        assert _exact_depth(text) <= limit
    if '"' not in text:  # where it looks, it is exact
        assert _deep_at_most(text, limit) == (_exact_depth(text) <= limit)
