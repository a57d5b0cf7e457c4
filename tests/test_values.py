"""Run-time values: the options of some(...) (values.Subsets), listed lazily."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchLimitError
from archdsl.values import Subsets


@given(st.integers(1, 10), st.data())
def test_subsets_are_the_non_empty_subsets_in_order(n: int, data: st.DataObject) -> None:
    names = [f"n{i}" for i in range(n)]
    listed = [tuple(names[i] for i in range(n) if s >> i & 1) for s in range(1, 2 ** n)]
    subsets = Subsets(names)
    assert len(subsets) == len(listed)
    i = data.draw(st.integers(0, len(listed) - 1))
    assert subsets[i] == listed[i] and subsets[i - len(listed)] == listed[i]
    assert subsets.index(listed[i]) == i == Subsets(names, lists=True).index(list(listed[i]))
    assert Subsets(names, lists=True)[i] == list(listed[i])
    assert list(subsets) == listed
    for bad in ([], ["n0", "n0"], list(reversed(names)) if n > 1 else ["zz"], ["zz"]):
        with pytest.raises(ValueError):
            subsets.index(bad)


def _some_space(n: int) -> str:
    inputs = "".join(f"input x{i}: [4]\n" for i in range(n))
    nodes = ", ".join(f"x{i}" for i in range(n))
    return f"{inputs}network {{\n    y = some({nodes}) -> linear(4)\n    return y\n}}\n"


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2 ** 20 - 2))
def test_some_of_twenty_nodes_is_not_listed(i: int) -> None:
    # some(...) listed its 2**n - 1 subsets in every walk: 20 nodes took 7 s, 1,000 hung
    space = archdsl.loads(_some_space(20))
    assert space.count() == 2 ** 20 - 1
    d = Subsets([f"x{k}" for k in range(20)], lists=True)[i]
    cfg = {"network/y/some": d}
    assert space.validate(cfg) == cfg
    assert space.sample(i)["network/y/some"]


@pytest.mark.parametrize("what", ["count", "sample"])
def test_some_of_too_many_nodes_is_a_limit_error(what: str) -> None:
    space = archdsl.loads(_some_space(24))
    with pytest.raises(ArchLimitError, match=r"some\(\.\.\.\) of 24 nodes") as e:
        space.count() if what == "count" else space.sample(0)
    assert e.value.span is not None and e.value.span.line == 26


_LABEL = st.one_of(st.text(max_size=3), st.integers(-3, 3), st.booleans(),
                   st.floats(-3, 3, allow_nan=False), st.none())


def _scan(labels: list, j: object) -> int | None:
    """The first label equal to j with j's type (numbers of any kind but bool compare)."""
    for i, lab in enumerate(labels):
        if lab == j and type(lab) is type(j) or (
                isinstance(lab, (int, float)) and isinstance(j, (int, float))
                and not isinstance(lab, bool) and not isinstance(j, bool) and lab == j):
            return i
    return None


@given(st.lists(_LABEL, min_size=1, max_size=8), _LABEL)
def test_index_of_json_finds_the_first_matching_option(labels: list, j: object) -> None:
    from archdsl.errors import ConfigError, Span
    from archdsl.values import Decision

    d = Decision("d", "choice", Span("f", 1, 1, 1, 2), options=list(labels)).renamed("e")
    want = _scan(labels, j)
    if want is None:
        with pytest.raises(ConfigError):
            d.index_of_json(j)
    else:
        assert d.index_of_json(j) == want


def test_renamed_decisions_share_labels_built_once() -> None:
    """A one_of's decision is renamed on every walk: its labels (and string index) are built
    once, not per walk (a one_of of 60,000 alternatives took 27 ms a sample)."""
    from archdsl.errors import Span
    from archdsl.values import Decision

    d = Decision("", "one_of", Span("f", 1, 1, 1, 2), options=["a", "b", "a"])
    copies = [d.renamed(f"x{i}") for i in range(3)]
    assert copies[0].index_of_json("a") == 0 and copies[1].index_of_json("b") == 1
    assert all(c.labels() is d.labels() for c in copies)
