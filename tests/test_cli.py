"""The `archdsl` command: check, count, sample, fix on a small space, and every kind of bad
input ending in exit status 1 with a compiler-style message and never a Python traceback.

Most tests call `archdsl.cli.main([...])` in-process (capsys); a few run the real command in a
subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main

SPACE = """\
input x: [4]
param w = choice(8, 16)
network {
    x -> linear(w) -> optional { relu } -> linear(2)
}
"""
COUNT = 4

CONTINUOUS = """\
input x: [4]
network { x -> linear(choice(2, 3)) -> dropout(float(0.0 .. 0.5)) }
train { optimizer = adam(lr = float(1e-4 .. 1e-1, log)) }
"""

# the first line of a report on stderr: "file:line:col: error: ..." or "error: ..." (argparse:
# "archdsl: error: ..." after a usage line)
REPORT = re.compile(r"^(\S.*:\d+:\d+: error: |error: |archdsl(?: \w+)?: error: )", re.M)


@pytest.fixture(autouse=True)
def _restore_interpreter_limits():
    """main() raises the recursion limit and the int-to-str digit limit for the whole process;
    put them back so that other test files see the defaults."""
    rec, digits = sys.getrecursionlimit(), sys.get_int_max_str_digits()
    yield
    sys.setrecursionlimit(rec)
    sys.set_int_max_str_digits(digits)


@pytest.fixture
def space_file(tmp_path: Path) -> Path:
    p = tmp_path / "space.arch"
    p.write_text(SPACE)
    return p


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the command in-process; return (exit status, stdout, stderr)."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as e:  # argparse usage errors and --help
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc: int, out: str, err: str, *, where: str | None = None) -> None:
    assert rc == 1, (rc, out, err)
    assert "Traceback" not in out + err, err
    assert REPORT.search(err), err
    if where is not None:
        assert err.startswith(f"{where}: error: "), err


# ---------------------------------------------------------------------------------------------
# the four commands on a valid space


def test_check(capsys, space_file):
    rc, out, err = cli(capsys, "check", space_file)
    assert rc == 0, err
    assert out.splitlines()[0] == f"{space_file}: ok"
    assert f"architectures: {COUNT}" in out
    assert "decisions (default configuration): 2" in out
    assert err == ""


def test_count(capsys, space_file):
    rc, out, err = cli(capsys, "count", space_file)
    assert rc == 0, err
    assert out.splitlines()[-1] == str(COUNT)
    assert int(out.splitlines()[-1]) == archdsl.load(space_file).count()


def test_count_json(capsys, space_file):
    rc, out, err = cli(capsys, "count", "--json", space_file)
    assert rc == 0, err
    data = json.loads(out)
    assert data["count"] == COUNT
    assert data.get("continuous", []) == []


def test_count_with_continuous_decisions(capsys, tmp_path):
    p = tmp_path / "cont.arch"
    p.write_text(CONTINUOUS)
    rc, out, err = cli(capsys, "count", p)
    assert rc == 0, err
    assert out.splitlines()[-1] == "2"  # the last line is the integer, comments before it
    assert all(line.startswith("#") for line in out.splitlines()[:-1])
    rc, out, err = cli(capsys, "count", "--json", p)
    data = json.loads(out)
    assert data["count"] == 2
    assert sorted(data["continuous"]) == ["network/dropout/p", "train/optimizer/lr"]


def test_sample_json_is_deterministic(capsys, space_file):
    rc, out1, err = cli(capsys, "sample", "-n", "3", "--seed", "1", "--json", space_file)
    assert rc == 0, err
    rc, out2, err = cli(capsys, "sample", "-n", "3", "--seed", "1", "--json", space_file)
    assert rc == 0, err
    assert out1 == out2
    lines = out1.splitlines()
    assert len(lines) == 3
    space = archdsl.load(space_file)
    for i, line in enumerate(lines):
        rec = json.loads(line)
        assert rec["index"] == i
        assert isinstance(rec["config"], dict)
        assert space.validate(rec["config"]) == rec["config"]
        assert rec["hash"] == space.materialize(rec["config"]).hash


def test_sample_seeds_differ(capsys, space_file):
    outs = {cli(capsys, "sample", "-n", "4", "--seed", str(s), "--json", space_file)[1]
            for s in range(4)}
    assert len(outs) > 1


def test_sample_text(capsys, space_file):
    rc, out, err = cli(capsys, "sample", "-n", "2", "--seed", "3", space_file)
    assert rc == 0, err
    assert out.count("# sample ") == 2
    assert re.search(r"^w = (8|16)$", out, re.M)
    assert re.search(r"^network/optional = (true|false)$", out, re.M)


def test_plain_sample_builds_nothing(capsys, space_file, monkeypatch):
    """Plain output prints configurations only: no architecture is built or hashed for it
    (`archdsl sample examples/nb201.arch -n 1000` took 38 s of CPU for the hashes)."""
    def refuse(*args, **kwargs):
        raise AssertionError("plain sample output built an architecture")

    monkeypatch.setattr(archdsl.Space, "materialize", refuse)
    rc, out, err = cli(capsys, "sample", "-n", "3", "--seed", "1", space_file)
    assert rc == 0, err
    assert re.findall(r"^# sample \d+$", out, re.M) == ["# sample 0", "# sample 1", "# sample 2"]


def test_version(capsys):
    from importlib.metadata import version

    rc, out, err = cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"archdsl {version('archdsl')}"


def test_fix_header_escapes_the_file_name(capsys, tmp_path):
    """A line break in a file name cannot add lines to the fixed .arch text."""
    bad = tmp_path / "a\nnetwork { x }\n.arch"
    bad.write_text(SPACE)
    cfg = tmp_path / "c.json"
    cfg.write_text('{"w": 8, "network/optional": false}')
    rc, out, err = cli(capsys, "fix", bad, "--config", cfg)
    assert rc == 0, err
    assert out.splitlines()[0].startswith("# every decision fixed; from ")
    assert "a\\nnetwork { x }\\n.arch" in out.splitlines()[0]
    space = archdsl.loads(out)
    assert space.count() == 1 and space.materialize({}).hash == \
        archdsl.load(bad).materialize(json.loads(cfg.read_text())).hash


def test_sample_per_decision_and_zero(capsys, space_file):
    rc, out, err = cli(capsys, "sample", "-n", "2", "--per-decision", "--json", space_file)
    assert rc == 0 and len(out.splitlines()) == 2
    rc, out, err = cli(capsys, "sample", "-n", "0", space_file)
    assert rc == 0 and out == ""


def test_fix_writes_a_space_of_one_architecture(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"w": 16, "network/optional": False}))
    out_file = tmp_path / "fixed.arch"
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg, "-o", out_file)
    assert rc == 0, err
    assert out_file.is_file()
    assert "Traceback" not in err
    rc, out, err = cli(capsys, "check", out_file)
    assert rc == 0, err
    assert "architectures: 1" in out
    rc, out, err = cli(capsys, "count", out_file)
    assert rc == 0 and out.splitlines()[-1] == "1"
    # the same architecture
    space = archdsl.load(space_file)
    fixed = archdsl.load(out_file)
    assert fixed.materialize(fixed.default()).hash == \
        space.materialize({"w": 16, "network/optional": False}).hash


def test_fix_to_stdout_from_a_sample_record(capsys, space_file, tmp_path):
    rc, out, err = cli(capsys, "sample", "-n", "1", "--seed", "5", "--json", space_file)
    rec = out.splitlines()[0]
    cfg = tmp_path / "rec.json"
    cfg.write_text(rec)  # a sample record: {"index": .., "config": {...}, ...} is accepted
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg)
    assert rc == 0, err
    fixed = archdsl.loads(out)
    assert fixed.count() == 1
    rc, out2, err = cli(capsys, "fix", space_file, "--config", cfg, "-o", "-")
    assert rc == 0 and out2 == out


def test_help_exits_0(capsys):
    rc, out, err = cli(capsys, "--help")
    assert rc == 0
    assert "check" in out and "count" in out and "sample" in out and "fix" in out


# ---------------------------------------------------------------------------------------------
# bad input: exit 1, a report, no traceback


def test_missing_file(capsys, tmp_path):
    p = tmp_path / "nope.arch"
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err)
    assert err.startswith("error: ") and "no such file" in err


def test_directory(capsys, tmp_path):
    rc, out, err = cli(capsys, "count", tmp_path)
    assert_user_error(rc, out, err)
    assert "directory" in err


@pytest.mark.parametrize("command", ["check", "count", "sample", "fix"])
def test_syntax_error(capsys, tmp_path, command):
    p = tmp_path / "bad.arch"
    p.write_text("input x: [4]\nnetwork { x -> linear(4 }\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}")
    extra = ["--config", cfg] if command == "fix" else []
    rc, out, err = cli(capsys, command, p, *extra)
    assert_user_error(rc, out, err, where=f"{p}:2:25")
    lines = err.splitlines()
    assert lines[1] == "    network { x -> linear(4 }"
    assert lines[2] == "    " + " " * 24 + "^"
    assert lines[3] == "hint: the '(' opened at 2:22 is not closed"
    assert out == ""


def test_unknown_layer(capsys, tmp_path):
    p = tmp_path / "bad.arch"
    p.write_text("input x: [4]\nnetwork { x -> conv2 (16) -> relu }\n")
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err, where=f"{p}:2:16")
    assert "unknown layer 'conv2'" in err
    assert "hint: did you mean 'conv2d'?" in err


def test_error_found_only_when_building(capsys, tmp_path):
    p = tmp_path / "bad.arch"
    p.write_text("input x: [3, 8, 8]\nnetwork { x -> conv2d(16, padding = smae) }\n")
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err, where=f"{p}:2:37")


def test_binary_file(capsys, tmp_path):
    p = tmp_path / "bin.arch"
    p.write_bytes(bytes(range(256)))
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err)


def test_non_utf8_file(capsys, tmp_path):
    p = tmp_path / "latin.arch"
    p.write_bytes(b"input x: [4]\n# caf\xe9\nnetwork { x -> relu }\n")
    rc, out, err = cli(capsys, "count", p)
    assert_user_error(rc, out, err, where=f"{p}:2:6")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "", "\ufeff{}", "null"])
def test_bad_config_json(capsys, space_file, tmp_path, text):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(text)
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg)
    assert_user_error(rc, out, err)
    assert out == ""


def test_config_file_missing(capsys, space_file, tmp_path):
    rc, out, err = cli(capsys, "fix", space_file, "--config", tmp_path / "nope.json")
    assert_user_error(rc, out, err)


def test_config_file_not_utf8(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_bytes(b'{"w": "\xff"}')
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg)
    assert_user_error(rc, out, err)


def test_config_with_unknown_decision(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"w": 8, "network/optional": True, "network/optinal": True}))
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg)
    assert_user_error(rc, out, err)
    assert "unknown decision 'network/optinal'" in err
    assert "did you mean 'network/optional'?" in err


def test_config_with_a_value_outside_the_domain(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"w": 12, "network/optional": True}))
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg)
    assert_user_error(rc, out, err, where=f"{space_file}:2:11")


def test_config_with_a_missing_decision(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"network/optional": True}))
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg)
    assert_user_error(rc, out, err, where=f"{space_file}:2:11")
    assert "no value for 'w'" in err


def test_unwritable_output_path(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"w": 8, "network/optional": True}))
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg,
                       "-o", "/nonexistent/dir/out.arch")
    assert_user_error(rc, out, err)
    assert err.startswith("error: cannot write /nonexistent/dir/out.arch")


def test_output_path_is_a_directory(capsys, space_file, tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"w": 8, "network/optional": True}))
    rc, out, err = cli(capsys, "fix", space_file, "--config", cfg, "-o", tmp_path)
    assert_user_error(rc, out, err)


@pytest.mark.parametrize("args", [
    ["frobnicate", "x.arch"],          # unknown subcommand
    ["count", "--bogus", "x.arch"],    # bad flag
    ["--bogus"],
    [],                                # no subcommand
    ["count"],                         # no file
    ["sample", "-n", "x", "x.arch"],   # not an integer
    ["fix", "x.arch"],                 # --config is required
    ["check", "--samples"],
], ids=lambda a: " ".join(a) or "(none)")
def test_usage_errors(capsys, args):
    rc, out, err = cli(capsys, *args)
    assert_user_error(rc, out, err)
    assert "usage:" in err


def test_negative_sample_count(capsys, space_file):
    rc, out, err = cli(capsys, "sample", "-n", "-1", space_file)
    assert_user_error(rc, out, err)


def test_space_with_no_architecture(capsys, tmp_path):
    p = tmp_path / "empty.arch"
    p.write_text("input x: [4]\nparam w = choice(1, 2)\nnetwork { x -> linear(w) }\n"
                 "require w > 2\n")
    for command in ("check", "sample"):
        rc, out, err = cli(capsys, command, p)
        assert_user_error(rc, out, err)


def test_too_deeply_nested(capsys, tmp_path):
    p = tmp_path / "deep.arch"
    p.write_text("input x: [4]\nparam w = " + "-" * 100_000 + "1\nnetwork { x -> linear(w) }\n")
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err)


def test_ten_megabyte_file(capsys, tmp_path):
    p = tmp_path / "big.arch"
    p.write_text("input x: [4]\nnetwork { x -> relu }\n" + ("#" * 1023 + "\n") * 10 * 1024)
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err)
    assert "1,000,000" in err


def test_bad_string_escape_is_a_report(capsys, tmp_path):
    p = tmp_path / "esc.arch"
    p.write_text('input x: [4]\nparam s = "\\x"\nnetwork { x -> relu }\n')
    rc, out, err = cli(capsys, "check", p)
    assert_user_error(rc, out, err, where=f"{p}:2:12")
    assert "unknown escape" in err


def test_count_too_large_to_print_is_a_report(capsys, tmp_path):
    p = tmp_path / "rec.arch"
    p.write_text("input x: [4]\nblock t max_depth 23 { one_of { relu | t -> t } }\n"
                 "network { x -> t }\n")
    try:
        rc, out, err = cli(capsys, "count", p)
    except Exception as e:  # noqa: BLE001 - the traceback the user would see
        pytest.fail(f"{type(e).__name__}: {e}")
    assert_user_error(rc, out, err)
    # a count of thousands of digits (Python's default limit is 4,300) prints in full
    p.write_text(p.read_text().replace("max_depth 23", "max_depth 16"))
    sys.set_int_max_str_digits(4300)
    n = archdsl.load(p).count()
    assert n.bit_length() > 4300 * 4
    sys.set_int_max_str_digits(0)
    for args, last in ((["count"], str(n)), (["count", "--json"], f'{{"count": {n}, '),
                       (["check"], f"  architectures: {n:,}")):
        sys.set_int_max_str_digits(4300)
        rc, out, err = cli(capsys, *args, p)
        sys.set_int_max_str_digits(0)
        assert rc == 0, err
        assert last in out, out[:200]


def test_fix_of_a_residual_around_nothing_checks(capsys, tmp_path):
    p = tmp_path / "res.arch"
    p.write_text("input x: [4]\nnetwork { x -> residual { optional { relu } } }\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"network/residual/optional": False}))
    out_file = tmp_path / "fixed.arch"
    rc, out, err = cli(capsys, "fix", p, "--config", cfg, "-o", out_file)
    assert rc == 0, err
    rc, out, err = cli(capsys, "check", out_file)
    assert rc == 0, err


def test_merge_of_the_same_tensor_twice_keeps_both_inputs():
    space = archdsl.loads("input x: [4]\ncell c {\n    input n0\n    n1 = concat(n0, n0)\n"
                          "    return n1\n}\nnetwork { x -> c }\n")
    arch = space.materialize(space.default())
    merge = next(n for n, d in arch.graph.nodes(data=True) if d["op"] == "concat")
    assert len(arch.graph.in_edges(merge)) == 2
    assert arch.predecessors(merge) == [0, 0]
    fixed = archdsl.loads(arch.to_arch())
    assert fixed.count() == 1
    assert fixed.materialize(fixed.default()).hash == arch.hash

    def cell_hash(body: str) -> str:
        sp = archdsl.loads(f"input x: [4]\ncell c {{\n    input n0\n{body}}}\n"
                           "network { x -> c }\n")
        return sp.materialize(sp.default()).hash

    twice = cell_hash("    n1 = add(n0, n0)\n    return n1\n")
    assert twice != cell_hash("    return n0\n")  # x + x is not x
    # an identity contracted away leaves x + x with both inputs
    assert twice == cell_hash("    n1 = identity(n0)\n    n2 = add(n0, n1)\n    return n2\n")
    # add commutes, concat does not, and the multiplicity of each input counts
    relu = "    n1 = relu(n0)\n"
    assert cell_hash(relu + "    n2 = add(n0, n1)\n    return n2\n") == \
        cell_hash(relu + "    n2 = add(n1, n0)\n    return n2\n")
    assert cell_hash(relu + "    n2 = concat(n0, n1)\n    return n2\n") != \
        cell_hash(relu + "    n2 = concat(n1, n0)\n    return n2\n")
    assert cell_hash(relu + "    n2 = concat(n1, n0, n1)\n    return n2\n") != \
        cell_hash(relu + "    n2 = concat(n1, n1, n0)\n    return n2\n")
    assert cell_hash(relu + "    n2 = add(n1, n0, n1)\n    return n2\n") != \
        cell_hash(relu + "    n2 = add(n1, n0, n0)\n    return n2\n")


# ---------------------------------------------------------------------------------------------
# the real command, in a subprocess


def _command() -> list[str]:
    exe = shutil.which("archdsl")
    return [exe] if exe else [sys.executable, "-m", "archdsl.cli"]


def test_subprocess_commands(space_file, tmp_path):
    def run(*args, cmd=None):
        return subprocess.run([*(cmd or _command()), *map(str, args)], capture_output=True,
                              text=True, timeout=60)

    r = run("count", space_file)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == str(COUNT)

    r = run("sample", "-n", "3", "--seed", "1", "--json", space_file,
            cmd=[sys.executable, "-m", "archdsl.cli"])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3
    assert all("config" in json.loads(line) for line in r.stdout.splitlines())

    bad = tmp_path / "bad.arch"
    bad.write_text("input x: [4]\nnetwork { x -> lienar(4) }\n")
    r = run("check", bad)
    assert r.returncode == 1
    assert r.stderr.startswith(f"{bad}:2:16: error: unknown layer 'lienar'")
    assert "Traceback" not in r.stdout + r.stderr

    r = run("frobnicate")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "error:" in r.stderr


@pytest.mark.parametrize("size, shown", [("2 ** 40", "5,497,558,138,880"),
                                         ("2 ** 4000", "about 10^1204")])
def test_a_default_too_big_to_build_is_an_error_in_check_and_compile(capsys, tmp_path, size,
                                                                        shown):
    p = tmp_path / "big.arch"
    p.write_text(f"input x: [4]\nnetwork {{ x -> linear({size}) }}\n")
    for args in (("check", str(p)), ("compile", str(p), "-o", str(tmp_path / "m.pt"))):
        rc, out, err = cli(capsys, *args)
        assert_user_error(rc, out, err, where=f"{p}:2:16")
        assert f"the network has {shown} parameters, more than the limit" in err
        assert len(err) < 1000  # a 1,205-digit count is not printed in full
    assert not (tmp_path / "m.pt").exists()
    rc, out, err = cli(capsys, "compile", str(p))  # the summary alone builds nothing
    assert rc == 0 and f"{shown} parameters" in out


def test_amount_is_exact_when_short_and_a_power_otherwise():
    from archdsl.errors import amount

    assert amount(1234) == "1,234"
    assert amount(10**15) == "about 10^15"
    assert amount(2**4000).startswith("about 10^1204")
    assert amount(2**20000) == "about 2^20000"  # past the digits int() may print


# --config read errors name the configuration, not a .arch file (QA)

@pytest.mark.parametrize("command", ["fix", "compile", "render"])
@pytest.mark.parametrize("make, words", [
    (lambda d: d, "is a folder, not a configuration file"),
    (lambda d: d / "missing.json", "cannot read the configuration: no such file"),
    (lambda d: Path("/dev/null"), "is a device, not a configuration file"),
    (lambda d: (d / "dup.json", (d / "dup.json").write_text('{"w": 8, "w": 16}'))[0],
     "cannot read the configuration: the key 'w' appears twice"),
    (lambda d: (d / "nan.json", (d / "nan.json").write_text('{"w": NaN}'))[0],
     "cannot read the configuration: NaN is not JSON"),
    (lambda d: (d / "bad.json", (d / "bad.json").write_text('{"w": 8,'))[0],
     "the configuration is not valid JSON"),
])
def test_config_read_errors_name_the_configuration(capsys, space_file, tmp_path, command,
                                                    make, words):
    config = make(tmp_path)
    extra = ["-o", tmp_path / "d.svg"] if command == "render" else []
    rc, out, err = cli(capsys, command, space_file, "--config", config, *extra)
    assert_user_error(rc, out, err)
    assert str(config) in err and words in err, err
    assert ".arch" not in err, err


def test_config_fifo_names_the_configuration(capsys, space_file, tmp_path):
    import os

    fifo = tmp_path / "c.json"
    os.mkfifo(fifo)
    rc, out, err = cli(capsys, "fix", space_file, "--config", fifo)
    assert_user_error(rc, out, err)
    assert f"{fifo}: is a FIFO, not a configuration file" in err, err


def test_arch_read_errors_still_name_a_arch_file(capsys, tmp_path):
    rc, out, err = cli(capsys, "check", tmp_path)
    assert_user_error(rc, out, err)
    assert f"{tmp_path}: is a folder, not a .arch file" in err, err
