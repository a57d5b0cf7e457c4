"""Regressions of the caches that make sampling and building fast (the sampling tree's inert
decisions, the random draws, the layer tapes of shared cells and blocks, the layer recipes):
each test failed on the first version of that cache, for the reason in its docstring."""

from __future__ import annotations

import random

import pytest
from test_sample_cache import _draw  # noqa: E402 - the tests folder is on the path

import archdsl
from archdsl import ArchLimitError
from archdsl.interp import PerDecision as _PerDecision

# ------------------------------------------------------------------ 1. value-only parameters
APPLIED_PARAM = """
input x: [8]
block around(f) {
    input a
    return f(a) + a
}
network { x -> around(choice(relu, linear(8) -> optional { relu })) }
"""


def test_a_param_applied_to_nodes_is_not_value_only() -> None:
    """`f(a)` applies param `f` (an `apply` call: the param is in `call.ref`, not among the
    call's fields), so Analysis._reads never sees `f` read and marks it value-only; the choice
    passed to it becomes inert. But which sub-network `f` holds decides whether the
    `optional` decision inside it exists, so the cache shares one subtree between `relu`
    (no further decision) and `linear(8) -> optional {...}` (one more decision): cached samples
    miss `network/around/return/f/optional` (or carry it where it does not exist), and such a
    configuration cannot be materialized. (Sampling each decision on its own; uniform
    sampling binds `f` through a table row here, being structural.) Fix: in `_reads`, for a Call with ref[0] == "apply",
    also read `e.ref[1]` (as `_free_into` does)."""
    space, twin = archdsl.loads(APPLIED_PARAM), archdsl.loads(APPLIED_PARAM)
    a, b = random.Random(1), random.Random(1)
    for _ in range(100):
        assert _draw(space._interp.sample, _PerDecision(a)) == _draw(twin._interp.walk,
                                                                     _PerDecision(b))


def test_cached_inert_list_values_are_copies() -> None:
    """An inert decision's value comes from the INERT node's label list (`node[4][i]`) and is
    put into the configuration as is. The leaf only deep-copies the names whose value was a
    list in the *recorded* walk (node[3]), so when the recorded walk drew the scalar option and
    a later sample draws the list option, the caller gets the cache's own list object: changing
    it changes every later sample (and the Decision's labels). Fix: deep-copy inert values that
    are lists (or decide per value, not per recorded leaf)."""
    space = archdsl.loads("input x: [4]\nnetwork { x -> linear(2) }\n"
                          "train { schedule = choice(none, [10, 20]) }")
    first = space.sample(1)
    assert first == {"train/schedule": "none"}  # the recorded leaf holds a scalar
    got = [space.sample(seed) for seed in range(20)]
    lists = [c["train/schedule"] for c in got if isinstance(c["train/schedule"], list)]
    assert lists
    for v in lists:
        v.append("changed")
    assert all(space.sample(seed)["train/schedule"] in ("none", [10, 20]) for seed in range(20))


# ------------------------------------------------------------------ 2. random draws
class _TopRandom(random.Random):
    """A Random whose random() gives its largest value, 1 - 2**-53 (a legal draw)."""

    def random(self) -> float:
        return 1.0 - 2.0 ** -53


def test_a_zero_prior_option_is_never_drawn() -> None:
    """_weighted_float subtracts the float priors one by one; with priors (0.1, 0.2, 0.7, 0) and
    a draw near the top, rounding leaves r >= 0.7 after the third option, and its fallback
    returns the LAST option, whose prior is 0. (_weighted has the right fallback: the last
    option with a positive weight.) Fix: fall back to the last index with a positive prior."""
    space = archdsl.loads("input x: [4]\n"
                          "network { x -> linear(choice(1, 2, 3, 4, prior = [0.1, 0.2, 0.7, 0])) }")
    config = space.sample(_TopRandom(0), uniform=False)
    assert config["network/linear/out"] != 4


# ------------------------------------------------------------------ 3. tapes of layers
SHARED_PASS_THROUGH = """
input x: [8]
shared m = optional { relu }
network {
    a = x -> linear(8)
    b = x -> linear(8)
    c = some(a -> m, b -> m)
    return c -> linear(3)
}
"""


def test_a_copied_shared_application_keeps_its_input_name() -> None:
    """apply_shared copies later applications from the tape of the first; when the shared
    sub-network returns its input (here `optional` off), _copy_tape returns
    Tensor(xs[i].node, out_name) with the FIRST application's name ("a"), where a walk returns
    the input itself ("b"). `some` labels its options by tensor name, so its options become
    ["a"], ["a"], ["a", "a"] and a sampled configuration ({'m': false, some: ['a', 'b']})
    cannot be materialized at all. Fix: where the tape's output is an input (out_ref < 0),
    return that input tensor as it is (or record that the name is the input's)."""
    space = archdsl.loads(SHARED_PASS_THROUGH)
    for config in ({"m": False, "network/c/some": ["a", "b"]},
                   {"m": False, "network/c/some": ["b"]}):
        space.materialize(config)


BLOCK_PASS_THROUGH = """
input x: [8]
block stack(n) { repeat(n) { relu } }
network {
    a = x -> linear(8)
    b = x -> linear(8)
    c = some(choice(a, b) -> stack(0), x)
    return c -> linear(3)
}
"""


def test_a_block_body_returning_its_input_is_not_taped() -> None:
    """`stack(0)` adds no layer and returns its input, so a tape of it would hold "whichever
    input the first build had" as its output's name (which `some` labels options by). Such a
    body is not taped; and the space that showed it, an option of some(...) that decides, is
    now refused when loaded (its decision would be made whichever option is chosen)."""
    from archdsl.interp.caches import record_tape as _tape
    from archdsl.values import Tensor

    assert _tape([("relu", {}, None, "p")], [[0]], 1, [Tensor(0, "a")], Tensor(0, "a"), 0, 0) \
        is False
    with pytest.raises(archdsl.ArchDSLError, match="cannot make a decision"):
        archdsl.loads(BLOCK_PASS_THROUGH)


_CHAIN = "\n".join(f"block d{i} {{ d{i + 1} }}" for i in range(6)) + "\nblock d6 { relu }"
DEEP = f"""
input x: [8]
{_CHAIN}
shared m = d0
block t max_depth 64 {{ one_of {{ stop: m | more: t }} }}
network {{ x -> t -> linear(3) }}
"""


def _nested(depth: int) -> dict:
    config, path = {}, "network/t"
    for _ in range(depth):
        config[path] = "more"
        path += "[1]/t"
    config[path] = "stop"
    return config


def test_a_copied_block_body_still_counts_its_nesting() -> None:
    """A shared sub-network is walked in Scope(name) wherever it is applied, so the block tape
    key (which has the scope path but not Interp.nesting) is the same at any depth. Copying the
    tape of `d0` skips the applications of d1..d6 and their MAX_NESTING check: the deep
    configuration raises ArchLimitError on a fresh space but builds once a shallow one was
    materialized before (the result depends on history). Fix: add the nesting (or the depth
    left before MAX_NESTING, when the body nests) to the key, or store the body's own nesting
    depth in the tape and check it when copying."""
    space = archdsl.loads(DEEP)
    with pytest.raises(ArchLimitError):
        space.materialize(_nested(60))
    space.materialize(_nested(0))
    with pytest.raises(ArchLimitError):
        space.materialize(_nested(60))


NEG_ZERO = """
input x: [8]
block b(r) { dropout(r) }
block outer(s) { b(0.0 * s) }
network { x -> outer(choice(1, -1)) -> linear(3) }
"""


def test_a_block_tape_tells_negative_zero_from_zero() -> None:
    """_memo_key(0.0) == _memo_key(-0.0) (("float", 0.0) and ("float", -0.0) are equal and hash
    alike), so `b(-0.0)` copies the tape made for `b(0.0)`: the dropout's p is 0.0 where a
    walk gives -0.0, and the architecture hash of the same configuration depends on what was
    materialized before. (Minor; fix: key floats by (type, value, math.copysign(1, value)) or
    by repr.)"""
    config = {"network/outer/s": -1}
    fresh = archdsl.loads(NEG_ZERO).materialize(config).hash
    space = archdsl.loads(NEG_ZERO)
    space.materialize({"network/outer/s": 1})
    assert space.materialize(config).hash == fresh


# ------------------------------------------------------------------ 4. pytorch layer recipes
def test_recipes_honour_a_patched_register_parameter() -> None:
    """Tools such as accelerate's `init_empty_weights()` (include_buffers=False, the default)
    patch nn.Module.register_parameter, which real constructors call through __setattr__, to
    put parameters on the meta device. `_copies_allowed()` only looks at PyTorch's official
    hooks and modes, so a layer made from a recipe fills `_parameters` directly: the patch is
    bypassed and the model gets real, initialised CPU weights (here: the patch is never
    called for recipe-made layers). Fix: also require nn.Module.register_parameter /
    register_buffer / __setattr__ (and the layer classes' __init__) to be the ones the recipe
    was checked with."""
    torch = pytest.importorskip("torch")
    from archdsl.backends import pytorch as pt

    space = archdsl.loads("input x: [3, 8, 8]\n"
                          "network { x -> conv2d(4) -> batchnorm -> flatten -> linear(5) }")
    arch = space.materialize({})
    pt.build(arch)
    pt.build(arch)  # every layer has a recipe now
    real = torch.nn.Module.register_parameter
    seen: list[str] = []

    def register_parameter(module, name, param):  # as accelerate's init_on_device does
        real(module, name, param)
        seen.append(name)

    torch.nn.Module.register_parameter = register_parameter
    try:
        model = pt.build(arch)
    finally:
        torch.nn.Module.register_parameter = real
    assert len(seen) == len(list(model.parameters())) > 0
