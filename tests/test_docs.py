"""The docs cannot drift: every example in README.md and docs/*.md is extracted and run.

What is run, by the kind of fenced block:

- ```arch blocks, or blocks whose first line is `# NAME.arch ...`: written as NAME in a folder of
  their page and checked with `archdsl check`, which must accept them. A first line that says
  `(an error example)` means the opposite: the check must fail, and the page must show the
  message in a `$ archdsl check NAME` transcript (which is compared like any other). A first
  line that says `(abridged)` is checked but not written for the page's commands (the real file
  is in examples/). A first line that says `(a library` (a file with no network, which only
  other files may use) is not checked alone: another example of its page must import it. A
  first line that says `(with --ops MODULE)` is checked with that option (its operations come
  from the user's module, e.g. examples/gnn_ops.py, imported from the page's folder).
- Transcripts, text blocks with lines starting `$ `: each `$ archdsl ...` runs in the page's
  folder (a copy of examples/ plus the page's .arch blocks), in page order; the lines after it,
  up to the next `$`, are its output (stdout then stderr), compared exactly, and an output that
  holds an `error:` report must come with exit status 1 (else 0). `$ cat FILE` writes
  FILE with the lines shown (that is how a page shows a configuration file).
- Command blocks, whose lines start with `archdsl`, `python`, `pip`, `scripts/`...: each
  `archdsl ...` line (or `&&` part) runs and must exit 0; a set-up part (`scripts/setup.sh`)
  must exist; any other program is an error unless the block is marked not run.
- ```python blocks: run as a script, as written, in a subprocess in the page's folder.

A block that is deliberately not runnable has `<!-- not run: REASON -->` on the line just before
its fence (a synopsis, the test suite's own command). Other text blocks (output excerpts, the
format of a report) are not run, but an error report (`FILE:LINE:COL: error: ...`) must be shown
in a transcript, after the command that prints it.

Substitutions, the only ones: `archdsl search` runs with a budget of 1 trial (a `--resume` then
finds its budget spent: it reopens the study and shows it), and in a page that searches, the
folder's copy of examples/digits.arch trains 1 epoch instead of 5. A digits trial trains a
network for 10-15 s on 2 shared cores; what is checked is that the commands run and write what
the docs say (a new study: study.db, best.arch, best.py, best.json, best.svg, progress.png), not the
accuracy they reach.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from archdsl.backends.ops import OPS

from archdsl import user_ops
from archdsl.cli import main as archdsl_main
from archdsl.layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->")
ARCH_NAME = re.compile(r"#\s*(\S+\.arch)\b(.*)")
# a line that starts like a command (not `archdsl/` in a folder listing)
COMMAND = re.compile(r"^((archdsl|python3?|pip3?|bash|sh|git|sudo|apt-get|brew)( |$)"
                     r"|(scripts/|\./)\S+( |$)|[A-Z][A-Z0-9_]*=)")
SETUP = {"scripts/setup.sh"}  # set-up steps of a command line: checked to exist, not run here
SEARCH_BUDGET = "1"

# Examples that fail because of a bug someone else is fixing: (page, text in the block or
# command) -> the reason. strict: each turns into a failure once fixed; then drop its entry.
KNOWN_BUGS: dict[tuple[str, str], str] = {
}


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, from 1
    info: str
    lines: list[str]
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def arch_name(self) -> tuple[str, str] | None:
        """(file name, the rest of the first line) for an .arch example."""
        m = ARCH_NAME.match(self.lines[0]) if self.lines else None
        if m and (self.info in ("arch", "")):
            return m.group(1), m.group(2)
        if self.info == "arch":
            raise AssertionError(f"{self.where}: an arch block starts with `# NAME.arch`")
        return None

    def kind(self) -> str:
        if self.not_run:
            return "not run"
        if self.info == "python":
            return "python"
        if self.arch_name():
            return "arch"
        if any(x.startswith("$ ") for x in self.lines):
            return "transcript"
        if any(COMMAND.match(x) for x in self.lines):
            return "commands"
        return "text"


def read_blocks(page: str, text: str | None = None) -> list[Block]:
    """The fenced blocks of a page (of `text`, if given), each with its not-run marker."""
    lines = (text if text is not None else (ROOT / page).read_text("utf-8")).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not re.match(r"^```\s*$", lines[j]):
            j += 1
        before = next((x for x in reversed(lines[:i]) if x.strip()), "")
        marker = NOT_RUN.search(before)
        blocks.append(Block(page, i + 1, m.group(1), lines[i + 1:j],
                            marker.group(1) if marker else None))
        i = j + 1
    return blocks


BLOCKS = {page: read_blocks(page) for page in PAGES}


def known_bug(page: str, text: str) -> str | None:
    return next((why for (p, s), why in KNOWN_BUGS.items() if p == page and s in text), None)


def params(kind: str) -> list:
    out = []
    for page, blocks in BLOCKS.items():
        for b in blocks:
            if b.kind() != kind:
                continue
            why = known_bug(page, b.text)
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            out.append(pytest.param(b, id=b.where, marks=marks))
    return out


# ---------------------------------------------------------------------------------------------
# running archdsl


def run_archdsl(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `archdsl ARGV` in cwd; (exit status, stdout + stderr). In process (fast), except
    `search`, which starts worker processes and trains: a subprocess of its own."""
    if argv[:1] == ["search"]:
        argv = search_argv(argv)
        r = subprocess.run([sys.executable, "-m", "archdsl.cli", *argv], cwd=cwd,
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "COLUMNS": "100"})
        return r.returncode, r.stdout + r.stderr
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), _own_ops():
            try:
                rc = archdsl_main(argv)
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 1
    finally:
        os.chdir(old)
    return rc, out.getvalue() + err.getvalue()


@contextlib.contextmanager
def _own_ops() -> Iterator[None]:
    """What an in-process command's --ops modules register (their layers and backend
    operations, the modules themselves) is taken back afterwards, as a separate process would
    forget it: a later example's "unknown layer" stays unknown. What archdsl's own modules
    register when first imported stays."""
    layers, ops, path = dict(LAYERS), dict(OPS), list(sys.path)
    modules, registered = set(sys.modules), dict(user_ops._REGISTERED)
    try:
        yield
    finally:
        for module in set(user_ops._REGISTERED) - set(registered):
            for name in user_ops._REGISTERED[module]:
                for registry, before in ((LAYERS, layers), (OPS, ops)):
                    if name in before:
                        registry[name] = before[name]
                    else:
                        registry.pop(name, None)
            parts = module.split(".")  # the module and the packages it brought in
            for name in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
                if name not in modules:
                    sys.modules.pop(name, None)
        user_ops._REGISTERED.clear()
        user_ops._REGISTERED.update(registered)
        sys.path[:] = path


def search_argv(argv: list[str]) -> list[str]:
    """The search with a budget of one trial: see the module docstring."""
    budget = SEARCH_BUDGET
    if "--budget" in argv:
        argv = list(argv)
        argv[argv.index("--budget") + 1] = budget
        return argv
    return [*argv, "--budget", budget]


def page_folder(page: str, root: Path) -> Path:
    """The page's folder: a copy of examples/ and the page's .arch examples, made once."""
    folder = root / page.replace("/", "_")
    if folder.exists():
        return folder
    shutil.copytree(ROOT / "examples", folder / "examples")
    blocks = BLOCKS[page]
    for b in blocks:
        name = b.arch_name() if b.kind() == "arch" else None
        if name and "(abridged)" not in name[1]:
            path = folder / name[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(b.text, "utf-8")
    if any("archdsl search" in x for b in blocks if b.kind() != "not run" for x in b.lines):
        digits = folder / "examples" / "digits.arch"
        text = digits.read_text("utf-8")
        assert re.search(r"epochs\s*=\s*5\b", text), "digits.arch no longer trains 5 epochs"
        digits.write_text(re.sub(r"(epochs\s*=\s*)5\b", r"\g<1>1", text, count=1), "utf-8")
    return folder


@pytest.fixture(scope="module")
def docs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs")


def compare(where: str, command: str, expected: list[str], rc: int, output: str) -> None:
    shown = "\n".join(expected).rstrip()
    got = "\n".join(x.rstrip() for x in output.splitlines()).rstrip()
    want_rc = 1 if any(re.match(r"^(\S+:\d+:\d+: )?error: ", x) for x in expected) else 0
    assert rc == want_rc, f"{where}: `{command}` exited {rc}, not {want_rc}:\n{output}"
    if expected:
        assert got == shown, (f"{where}: `{command}` printed\n{got}\n--- the page shows\n{shown}")


# ---------------------------------------------------------------------------------------------
# the tests


def test_every_page_has_runnable_examples():
    kinds = {page: {b.kind() for b in blocks} for page, blocks in BLOCKS.items()}
    assert "arch" in kinds["docs/language.md"] and "transcript" in kinds["docs/language.md"]
    assert "python" in kinds["README.md"] and "commands" in kinds["README.md"]


def test_blocks_are_told_apart():
    page = """intro
```arch
# a.arch
input x: [4]
```
<!-- not run: a synopsis of the options -->
```
archdsl render FILE [--space]
```
```
$ archdsl count a.arch
1
```
```
archdsl count a.arch    # a comment
```
```python
print(1)
```
```
archdsl/    the core
a.arch:1:1: error: the format of a report
```
"""
    kinds = [(b.line, b.kind()) for b in read_blocks("x.md", page)]
    assert kinds == [(2, "arch"), (7, "not run"), (10, "transcript"), (14, "commands"),
                     (17, "python"), (20, "text")]
    assert read_blocks("x.md", page)[1].not_run == "a synopsis of the options"


def test_not_run_markers_are_few_and_say_why():
    marked = [b for blocks in BLOCKS.values() for b in blocks if b.not_run]
    assert len(marked) <= 6, [b.where for b in marked]
    for b in marked:
        assert len(b.not_run or "") >= 10, f"{b.where}: say why it is not run"


def test_error_reports_are_shown_with_their_command():
    """A report `FILE:LINE:COL: error: ...` is shown after the `$ archdsl ...` that prints it
    (and the file it is about), so that it is run and compared like any output."""
    for blocks in BLOCKS.values():
        for b in blocks:
            if b.kind() == "text" and b.lines and re.match(r"^\S+:\d+:\d+: error: ", b.lines[0]):
                raise AssertionError(f"{b.where}: show the command before the report "
                                     "(`$ archdsl check NAME`), or mark it <!-- not run: why -->")


@pytest.mark.parametrize("block", params("arch"))
def test_arch_example_checks(block: Block, docs_root: Path) -> None:
    name, rest = block.arch_name() or ("", "")
    folder = page_folder(block.page, docs_root)
    if "(abridged)" in rest:
        path = folder / "abridged" / Path(name).name
        path.parent.mkdir(exist_ok=True)
        path.write_text(block.text, "utf-8")
        name = str(path.relative_to(folder))
    if "(a library" in rest:
        users = [b for b in BLOCKS[block.page] if b is not block and b.kind() == "arch"
                 and re.search(r'^\s*(import|from)\s+"' + re.escape(name) + '"', b.text, re.M)]
        assert users, f"{block.where}: no example of the page imports the library {name}"
        return
    ops = re.search(r"\(with --ops (\S+)\)", rest)
    rc, output = run_archdsl(["check", name, *(["--ops", ops.group(1)] if ops else [])], folder)
    if "(an error example)" in rest:
        assert rc == 1, f"{block.where}: {name} is an error example, but it checks:\n{output}"
        shows = [x for b in BLOCKS[block.page] if b.kind() == "transcript" for x in b.lines
                 if x.startswith("$ ") and shlex.split(x[2:])[:2] == ["archdsl", "check"]
                 and name in shlex.split(x[2:])]
        assert shows, f"{block.where}: show the error with `$ archdsl check {name}`"
    else:
        assert rc == 0, f"{block.where}: {name} does not check:\n{output}"


def transcript_steps(block: Block) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for x in block.lines:
        if x.startswith("$ "):
            steps.append((x[2:], []))
        elif steps:
            steps[-1][1].append(x)
        else:
            raise AssertionError(f"{block.where}: a transcript starts with `$ command`")
    return steps


def transcript_params() -> list:
    """Every transcript; pages' transcripts run in page order (a later one may use a file an
    earlier one wrote)."""
    return params("transcript")


@pytest.mark.parametrize("block", transcript_params())
def test_transcript(block: Block, docs_root: Path) -> None:
    folder = page_folder(block.page, docs_root)
    for command, expected in transcript_steps(block):
        argv = shlex.split(command, comments=True)
        if argv[0] == "cat" and len(argv) == 2:
            (folder / argv[1]).write_text("\n".join(expected) + "\n", "utf-8")
            continue
        assert argv[0] == "archdsl", f"{block.where}: only archdsl and cat run: `{command}`"
        rc, output = run_archdsl(argv[1:], folder)
        compare(block.where, command, expected, rc, output)


def command_params() -> list:
    out = []
    for page, blocks in BLOCKS.items():
        for b in blocks:
            if b.kind() != "commands":
                continue
            for k, x in enumerate(b.lines):
                if not x.strip() or x.lstrip().startswith("#"):
                    continue
                why = known_bug(page, x)
                marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
                out.append(pytest.param(b, x, id=f"{b.where}+{k + 1}", marks=marks))
    return out


@pytest.mark.parametrize(("block", "line"), command_params())
def test_command(block: Block, line: str, docs_root: Path) -> None:
    folder = page_folder(block.page, docs_root)
    assert COMMAND.match(line), (
        f"{block.where}: `{line}` is not a command: show output in a `$ archdsl ...` transcript, "
        "or mark the block <!-- not run: why -->")
    for part in line.split("&&"):
        argv = shlex.split(part, comments=True)
        if not argv:
            continue
        if argv[0] in SETUP:
            assert (ROOT / argv[0]).is_file() and os.access(ROOT / argv[0], os.X_OK), argv[0]
            continue
        assert argv[0] == "archdsl", (
            f"{block.where}: `{part.strip()}` is not an archdsl command: make it one, or mark the "
            "block <!-- not run: why -->")
        if argv[1:2] == ["render"] and shutil.which("dot") is None and not line.endswith(".dot"):
            pytest.skip("graphviz's dot is not installed (scripts/setup.sh installs it)")
        rc, output = run_archdsl(argv[1:], folder)
        assert rc == 0, f"{block.where}: `{part.strip()}` exited {rc}:\n{output}"
        if argv[1:2] == ["search"] and "--resume" not in argv:
            study = folder / "studies" / Path(argv[2]).stem
            if "--study" in argv:
                study = folder / argv[argv.index("--study") + 1]
            written = {p.name for p in study.iterdir()}
            assert {"study.db", "best.arch", "best.py", "best.json", "best.svg",
                    "progress.png"} <= written


@pytest.mark.parametrize("block", params("python"))
def test_python_snippet(block: Block, docs_root: Path) -> None:
    folder = page_folder(block.page, docs_root)
    script = folder / f"snippet_{block.line}.py"
    script.write_text(block.text, "utf-8")
    r = subprocess.run([sys.executable, script.name], cwd=folder, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"{block.where} fails as a script:\n{r.stdout}\n{r.stderr}"


# ---------------------------------------------------------------------------------------------
# the set-up: the README's first command and .ci/run install the same way, dot included


def test_readme_and_ci_set_up_with_the_same_script():
    quick = next(b for b in BLOCKS["README.md"] if b.kind() == "commands")
    assert quick.lines[0].startswith("scripts/setup.sh && archdsl search "), quick.lines
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    assert "scripts/setup.sh" in ci, "CI must install with the README's set-up script"
    setup = (ROOT / "scripts" / "setup.sh").read_text("utf-8")
    assert setup.index("torch==2.13.0") < setup.index('".[dev,dask]"'), "torch's CPU build first"


def fake_machine(tmp_path: Path, *, os_name: str = "Linux", uid: int = 1000,
                 tools: tuple[str, ...] = ()) -> tuple[Path, dict[str, str]]:
    """A copy of scripts/setup.sh and a PATH of stand-ins that log their arguments: python (pip),
    uname, id, and the given tools (apt-get, sudo, brew, dot)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "log"
    stubs = {"python": "", "uname": f"echo {os_name}", "id": f"echo {uid}",
             **{t: "" for t in tools}}
    for name, body in stubs.items():
        (bin_ / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n{body}\n')
        (bin_ / name).chmod(0o755)
    for name in ("cat", "dirname"):
        os.symlink(shutil.which(name) or f"/bin/{name}", bin_ / name)
    return repo, {"PATH": str(bin_), "HOME": str(tmp_path)}


def run_setup(repo: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    r = subprocess.run(["/bin/bash", str(repo / "scripts" / "setup.sh")], env=env,
                       capture_output=True, text=True, timeout=60)
    log = Path(env["HOME"]) / "log"
    calls = [x for x in log.read_text().splitlines() if not x.startswith(("uname", "id"))] \
        if log.exists() else []
    return r, calls


PIP = ["python -m pip install torch==2.13.0", 'python -m pip install -e .[dev,dask]']


def test_setup_installs_dot_with_apt_get_as_root(tmp_path: Path) -> None:
    repo, env = fake_machine(tmp_path, uid=0, tools=("apt-get",))
    r, calls = run_setup(repo, env)
    assert r.returncode == 0, r.stderr
    assert calls == ["apt-get update -qq", "apt-get install -y -qq graphviz", *PIP]


def test_setup_uses_password_less_sudo(tmp_path: Path) -> None:
    repo, env = fake_machine(tmp_path, tools=("apt-get", "sudo"))
    r, calls = run_setup(repo, env)
    assert r.returncode == 0, r.stderr
    assert calls[:3] == ["sudo -n true", "sudo apt-get update -qq",
                         "sudo apt-get install -y -qq graphviz"] and calls[3:] == PIP


def test_setup_uses_brew_on_macos(tmp_path: Path) -> None:
    repo, env = fake_machine(tmp_path, os_name="Darwin", tools=("brew",))
    r, calls = run_setup(repo, env)
    assert r.returncode == 0, r.stderr
    assert calls == ["brew install graphviz", *PIP]


def test_setup_says_what_to_do_where_it_cannot_install_dot(tmp_path: Path) -> None:
    repo, env = fake_machine(tmp_path)  # not root, no sudo, no apt-get, no brew
    r, calls = run_setup(repo, env)
    assert r.returncode == 0, r.stderr
    assert calls == PIP  # the rest of the set-up goes on
    assert "graphviz's `dot` is not installed" in r.stderr
    assert "sudo apt-get install graphviz" in r.stderr and "brew install graphviz" in r.stderr


def test_setup_leaves_an_installed_dot_alone(tmp_path: Path) -> None:
    repo, env = fake_machine(tmp_path, uid=0, tools=("apt-get", "dot"))
    r, calls = run_setup(repo, env)
    assert r.returncode == 0, r.stderr
    assert calls == PIP
