"""Counting, enumeration, sampling and configurations, checked against each other."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import archdsl
from archdsl import ConfigError, ConstraintError
from archdsl.space import _walk_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SMALL_SPACES = {
    "values": """
        input x: [4]
        param width = choice(8, 16, 32)
        network { x -> linear(width) -> relu -> linear(choice(2, 3)) }
    """,
    "one_of_unequal": """
        input x: [4]
        network { x -> one_of { relu | linear(choice(1, 2, 3)) -> optional { dropout(choice(0.1, 0.2)) } } }
    """,
    "variable_repeat": """
        input x: [4]
        network { x -> repeat(choice(0, 1, 2, 3)) { linear(choice(4, 8)) -> optional { relu } } }
    """,
    "nested_repeat": """
        input x: [4]
        network { x -> repeat(int(1 .. 2)) { repeat(choice(1, 2)) { linear(choice(4, 8)) } } }
    """,
    "shared_inline": """
        input x: [4]
        network { x -> repeat(3) { linear(shared choice(4, 8)) -> linear(choice(1, 2)) } }
    """,
    "block_args_structural": """
        input x: [4]
        block stage(n, w) { repeat(n) { linear(w) -> optional { relu } } }
        network { x -> stage(choice(1, 2, 3), choice(4, 8)) -> stage(int(0 .. 2), 16) }
    """,
    "local_params_and_forbid": """
        input x: [4]
        block b(k = choice(1, 3, 5)) {
            param s = choice(1, 2)
            forbid k == 5 and s == 2
            conv1d(4, kernel = k, stride = s)
        }
        network { x -> b -> b(3) }
    """,
    "global_forbid": """
        input x: [4]
        param a = choice(1, 2, 3)
        param b = choice(1, 2, 3)
        forbid a == b
        network { x -> repeat(a) { linear(choice(4, 8)) } -> linear(b) }
    """,
    "recursive": """
        input x: [4]
        block t max_depth 3 { one_of { relu | tanh | t -> t } }
        network { x -> t }
    """,
    "graph_cell_shared": """
        input x: [4, 8, 8]
        op edge = one_of { zero | identity | relu_conv_bn(1) }
        cell c {
            input n0
            n1 = edge(n0)
            n2 = edge(n0) + edge(n1)
            return n2
        }
        shared cell = c
        network { x -> cell -> cell }
    """,
    "input_choices_and_some": """
        input x: [4, 8, 8]
        cell c {
            input n0
            n1 = n0 -> relu
            n2 = conv2d(choice(n0, n1), 4)
            n3 = some(n0, n1, n2) -> one_of { relu | identity }
            require edges <= 4
            return n3
        }
        network { x -> c }
    """,
    "parallel_residual": """
        input x: [4]
        network {
            x -> parallel(concat) { linear(choice(2, 4)) | optional { relu } -> linear(2) }
              -> residual { linear(choice(6, 8)) } skip { optional { linear(choice(6, 8)) } }
        }
    """,
    "train": """
        input x: [4]
        network { x -> linear(2) }
        train {
            optimizer = one_opt(lr = choice(0.1, 0.01))
            batch = choice(16, 32, 64)
            epochs = 3
        }
    """,
    "net_valued_param": """
        input x: [4]
        param act = choice(relu, tanh, linear(choice(2, 3)))
        network { x -> act -> act }
    """,
    "multi_input_cell": """
        input x: [4, 8, 8]
        cell pair(c) {
            input a, b
            n = conv2d(choice(a, b), c) + some(a, b)
            return concat(n, b)
        }
        network {
            s = x -> conv2d(4)
            p = pair(s, s, 4)
            q = pair(s, p, choice(4, 8))
            return q -> global_avg_pool
        }
    """,
    "shared_cell_called_on_nodes": """
        input x: [4, 8, 8]
        op edge = one_of { identity | relu_conv_bn(1) }
        cell two {
            input a, b
            n = edge(choice(a, b)) + some(a, b) -> relu
            return n
        }
        cell one {
            input a
            m = a -> relu
            n = edge(a) + choice(a, m)
            return n
        }
        shared c2 = two
        shared c1 = one
        network {
            s = x -> conv2d(4)
            p = c2(s, s)
            q = c2(p, choice(s, p))
            r = q -> c1
            return c1(r) + c1(choice(p, q))
        }
    """,
    "higher_order_blocks": """
        input x: [4]
        block twice(body) { body -> body }
        network {
            x -> twice(twice(relu)) -> twice(twice(optional { linear(choice(2, 3)) }))
              -> twice(relu) -> twice(twice(relu))
        }
    """,
    "shared_at_top_level": """
        input x: [4]
        shared s = linear(shared choice(8, 16)) -> relu
        param p = one_of { relu | linear(shared choice(2, 3)) }
        network { x -> s -> p -> s }
        train { batch = shared choice(32, 64) }
    """,
    "sub_network_params_applied": """
        input x: [4]
        param act = choice(relu, tanh, linear(choice(2, 3)))
        block wrap(f, g = relu) {
            input a
            n = f(a) -> g
            return f(n) + g(a)
        }
        network {
            y = act(x)
            return wrap(y, one_of { relu | linear(choice(4, 5)) }, g = act)
        }
    """,
}


def _load(src: str) -> archdsl.Space:
    return archdsl.loads(src.replace("one_opt", "adam"))


@pytest.mark.parametrize("name", sorted(SMALL_SPACES))
def test_count_matches_enumeration(name: str) -> None:
    space = _load(SMALL_SPACES[name])
    configs = list(space.enumerate())
    keys = {json.dumps(c, sort_keys=True) for c in configs}
    assert len(keys) == len(configs), "enumeration repeated a configuration"
    assert space.count() == len(configs)
    for c in configs[:50]:
        assert space.validate(c) == c


@pytest.mark.parametrize("name", sorted(SMALL_SPACES))
def test_samples_are_valid_configurations(name: str) -> None:
    space = _load(SMALL_SPACES[name])
    every = {json.dumps(c, sort_keys=True) for c in space.enumerate()}
    for uniform in (True, False):
        for cfg in space.samples(30, seed=3, uniform=uniform):
            assert json.dumps(cfg, sort_keys=True) in every
            arch = space.materialize(cfg)
            assert arch.graph.number_of_nodes() >= 2


def test_shared_in_a_top_level_value_is_one_decision() -> None:
    # top-level values are decided once: `shared` there changes nothing (it raised KeyError)
    space = _load(SMALL_SPACES["shared_at_top_level"])
    assert space.count() == 2 * (1 + 2) * 2
    plain = _load(SMALL_SPACES["shared_at_top_level"].replace("shared choice", "choice"))
    assert [sorted(c) for c in space.enumerate()] == [sorted(c) for c in plain.enumerate()]
    arch = space.materialize({"s/linear/out": 16, "network/p": "linear(shared choice(2, 3))",
                              "network/p[1]/linear/out": 3, "train/batch": 64})
    assert [a["args"]["out"] for _, a in arch.graph.nodes(data=True)
            if a["op"] == "linear"] == [16, 3, 16]


def test_a_sub_network_that_decides_nothing_is_walked_once() -> None:
    # a block applying its sub-network parameter may decide; applied 2**16 times to `relu` it
    # decides nothing, which the walk learns once (each sample walked 131,071 applications)
    src = "input x: [4]\nblock twice(body) { body -> body }\nnetwork { x -> " + \
        "twice(" * 16 + "relu" + ")" * 16 + " }\n"
    space = archdsl.loads(src)
    it = space._interp
    assert space.default() == {} and space.sample(0) == {}
    assert len(it._silent) <= 4 * 17  # a few sub-networks per level, each once
    assert _load(SMALL_SPACES["higher_order_blocks"]).count() == (1 + 2) ** 4


def test_hand_counts() -> None:
    # 3 widths x 2 heads
    assert _load(SMALL_SPACES["values"]).count() == 6
    # relu, or 3 widths x (no dropout, or 2 rates)
    assert _load(SMALL_SPACES["one_of_unequal"]).count() == 1 + 3 * 3
    # sum over n of (2 widths x 2 optional)^n
    assert _load(SMALL_SPACES["variable_repeat"]).count() == 1 + 4 + 16 + 64
    # shared width (2) x 2^3 heads
    assert _load(SMALL_SPACES["shared_inline"]).count() == 2 * 8
    # (3,1,3): 9 combinations - forbidden (5,2) = 5 for the first, 2 for b(3)
    assert _load(SMALL_SPACES["local_params_and_forbid"]).count() == 5 * 2
    # a != b: for each a, 2 choices of b; a copies of 2 widths
    assert _load(SMALL_SPACES["global_forbid"]).count() == 2 * (2 + 4 + 8)
    # f(3) = 2, f(2) = 2 + 2*2, f(1) = 2 + 6*6
    assert _load(SMALL_SPACES["recursive"]).count() == 38
    # one shared cell: 3 edges with 3 ops each
    assert _load(SMALL_SPACES["graph_cell_shared"]).count() == 27
    # per pair: input choice 2 x subset 3; the second pair also picks c
    assert _load(SMALL_SPACES["multi_input_cell"]).count() == 6 * 6 * 2
    # c2: (2 inputs x 2 ops) x 3 subsets, c1: 2 ops x 2 inputs, made once; two input choices
    # among the uses' arguments
    assert _load(SMALL_SPACES["shared_cell_called_on_nodes"]).count() == 12 * 4 * 2 * 2
    # act: relu or tanh (2), or linear with a width at each of its 3 uses (2^3); f: 3 options
    # at each of its 2 uses
    assert _load(SMALL_SPACES["sub_network_params_applied"]).count() == (2 + 2**3) * 3**2


def test_count_huge_space_exactly() -> None:
    src = """
        input x: [8]
        network { x -> repeat(int(1 .. 60)) { linear(int(1 .. 1000)) -> optional { relu } } }
    """
    n = archdsl.loads(src).count()
    assert n == sum(2000**k for k in range(1, 61))
    assert n > 10**100


def test_uniform_sampling_is_uniform_over_architectures() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    space = _load(SMALL_SPACES["one_of_unequal"])
    n_arch = space.count()
    draws = 5000
    seen = Counter(json.dumps(c, sort_keys=True) for c in space.samples(draws, seed=11))
    assert len(seen) == n_arch
    observed = [seen[k] for k in sorted(seen)]
    _, p = scipy_stats.chisquare(observed, [draws / n_arch] * n_arch)
    assert p > 0.001, observed
    # per-decision sampling is not uniform here: relu alone gets half of the samples
    per = Counter(c["network/one_of"] for c in space.samples(2000, seed=11, uniform=False))
    assert per["relu"] > 800


def test_uniform_sampling_with_constraints_and_recursion() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for name in ("global_forbid", "recursive", "input_choices_and_some"):
        space = _load(SMALL_SPACES[name])
        n_arch = space.count()
        draws = 40 * n_arch
        seen = Counter(json.dumps(c, sort_keys=True) for c in space.samples(draws, seed=5))
        assert len(seen) == n_arch, name
        _, p = scipy_stats.chisquare([seen[k] for k in sorted(seen)], [draws / n_arch] * n_arch)
        assert p > 0.001, name


def test_same_seed_same_samples_and_different_seed_differs() -> None:
    space = _load(SMALL_SPACES["variable_repeat"])
    a = list(space.samples(20, seed=1))
    assert a == list(space.samples(20, seed=1))
    assert a != list(space.samples(20, seed=2))


def test_sample_takes_a_seed_keyword_as_the_readme_shows() -> None:
    space = _load(SMALL_SPACES["variable_repeat"])
    for seed in (0, 3, 11):
        first = next(space.samples(1, seed=seed))
        assert space.sample(seed=seed) == first == space.sample(seed)
        assert space.sample(seed=seed, uniform=False) == next(space.samples(1, seed, False))
    with pytest.raises(TypeError, match="not both"):
        space.sample(1, seed=1)


def test_samples_identical_across_processes_and_hash_seeds(tmp_path) -> None:
    path = tmp_path / "s.arch"
    path.write_text(SMALL_SPACES["block_args_structural"] + SMALL_SPACES["train"].split(
        "network")[1].split("}", 1)[1].replace("one_opt", "adam"))
    outs = []
    for hash_seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        r = subprocess.run([sys.executable, "-m", "archdsl.cli", "sample", str(path), "-n", "15",
                            "--seed", "9", "--json"], capture_output=True, text=True, env=env,
                           check=True)
        outs.append(r.stdout)
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) == 15


def test_constraints_are_honoured_by_every_sampler() -> None:
    space = _load(SMALL_SPACES["global_forbid"])
    for uniform in (True, False):
        for c in space.samples(100, seed=2, uniform=uniform):
            assert c["a"] != c["b"]
    space = _load(SMALL_SPACES["input_choices_and_some"])
    for uniform in (True, False):
        for c in space.samples(100, seed=2, uniform=uniform):
            edges = 1 + 1 + len(c["network/c/n3/some"])  # n1, n2, then n3's inputs
            assert edges <= 4


def test_configuration_errors() -> None:
    space = _load(SMALL_SPACES["values"])
    good = space.sample(0)
    with pytest.raises(ConfigError, match="unknown decision 'wdth'") as e:
        space.validate({**good, "wdth": 8})
    assert "did you mean 'width'" in (e.value.hint or "")
    with pytest.raises(ConfigError, match="is not one of"):
        space.validate({**good, "width": 12})
    missing = dict(good)
    del missing["width"]
    with pytest.raises(ConfigError, match="no value for 'width'"):
        space.validate(missing)
    space = _load(SMALL_SPACES["global_forbid"])
    with pytest.raises(ConstraintError, match="forbid a == b"):
        space.validate({"a": 1, "b": 1, "network/repeat[0]/linear/out": 4})


def test_decision_names_are_stable_and_readable() -> None:
    src = """
        input x: [4]
        param width = choice(8, 16)
        block conv_bn(c, k = choice(3, 5)) { conv1d(c, kernel = k) -> batchnorm -> relu }
        network {
            x -> repeat(choice(1, 2)) { conv_bn(choice(width, width * 2)) -> optional { dropout(0.1) } }
              -> one_of { identity | flatten -> linear(choice(4, 8)) }
        }
        train { batch = choice(32, 64) optimizer = adam(lr = choice(0.1, 0.01)) }
    """
    space = archdsl.loads(src)
    cfg = space.validate({
        "width": 8, "network/repeat": 2,
        "network/repeat[0]/conv_bn/c": 8, "network/repeat[0]/conv_bn/k": 3,
        "network/repeat[0]/optional": True,
        "network/repeat[1]/conv_bn/c": 16, "network/repeat[1]/conv_bn/k": 5,
        "network/repeat[1]/optional": False,
        "network/one_of": "flatten -> linear(choice(4, 8))",
        "network/one_of[1]/linear/out": 4,
        "train/batch": 32, "train/optimizer/lr": 0.01,
    })
    assert len(cfg) == 12
    # names do not depend on the order of the configuration's keys
    assert space.validate(dict(reversed(list(cfg.items())))) == cfg


def test_fix_round_trip_keeps_the_architecture() -> None:
    for name in ("parallel_residual", "graph_cell_shared", "input_choices_and_some", "train"):
        space = _load(SMALL_SPACES[name])
        for cfg in space.samples(5, seed=1):
            arch = space.materialize(cfg)
            fixed = archdsl.loads(space.fix(cfg))
            assert fixed.count() == 1
            again = fixed.materialize(fixed.default())
            assert again.hash == arch.hash
            assert again.train == arch.train


def test_isomorphic_cells_hash_equal() -> None:
    space = _load(SMALL_SPACES["graph_cell_shared"])
    hashes = {}
    for cfg in space.enumerate():
        hashes.setdefault(space.materialize(cfg).hash, []).append(cfg)
    # n2 = edge(n0) + edge(n1): with edge(n1) = zero, n1's own edge cannot reach the output
    dead = [c for c in space.enumerate() if c["cell/n2/edge#2"] == "zero"
            and c["cell/n2/edge"] == "identity"]
    assert len({space.materialize(c).hash for c in dead}) == 1
    assert len(hashes) < space.count()


# ---- cells with several inputs, and sub-networks applied to nodes -----------------------------
TWO_INPUTS = """
    input x: [4, 8, 8]
    cell two(c) {
        input a, b
        n = conv2d(choice(a, b), c)
        return n + b
    }
"""


def test_shared_cell_decides_its_input_choices_once() -> None:
    space = archdsl.loads(TWO_INPUTS + """
        shared t = two(4)
        network {
            s = x -> relu
            p = t(s, x)
            return t(p, s)
        }
    """)
    assert space.count() == 2
    for pick in ("a", "b"):
        cfg = {"t/n/conv2d/in": pick}
        arch = space.materialize(cfg)
        g = arch.graph
        convs = sorted(n for n, d in g.nodes(data=True) if d["op"] == "conv2d")
        assert len(convs) == 2
        ops = [g.nodes[arch.predecessors(n)[0]]["op"] for n in convs]
        # each application reads its own tensors: (s, x) then (p, s)
        assert ops == (["relu", "add"] if pick == "a" else ["input", "relu"])


def test_multi_input_cell_decision_names() -> None:
    space = archdsl.loads(TWO_INPUTS + """
        network {
            s = x -> relu
            return two(s, x, choice(4, 8)) + two(x, s, 4)
        }
    """)
    assert space.count() == 2 * 2 * 2
    assert sorted(space.default()) == ["network/return/two#2/n/conv2d/in",
                                       "network/return/two/c", "network/return/two/n/conv2d/in"]


@pytest.mark.parametrize("network, words", [
    ("x -> two(4)", "'two(4)' takes 2 tensor inputs"),
    ("s = x -> relu\n return two(s, 4)", "block 'two' takes 2 tensor inputs, got 1"),
    ("s = x -> relu\n return two(s, s, s, 4)", "block 'two' takes 2 tensor inputs, got 3"),
])
def test_multi_input_cell_misuse(network: str, words: str) -> None:
    src = TWO_INPUTS + "network {\n " + network + "\n}\n"
    with pytest.raises(archdsl.ArchTypeError, match=re.escape(words)) as e:
        archdsl.loads(src)
    assert e.value.span is not None and e.value.span.line == src.count("\n") - 1  # the use


@pytest.mark.parametrize("network, words", [
    ("x -> t", "'t' takes 2 tensor inputs"),
    ("s = x -> relu\n return t(s)", "'t' takes 2 tensor inputs, got 1"),
    ("s = x -> relu\n return t(s, s, 4)", "its arguments are the graph nodes"),
    ("s = x -> relu\n return w(s)", "'w' is a parameter and cannot be called"),
])
def test_sub_network_param_misuse(network: str, words: str) -> None:
    src = TWO_INPUTS + "shared t = two(4)\nparam w = choice(1, 2)\nnetwork {\n " + network \
        + "\n}\n"
    with pytest.raises(archdsl.ArchTypeError, match=re.escape(words)) as e:
        archdsl.loads(src)
    assert e.value.span is not None and e.value.span.line == src.count("\n") - 1  # the use


# ---- limits -------------------------------------------------------------------------------------
def test_count_limit_holds_in_graphs_and_pipelines() -> None:
    # each repeat gives about 2**100,000 architectures, within the limit; their products are
    # refused at once rather than computed
    rep = "repeat(5000) { linear(int(1 .. 1000000)) }"
    graph = f"cell c {{ input n0\n n1 = n0 -> {rep}\n n2 = n1 -> {rep}\n n3 = n2 -> {rep}\n" \
            " return n3 }\nnetwork { x -> c }"
    for net in (f"network {{ x -> {rep} -> {rep} -> {rep} }}", graph):
        with pytest.raises(archdsl.ArchLimitError, match="architectures: too many to count"):
            archdsl.loads("input x: [4]\n" + net + "\n").count()


@pytest.mark.parametrize("decision, message", [
    ("int(1 .. 10**100)", "about 10^100 values"),
    ("int(0 .. 20000000)", "20,000,001 values"),
    ("float(0 .. 1, step = 1e-9)", "more than 10,000,000 values"),
    ("float(0 .. 10**400)", "finite"),
])
def test_huge_decision_domains_are_reported(decision: str, message: str) -> None:
    with pytest.raises(archdsl.ArchDSLError, match=re.escape(message)) as e:
        archdsl.loads(f"input x: [4]\nnetwork {{ x -> dropout(0.1) -> linear({decision}) }}\n"
                      ).count()
    assert e.value.span is not None and e.value.span.line == 2


def test_huge_json_integers_in_a_configuration() -> None:
    space = archdsl.loads("input x: [4]\nnetwork { x -> dropout(float(0.0 .. 0.5)) "
                          "-> linear(int(1 .. 8)) }\n")
    good = space.default()
    for key in good:
        for big in (10**400, 10**5000):
            with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
                space.validate({**good, key: big})


def test_a_seeded_sample_does_not_depend_on_the_space_having_been_used() -> None:
    """The first sample of a fresh space builds its top-level table; that must not draw from
    the sampler's random numbers (digits.arch has a non-structural top-level param)."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "digits.arch"
    for uniform in (True, False):
        fresh = archdsl.load(path).sample(5, uniform=uniform)
        used = archdsl.load(path)
        used.count()
        used.sample(1, uniform=uniform)
        assert used.sample(5, uniform=uniform) == fresh


def _plain_graph(space: archdsl.Space, config: dict) -> object:
    """The graph a walk makes with neither of materialize's shortcuts: every shared cell walked
    (no tape) and the graph built through networkx's public add_node / add_edge."""
    import networkx as nx

    from archdsl import interp

    it = space._interp

    def walk_shared(self: interp.Interp, name: str, xs: list, span: object) -> object:
        return self.apply(self.shared_nets[name], xs, interp.Scope(name), span=span)

    def public(self: interp.Interp) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        for n, (op, args, span, path) in enumerate(self._nodes):
            g.add_node(n, op=op, args=args, span=span, path=path)
            for port, u in enumerate(self._ins[n]):
                g.add_edge(u, n, key=port, port=port)
        return g

    def walk_body(self: interp.Interp, blk: object, env: dict, xs: list, sc: object,
                  span: object) -> object:
        return self.run_body(blk.body, env, xs, sc, span, block=blk)  # type: ignore

    cls = interp.Interp
    saved = cls.apply_shared, cls._graph, cls.run_body_taped
    cls.apply_shared, cls._graph, cls.run_body_taped = walk_shared, public, walk_body  # type: ignore
    try:
        it.walk(interp.FromConfig(config), build=True)
        return it.graph
    finally:
        cls.apply_shared, cls._graph, cls.run_body_taped = saved  # type: ignore


@pytest.mark.parametrize("name", ["nb201", "darts", "nb101", "hierarchical", "digits", "resnet",
                                  "transformer", "TWO_INPUTS"])
def test_materialize_shortcuts_make_the_walked_graph(name: str) -> None:
    """Shared cells and blocks copied from their tapes (kept across walks), and the graph's
    dicts filled directly, give exactly the graph of a plain walk: the same nodes, attributes,
    edges and adjacency order, and the same decisions."""
    if name == "TWO_INPUTS":
        space = archdsl.loads(TWO_INPUTS + """
            shared t = two(choice(4, 8))
            cell pair(c) {
                input a, b
                m = two(a, b, c) + two(b, b, c)
                return m -> conv2d(c)
            }
            network {
                s = x -> relu
                p = t(s, x)
                q = pair(p, s, 4)
                r = pair(q, q, 4)
                return t(r, r)
            }
        """)
    else:
        space = archdsl.load(EXAMPLES / f"{name}.arch")
    for seed in range(30):
        config = space.sample(seed)
        if seed % 3 == 0:  # the same architecture again, its tapes in place
            space.materialize(config)
        got_decided = _walk_config(space._interp, config, build=True)
        got = space._interp.graph
        want = _plain_graph(space, config)
        assert list(got_decided.items()) == list(space._interp.decided.items())
        assert list(got.nodes(data=True)) == list(want.nodes(data=True))
        assert list(got.edges(keys=True, data=True)) == list(want.edges(keys=True, data=True))
        assert list(got.in_edges(keys=True, data=True)) == list(
            want.in_edges(keys=True, data=True))
        assert {n: list(got.pred[n]) for n in got} == {n: list(want.pred[n]) for n in want}


@pytest.mark.parametrize("uniform", [True, False])
def test_sampling_a_space_with_no_architecture_says_where_at_once(uniform: bool) -> None:
    space = archdsl.loads("input x: [4]\nparam p0 = 1\nnetwork { x -> relu }\nrequire p0 == 0\n")
    with pytest.raises(archdsl.EmptySpaceError, match="no configuration satisfies") as e:
        space.sample(0, uniform=uniform)
    assert e.value.span is not None and e.value.span.line == 3
