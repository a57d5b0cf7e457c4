"""Labels on `choice` options (`choice(small: 8, big: 32)`): parsed, printed back, checked (all or
none, each once, on `choice` only), and recorded in configurations by every path that makes or
reads one (sample, enumerate, count, default, validate, mutate, fix, diagrams), while the
networks are those of the unlabelled choice."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchDSLError, ConfigError
from archdsl import ast as A
from archdsl.errors import ArchNameError, ArchSyntaxError
from archdsl.parser import parse
from archdsl.printer import format_expr, format_module

LABELLED = """
input x: [16]
param width = choice(small: 8, big: 32, default = 32)
network {
    x -> linear(width)
      -> choice(plain: relu, smooth: gelu)
      -> choice(short: identity, deep: linear(32) -> relu)
      -> linear(4)
}
train { lr = choice(low: 0.001, high: 0.01) }
"""
PLAIN = re.sub(r"\b(small|big|plain|smooth|short|deep|low|high): ", "", LABELLED)
# label -> the unlabelled configuration's value, per decision
VALUES = {"width": {"small": 8, "big": 32},
          "network/choice/choice": {"plain": "relu", "smooth": "gelu"},
          "network/choice#2/choice": {"short": "identity", "deep": "linear(32) -> relu"},
          "train/lr": {"low": 0.001, "high": 0.01}}


def unlabel(config: dict) -> dict:
    return {k: VALUES[k][v] for k, v in config.items()}


@pytest.fixture(scope="module")
def spaces() -> tuple[archdsl.Space, archdsl.Space]:
    return archdsl.loads(LABELLED), archdsl.loads(PLAIN)


# ---- syntax ------------------------------------------------------------------------------------
def test_parse_records_each_options_label():
    m = parse("network { linear(choice(small: 8, big: 32, default = 8)) }")
    call = next(e for e in _calls(m) if e.func == "choice")
    assert [(a.label, a.name) for a in call.args] == [("small", None), ("big", None),
                                                       (None, "default")]
    assert [format_expr(x) for x in call.positional] == ["8", "32"]


def _calls(m: A.Module):
    stack: list = [m]
    while stack:
        x = stack.pop()
        if isinstance(x, A.Call):
            yield x
        if isinstance(x, A.Node):
            stack.extend(getattr(x, f) for f in x.__dataclass_fields__)
        elif isinstance(x, (list, tuple)):
            stack.extend(x)


def test_module_prints_back_with_its_labels():
    text = format_module(parse(LABELLED))
    assert "choice(small: 8, big: 32, default = 32)" in text
    assert "choice(short: identity, deep: linear(32) -> relu)" in text
    assert format_module(parse(text)) == text


_OPTION = st.one_of(st.integers(-5, 50).map(str), st.sampled_from(["relu", "gelu", "x"]),
                    st.sampled_from(["linear(8)", "conv2d(8, 3) -> relu", "[1, 2]", "1.5"]))
_LABEL = st.sampled_from(["a", "b", "small", "big", "skip_", "x1"])


@settings(max_examples=200, deadline=2000, derandomize=True)
@given(st.lists(st.tuples(st.one_of(st.none(), _LABEL), _OPTION), min_size=1, max_size=4),
       st.booleans())
def test_printed_choice_parses_back_to_the_same_labels(options, default):
    text = "choice(" + ", ".join(f"{lb}: {o}" if lb else o for lb, o in options) \
        + (", default = 1" if default else "") + ")"
    e = parse(f"network {{ x -> linear({text}) }}")
    call = next(c for c in _calls(e) if c.func == "choice")
    printed = format_expr(call)
    again = next(c for c in _calls(parse(f"network {{ x -> linear({printed}) }}"))
                 if c.func == "choice")
    assert [a.label for a in again.args] == [a.label for a in call.args] \
        == [lb for lb, _ in options] + ([None] if default else [])
    assert format_expr(again) == printed


# ---- checks, each with its span --------------------------------------------------------------
@pytest.mark.parametrize("text, error, message, at", [
    ("network { x -> linear(choice(a: 8, 16)) }", ArchSyntaxError,
     "label every option of this choice, or none", "16)"),
    ("network { x -> linear(choice(8, b: 16)) }", ArchSyntaxError,
     "label every option of this choice, or none", "8, b"),
    ("network { x -> linear(choice(a: 8, a: 16)) }", ArchNameError,
     "two options are both labelled 'a'", "a: 16"),
    ("network { x -> linear(int(1 .. 3, a: 2)) }", ArchSyntaxError,
     "only choice(...) options take labels, not int(...)'s", "a: 2"),
    ("network { x -> linear(out: 8) }", ArchSyntaxError,
     "only choice(...) options take labels, not linear(...)'s", "out: 8"),
    ("cell c { input a, b\n n = some(p: a, q: b)\n return n }\nnetwork { x -> c }",
     ArchSyntaxError, "only choice(...) options take labels, not some(...)'s", "p: a"),
])
def test_label_errors_name_their_option(text, error, message, at):
    src = "input x: [16]\n" + text
    with pytest.raises(error) as ei:
        archdsl.loads(src)
    err = ei.value
    assert err.message == message
    before = src[:src.index(at)]
    where = (before.count("\n") + 1, len(before) - before.rfind("\n"))
    assert err.span is not None and (err.span.line, err.span.column) == where, err.format()


def test_duplicate_values_stay_an_error_with_labels():
    with pytest.raises(ArchDSLError, match="appears twice"):
        archdsl.loads("input x: [4]\nnetwork { x -> linear(choice(a: 8, b: 8)) }").count()


# ---- configurations ---------------------------------------------------------------------------
def test_samples_record_labels_and_draw_as_unlabelled(spaces):
    lab, plain = spaces
    for seed in range(8):
        for uniform in (True, False):
            got = lab.sample(seed, uniform=uniform)
            assert unlabel(got) == plain.sample(seed, uniform=uniform)
            assert set(got["width"] for _ in [0]) <= {"small", "big"}


def test_count_enumerate_default_and_hashes_match_unlabelled(spaces):
    lab, plain = spaces
    assert lab.count() == plain.count() == 16
    configs = list(lab.enumerate())
    assert [unlabel(c) for c in configs] == list(plain.enumerate())
    assert lab.default() == {"width": "big", "network/choice/choice": "plain",
                             "network/choice#2/choice": "short", "train/lr": "low"}
    for c in configs:
        a, b = lab.materialize(c), plain.materialize(unlabel(c))
        assert a.hash == b.hash and a.config == c and a.train == b.train
        assert lab.fix(c) == plain.fix(unlabel(c))


def test_validate_and_mutate_keep_labels(spaces):
    lab, _ = spaces
    c = {"width": "small", "network/choice/choice": "smooth",
         "network/choice#2/choice": "deep", "train/lr": "high"}
    assert lab.validate(c) == c
    rng = random.Random(0)
    for _ in range(20):
        m = lab.mutate(c, rng)
        assert lab.validate(m) == m
        assert all(m[k] in VALUES[k] for k in m)
    arch = lab.materialize(c)
    assert arch.train["lr"] == 0.01  # the train value is the option's value, not its label


def test_a_configuration_giving_the_value_is_refused_with_the_label(spaces):
    lab, _ = spaces
    c = {"width": 8, "network/choice/choice": "plain", "network/choice#2/choice": "deep",
         "train/lr": "low"}
    with pytest.raises(ConfigError) as ei:
        lab.validate(c)
    assert ei.value.message == "'width': 8 is not one of {\"small\", \"big\"}"
    assert ei.value.hint == 'a configuration gives the option\'s label: "small"'
    assert ei.value.span.line == 3
    with pytest.raises(ConfigError, match="is not one of"):
        lab.validate({**c, "width": "medium"})


def test_describe_lists_labels_and_values(spaces):
    lab, _ = spaces
    d = next(d for d in lab.decisions() if d.name == "width").describe()
    assert d["options"] == ["small", "big"] and d["values"] == [8, 32]
    assert d["default"] == "big"


def test_labelled_input_choice_and_reused_shared_decision():
    space = archdsl.loads("""
        input x: [8]
        param w = choice(narrow: 4, wide: 8)
        cell c {
            input n0
            n1 = n0 -> linear(8) -> relu
            n2 = choice(direct: n0, hidden: n1) -> linear(w)
            return n2
        }
        network { x -> c -> repeat(2) { linear(shared choice(one: 3, two: 6)) } -> linear(w) }
    """)
    configs = list(space.enumerate())
    assert {c["network/c/n2/choice"] for c in configs} == {"direct", "hidden"}
    assert {c["w"] for c in configs} == {"narrow", "wide"}
    assert {c["network/repeat[*]/linear/out"] for c in configs} == {"one", "two"}
    assert space.count() == len(configs) == 8
    config = {"w": "wide", "network/c/n2/choice": "hidden", "network/repeat[*]/linear/out": "two"}
    arch = space.materialize(config)
    assert arch.config == config
    assert [d["args"]["out"] for _, d in sorted(arch.graph.nodes(data=True))
            if d["op"] == "linear"] == [8, 8, 6, 6, 8]


def test_cli_sample_and_fix_use_labels(tmp_path, capsys):
    from archdsl.cli import main

    (tmp_path / "s.arch").write_text(LABELLED)
    assert main(["sample", str(tmp_path / "s.arch"), "-n", "1", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r'^width = "(small|big)"$', out, re.M), out
    (tmp_path / "c.json").write_text('{"width": "small", "network/choice/choice": "smooth", '
                                     '"network/choice#2/choice": "deep", "train/lr": "high"}')
    assert main(["fix", str(tmp_path / "s.arch"), "--config", str(tmp_path / "c.json")]) == 0
    fixed = capsys.readouterr().out
    assert "linear(x, out = 8" in fixed and "gelu(" in fixed and "lr = 0.01" in fixed


def test_diagram_legend_and_lanes_show_labels(spaces):
    from backends.diagram_space import space_dot

    lab, _ = spaces
    c = {"width": "small", "network/choice/choice": "smooth",
         "network/choice#2/choice": "deep", "train/lr": "high"}
    dot = space_dot(lab, c)
    assert "width \u2208 {small: 8, big: 32}" in dot and "(chosen: small)" in dot
    lanes = {m.group(2): m.group(1) for m in re.finditer(
        r'graph \[color="(#[0-9a-f]+)".*label="(\w+)"', dot)}
    # each option's lane is named by its label; the chosen ones are drawn, the others faded
    assert lanes == {"plain": "#c0c0c0", "smooth": "#8a8a8a", "short": "#c0c0c0",
                     "deep": "#8a8a8a"}, lanes


def test_smbo_features_keep_a_labelled_numeric_choice_ordinal() -> None:
    from archdsl.search.smbo_features import encode

    plain = archdsl.loads("input x: [4]\nnetwork { x -> linear(choice(8, 16, 32)) -> linear(2) }\n")
    named = archdsl.loads("input x: [4]\nnetwork { x -> linear(choice(small: 8, mid: 16, "
                          "big: 32)) -> linear(2) }\n")
    for space in (plain, named):
        d = space.decisions()[0]
        config = {d.name: d.labels()[1]}
        f = encode(space, config, space.materialize(config))
        assert f[d.name] == 0.5
