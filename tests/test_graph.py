"""The architecture graph's .arch text (`fix`): every value comes back as the same value."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.layers import ArgSpec, register_layer

register_layer("str_op_for_fix", (ArgSpec("mode", "any"),))

_WORDS = st.sampled_from(["true", "false", "none", "same", "valid", "depthwise", "x", "adam"])


def _text(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=60, deadline=None)
@given(st.one_of(_WORDS, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                                          blacklist_characters="\x7f"),
                                 max_size=12)), st.booleans())
def test_a_string_survives_fix(s: str, symbol: bool) -> None:
    # "true" or "none" as a string came back as a boolean / none (written bare)
    value = s if symbol and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) \
        and s not in ("true", "false", "none") else _text(s)
    src = (f"input x: [4]\nnetwork {{ x -> str_op_for_fix(mode = {value}) -> relu }}\n"
           f"train {{ lr = {value}  optimizer = adam(lr = 0.1) }}\n")
    space = archdsl.loads(src)
    arch = space.materialize(space.default())
    again = archdsl.loads(space.fix(space.default()))
    arch2 = again.materialize(again.default())
    ops = [d for _, d in arch.graph.nodes(data=True) if d["op"] == "str_op_for_fix"]
    ops2 = [d for _, d in arch2.graph.nodes(data=True) if d["op"] == "str_op_for_fix"]
    assert [d["args"] for d in ops] == [d["args"] for d in ops2] == [{"mode": s}]
    assert arch2.train == arch.train
    assert type(arch2.train["lr"]) is type(arch.train["lr"])


def test_symbols_stay_symbols_in_fix() -> None:
    src = ("input x: [3, 8, 8]\nnetwork { x -> conv2d(4, padding = same, groups = depthwise) "
           "-> max_pool(2, stride = none) -> global_avg_pool -> linear(3) }\n")
    space = archdsl.loads(src)
    text = space.fix(space.default())
    assert "padding = same" in text and "groups = depthwise" in text and "stride = none" in text
    again = archdsl.loads(text)
    assert again.materialize(again.default()).hash == space.materialize(space.default()).hash


def test_the_hash_tells_several_inputs_apart() -> None:
    # which inputs an architecture reads changes what it computes: the hash took inputs by
    # shape only, so some(x0, x1) and some(x2, x3) of same-shaped inputs hashed equal
    inputs = "".join(f"input x{i}: [4]\n" for i in range(4))
    space = archdsl.loads(inputs + "network {\n    y = some(x0, x1, x2, x3) -> linear(4)\n"
                          "    return y\n}\n")
    hashes = {space.materialize({"network/y/some": s}).hash
              for s in (["x0", "x1"], ["x2", "x3"], ["x0", "x2"], ["x1", "x3"])}
    assert len(hashes) == 4
    # the same graph with its nodes made in another order still hashes equal
    a = archdsl.loads(inputs + "network {\n    p = x0 -> relu\n    q = x1 -> tanh\n"
                      "    return p + q\n}\n")
    b = archdsl.loads(inputs + "network {\n    q = x1 -> tanh\n    p = x0 -> relu\n"
                      "    return q + p\n}\n")
    assert a.materialize({}).hash == b.materialize({}).hash
