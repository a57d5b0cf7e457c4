"""User operations from the command line (issue 16, item 1): `--ops MODULE` and
`[tool.archdsl] ops` in the working folder's pyproject.toml import a module that registers
operations before the space is loaded, in the search's process and in every worker; a study
keeps the modules and a resume imports them only when the user names them again; every bad
module or setting is one error, exit 1, no traceback, nothing written."""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest
from archdsl.backends import ops as backend_ops

import archdsl
from archdsl import ArchDSLError
from archdsl.cli import main
from archdsl.layers import LAYERS
from archdsl.runner import search
from archdsl.user_ops import _REGISTERED, import_ops, project_ops

OP_MODULE = '''
import archdsl
from archdsl.backends.pytorch import register_op
from torch import nn


class Gate(nn.Module):
    """Multiplies its input by `by`."""

    def __init__(self, in_shape, by=2):
        super().__init__()
        self.by = by

    def forward(self, x):
        return x * self.by


register_op("gate", Gate, shape=lambda in_shape, by=2: in_shape,
            args=[archdsl.ArgSpec("by", "int", 2)])
'''

# an nb201-style cell whose edges choose among built-in operations and the user's `gate`
SPACE = '''input image: [3, 8, 8]
op edge = one_of {
    skip_connect: identity
  | nor_conv_3x3: relu_conv_bn(3)
  | gate_2: gate(by = 2)
  | gate_3: gate(by = 3)
}
cell small_cell {
    input n0
    n1 = edge(n0)
    n2 = edge(n0) + edge(n1)
    return n2
}
network {
    image -> conv2d(4, kernel = 3, padding = 1) -> small_cell -> global_avg_pool -> linear(10)
}
'''

# the score of an nb201-style function evaluator; it runs the network (so the worker has the
# user's class) and counts the edges that are the user's gate
EVALUATOR = '''
import torch
from archdsl.backends import pytorch


def score(arch):
    out = pytorch.build(arch)(torch.ones(2, 3, 8, 8))
    assert out.shape == (2, 10)
    return float(sum(str(v).startswith("gate") for v in arch.config.values()))
'''


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The working folder (tmp_path) with space.arch; the names of an operations module and
    an evaluator module written there, unique to the test. The registries, sys.path and
    sys.modules are put back afterwards."""
    monkeypatch.chdir(tmp_path)
    tag = uuid.uuid4().hex[:8]
    mod, ev = f"userops_{tag}", f"userev_{tag}"
    (tmp_path / f"{mod}.py").write_text(OP_MODULE)
    (tmp_path / f"{ev}.py").write_text(EVALUATOR)
    (tmp_path / "space.arch").write_text(SPACE)
    layers, ops, path = dict(LAYERS), dict(backend_ops.OPS), list(sys.path)
    for registry in (LAYERS, backend_ops.OPS):  # registered by another test (docs/backend.md)
        registry.pop("gate", None)
    yield tmp_path, mod, ev
    for registry, saved in ((LAYERS, layers), (backend_ops.OPS, ops)):
        registry.clear()
        registry.update(saved)
    sys.path[:] = path
    for name in [n for n in sys.modules if n.endswith(tag)]:
        del sys.modules[name]
        _REGISTERED.pop(name, None)


def gate_config() -> None:
    """cfg.json: the default configuration with the first edge the user's gate(by = 3)."""
    cfg = archdsl.load("space.arch").default()
    cfg["network/small_cell/n1/edge"] = "gate_3"
    Path("cfg.json").write_text(json.dumps(cfg))


def write_module(folder: Path, body: str) -> str:
    name = f"m_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(body)
    return name


def fails(capsys: pytest.CaptureFixture, argv: list[str], *words: str) -> str:
    """`archdsl ARGV` exits 1 with one report holding `words`, no traceback."""
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def trials(study: Path) -> list[tuple[int, str]]:
    db = sqlite3.connect(study / "study.db")
    try:
        return db.execute("SELECT id, status FROM trials ORDER BY id").fetchall()
    finally:
        db.close()


# ---- every command that reads a .arch file ---------------------------------------------
def test_without_ops_the_operation_is_unknown(work, capsys) -> None:
    fails(capsys, ["check", "space.arch"], "unknown layer 'gate'")


def test_check_count_sample_fix_with_ops(work, capsys) -> None:
    _, mod, _ = work
    assert main(["check", "space.arch", "--ops", mod]) == 0
    assert "space.arch: ok" in capsys.readouterr().out
    assert main(["count", "space.arch", "--ops", mod]) == 0
    assert capsys.readouterr().out.strip() == str(4 ** 3)
    assert main(["sample", "space.arch", "--ops", mod, "-n", "3", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    gate_config()
    assert main(["fix", "space.arch", "--ops", mod, "--config", "cfg.json"]) == 0
    assert "gate(x1, by = 3)" in capsys.readouterr().out


def test_compile_with_ops_writes_a_model_that_imports_the_users_class(work, capsys) -> None:
    _, mod, _ = work
    import_ops([mod])
    gate_config()
    assert main(["compile", "space.arch", "--ops", mod, "--config", "cfg.json", "--json",
                 "-o", "model.py"]) == 0
    assert '"params"' in capsys.readouterr().out
    assert f"from {mod} import Gate" in Path("model.py").read_text()


def test_render_with_ops(work, capsys) -> None:
    _, mod, _ = work
    assert main(["render", "space.arch", "--ops", mod, "--space", "-o", "net.dot"]) == 0
    assert "gate" in Path("net.dot").read_text()


def test_the_pyproject_table_names_the_modules(work, capsys) -> None:
    folder, mod, _ = work
    (folder / "pyproject.toml").write_text(f'[project]\nname = "x"\n\n[tool.archdsl]\n'
                                           f'ops = ["{mod}"]\n')
    assert project_ops() == [mod]
    assert main(["check", "space.arch"]) == 0
    assert main(["check", "space.arch", "--ops", mod]) == 0  # named twice: imported once


def test_a_pyproject_without_the_table_or_unrelated_and_broken_is_ignored(tmp_path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ruff]\nline-length = 100\n')
    assert project_ops(tmp_path) == []
    (tmp_path / "pyproject.toml").write_text('[project\nname = "broken"\n')
    assert project_ops(tmp_path) == []  # it never mentions archdsl: not parsed
    assert project_ops(tmp_path / "nowhere") == []


# ---- bad modules and settings ------------------------------------------------------------
def test_a_module_that_cannot_be_found(work, capsys) -> None:
    fails(capsys, ["check", "space.arch", "--ops", "no_such_ops_module"],
          "error: operations module 'no_such_ops_module': no such module in the working "
          "folder", "hint: operations modules are named with --ops MODULE")


def test_a_module_that_raises_on_import(work, capsys) -> None:
    folder = work[0]
    name = write_module(folder, "x = 1 / 0\n")
    fails(capsys, ["count", "space.arch", "--ops", name],
          f"operations module '{name}': importing it raised ZeroDivisionError: division by zero")
    name = write_module(folder, "import no_such_dependency_xyz\n")
    fails(capsys, ["sample", "space.arch", "--ops", name],
          f"'{name}': importing it raised ModuleNotFoundError: No module named "
          "'no_such_dependency_xyz'")
    name = write_module(folder, "import sys\nsys.exit(3)\n")
    fails(capsys, ["compile", "space.arch", "--ops", name], "raised SystemExit: 3")
    name = write_module(folder, "def broken(:\n")
    fails(capsys, ["check", "space.arch", "--ops", name], "raised SyntaxError")


def test_a_module_that_registers_nothing(work, capsys) -> None:
    name = write_module(work[0], "X = 1\n")
    for _ in range(2):  # the second time it is already imported: still refused
        fails(capsys, ["check", "space.arch", "--ops", name],
              f"operations module '{name}' registers no operation", "register_op")


def test_a_name_that_is_no_module_name(work, capsys) -> None:
    _, mod, _ = work
    fails(capsys, ["check", "space.arch", "--ops", f"{mod}.py"],
          f"'{mod}.py' is not a module name", f"hint: name the module as Python imports it: "
          f"--ops {mod}")
    fails(capsys, ["check", "space.arch", "--ops", "../x"], "'../x' is not a module name")
    fails(capsys, ["check", "space.arch", "--ops", ""], "'' is not a module name")


@pytest.mark.parametrize("table, words", [
    ('[tool.archdsl]\nops = "gate_ops"\n', "[tool.archdsl] ops must be a list of module names"),
    ('[tool.archdsl]\nops = [1]\n', "[tool.archdsl] ops must be a list of module names"),
    ('[tool.archdsl]\nop = ["x"]\n', "[tool.archdsl] has no setting 'op'"),
    ('[tool.archdsl]\nops = ["a/b"]\n', "[tool.archdsl] ops: 'a/b' is not a module name"),
    ('[tool.archdsl]\nops = ["x"\n', "cannot read its [tool.archdsl] table"),
    ('[tool]\narchdsl = 3\n', "[tool.archdsl] must be a table"),
    ('[tool.archdsl]\nops = ["no_such_ops_module"]\n', "'no_such_ops_module': no such module"),
])
def test_a_bad_pyproject_table(work, capsys, table: str, words: str) -> None:
    (work[0] / "pyproject.toml").write_text(table)
    err = fails(capsys, ["check", "space.arch"], words)
    assert err.count("error:") == 1


def test_import_ops_in_python(work) -> None:
    _, mod, _ = work
    with pytest.raises(ArchDSLError, match="not a module name"):
        import_ops(["a-b"])
    import_ops([mod])
    assert "gate" in LAYERS


# ---- search: the driver and every worker ---------------------------------------------------
def test_a_search_with_two_workers_imports_the_ops_in_each(work, capsys) -> None:
    folder, mod, ev = work
    study = folder / "st"
    assert main(["search", "space.arch", "--ops", mod, "--evaluator", f"{ev}:score",
                 "--workers", "2", "--budget", "4", "--searcher", "random", "--study",
                 str(study), "--quiet"]) == 0
    assert "4 trials (4 ok, 0 failed)" in capsys.readouterr().out
    assert f"from {mod} import Gate" in (study / "best.py").read_text() or \
        "gate" not in (study / "best.arch").read_text()
    # resuming: the study names the module; it is imported only when named again
    fails(capsys, ["search", "--study", str(study), "--resume", "--evaluator", f"{ev}:score",
                   "--budget", "6", "--quiet"],
          f"was searched with the operations of the module '{mod}'",
          f"--resume --ops {mod}`", "a study folder may come from anyone")
    assert len(trials(study)) == 4 and all(s == "ok" for _, s in trials(study))
    assert main(["search", "--study", str(study), "--resume", "--evaluator", f"{ev}:score",
                 "--ops", mod, "--budget", "6", "--quiet", "--workers", "2"]) == 0
    assert len(trials(study)) == 6 and all(s == "ok" for _, s in trials(study))
    capsys.readouterr()
    # export reads the study's space: it needs the module too (forgotten here first)
    LAYERS.pop("gate")
    backend_ops.OPS.pop("gate")
    del sys.modules[mod]
    fails(capsys, ["export", "--study", str(study), "--best", "-o", "b.arch"],
          f"the operations of the module '{mod}': Python code it names, which exporting would "
          f"import", f"hint: if you trust it, add `--ops {mod}` to the command")
    assert not Path("b.arch").exists()
    assert main(["export", "--study", str(study), "--best", "-o", "b.arch", "--ops", mod]) == 0


def test_an_evaluator_module_that_registers_the_op_works_in_the_workers(work, capsys) -> None:
    """The first bullet of issue 16: a worker loaded the space before importing the evaluator
    module, so `--evaluator mod:fn` failed in the workers even when mod registers the op."""
    folder, mod, ev = work
    both = write_module(folder, OP_MODULE + EVALUATOR)
    assert main(["search", "space.arch", "--evaluator", f"{both}:score", "--workers", "2",
                 "--budget", "2", "--searcher", "random", "--study", "st", "--quiet"]) == 0


def test_a_bad_module_leaves_no_study(work, capsys) -> None:
    folder, mod, ev = work
    bad = write_module(folder, "raise RuntimeError('no')\n")
    fails(capsys, ["search", "space.arch", "--ops", bad, "--evaluator", f"{ev}:score",
                   "--study", "st", "--quiet"], "importing it raised RuntimeError: no")
    # a module that imports in the search's process but not in a worker
    worker_only = write_module(folder, OP_MODULE.replace(
        "import archdsl\n", "import archdsl\nimport sys\nif sys.argv[:1] == ['-c']:\n"
        "    raise RuntimeError('not in a worker')\n"))
    fails(capsys, ["search", "space.arch", "--ops", worker_only, "--evaluator", f"{ev}:score",
                   "--workers", "2", "--study", "st", "--quiet"],
          f"a worker could not start: operations module '{worker_only}': importing it raised "
          "RuntimeError: not in a worker")
    assert not (folder / "st").exists()


def test_resume_never_imports_a_module_from_inside_the_study(work, capsys,
                                                             monkeypatch) -> None:
    folder, mod, ev = work
    study = folder / "st"
    search("space.arch", evaluator=f"{ev}:score", budget=2, searcher="random",
           study_dir=study, ops=[mod]).study.close()
    planted = write_module(study, OP_MODULE)
    monkeypatch.chdir(study)
    with pytest.raises(ArchDSLError, match=f"'{planted}' would be imported from .*inside the "
                       "study folder"):
        search(study_dir=study, resume=True, evaluator=f"{ev}:score", ops=[mod, planted],
               budget=3)
    assert planted not in sys.modules
    fails(capsys, ["export", "--study", str(study), "--best", "-o", str(folder / "b.arch"),
                   "--ops", mod, "--ops", planted], "inside the study folder")
    assert planted not in sys.modules


def test_a_corrupt_stored_ops_setting(work) -> None:
    folder, mod, ev = work
    study = folder / "st"
    search("space.arch", evaluator=f"{ev}:score", budget=1, searcher="random",
           study_dir=study, ops=[mod]).study.close()
    db = sqlite3.connect(study / "study.db")
    db.execute("UPDATE meta SET value = ? WHERE key = 'ops'", ('["../evil"]',))
    db.commit()
    db.close()
    with pytest.raises(ArchDSLError, match="the setting 'ops' is corrupt"):
        search(study_dir=study, resume=True, evaluator=f"{ev}:score", ops=[mod], budget=2)


def test_a_worker_that_cannot_restart_leaves_no_running_trial(work, capsys) -> None:
    """Issue 16's first bullet: a worker replaced mid-search that cannot start ended the search
    with its other trials left `running`; they are now `interrupted` (run again on resume)."""
    folder, mod, _ = work
    flaky = write_module(folder, OP_MODULE.replace(
        "import archdsl\n", "import archdsl\nimport os\nimport sys\n"
        "if sys.argv[:1] == ['-c'] and os.path.exists('marker'):\n"
        "    raise RuntimeError('the second start fails')\n") + '''

def die(arch):
    open("marker", "w").close()
    os._exit(3)
''')
    fails(capsys, ["search", "space.arch", "--ops", flaky, "--evaluator", f"{flaky}:die",
                   "--workers", "2", "--budget", "4", "--searcher", "random", "--study", "st",
                   "--quiet"], "a worker could not start", "the second start fails")
    statuses = [s for _, s in trials(folder / "st")]
    assert statuses and "running" not in statuses and "failed" in statuses
