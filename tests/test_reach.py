"""Decisions that reach nothing (issue 16, item 6): `archdsl check` warns about each, naming the
decision as configurations do, at its span, with exit status 0; no example warns; a search of
such a space says so at its start, and when its searcher gives up it says why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _example_ops import example_ops

import archdsl
from archdsl.cli import main
from archdsl.reach import dropped, reach_warnings
from archdsl.runner import search

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module", autouse=True)
def _example_ops():
    """examples/gnn.arch's operations (examples/gnn_ops.py), registered while these tests run."""
    with example_ops():
        yield


@pytest.fixture(autouse=True)
def _restore_interpreter_limits():
    """main() raises the recursion limit and the int-to-str digit limit for the process."""
    rec, digits = sys.getrecursionlimit(), sys.get_int_max_str_digits()
    yield
    sys.setrecursionlimit(rec)
    sys.set_int_max_str_digits(digits)


def warned(tmp_path: Path, text: str) -> list[tuple[int, int, str]]:
    """(line, column, message) of each warning about `text`."""
    p = tmp_path / "s.arch"
    p.write_text(text)
    out = []
    for w in reach_warnings(archdsl.load(p)):
        assert w.span is not None and w.span.file.endswith("s.arch")
        out.append((w.span.line, w.span.column, w.message))
    return out


def test_an_unread_param(tmp_path: Path) -> None:
    got = warned(tmp_path, "input x: [4]\nparam unused = choice(8, 16)\n"
                           "network { x -> linear(4) }\n")
    assert len(got) == 1
    line, col, msg = got[0]
    assert (line, col) == (2, 16)
    assert msg.startswith("the decision 'unused' reaches nothing: nothing reads param 'unused'")


def test_a_param_read_only_by_an_unread_param(tmp_path: Path) -> None:
    got = warned(tmp_path, "input x: [4]\nparam a = choice(8, 16)\nparam b = int(1 .. a)\n"
                           "network { x -> linear(4) }\n")
    assert [(line, col) for line, col, _ in got] == [(2, 11), (3, 11)]
    assert "'a'" in got[0][2] and "'b'" in got[1][2]


def test_a_default_the_block_never_reads(tmp_path: Path) -> None:
    got = warned(tmp_path, "input x: [4]\nblock b(n, m = choice(1, 2)) { linear(n) }\n"
                           "network { x -> b(4) }\n")
    assert got == [(2, 16, "the decision 'network/b/m' reaches nothing: block 'b' never reads "
                           "its parameter 'm', so every option builds the same architecture")]


def test_an_argument_the_block_never_reads(tmp_path: Path) -> None:
    got = warned(tmp_path, "input x: [4]\nblock b(n, m) { linear(n) }\n"
                           "network { x -> b(4, m = choice(1, 2)) -> b(choice(4, 8), 1) }\n")
    assert len(got) == 1
    line, col, msg = got[0]
    assert (line, col) == (3, 25)
    assert msg.startswith("the decision 'network/b/m' reaches nothing: block 'b' never reads "
                          "its parameter 'm'")


def test_an_unread_node_and_body_param_of_a_cell(tmp_path: Path) -> None:
    got = warned(tmp_path, "input x: [3, 8, 8]\ncell c(w) {\n    input n0\n"
                           "    param k = choice(1, 2)\n"
                           "    n1 = n0 -> conv2d(choice(4, 8))\n"
                           "    n2 = n0 -> conv2d(w)\n    return n2\n}\n"
                           "network { x -> c(4) -> global_avg_pool -> linear(4) }\n")
    assert [(line, col) for line, col, _ in got] == [(4, 15), (5, 10)]
    assert got[0][2].startswith("the decision 'network/c/k' reaches nothing: nothing reads "
                                "param 'k' of cell 'c'")
    assert got[1][2].startswith("the decision 'network/c/n1/conv2d/out' reaches nothing: "
                                "nothing reads node 'n1' of cell 'c'")


def test_a_block_used_twice_names_every_copy(tmp_path: Path) -> None:
    got = warned(tmp_path, "input x: [4]\nblock b(n, m = choice(1, 2)) { linear(n) }\n"
                           "network { x -> b(4) -> b(8) }\n")
    assert len(got) == 1
    assert got[0][2].startswith("the decisions 'network/b/m', 'network/b#2/m' reach nothing")


@pytest.mark.parametrize("text", [
    # read by a constraint, a train entry, a range bound, a repeat count, a block default
    "param a = choice(1, 2)\nnetwork { x -> linear(4) }\nrequire a < 2\n",
    "param a = choice(1, 2)\nnetwork { x -> linear(4) }\ntrain { epochs = a }\n",
    "param a = choice(2, 4)\nnetwork { x -> linear(int(1 .. a)) }\n",
    "param a = choice(1, 2)\nnetwork { x -> repeat(a) { linear(4) } }\n",
    "param a = choice(1, 2)\nblock b(n = a) { linear(n) }\nnetwork { x -> b }\n",
    # a param holding layers, used as a stage; a block's argument passed on and read
    "param act = choice(relu, gelu)\nnetwork { x -> linear(4) -> act }\n",
    "block i(n) { linear(n) }\nblock o(n) { i(n) }\nnetwork { x -> o(choice(4, 8)) }\n",
    # a block's parameter read only by its own constraint
    "block b(n, m = choice(1, 2)) { linear(n)\n require m < 2 }\nnetwork { x -> b(4) }\n",
])
def test_no_warning_where_every_decision_is_read(tmp_path: Path, text: str) -> None:
    p = tmp_path / "s.arch"
    p.write_text("input x: [4]\n" + text)
    space = archdsl.load(p)
    assert dropped(space.ir) == [] and reach_warnings(space) == []


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.arch")), ids=lambda p: p.name)
def test_no_example_warns(capsys, path: Path) -> None:
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "warning:" not in out + err, err


def test_check_prints_each_warning_as_errors_are_and_exits_0(capsys, tmp_path: Path) -> None:
    p = tmp_path / "s.arch"
    p.write_text("input x: [4]\nparam unused = choice(8, 16)\nnetwork { x -> linear(4) }\n")
    assert main(["check", str(p)]) == 0
    out, err = capsys.readouterr()
    assert "ok" in out and "warning:" not in out
    assert err.startswith(f"{p}:2:16: warning: the decision 'unused' reaches nothing"), err
    assert "param unused = choice(8, 16)" in err and "hint: " in err


def test_a_search_of_a_space_whose_only_decision_reaches_nothing_says_so(tmp_path: Path) -> None:
    p = tmp_path / "s.arch"
    p.write_text("input x: [4]\nparam unused = choice(8, 16, 32)\nnetwork { x -> linear(4) }\n")
    said: list[str] = []
    r = search(p, searcher="random", budget=5, study_dir=tmp_path / "study",
               evaluator_object=lambda arch: 1.0, log=said.append)
    with r.study as study:
        assert len(study.trials()) == 1
    assert r.stopped == "exhausted"
    assert said[0].startswith(f"{p}:2:16: warning: the decision 'unused' reaches nothing")
    assert any(s.startswith("the searcher gave up after 1,000 proposals") and
               "decisions that reach nothing" in s for s in said), said
