"""Reading .arch files and imports as untrusted input (issue 11, items 1, 3 and 5).

Imports stay inside the main file's folder (or --import-path folders), read only regular `.arch`
files, never block and never read more than the size limit; an error about a file that is not
.arch text quotes none of it; every such mistake is a located error and exit status 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchDSLError, ArchImportError, ArchSyntaxError
from archdsl.cli import main
from archdsl.sources import MAX_SOURCE_BYTES

ROOT = Path(__file__).resolve().parent.parent
NET = "input x: [4]\nnetwork { x -> b }\n"
SECRET = "hunter2-the-secret"


def run_cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """The `archdsl` command in a fresh process (a hang fails the test instead of blocking)."""
    return subprocess.run([sys.executable, "-m", "archdsl.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def assert_report(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 1 with a compiler-style report and no traceback."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def import_error(tmp_path: Path, spec: str, **kw) -> ArchDSLError:
    main_file = tmp_path / "main.arch"
    main_file.write_text(f'import "{spec}"\nblock b {{ relu }}\n{NET}')
    with pytest.raises(ArchDSLError) as ei:
        archdsl.load(main_file, **kw)
    return ei.value


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/proj (the main file's folder) with lib/ok.arch, next to tmp/outside/lib.arch and
    tmp/outside/secret.txt."""
    proj, out = tmp_path / "proj", tmp_path / "outside"
    (proj / "lib").mkdir(parents=True)
    out.mkdir()
    (proj / "lib" / "ok.arch").write_text("block b { relu }\n")
    (out / "lib.arch").write_text("block b { tanh }\n")
    (out / "secret.txt").write_text(f"{SECRET}\n")
    return proj


# ---- where an import may point -----------------------------------------------------------


@pytest.mark.parametrize("spec", [
    "/etc/passwd", "/etc/shadow", "/proc/kmsg", "/proc/self/environ", "//etc/passwd.arch",
    "../outside/lib.arch", "lib/../../outside/lib.arch", "./../outside/lib.arch",
    "../outside/secret.txt", "../../../../../../../../etc/passwd",
])
def test_import_outside_the_tree_is_refused(tree, spec):
    main_file = tree / "main.arch"
    main_file.write_text(f'import "{spec}"\n{NET}')
    with pytest.raises(ArchImportError) as ei:
        archdsl.load(main_file)
    err = ei.value
    assert (err.span.file, err.span.line, err.span.column) == (str(main_file), 1, 1)
    assert "cannot import" in err.message
    assert SECRET not in err.format() and "root:" not in err.format()


def test_import_inside_the_tree_is_fine(tree):
    main_file = tree / "main.arch"
    main_file.write_text(f'import "lib/ok.arch"\n{NET}')
    assert archdsl.load(main_file).count() == 1
    (tree / "lib" / "up.arch").write_text('import "../lib/ok.arch"\n')  # `..` that stays inside
    main_file.write_text(f'import "lib/up.arch"\nimport "lib/ok.arch"\n{NET}')
    assert archdsl.load(main_file).count() == 1


def test_import_paths_allow_another_folder(tree):
    outside = tree.parent / "outside"
    main_file = tree / "main.arch"
    main_file.write_text(f'import "lib.arch"\n{NET}')  # found in the import path
    assert archdsl.load(main_file, import_paths=[outside]).count() == 1
    main_file.write_text(f'import "../outside/lib.arch"\n{NET}')
    assert archdsl.load(main_file, import_paths=[str(outside)]).count() == 1
    space = archdsl.loads(f'import "lib.arch"\n{NET}', import_paths=[outside], base_dir=tree)
    assert space.count() == 1
    # still regular .arch files only, even there
    main_file.write_text(f'import "secret.txt"\n{NET}')
    err = import_error(tree, "secret.txt", import_paths=[outside])
    assert "only .arch files" in err.message and SECRET not in err.format()


def test_missing_import_path_folder(tree):
    with pytest.raises(ArchImportError, match="no such folder"):
        archdsl.load(tree / "lib" / "ok.arch", import_paths=[tree / "nope"])


def test_cli_import_path(tree):
    main_file = tree / "main.arch"
    main_file.write_text(f'import "lib.arch"\n{NET}')
    assert_report(run_cli("check", main_file), "main.arch:1:1: error: cannot import")
    ok = run_cli("count", main_file, "--import-path", tree.parent / "outside")
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1] == "1", ok.stderr


def test_symlink_out_of_the_tree_is_refused(tree):
    (tree / "link.arch").symlink_to(tree.parent / "outside" / "lib.arch")
    err = import_error(tree, "link.arch")
    assert isinstance(err, ArchImportError) and "outside" in err.message


def test_symlink_to_a_file_that_is_not_arch_is_refused(tree):
    (tree / "notes.txt").write_text(f"{SECRET}\n")
    (tree / "notes.arch").symlink_to(tree / "notes.txt")
    err = import_error(tree, "notes.arch")
    assert isinstance(err, ArchImportError) and "not to a .arch file" in err.message
    assert SECRET not in err.format()


def test_symlink_inside_the_tree_is_fine(tree):
    (tree / "alias.arch").symlink_to(tree / "lib" / "ok.arch")
    main_file = tree / "main.arch"
    main_file.write_text(f'import "alias.arch"\n{NET}')
    assert archdsl.load(main_file).count() == 1


def test_main_file_behind_a_symlink_imports_from_its_real_folder(tree, tmp_path):
    (tree / "main.arch").write_text(f'import "lib/ok.arch"\n{NET}')
    (tmp_path / "elsewhere.arch").symlink_to(tree / "main.arch")
    assert archdsl.load(tmp_path / "elsewhere.arch").count() == 1


@pytest.mark.parametrize("spec, words", [
    ("notes.txt", "only .arch files"),
    ("lib", "only .arch files"),
    ("lib.arch", "is a folder"),
])
def test_only_regular_arch_files(tree, spec, words):
    (tree / "notes.txt").write_text(f"{SECRET}\n")
    (tree / "lib.arch").mkdir()
    err = import_error(tree, spec)
    assert isinstance(err, ArchImportError) and words in err.message, err.format()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["..", ".", "lib", "ok.arch", "x.arch", "", "outside",
                                 "lib.arch", "proc"]), min_size=1, max_size=6),
       st.booleans())
def test_any_import_path_stays_inside(tree, parts, absolute):
    """Whatever the path, an import either reads a file of the tree or is a located error."""
    spec = ("/" if absolute else "") + "/".join(parts)
    main_file = tree / "main.arch"
    main_file.write_text(f'import "{spec}"\n{NET}')
    try:
        space = archdsl.load(main_file)
    except ArchDSLError as e:
        assert e.span is not None and e.span.file == str(main_file), e.format()
        return
    real_tree = os.path.realpath(tree)
    assert all(f.startswith(real_tree + os.sep) for f in space.ir.files), space.ir.files


# ---- what is read, and how ---------------------------------------------------------------


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    assert_report(run_cli("check", fifo, timeout=30), "FIFO", "regular file")
    (tmp_path / "main.arch").write_text(f'import "pipe.arch"\n{NET}')
    assert_report(run_cli("check", tmp_path / "main.arch", timeout=30),
                  "main.arch:1:1: error: cannot import 'pipe.arch'", "FIFO")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_device_is_refused_without_reading():
    assert_report(run_cli("check", "/dev/zero", timeout=30), "device", "regular file")


def test_proc_file_with_size_zero_is_read_at_most_to_the_limit(tmp_path):
    """A regular file whose size says 0 is still read only up to the limit (never without
    bound, never blocking); /proc/self/status is one, and it is not .arch text."""
    proc = Path("/proc/self/status")
    if not proc.exists():
        pytest.skip("no /proc")
    assert_report(run_cli("check", proc, timeout=30), "/proc/self/status:1:")


def test_oversized_file_reads_only_the_limit(tmp_path, monkeypatch):
    read = []
    real_read = os.read

    def counting_read(fd, n):
        data = real_read(fd, n)
        read.append(len(data))
        return data

    big = tmp_path / "big.arch"
    big.write_text("#" * (3 * MAX_SOURCE_BYTES))
    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(ArchDSLError, match="larger than 1,000,000 bytes"):
        archdsl.load(big)
    assert sum(read) == MAX_SOURCE_BYTES + 1


# ---- errors are located reports, and quote only .arch text -------------------------------


def test_symlink_loop(tmp_path):
    (tmp_path / "loop.arch").symlink_to(tmp_path / "loop.arch")
    err = import_error(tmp_path, "loop.arch")
    assert isinstance(err, ArchImportError) and "loop of symbolic links" in err.message
    assert err.span.line == 1 and err.span.column == 1


def test_import_name_too_long(tmp_path):
    err = import_error(tmp_path, "a" * 300 + ".arch")
    assert isinstance(err, ArchImportError) and "too long" in err.message
    assert err.span.line == 1 and len(err.message) < 200


def test_nul_in_import_path(tmp_path):
    err = import_error(tmp_path, "a\\u0000b.arch")
    assert isinstance(err, ArchImportError) and "NUL" in err.message
    assert err.span.line == 1 and err.span.column == 1


@pytest.mark.parametrize("spec", ["loop.arch", "a" * 300 + ".arch", "a\\u0000b.arch",
                                  "/etc/passwd"])
def test_import_mistakes_in_the_cli(tmp_path, spec):
    (tmp_path / "loop.arch").symlink_to(tmp_path / "loop.arch")
    (tmp_path / "main.arch").write_text(f'import "{spec}"\nblock b {{ relu }}\n{NET}')
    assert_report(run_cli("check", tmp_path / "main.arch"), "main.arch:1:1: error: cannot import")


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "block b { relu }\n"])
def test_file_without_network(tmp_path, text, capsys):
    p = tmp_path / "lib.arch"
    p.write_text(text)
    with pytest.raises(ArchSyntaxError, match="no `network` section") as ei:
        archdsl.load(p)
    assert "may only be imported" in ei.value.message and ei.value.span.file == str(p)
    assert main(["check", str(p)]) == 1
    assert "error: this file has no `network` section" in capsys.readouterr().err


@pytest.mark.parametrize("lib", sorted((ROOT / "examples" / "lib").glob("*.arch")),
                         ids=lambda p: p.name)
def test_example_libraries_are_a_report(lib, capsys):
    for command in ("check", "count", "sample", "compile"):
        assert main([command, str(lib)]) == 1
        err = capsys.readouterr().err
        assert f"{lib}:" in err and "no `network` section" in err, err


def test_error_in_a_file_that_is_not_arch_quotes_nothing(tmp_path, capsys):
    secret = tmp_path / "shadow"
    secret.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    assert main(["check", str(secret)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{secret}:1:1: error: not .arch text") and SECRET not in err, err
    assert len(err.splitlines()) == 2 and err.splitlines()[1].startswith("hint: ")


def test_error_in_arch_text_with_another_name_still_quotes_once_it_parsed(tmp_path, capsys):
    p = tmp_path / "space.txt"
    p.write_text("input x: [4]\nnetwork { x -> linear(4 }\n")
    assert main(["check", str(p)]) == 1
    err = capsys.readouterr().err
    assert "network { x -> linear(4 }" in err and "^" in err, err


def test_binary_import_quotes_nothing(tmp_path):
    (tmp_path / "bin.arch").write_bytes(b"block b { relu }\n\xff\xfe" + SECRET.encode())
    err = import_error(tmp_path, "bin.arch")
    assert isinstance(err, ArchSyntaxError) and "not UTF-8" in err.message
    assert err.span.file == str(tmp_path / "bin.arch") and err.span.line == 2
    assert SECRET not in err.format()


def test_configuration_files_are_read_like_sources(tmp_path):
    """--config: regular files only, never blocking, never past the limit, nesting reported."""
    from archdsl import ConfigError
    from archdsl.space import read_config

    fifo = tmp_path / "c.json"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        read_config(fifo)
    if Path("/dev/zero").exists():
        with pytest.raises(ConfigError, match="device"):
            read_config("/dev/zero")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_config(deep)


# a main file that is a symbolic link is judged by its real target (issue 11 item 1, QA)

LINKED_COMMANDS = [("check",), ("count",), ("sample", "-n", "1"), ("compile",), ("fix",),
                   ("render",), ("search",)]


def _command(args: tuple[str, ...], file: Path, tmp_path: Path) -> list[str]:
    extra = {"render": ["-o", str(tmp_path / "d.svg")],
             "fix": ["--config", str(tmp_path / "c.json")],
             "search": ["--budget", "1", "--study", str(tmp_path / "study")]}
    return [args[0], str(file), *args[1:], *extra.get(args[0], [])]


@pytest.mark.parametrize("args", LINKED_COMMANDS, ids=lambda a: a[0])
def test_main_file_linked_to_a_file_that_is_not_arch_quotes_nothing(tmp_path, capsys, args):
    (tmp_path / "c.json").write_text("{}")
    (tmp_path / "shadow").write_text(f"{SECRET}:19000:0:99999:7:::\nsecond {SECRET}\n")
    link = tmp_path / "sh.arch"
    link.symlink_to(tmp_path / "shadow")
    assert main(_command(args, link, tmp_path)) == 1
    out, err = capsys.readouterr()
    assert "hunter2" not in out + err and "19000" not in out + err, out + err
    assert err.startswith(f"{link}:1:1: error: not .arch text"), err
    assert not (tmp_path / "study").exists() and not (tmp_path / "d.svg").exists()


def test_main_file_linked_to_a_non_arch_file_in_a_real_process(tmp_path):
    (tmp_path / "notes.txt").write_text(f"{SECRET}\n")
    (tmp_path / "sh.arch").symlink_to(tmp_path / "notes.txt")
    proc = run_cli("check", tmp_path / "sh.arch")
    assert_report(proc, "sh.arch:1:1: error: not .arch text")
    assert "hunter2" not in proc.stdout + proc.stderr


def test_main_file_linked_through_links_to_an_arch_file_quotes_it(tmp_path, capsys):
    (tmp_path / "real.arch").write_text("input x: [4]\nnetwork { x -> linear(4 }\n")
    (tmp_path / "mid.arch").symlink_to(tmp_path / "real.arch")
    (tmp_path / "top.txt").symlink_to(tmp_path / "mid.arch")
    assert main(["check", str(tmp_path / "top.txt")]) == 1
    assert "network { x -> linear(4 }" in capsys.readouterr().err


_TEXT = st.lists(st.sampled_from(list("ab (){}\n:=->#\"4") + ["input ", "network ", "x", "relu",
                                                            "block ", "[4]", SECRET]),
                 max_size=30).map("".join)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT)
def test_a_link_reports_what_its_target_reports(tmp_path, capsys, text):
    """Whatever the target holds, `check link.arch` says what `check target` says (with the
    link's name): a link never makes a file that is not .arch quotable."""
    target = tmp_path / "target.txt"
    target.write_text(text)
    link = tmp_path / "link.arch"
    if not link.is_symlink():
        link.symlink_to(target)
    rc_target = main(["check", str(target)])
    by_target = capsys.readouterr()
    rc_link = main(["check", str(link)])
    by_link = capsys.readouterr()
    assert rc_link == rc_target
    assert by_link.err == by_target.err.replace("target.txt", "link.arch")
    if rc_link == 1 and "not .arch text" in by_link.err:
        assert "hunter2" not in by_link.err


# --config: strict JSON, and errors that name the configuration (QA)

@pytest.mark.parametrize("text, words", [
    ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
    ('{"config": {"w": 8, "w": 16}}', "the key 'w' appears twice"),
    ('{"a": [{"b": {"c": 1, "c": 1}}]}', "the key 'c' appears twice"),
    ('{"a": NaN}', "NaN is not JSON"),
    ('{"a": Infinity}', "Infinity is not JSON"),
    ('{"a": [-Infinity]}', "-Infinity is not JSON"),
    ('{"a": 1e400}', "1e400 is too large to be a float"),
    ('{"a": -1E999}', "-1E999 is too large to be a float"),
    ('{"a": ' + "7" * 4301 + "}", "an integer of 4,301 digits"),
])
def test_configuration_is_strict_json(tmp_path, text, words):
    from archdsl import ConfigError
    from archdsl.space import read_config

    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        read_config(p)
    assert ei.value.message.startswith(f"{p}: cannot read the configuration: "), ei.value.message
    assert words in ei.value.message, ei.value.message


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(max_size=5), st.recursive(
           st.integers() | st.dictionaries(st.text(max_size=5), st.integers(), min_size=1),
           lambda inner: st.lists(inner, min_size=1, max_size=3)
           | st.dictionaries(st.text(max_size=5), inner, min_size=1, max_size=3),
           max_leaves=10), min_size=1, max_size=3),
       st.data())
def test_a_duplicate_key_at_any_depth_is_named(tmp_path, doc, data):
    """Any JSON object, at any depth, given a key twice: a ConfigError naming that key."""
    import json

    from archdsl import ConfigError
    from archdsl.space import read_config

    objects = []

    def collect(v):
        if isinstance(v, dict):
            objects.append(v)
            for x in v.values():
                collect(x)
        elif isinstance(v, list):
            for x in v:
                collect(x)

    collect(doc)
    victim = data.draw(st.sampled_from(objects))
    key = data.draw(st.sampled_from(sorted(victim)))
    marker = "\ue000dup\ue000"
    victim[marker] = 0
    text = json.dumps(doc).replace(json.dumps(marker) + ": 0", json.dumps(key) + ": 1")
    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        read_config(p)
    assert f"the key {key!r} appears twice" in ei.value.message, (text, ei.value.message)
    del victim[marker]
    p.write_text(json.dumps(doc))
    assert read_config(p) == (doc["config"] if isinstance(doc.get("config"), dict) else doc)
