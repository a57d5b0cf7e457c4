"""Printer round trips: print -> parse gives back the same tree, and printing is a fixpoint.

Expressions are generated as syntax trees (every construct of the expression grammar), printed
with `format_expr` and parsed again; they are also rendered "noisily" (every sub-expression in
parentheses, odd spacing, comments) to check the parser against the generator. Whole modules
are generated from the same pieces and go through `format_module`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from _example_ops import example_ops
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchValueError
from archdsl import ast as A
from archdsl.errors import Span
from archdsl.parser import parse
from archdsl.printer import format_expr, format_module

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.arch"))


@pytest.fixture(scope="module", autouse=True)
def _example_ops():
    """examples/gnn.arch's operations (examples/gnn_ops.py), registered while these tests run."""
    with example_ops():
        yield


SP = Span("<gen>", 1, 1, 1, 1, "")
SETTINGS = settings(max_examples=300, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# comparing trees

_IGNORED = {"span", "func_span", "merge_span", "network_span", "ref", "static_name", "labels",
            "module", "file"}


def shape(x):
    """A syntax tree as nested tuples, without positions or anything semantics fills in."""
    if isinstance(x, A.Lit):
        v = x.value
        return ("Lit", type(v).__name__, repr(v) if isinstance(v, float) else v)
    if isinstance(x, A.Node):
        return (type(x).__name__,) + tuple(
            (f.name, shape(getattr(x, f.name))) for f in dataclasses.fields(x)
            if f.name not in _IGNORED)
    if isinstance(x, (list, tuple)):
        return tuple(shape(i) for i in x)
    return x


def parse_expr(text: str) -> A.Expr:
    m = parse(f"param v = {text}\n")
    assert len(m.params) == 1 and not m.blocks and m.network is None
    return m.params[0].value


# ---------------------------------------------------------------------------------------------
# generating expression trees (as the parser builds them: literals are never negative)

NAMES = ["x", "w", "n0", "relu", "linear", "width", "_p", "a1", "int", "float", "log", "same"]
FUNCS = ["choice", "int", "float", "bool", "linear", "conv2d", "f", "adam", "some", "concat"]
KEYS = ["out", "kernel", "step", "default", "prior", "k", "lr"]
ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\n\t"),
                max_size=8)
NON_ASCII_PLAIN = st.text(st.sampled_from("abc \u00e9\u00fc\u4e2d\u03bb\U0001f600"), max_size=6)


def lit():
    return st.one_of(
        st.integers(0, 10**20).map(lambda v: A.Lit(SP, v)),
        st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lambda v: A.Lit(SP, v)),
        st.booleans().map(lambda v: A.Lit(SP, v)),
        st.one_of(ASCII, NON_ASCII_PLAIN).map(lambda v: A.Lit(SP, v)),
    )


def name():
    return st.sampled_from(NAMES).map(lambda n: A.Name(SP, n))


def alts(child):
    return st.lists(st.tuples(st.none() | st.sampled_from(["a", "b", "conv", "skip_"]), child),
                    min_size=1, max_size=3).map(lambda xs: [A.Alt(SP, lb, e) for lb, e in xs])


def call(child):
    positional = child.map(lambda e: A.Arg(SP, None, e))
    ranged = st.tuples(child, child).map(lambda t: A.Arg(SP, None, A.Range(SP, t[0], t[1])))
    keyword = st.tuples(st.sampled_from(KEYS), child).map(lambda t: A.Arg(SP, t[0], t[1]))
    return st.tuples(st.sampled_from(FUNCS),
                     st.lists(st.one_of(positional, ranged, keyword), max_size=3)).map(
        lambda t: A.Call(SP, t[0], SP, t[1]))


ATOMIC = (A.Lit, A.Name, A.ListLit, A.Call, A.Repeat, A.OneOf, A.Optional, A.Residual,
          A.Parallel, A.Shared)


def extend(child):
    binop = st.tuples(st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), child, child)
    return st.one_of(
        st.lists(child, max_size=3).map(lambda xs: A.ListLit(SP, xs)),
        call(child),
        binop.map(lambda t: A.BinOp(SP, t[0], t[1], t[2])),
        child.map(lambda e: A.Neg(SP, e)),
        st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), child, child)
        .map(lambda t: A.Compare(SP, t[0], t[1], t[2])),
        st.tuples(st.sampled_from(["and", "or"]), child, child)
        .map(lambda t: A.BoolOp(SP, t[0], t[1], t[2])),
        child.map(lambda e: A.Not(SP, e)),
        st.lists(child, min_size=2, max_size=3).map(lambda xs: A.Pipeline(SP, xs)),
        # `shared` applies to an atom; a compound operand is a known printer bug (see below)
        child.filter(lambda e: isinstance(e, ATOMIC)).map(lambda e: A.Shared(SP, e)),
        st.tuples(child, child).map(lambda t: A.Repeat(SP, t[0], t[1])),
        alts(child).map(lambda xs: A.OneOf(SP, xs)),
        child.map(lambda e: A.Optional(SP, e)),
        st.tuples(child, st.none() | child).map(lambda t: A.Residual(SP, t[0], t[1])),
        st.tuples(st.sampled_from(["add", "concat", "multiply"]), alts(child))
        .map(lambda t: A.Parallel(SP, t[0], SP, t[1])),
    )


_EXPRS = st.recursive(st.one_of(lit(), name()), extend, max_leaves=12)
EXPRS = st.deferred(lambda: _EXPRS)  # a short repr (hypothesis warns about a 30 kB one)


# a "noisy" rendering: every compound sub-expression in parentheses, odd spacing and comments
@st.composite
def noisy(draw, e: A.Expr) -> str:
    def gap() -> str:
        return draw(st.sampled_from(["", " ", "  ", "\n", "\t", " # note\n"]))

    def r(x: A.Expr) -> str:
        s = draw(noisy(x))
        if isinstance(x, (A.Lit, A.Name)) and draw(st.booleans()):
            return s
        return f"({gap()}{s}{gap()})"

    def alt(a: A.Alt) -> str:
        return (f"{a.label}{gap()}:{gap()}" if a.label else "") + r(a.expr)

    def arg(a: A.Arg) -> str:
        if isinstance(a.value, A.Range):
            return f"{r(a.value.lo)}{gap()}..{gap()}{r(a.value.hi)}"
        return (f"{a.name}{gap()}={gap()}" if a.name else "") + r(a.value)

    if isinstance(e, (A.Lit, A.Name)):
        return format_expr(e)
    if isinstance(e, A.ListLit):
        trail = "," if e.items and draw(st.booleans()) else ""
        return "[" + f",{gap()}".join(r(i) for i in e.items) + trail + "]"
    if isinstance(e, A.Call):
        return f"{e.func}(" + f",{gap()}".join(arg(a) for a in e.args) + ")"
    if isinstance(e, A.BinOp):
        return f"{r(e.left)}{gap()}{e.op}{gap()}{r(e.right)}"
    if isinstance(e, A.Neg):
        return f"-{gap()}{r(e.operand)}"
    if isinstance(e, A.Compare):
        return f"{r(e.left)}{gap()}{e.op}{gap()}{r(e.right)}"
    if isinstance(e, A.BoolOp):
        return f"{r(e.left)} {e.op} {r(e.right)}"
    if isinstance(e, A.Not):
        return f"not {r(e.operand)}"
    if isinstance(e, A.Pipeline):
        return f"{gap()}->{gap()}".join(r(s) for s in e.stages)
    if isinstance(e, A.Shared):
        return f"shared {r(e.expr)}"
    if isinstance(e, A.Repeat):
        return f"repeat({r(e.count)}){gap()}{{{gap()}{r(e.body)}{gap()}}}"
    if isinstance(e, A.OneOf):
        return "one_of {" + f"{gap()}|{gap()}".join(alt(a) for a in e.alts) + "}"
    if isinstance(e, A.Optional):
        return f"optional{gap()}{{{r(e.body)}}}"
    if isinstance(e, A.Residual):
        s = f"residual {{{r(e.body)}}}"
        return s + (f"{gap()}skip{gap()}{{{r(e.skip)}}}" if e.skip is not None else "")
    if isinstance(e, A.Parallel):
        return f"parallel({e.merge}) {{" + " | ".join(alt(a) for a in e.alts) + "}"
    raise TypeError(type(e).__name__)


# ---------------------------------------------------------------------------------------------
# expression round trips


@SETTINGS
@given(EXPRS)
def test_printed_expression_parses_back_to_the_same_tree(e):
    text = format_expr(e)
    back = parse_expr(text)
    assert shape(back) == shape(e), text
    assert format_expr(back) == text  # printing is a fixpoint


@SETTINGS
@given(st.data())
def test_noisy_expression_text_parses_to_the_tree_and_prints_to_a_fixpoint(data):
    e = data.draw(EXPRS)
    text = data.draw(noisy(e))
    parsed = parse_expr(text)
    assert shape(parsed) == shape(e), text
    printed = format_expr(parsed)
    again = parse_expr(printed)
    assert shape(again) == shape(parsed), printed
    assert format_expr(again) == printed


@pytest.mark.parametrize("text, printed", [
    ("1 + 2 * 3", "1 + 2 * 3"),
    ("(1 + 2) * 3", "(1 + 2) * 3"),
    ("1 - (2 - 3)", "1 - (2 - 3)"),
    ("(1 - 2) - 3", "1 - 2 - 3"),
    ("2 ** 3 ** 2", "2 ** 3 ** 2"),
    ("(2 ** 3) ** 2", "(2 ** 3) ** 2"),
    ("-2 ** 2", "-2 ** 2"),
    ("(-2) ** 2", "(-2) ** 2"),
    ("2 ** -1", "2 ** -1"),
    ("- -1", "--1"),
    ("-(1 + 2)", "-(1 + 2)"),
    ("not a == b", "not a == b"),
    ("(not a) == b", "(not a) == b"),
    ("a or b and c", "a or b and c"),
    ("(a or b) and c", "(a or b) and c"),
    ("not (a and b)", "not (a and b)"),
    ("(1 < 2) == true", "(1 < 2) == true"),
    ("a -> (b -> c)", "a -> (b -> c)"),
    ("int(1 .. 8, step = 2)", "int(1 .. 8, step = 2)"),
    ("float(1e-4 .. 1e-1, log)", "float(0.0001 .. 0.1, log)"),
    ("1_000", "1000"),
    ("1e22", "1.0e+22"),
    ('"a\\"b\\\\c\\nd"', '"a\\"b\\\\c\\nd"'),
    ('"\\t\\r\\u00e9\\u0041\u00fc"', '"\\t\\r\u00e9A\u00fc"'),
    ("shared (a + b)", "shared (a + b)"),
    ("shared (-1)", "shared (-1)"),
    ("one_of { a: relu | b: x -> y }", "one_of { a: relu | b: x -> y }"),
    ("residual { relu } skip { identity }", "residual { relu } skip { identity }"),
    ("parallel(concat) { relu | tanh }", "parallel(concat) { relu | tanh }"),
    ("linear(shared choice(4, 8))", "linear(shared choice(4, 8))"),
])
def test_printed_expressions(text, printed):
    e = parse_expr(text)
    assert format_expr(e) == printed
    assert shape(parse_expr(printed)) == shape(e)


@pytest.mark.parametrize("text", ["shared (a + b)", "shared (a -> b)", "shared (-1)",
                                  "shared (2 ** k)", "shared (not a)", "shared shared a"])
def test_shared_of_a_compound_expression(text):
    e = parse_expr(text)
    assert shape(parse_expr(format_expr(e))) == shape(e), format_expr(e)


def test_negative_literals_print_as_negations():
    """Literals the parser never makes (fix() does): a negative number reads as a negation."""
    sp = SP
    minus_one, two = A.Lit(sp, -1), A.Lit(sp, 2)
    assert format_expr(A.BinOp(sp, "**", minus_one, two)) == "(-1) ** 2"
    assert format_expr(A.BinOp(sp, "**", two, minus_one)) == "2 ** -1"
    assert format_expr(A.Shared(sp, A.Lit(sp, -0.5))) == "shared (-0.5)"
    assert format_expr(A.BinOp(sp, "-", two, A.Lit(sp, -0.0))) == "2 - -0.0"


def test_non_ascii_string_with_an_escape():
    e = parse_expr('"\u00e9\\n"')
    assert e.value == "\u00e9\n"


@pytest.mark.parametrize("text", ["1e999", "1.8e308", "-2_0.0e99999"])
def test_overflowing_float_literal(text):
    """A float literal beyond the largest float (inf) is refused at the literal."""
    with pytest.raises(ArchValueError) as ei:
        parse(f"param v = {text}\n")
    span = ei.value.span
    assert (span.line, span.column) == (1, 11 + text.startswith("-"))
    assert "too large" in ei.value.message


# ---------------------------------------------------------------------------------------------
# module round trips


def test_body_param_after_a_parenthesized_pipeline():
    src = ("input x: [4]\nparam act = choice(relu, tanh)\nblock b {\n    (relu -> act) -> relu\n"
           "    param k = act\n}\nnetwork { x -> b }\n")
    assert archdsl.loads(src).count() == 2
    check_module_round_trip(src)

ALL_CONSTRUCTS = """\
# every construct of the language, at least once
import "lib/common.arch"
from "lib/common.arch" import conv_bn, mlp
input image: [3, 32, 32]
input extra: [4] index(10)
param width = choice(16, 32, default = 32, prior = [0.25, 0.75])
param depth = int(1 .. 4)
param ch = int(16 .. 128, step = 16)
param big = int(1 .. 1024, log)
param rate = float(0.0 .. 0.5)
param lr0 = float(1e-4 .. 1e-1, log)
param q = float(0 .. 1, step = 0.25)
param flag = bool(default = true, prior = 0.3)
param act = choice(relu, gelu, silu)
param neg = -3
param pw = -2 ** 2 + (-2) ** 2 + 2 ** -1 + 2 ** 3 ** 2
param logic = not (width > 16 and depth <= 2) or flag and width != 32
param text = "a \\"quoted\\" \\\\ line\\n"
param flt = 1.5e-7 * 2.0 / 3 // 1 % 7
shared cell = nb201_cell
shared c2 = nb101_cell(64)
op edge = one_of { none: zero | skip_connect: identity | conv: relu_conv_bn(1) }
op wide(c, k = 3) max_depth 4 = conv2d(c, kernel = k) -> relu
block tower(c) max_depth 3 {
    one_of { leaf: relu | deeper: tower(c) -> tower(c) }
}
cell nb201_cell {
    input n0
    n1 = edge(n0)
    n2 = edge(n0) + edge(n1)
    n3 = concat(n1, n2, n0) -> conv2d(16, kernel = 1)
    return n3
}
cell nb101_cell(c) {
    param w = choice(1, 2)
    input n0
    n1 = n0 -> conv2d(c, kernel = 1)
    n2 = some(n0, n1) -> conv2d(c * w, padding = same)
    n3 = choice(n0, n2) -> relu
    n4 = add(n2, n3, project = true)
    require edges <= 9
    forbid w == 2 and c > 64
    return multiply(n3, n4)
}
block stage(n, c = 16, act = relu) {
    param s = choice(1, 2)
    repeat(n) { conv_bn(c, act = act) -> optional { dropout(float(0.1 .. 0.5, step = 0.2)) } }
    -> residual { conv2d(c, stride = s) -> batchnorm } skip { avg_pool(2) -> conv2d(c, kernel = 1) }
    -> parallel(add) { a: identity | b: relu -> conv2d(c, padding = same) }
    -> repeat(2) { linear(shared choice(4, 8)) }
}
network {
    stem = image -> conv2d(width, kernel = 3) -> batchnorm -> act
    body = stem -> stage(depth, width) -> repeat(choice(1, 2)) { cell } -> tower(32)
    head = body -> one_of { gap: global_avg_pool | mlp: flatten -> linear(choice(32, 64)) -> act }
    return concat(head -> linear(10), extra -> embedding(10, 2) -> flatten)
}
train {
    optimizer = adam(lr = float(1e-4 .. 1e-1, log))
    batch = choice(32, 64, 128)
    epochs = 8
    weight_decay = 0.0
    momentum = 0.9
    schedule = "cosine"
    label_smoothing = 0.1
    seed = 0
}
require params <= 200_000
forbid width == 32 and depth == 4
"""

PIPELINE_NETWORK = """\
input x: [4]
param w = choice(8, 16)
block b(k = choice(1, 3, 5)) {
    param s = choice(1, 2)
    forbid k == 5 and s == 2
    conv1d(4, kernel = k, stride = s)
}
network { x -> b -> b(3) -> linear(w) -> optional { relu } }
require w > 8 or true
"""


def check_module_round_trip(src: str) -> None:
    m = parse(src)
    printed = format_module(m)
    again = parse(printed)
    assert shape(again) == shape(m), printed
    assert format_module(again) == printed


@pytest.mark.parametrize("src", [ALL_CONSTRUCTS, PIPELINE_NETWORK], ids=["all", "pipeline"])
def test_module_round_trip(src):
    check_module_round_trip(src)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip(path):
    check_module_round_trip(path.read_text("utf-8"))


@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.parent.name == "examples"],
                         ids=lambda p: p.name)
def test_printed_example_is_the_same_space(path):
    """The printed module is the same search space: same count, decisions and default."""
    space = archdsl.load(path)
    printed = format_module(parse(path.read_text("utf-8")))
    again = archdsl.loads(printed, file=str(path), base_dir=path.parent)
    assert again.count() == space.count()
    assert again.default() == space.default()
    assert [d.name for d in again.decisions()] == [d.name for d in space.decisions()]


def test_printed_all_constructs_is_the_same_space(tmp_path):
    lib = ROOT / "examples" / "lib"
    space = archdsl.loads(ALL_CONSTRUCTS, base_dir=ROOT / "examples")
    again = archdsl.loads(format_module(parse(ALL_CONSTRUCTS)), base_dir=lib.parent)
    assert again.count() == space.count()
    # the default architecture's shapes do not fit (a language test, not a network), so its
    # `require params` cannot be checked: both report the same shape error
    with pytest.raises(archdsl.ShapeError) as first:
        space.default()
    with pytest.raises(archdsl.ShapeError) as second:
        again.default()
    assert first.value.message == second.value.message
    no_params = ALL_CONSTRUCTS.replace("require params <= 200_000", "")
    space = archdsl.loads(no_params, base_dir=ROOT / "examples")
    again = archdsl.loads(format_module(parse(no_params)), base_dir=lib.parent)
    assert again.default() == space.default()


# generated modules, built from the expression generator
BLOCK_NAMES = ["b0", "b1", "tower"]
exprs = EXPRS


@st.composite
def graph_body(draw):
    inputs = draw(st.lists(st.sampled_from(["n0", "n1", "inp"]), min_size=0, max_size=2,
                           unique=True))
    nodes = draw(st.lists(st.tuples(st.sampled_from(["m1", "m2", "m3", "m4"]), exprs),
                          max_size=3, unique_by=lambda t: t[0]))
    return (inputs, nodes, draw(exprs))


@st.composite
def body_text(draw, indent="    "):
    # the graph statements (or the one pipeline) keep their order; params and constraints may
    # stand anywhere among them
    if draw(st.booleans()):
        inputs, nodes, result = draw(graph_body())
        lines = ["input " + ", ".join(inputs)] if inputs else []
        lines += [f"{n} = {format_expr(e)}" for n, e in nodes]
        lines.append(f"return {format_expr(result)}")
    else:
        lines = [format_expr(draw(exprs))]
    # a pipeline that starts with '(', '[' or '-' would continue the expression of a statement
    # before it (newlines carry no meaning), so in the source it comes first; the printer must
    # keep it unambiguous however the params and constraints stand
    ambiguous = not lines[0].startswith(("input ", "return ")) and lines[0][0] in "([-"
    free = [f"param lp{i} = {format_expr(draw(exprs))}" for i in range(draw(st.integers(0, 2)))]
    for _ in range(draw(st.integers(0, 2))):
        free.append(f"{draw(st.sampled_from(['require', 'forbid']))} {format_expr(draw(exprs))}")
    for ln in free:
        lines.insert(draw(st.integers(1 if ambiguous else 0, len(lines))), ln)
    return "\n".join(indent + ln for ln in lines)


@st.composite
def module_text(draw):
    parts = []
    if draw(st.booleans()):
        parts.append('import "lib/common.arch"')
    if draw(st.booleans()):
        parts.append('from "lib.arch" import a, b_2')
    for i in range(draw(st.integers(0, 2))):
        parts.append(f"input in{i}: {format_expr(draw(exprs))}")
    for i in range(draw(st.integers(0, 3))):
        kw = draw(st.sampled_from(["param", "shared"]))
        parts.append(f"{kw} g{i} = {format_expr(draw(exprs))}")
    for i in range(draw(st.integers(0, 2))):
        kw = draw(st.sampled_from(["block", "cell", "op"]))
        params = draw(st.lists(st.tuples(st.sampled_from(["c", "k", "s"]), st.none() | exprs),
                               max_size=3, unique_by=lambda t: t[0]))
        plist = ""
        if params or draw(st.booleans()):
            plist = "(" + ", ".join(p + (f" = {format_expr(d)}" if d else "")
                                    for p, d in params) + ")"
        depth = f" max_depth {draw(st.integers(1, 64))}" if draw(st.booleans()) else ""
        if kw == "op":
            parts.append(f"op o{i}{plist}{depth} = {format_expr(draw(exprs))}")
        else:
            parts.append(f"{kw} {BLOCK_NAMES[i]}{plist}{depth} {{\n{draw(body_text())}\n}}")
    if draw(st.booleans()):
        parts.append(f"network {{\n{draw(body_text())}\n}}")
    if draw(st.booleans()):
        entries = draw(st.lists(st.tuples(st.sampled_from(["lr", "epochs", "batch", "zz"]),
                                          exprs), max_size=3))
        parts.append("train {\n" + "\n".join(f"    {k} = {format_expr(v)}" for k, v in entries)
                     + "\n}")
    for _ in range(draw(st.integers(0, 2))):
        parts.append(f"{draw(st.sampled_from(['require', 'forbid']))} {format_expr(draw(exprs))}")
    order = draw(st.permutations(parts))  # top-level items may come in any order
    return "\n".join(order) + "\n"


@settings(max_examples=200, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(module_text())
def test_generated_modules_round_trip(src):
    check_module_round_trip(src)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=30))
def test_a_comment_stays_one_comment_line(text):
    """format_comment escapes line breaks (a file name with a newline cannot add lines to
    `fix` output): the comment is one line and parses as nothing."""
    from archdsl.printer import format_comment

    c = format_comment(text)
    assert c.startswith("# ") and len(c.splitlines()) == 1 and c.isprintable()
    space = archdsl.loads(f"{c}\ninput x: [4]\nnetwork {{ x -> relu }}  {c}\n")
    assert space.count() == 1
