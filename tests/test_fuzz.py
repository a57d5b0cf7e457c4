"""Fuzzing: whatever .arch text goes in, the tools answer with a report or a result, quickly.

The inputs:
(a) random text built from .arch tokens and stray characters, and arbitrary unicode;
(b) mutations of valid .arch sources and of examples/*.arch (slices deleted, duplicated,
    swapped; tokens inserted; whole lines shuffled);
(c) random well-formed spaces from a small generator of the language, which reach the
    counting, sampling and building stages far more often than (a) and (b).

Each case is run through `archdsl check`, `count`, `sample` and `compile` by a worker process
(tests/_fuzz_worker.py) with a memory limit (RLIMIT_AS) and a limit of 5 s of CPU time per
command. Every run
must exit 0 or 1, print no traceback, finish in time, and every error it prints must start with
`FILE:LINE:COL: error:` inside one of the case's files (the cases are all about files). One worker
runs many cases; it is started again if a case kills it or never answers.

(c) is also run in this process for what only Python can see: `fix()` of a sample must give a
space of one architecture with the same hash.

The CI runs a few hundred cases, the same on every run (derandomized). Set ARCHDSL_FUZZ=N to run
about N cases, new ones every run (e.g. ARCHDSL_FUZZ=5000 python -m pytest tests/test_fuzz.py);
a failure prints the case that broke a promise.

Inputs that hit a bug already reported (KNOWN_BUGS, each with an xfail(strict) reproducer in
test_known_bug) are rejected rather than failed, so that these tests guard against
new bugs; drop an entry once its bug is fixed (its reproducer then fails as XPASS).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchDSLError

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_fuzz_worker.py"
MEMORY = 1 << 30  # bytes a case may take on top of the worker's own
COMMAND_S = 5.0  # CPU seconds a command may use (issue 11's target: a 1 MB file in under 5 s)
WALL_S = 60.0  # seconds to wait for an answer (a command that waits, or is stuck in C code)
HANG_S = 4.0  # for the in-process round trip of (c)
TOTAL = int(os.environ.get("ARCHDSL_FUZZ", "0") or 0)  # 0: the CI's few hundred


def examples(share: int) -> int:
    """This test's number of cases: `share` of the CI's 320, scaled to ARCHDSL_FUZZ."""
    return share if TOTAL <= 0 else max(1, TOTAL * share // 320)


def fuzz_settings(share: int):
    return settings(max_examples=examples(share), deadline=None, derandomize=TOTAL <= 0,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------------------------
# the worker process


class Worker:
    """One `_fuzz_worker.py` process, started again whenever it dies or stops answering."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen([sys.executable, str(WORKER), str(MEMORY)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     encoding="utf-8")
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, files: dict[str, str], argv: list[str], wall: float = WALL_S) -> dict:
        proc = self.proc if self.proc and self.proc.poll() is None else self.start()
        request = {"files": files, "argv": argv, "seconds": COMMAND_S}
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], wall)
            line = proc.stdout.readline() if ready else ""
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)
        alive = proc.poll() is None
        self.stop()
        return {"rc": None, "hang": alive, "died": None if alive else proc.returncode,
                "escaped": None, "out": "", "err": ""}


_worker = Worker()


@pytest.fixture(scope="module", autouse=True)
def _stop_worker():
    yield
    _worker.stop()


COMMANDS = [["check"], ["count"], ["sample", "-n", "2", "--seed", "1"], ["compile"]]
LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: ")


def problems(files: dict[str, str], main: str, argv: list[str], answer: dict) -> list[str]:
    """What is wrong with one run; empty when the run kept every promise."""
    found = []
    if answer.get("died") is not None:
        found.append(f"the process died (status {answer['died']})")
    if answer["hang"]:
        found.append(f"still running after {COMMAND_S} s of CPU time (or {WALL_S} s)")
    if answer["escaped"]:
        found.append("escaped the CLI:\n" + answer["escaped"][-1200:])  # the end: its type
    if answer["rc"] not in (0, 1) and not found:
        found.append(f"exit status {answer['rc']}")
    if "Traceback (most recent call last)" in answer["out"] + answer["err"]:
        found.append("a traceback was printed")
    if answer["rc"] == 1:
        first = answer["err"].splitlines()[0] if answer["err"] else ""
        m = LOCATION.match(first)
        names = {Path(n).name: text for n, text in files.items()}
        if not m or Path(m["file"]).name not in names:
            found.append(f"an error without FILE:LINE:COL in the case's files: {first!r}")
        else:
            lines = names[Path(m["file"]).name].count("\n") + 1
            if not (1 <= int(m["line"]) <= lines and int(m["col"]) >= 1):
                found.append(f"an error placed outside its file ({lines} lines): {first!r}")
    if "root:x:0:0" in answer["out"] + answer["err"]:
        found.append("printed the content of /etc/passwd")
    return found


def run_cli_case(files: dict[str, str], main: str = "case.arch", known: bool = True) -> None:
    """Run the four commands on files[main]; fail on any broken promise (one of KNOWN_BUGS
    rejects the case instead, where `known`)."""
    for command in COMMANDS:
        argv = [command[0], main, *command[1:]]
        answer = _worker.run(files, argv)
        found = problems(files, main, argv, answer)
        if not found:
            continue
        for matches, _, _ in KNOWN_BUGS.values() if known else ():
            if matches(files[main], command[0], found):
                reject()
        shown = "\n".join(f"--- {n}\n{t[:1500]!r}" for n, t in files.items() if n == main)
        raise AssertionError(f"archdsl {' '.join(argv)}: {'; '.join(found)[:1500]}\n"
                             f"stderr: {answer['err'][:1500]}\n{shown}")


# The inputs issue 11 names (robustness), each through the four commands; also mutation seeds.
ISSUE_CASES = {
    "huge dropout": "input x: [4]\nnetwork { x -> dropout(2 ** 4000) }\n",
    "zero branch in an add": "input x: [4]\nnetwork { x -> parallel(add) { zero | linear(4) } }\n",
    "shared inline in shared": "input x: [4]\nshared s = linear(shared choice(8, 16))\n"
                               "network { x -> s }\n",
    "twice 16 deep": "input x: [4]\nblock twice(body) { body -> body }\nnetwork { x -> "
                     + "twice(" * 16 + "relu" + ")" * 16 + " }\n",
    "repeat 10,000 copies": "input x: [4]\n"
                            "network { x -> repeat(choice(10000, 1, 2)) { linear(choice(4, 8)) } }\n",
    "recursion 16 deep": "input x: [4]\nblock t max_depth 16 { one_of { relu | t -> t } }\n"
                         "network { x -> t }\n",
    "default under a sum constraint": "input x: [4]\nparam a = int(1 .. 141)\n"
                                      "param b = int(1 .. 141)\nrequire a + b == 282\n"
                                      "network { x -> linear(a) }\n",
    "keywords and builtins as names": "input class: [16]\ninput torch: [16]\nnetwork {\n"
                                      "    h = class -> linear(4)\n"
                                      "    return add(h, torch -> linear(4))\n}\n",
    "no network": "block b { relu }\n",
    "empty file": "",
    "import outside": 'import "/etc/passwd"\ninput x: [4]\nnetwork { x -> relu }\n',
    "import a device": 'import "/dev/zero"\ninput x: [4]\nnetwork { x -> relu }\n',
    "import up": 'import "../case.arch"\ninput x: [4]\nnetwork { x -> relu }\n',
    "import itself": 'import "case.arch"\ninput x: [4]\nnetwork { x -> relu }\n',
    "import a NUL": 'import "a\\u0000.arch"\ninput x: [4]\nnetwork { x -> relu }\n',
    "import a long name": f'import "{"a" * 5000}.arch"\ninput x: [4]\nnetwork {{ x -> relu }}\n',
    "a layer without its argument": "input x: [4]\nnetwork {\n  x -> linear\n}\n",
    "a cell op without its argument": "input x: [3, 8, 8]\nnetwork { x -> relu_conv_bn }\n",
}

# Bugs reported on the team board, each with an xfail(strict) reproducer (test_known_bug): the
# name -> (a predicate over the main file's text, the command and the problems found, which
# makes the fuzz tests reject a case that hits the bug; the reproducer's files; its argv).
KNOWN_BUGS: dict[str, tuple[Callable[[str, str, list[str]], bool], dict[str, str], list[str]]] = {
}
REPRODUCED = {files["case.arch"]: name for name, (_, files, _) in KNOWN_BUGS.items()}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[pytest.mark.skip(reason=f"reproduces: {REPRODUCED[text]}")]
                 if text in REPRODUCED else []) for n, text in ISSUE_CASES.items()])
def test_issue_11_case(name: str) -> None:
    run_cli_case({"case.arch": ISSUE_CASES[name], "lib/common.arch": COMMON}, known=False)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=n))
                                  for n in sorted(KNOWN_BUGS)])
def test_known_bug(name: str) -> None:
    """Each known bug's minimal reproducer: an XPASS once fixed (then drop its entry)."""
    _, files, argv = KNOWN_BUGS[name]
    assert problems(files, argv[1], argv, _worker.run(files, argv)) == []


# Configurations are untrusted input too: `--config` is read like a .arch file (a regular file,
# at most so many bytes; a FIFO or a device refused at once), and every mistake is one error
# that names the configuration file (or the place in the space that its value breaks).
CONFIG_CASES: dict[str, tuple[dict[str, str], str]] = {
    "not JSON": ({"c.json": "{"}, "c.json"),
    "not an object": ({"c.json": "[1, 2]"}, "c.json"),
    "a huge number": ({"c.json": '{"w": 1e999999, "x": ' + "9" * 5000 + "}"}, "c.json"),
    "nested deeply": ({"c.json": "[" * 100_000 + "]" * 100_000}, "c.json"),
    "a folder": ({"lib/common.arch": ""}, "lib"),
    "missing": ({}, "nothing.json"),
    "a device": ({}, "/dev/zero"),
    "a FIFO": ({}, "FIFO"),
}
CONFIG_BUGS: dict[str, str] = {}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=[pytest.mark.xfail(strict=True, reason=CONFIG_BUGS[n])]
                 if n in CONFIG_BUGS else []) for n in CONFIG_CASES])
def test_configuration_is_read_safely(name: str, tmp_path: Path) -> None:
    files, config = CONFIG_CASES[name]
    if config == "FIFO":
        config = str(tmp_path / "fifo")
        os.mkfifo(config)
    space = {"case.arch": "input x: [4]\nparam w = choice(2, 4)\nnetwork { x -> linear(w) }\n"}
    for command in ("fix", "compile"):
        answer = _worker.run({**space, **files}, [command, "case.arch", "--config", config],
                             wall=15)
        assert not answer["hang"] and answer.get("died") is None and not answer["escaped"], answer
        assert answer["rc"] == 1 and "Traceback" not in answer["err"], answer
        first = answer["err"].splitlines()[0]
        assert "error: " in first and (config in first or first.startswith("case.arch:")), first


def test_the_worker_reports_every_broken_promise() -> None:
    """The checker itself: a good run passes; a traceback, a missing place, a hang are caught."""
    files = {"case.arch": "input x: [4]\nnetwork { x -> linear(2) }\n"}
    assert problems(files, "case.arch", [], _worker.run(files, ["count", "case.arch"])) == []
    bad = {"case.arch": "input x: [4]\nnetwork { x -> lineer(2) }\n"}
    assert problems(bad, "case.arch", [], _worker.run(bad, ["check", "case.arch"])) == []
    missing = _worker.run(bad, ["check", "other.arch"])  # `error: ...` with no place
    assert any("without FILE:LINE:COL" in p for p in problems(bad, "x", [], missing))
    hang = {"rc": None, "hang": True, "escaped": None, "out": "", "err": ""}
    assert problems(bad, "case.arch", [], hang)[0].startswith("still running after")
    escaped = {**hang, "hang": False, "escaped": "Traceback ...\nKeyError: 1"}
    assert problems(bad, "case.arch", [], escaped)[0].startswith("escaped the CLI")


# ---------------------------------------------------------------------------------------------
# (a) random token soup

KEYWORDS = ["import", "from", "input", "param", "shared", "block", "cell", "op", "max_depth",
            "network", "train", "require", "forbid", "return", "repeat", "one_of", "optional",
            "residual", "skip", "parallel", "and", "or", "not", "true", "false"]
FUNCS = ["choice", "int", "float", "bool", "some", "linear", "conv2d", "conv1d", "relu", "gelu",
         "dropout", "batchnorm", "layernorm", "identity", "zero", "concat", "add", "multiply",
         "max_pool", "avg_pool", "global_avg_pool", "flatten", "attention", "relu_conv_bn",
         "embedding", "softmax", "groupnorm", "adam", "sgd"]
NAMES = ["x", "w", "n0", "n1", "n2", "b", "c", "edge", "edges", "params", "flops", "lr",
         "epochs", "batch", "optimizer", "stride", "kernel", "out", "p", "log", "step",
         "default", "prior", "same", "valid", "bias"]
PUNCT = ["(", ")", "[", "]", "{", "}", ",", ":", "=", "==", "!=", "<", "<=", ">", ">=", "+",
         "-", "*", "/", "//", "%", "**", "->", "..", "|", "#", "\n", " ", "  "]
NUMBERS = ["0", "1", "2", "3", "8", "16", "64", "1_000", "10000", "0.5", "1e-3", "1e400",
           "99999999999", "0.0", "3.", ".5", "9" * 5000]
STRINGS = ['"lib.arch"', '"x"', '""', '"a b"', '"\\"("', '"\\x"', '"\u00e9\\n"', '"\\u12"',
           '"\\ud800"']
ODD = ["$", "'", "@", ";", "\\", "\t", "\r", "\u00e9", "\u2028", "\ufeff", "`", "?", "!", "&",
       "\x0c", "\x01"]
DEEP = ["-" * 300 + "1", "not " * 300, "1 ** " * 300]  # nested past the parser's depth limit
# imports that must stay inside the case's folder and read regular .arch files only
IMPORT_PATHS = ['"lib/common.arch"', '"/etc/passwd"', '"../case.arch"', '"/dev/zero"',
                '"case.arch"', '"lib"', '"missing.arch"', '"lib/../lib/common.arch"',
                '"/proc/self/status"', '"' + "a" * 300 + '.arch"', '"lib\\u0000.arch"']
TOKENS = KEYWORDS + FUNCS + NAMES + PUNCT + NUMBERS + STRINGS + ODD + DEEP + IMPORT_PATHS
COMMON = (ROOT / "examples" / "lib" / "common.arch").read_text("utf-8")
EXAMPLES = [p.read_text("utf-8") for p in sorted((ROOT / "examples").glob("*.arch"))]

token = st.sampled_from(TOKENS)
separator = st.sampled_from([" ", " ", "", "\n"])


@st.composite
def token_soup(draw):
    parts = draw(st.lists(st.tuples(token, separator), max_size=60))
    return "".join(t + s for t, s in parts)


@st.composite
def prefixed_soup(draw):
    """Soup after a valid prelude, so that later stages are reached more often."""
    prelude = draw(st.sampled_from([
        "input x: [4]\n",
        "input x: [4]\nnetwork { x -> ",
        "input x: [3, 8, 8]\nblock b(c) {\n    input n0\n    n1 = ",
        "input x: [4]\nparam w = ",
        "input x: [4]\nnetwork { x -> linear(",
        "input x: [4]\nnetwork { x -> relu }\ntrain { ",
        *[f"import {path}\ninput x: [4]\nnetwork {{ x -> " for path in IMPORT_PATHS],
    ]))
    return prelude + draw(token_soup())


FILE_NAMES = st.sampled_from(["case.arch"] * 6 + ['m""";x.arch', "a b.arch", "\u00e9.arch",
                                                  "case", "x'.arch"])


@fuzz_settings(60)
@given(st.one_of(token_soup(), prefixed_soup()), FILE_NAMES)
def test_fuzz_token_soup(text, name):
    run_cli_case({name: text, "lib/common.arch": COMMON}, name)


@fuzz_settings(30)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_unicode(text):
    run_cli_case({"case.arch": text})


# ---------------------------------------------------------------------------------------------
# (b) mutations of valid sources

VALID = [
    # values, pipelines, optional, one_of with labels, train
    """input x: [4]
param w = choice(8, 16, 32)
param act = choice(relu, gelu)
network {
    x -> linear(w) -> act -> optional { dropout(float(0.1 .. 0.5, step = 0.2)) }
    -> one_of { small: linear(4) | big: linear(w * 2) -> relu } -> linear(2)
}
train {
    optimizer = adam(lr = float(1e-4 .. 1e-1, log))
    batch = choice(32, 64)
    epochs = 3
}
require w <= 32
""",
    # repeat with a decision count, blocks with defaults, local params, forbid
    """input x: [4]
block b(k = choice(1, 3, 5)) {
    param s = choice(1, 2)
    forbid k == 5 and s == 2
    conv1d(4, kernel = k, stride = s)
}
block stage(n, w) { repeat(n) { linear(w) -> optional { relu } } }
network { x -> b -> b(3) -> stage(int(1 .. 3), choice(4, 8)) -> repeat(2) { linear(shared choice(4, 8)) } }
""",
    # graph cells, op, shared cell, residual with skip, parallel
    """input x: [4, 8, 8]
op edge = one_of { zero | identity | relu_conv_bn(1) | avg_pool(3, stride = 1, padding = 1) }
cell c {
    input n0
    n1 = edge(n0)
    n2 = edge(n0) + edge(n1)
    n3 = concat(n1, n2) -> conv2d(4, kernel = 1)
    return n3
}
shared cell = c
network {
    x -> cell -> residual { relu -> conv2d(4, padding = same) } skip { identity }
    -> parallel(add) { a: relu | b: conv2d(4, kernel = choice(1, 3), padding = same) }
    -> cell -> global_avg_pool -> linear(10)
}
""",
    # recursion with max_depth, some(), edges constraint, input choices
    """input x: [4, 8, 8]
block t max_depth 3 { one_of { relu | tanh | t -> t } }
cell g {
    input n0
    n1 = n0 -> relu
    n2 = some(n0, n1) -> conv2d(4, kernel = 1)
    n3 = choice(n1, n2) -> t
    require edges <= 4
    return n3
}
network { x -> g -> flatten -> linear(choice(2, 3)) }
""",
    # arithmetic, comparisons, booleans, negative numbers, powers, strings
    """input x: [16]
param a = choice(1, 2, 3)
param b = int(2 .. 8, step = 2)
param big = bool(default = true, prior = 0.3)
network { x -> linear(a * b + 2 ** a - (b // 2) % 3) -> softmax -> linear(-(-4)) }
require not (a == 3 and b >= 6) or big
forbid a > 2 and not big
""",
    # a graph network, training settings, attention
    """input tokens: [8, 16]
param width = choice(16, 32)
block enc(w) {
    param heads = choice(2, 4)
    forbid w % heads != 0
    residual { layernorm -> attention(heads = heads) } -> residual { layernorm -> linear(w) }
}
network {
    h = tokens -> linear(width)
    y = h -> repeat(choice(1, 2)) { enc(width) }
    return add(h, y) -> global_avg_pool -> linear(10)
}
train { optimizer = sgd(lr = 0.1, momentum = choice(0.9, 0.99)) epochs = 2 label_smoothing = 0.1 }
""",
]


def test_valid_samples_are_valid():
    for src in VALID:
        space = archdsl.loads(src)
        assert space.count() >= 1
        space.materialize(space.sample(0))


MUTATION_TOKENS = TOKENS + ["repeat(3) {", "one_of {", "optional {", "} -> ", "max_depth 9",
                            "param q = ", "choice(", "int(1 .. ", "shared ", "input n9",
                            "return ", " = ", "block z {", "}"]


CALL = re.compile(r"\b([A-Za-z_]\w*)\([^()]*\)")  # a call without calls in its arguments


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(VALID + EXAMPLES + list(ISSUE_CASES.values())))
    for _ in range(draw(st.integers(1, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 40)))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace",
                                   "drop arguments"]))
        if op == "drop arguments":  # `linear(4)` -> `linear`: a random cut seldom makes one
            calls = list(CALL.finditer(text))
            if calls:
                c = draw(st.sampled_from(calls))
                text = text[:c.end(1)] + text[c.end():]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "swap":
            k = draw(st.integers(j, n))
            m = draw(st.integers(k, min(n, k + 40)))
            text = text[:i] + text[k:m] + text[j:k] + text[i:j] + text[m:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(MUTATION_TOKENS)) + text[i:]
        else:
            text = text[:i] + draw(st.sampled_from(MUTATION_TOKENS)) + text[j:]
    return text


@fuzz_settings(110)
@given(mutated())
def test_fuzz_mutations_of_valid_sources(text):
    run_cli_case({"case.arch": text, "lib/common.arch": COMMON})


@fuzz_settings(10)
@given(mutated())
def test_fuzz_mutations_of_an_imported_library(text):
    run_cli_case({"case.arch": EXAMPLES[1], "lib/common.arch": text})


@st.composite
def line_shuffled(draw):
    """Whole lines of the valid sources dropped, repeated and reordered."""
    lines = draw(st.sampled_from(VALID)).splitlines()
    picked = draw(st.lists(st.sampled_from(lines), min_size=1, max_size=len(lines) + 3))
    return "\n".join(picked) + "\n"


@fuzz_settings(30)
@given(line_shuffled())
def test_fuzz_line_shuffles(text):
    run_cli_case({"case.arch": text})


# ---------------------------------------------------------------------------------------------
# (c) generated well-formed spaces


def _int_value(names: list[str]):
    leaves = [
        st.integers(1, 16).map(str),
        st.lists(st.integers(1, 16), min_size=1, max_size=4, unique=True)
        .map(lambda xs: f"choice({', '.join(map(str, xs))})"),
        st.tuples(st.integers(0, 8), st.integers(0, 16),
                  st.sampled_from(["", ", step = 2", ", log", ", step = 3"]))
        .map(lambda t: f"int({t[0]} .. {t[1]}{t[2]})"),
    ]
    if names:
        leaves.append(st.sampled_from(names))
    return st.recursive(
        st.one_of(*leaves),
        lambda c: st.tuples(c, st.sampled_from(["+", "-", "*", "//", "%", "**"]), c)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        max_leaves=4)


FLOAT_VALUES = st.sampled_from(["0.1", "0.5", "0.0", "0.99", "float(0.0 .. 0.5)",
                                "float(0.1 .. 0.9, step = 0.2)", "float(1e-3 .. 0.5, log)",
                                "choice(0.1, 0.2)", "1.5", "-0.1"])
PLAIN_LAYERS = ["relu", "gelu", "tanh", "sigmoid", "identity", "layernorm", "batchnorm",
                "flatten", "zero", "global_avg_pool", "relu_conv_bn(1)",
                "relu_conv_bn(3, out = 4)", "groupnorm(2)"]


def _layer(names: list[str], blocks: list[str]):
    iv = _int_value(names)
    options = [
        st.sampled_from(PLAIN_LAYERS),
        iv.map(lambda v: f"linear({v})"),
        st.tuples(iv, iv).map(lambda t: f"conv1d({t[0]}, kernel = {t[1]}, padding = same)"),
        st.tuples(iv, iv).map(lambda t: f"conv2d({t[0]}, kernel = {t[1]})"),
        FLOAT_VALUES.map(lambda v: f"dropout({v})"),
        iv.map(lambda v: f"max_pool({v})"),
        iv.map(lambda v: f"attention(heads = {v})"),
    ]
    if blocks:
        options.append(st.sampled_from(blocks))
    return st.one_of(*options)


def _pipeline(names: list[str], blocks: list[str]):
    def extend(c):
        iv = _int_value(names)
        return st.one_of(
            st.lists(c, min_size=2, max_size=3).map(" -> ".join),
            st.tuples(iv, c).map(lambda t: f"repeat({t[0]}) {{ {t[1]} }}"),
            c.map(lambda b: f"optional {{ {b} }}"),
            st.lists(c, min_size=1, max_size=3).map(
                lambda alts: "one_of { " + " | ".join(f"l{i}: {a}" for i, a in enumerate(alts))
                + " }"),
            st.tuples(c, st.none() | c).map(
                lambda t: f"residual {{ {t[0]} }}" + (f" skip {{ {t[1]} }}" if t[1] else "")),
            st.tuples(st.sampled_from(["add", "concat", "multiply"]),
                      st.lists(c, min_size=2, max_size=3)).map(
                lambda t: f"parallel({t[0]}) {{ "
                + " | ".join(f"b{i}: {a}" for i, a in enumerate(t[1])) + " }"),
        )
    return st.recursive(_layer(names, blocks), extend, max_leaves=8)


def _condition(names: list[str]):
    return st.tuples(st.sampled_from(names), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
                     st.integers(0, 16), st.sampled_from(["", " and true", " or false"])
                     ).map(lambda t: f"{t[0]} {t[1]} {t[2]}{t[3]}")


@st.composite
def generated_space(draw):
    shape = draw(st.sampled_from(["[4]", "[4, 8]", "[3, 8, 8]", "[2, 4, 4]"]))
    lines = [f"input x: {shape}"]
    params: list[str] = []
    for i in range(draw(st.integers(0, 2))):
        lines.append(f"param p{i} = {draw(_int_value(params))}")
        params.append(f"p{i}")
    blocks: list[str] = []
    for i in range(draw(st.integers(0, 2))):
        arg = f"a{i}"
        body = draw(_pipeline(params + [arg], blocks))
        local = ""
        if draw(st.booleans()):
            local = f"param q{i} = {draw(_int_value(params + [arg]))}\n    "
            if draw(st.booleans()):
                local += f"forbid {draw(_condition([f'q{i}']))}\n    "
        depth = ""
        if draw(st.booleans()):
            depth = f" max_depth {draw(st.integers(1, 4))}"
            body = f"one_of {{ relu | {body} -> b{i} }}"
        kw = draw(st.sampled_from(["block", "cell"]))
        lines.append(f"{kw} b{i}({arg} = {draw(_int_value(params))}){depth} {{\n"
                     f"    {local}{body}\n}}")
        blocks.append(f"b{i}")
    if draw(st.booleans()):
        merge = draw(st.sampled_from(["n0 + n1", "some(n0, n1)", "choice(n0, n1) -> relu",
                                      "concat(n0, n1)", "add(n0, n1, project = true)",
                                      "multiply(n0, n1)"]))
        edges = "\n    require edges <= 3" if draw(st.booleans()) else ""
        lines.append(f"cell g {{\n    input n0\n    n1 = n0 -> {draw(_pipeline(params, blocks))}"
                     f"\n    n2 = {merge}{edges}\n    return n2\n}}")
        blocks.append("g")
        if draw(st.booleans()):
            lines.append("shared sg = g")
            blocks.append("sg")
    lines.append(f"network {{ x -> {draw(_pipeline(params, blocks))} }}")
    if params and draw(st.booleans()):
        kind = draw(st.sampled_from(["require", "forbid"]))
        lines.append(f"{kind} {draw(_condition(params))}")
    if draw(st.booleans()):
        lines.append("train { optimizer = adam(lr = float(1e-4 .. 1e-1, log)) "
                     "batch = choice(16, 32) epochs = 2 }")
    return "\n".join(lines) + "\n"


def _lost_merge_input(arch) -> bool:
    """A merge that takes the same tensor twice keeps one edge (known bug, see the report)."""
    g = arch.graph
    for n in g.nodes:
        ports = [d.get("port", 0) for _, _, d in g.in_edges(n, data=True)]
        if ports and max(ports) + 1 > len(ports):
            return True
    return False


def exercise_and_fix(text: str) -> None:
    """A sample's `fix()` is a space of that one architecture (errors: the CLI tests' job)."""
    try:
        with time_limit(HANG_S):
            space = archdsl.loads(text)
            cfg = space.sample(0)
            arch = space.materialize(cfg)
    except (ArchDSLError, Hang):
        return
    fixed_text = space.fix(cfg)
    try:
        fixed = archdsl.loads(fixed_text)
    except ArchDSLError as e:
        if "'dim' must be positive" in e.message:  # documented known issue (softmax dim = -1)
            reject()
        if _lost_merge_input(arch):
            reject()
        raise AssertionError(f"fix() wrote text that does not load:\n{fixed_text}\n"
                             f"{e.format()}\nfrom:\n{text}") from e
    assert fixed.count() == 1, fixed_text
    again = fixed.materialize(fixed.default())
    if again.hash != arch.hash and _lost_merge_input(arch):
        reject()
    assert again.hash == arch.hash, f"fix() changed the architecture:\n{text}\n{fixed_text}"


@fuzz_settings(80)
@given(generated_space())
def test_fuzz_generated_spaces_cli(text):
    run_cli_case({"case.arch": text})


@fuzz_settings(60)
@given(generated_space())
def test_fuzz_generated_spaces_fix_round_trip(text):
    exercise_and_fix(text)

