"""`archdsl supernet`, `--evaluator supernet:CHECKPOINT` and `archdsl compile --weights-from`
from the command line: a real (short) training on digits, a search and an export with the
inherited weights, and every bad input one clear error (exit 1, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from archdsl.cli import main
from archdsl.study import Study

ROOT = Path(__file__).resolve().parent.parent
SPACE = """input image: [1, 8, 8]
network {
    image
    -> conv2d(choice(4, 8), kernel = choice(1, 3), padding = same) -> batchnorm -> relu
    -> global_avg_pool
    -> linear(10)
}
train { batch = 64  epochs = 1 }
"""


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`archdsl supernet s.arch -o ck.pt` on digits (the default data), 6 steps."""
    folder = tmp_path_factory.mktemp("cli_supernet")
    (folder / "s.arch").write_text(SPACE)
    rc = main(["supernet", str(folder / "s.arch"), "--strategy", "spos", "--epochs", "1",
               "--max-steps", "6", "--device", "cpu", "--threads", "1", "--quiet",
               "-o", str(folder / "ck.pt")])
    assert rc == 0
    return folder / "ck.pt"


def test_supernet_trains_on_digits_by_default_and_writes_a_checkpoint(ckpt: Path,
                                                                     capsys) -> None:
    saved = torch.load(ckpt, weights_only=True)
    assert saved["meta"]["data"] == "digits" and saved["meta"]["steps"] == 6
    assert saved["meta"]["strategy"] == "spos"


def test_search_with_inherited_weights(ckpt: Path, capsys) -> None:
    folder = ckpt.parent
    rc = main(["search", str(folder / "s.arch"), "--evaluator", f"supernet:{ckpt}",
               "--budget", "3", "--study", str(folder / "st"), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "wrote" in out
    with Study.open(folder / "st") as st:
        assert st.meta()["evaluator"] == f"supernet:{ckpt}"
        assert st.meta()["searcher"] == "evolution"  # the default with inherited weights
        trials = st.trials()
        assert len(trials) == 3  # the objective is minus the inherited validation loss
        assert all(t.objective == -t.metrics["valid_loss"] < 0 for t in trials)
        assert all(0 <= t.metrics["accuracy"] <= 1 for t in trials)
    # resuming names the checkpoint again (it names the data it reads)
    resume = ["search", "--study", str(folder / "st"), "--resume", "--budget", "4", "--quiet"]
    assert main(resume) == 1
    assert f"--evaluator supernet:{ckpt}" in capsys.readouterr().err
    assert main([*resume, "--evaluator", f"supernet:{ckpt}"]) == 0
    with Study.open(folder / "st") as st:
        assert len(st.trials()) == 4


def test_search_by_inherited_accuracy(ckpt: Path, capsys) -> None:
    folder = ckpt.parent
    rc = main(["search", str(folder / "s.arch"), "--evaluator", f"supernet:{ckpt}",
               "--budget", "3", "--study", str(folder / "acc"), "--quiet",
               "--objective", "maximize:accuracy"])
    assert rc == 0, capsys.readouterr().err
    with Study.open(folder / "acc") as st:
        best = st.best(1)[0]
        assert best.metrics["accuracy"] == max(t.metrics["accuracy"] for t in st.trials())


def test_a_study_scored_by_inherited_accuracy_is_not_resumed(ckpt: Path, capsys) -> None:
    """A study from before the objective became minus the loss (its trials' objective is
    their accuracy) is refused on resume, unchanged: old and new scores do not compare."""
    import sqlite3

    folder = ckpt.parent
    run = ["search", str(folder / "s.arch"), "--evaluator", f"supernet:{ckpt}", "--quiet"]
    assert main([*run, "--budget", "2", "--study", str(folder / "old")]) == 0
    with sqlite3.connect(folder / "old" / "study.db") as con:  # as the earlier archdsl wrote them
        for tid, metrics in con.execute("SELECT id, metrics FROM trials").fetchall():
            con.execute("UPDATE trials SET objective = ? WHERE id = ?",
                        (json.loads(metrics)["accuracy"], tid))
    con.close()
    capsys.readouterr()
    resume = ["search", "--study", str(folder / "old"), "--resume", "--budget", "3", "--quiet",
              "--evaluator", f"supernet:{ckpt}"]
    assert main(resume) == 1
    err = capsys.readouterr().err
    assert "scored its trials by their inherited accuracy" in err and "Traceback" not in err
    with Study.open(folder / "old") as st:
        assert len(st.trials()) == 2
    # a study of this archdsl resumes
    assert main([*run, "--budget", "1", "--study", str(folder / "new")]) == 0
    assert main([*resume[:2], str(folder / "new"), *resume[3:]]) == 0


def test_compile_with_weights_from_the_supernet(ckpt: Path, capsys) -> None:
    folder = ckpt.parent
    cfg = folder / "cfg.json"
    cfg.write_text(json.dumps({"network/conv2d/out": 8, "network/conv2d/kernel": 3}))
    rc = main(["compile", str(folder / "s.arch"), "--config", str(cfg), "--weights-from",
               str(ckpt), "-o", str(folder / "m.pt")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "wrote" in err and (folder / "m.pt").is_file()
    rc = main(["compile", str(folder / "s.arch"), "--weights-from", str(ckpt), "-o",
               str(folder / "m.py")])
    err = capsys.readouterr().err
    assert rc == 1 and "--weights-from writes the inherited weights" in err


@pytest.mark.parametrize("args, message", [
    (["--strategy", "enas"], "unknown strategy 'enas'"),
    (["--strategy", "darts", "--sandwich"], "--sandwich is a rule of --strategy spos"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--data", "missing.npz"], "was not found"),
    (["--device", "tpu"], "unknown device"),
])
def test_bad_supernet_commands(ckpt: Path, capsys, args: list[str], message: str) -> None:
    folder = ckpt.parent
    rc = main(["supernet", str(folder / "s.arch"), "--quiet", "-o", str(folder / "bad.pt"),
               *args])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err
    assert not (folder / "bad.pt").exists()


def test_a_checkpoint_of_another_space_is_one_error(ckpt: Path, capsys) -> None:
    folder = ckpt.parent
    (folder / "other.arch").write_text(SPACE.replace("choice(4, 8)", "choice(4, 16)"))
    rc = main(["search", str(folder / "other.arch"), "--evaluator", f"supernet:{ckpt}",
               "--budget", "1", "--study", str(folder / "st_other"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "trained on another space" in err and "Traceback" not in err
    rc = main(["compile", str(folder / "other.arch"), "--weights-from", str(ckpt), "-o",
               str(folder / "o.pt")])
    err = capsys.readouterr().err
    assert rc == 1 and "trained on another space" in err


def test_a_configuration_of_another_space_is_one_error(ckpt: Path, capsys) -> None:
    folder = ckpt.parent
    cfg = folder / "bad_cfg.json"
    cfg.write_text(json.dumps({"network/conv2d/out": 8, "network/conv2d/kernel": 3,
                               "width": 16}))
    rc = main(["compile", str(folder / "s.arch"), "--config", str(cfg), "--weights-from",
               str(ckpt), "-o", str(folder / "c.pt")])
    err = capsys.readouterr().err
    assert rc == 1 and "width" in err and "Traceback" not in err


def test_darts_prints_the_derived_configuration(ckpt: Path, capsys) -> None:
    folder = ckpt.parent
    (folder / "d.arch").write_text(SPACE.replace("choice(4, 8)", "8"))  # equal shapes
    rc = main(["supernet", str(folder / "d.arch"), "--strategy", "darts", "--max-steps", "4",
               "--device", "cpu", "--quiet", "-o", str(folder / "d.pt")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    derived = json.loads(out)
    assert set(derived) == {"network/conv2d/kernel"} and derived["network/conv2d/kernel"] in (1, 3)
    (folder / "derived.json").write_text(out)
    rc = main(["compile", str(folder / "d.arch"), "--config", str(folder / "derived.json"),
               "--weights-from", str(folder / "d.pt"), "-o", str(folder / "d_model.pt")])
    assert rc == 0, capsys.readouterr().err
    rc = main(["supernet", str(folder / "s.arch"), "--strategy", "darts", "--quiet", "-o",
               str(folder / "bad_darts.pt")])
    err = capsys.readouterr().err
    assert rc == 1 and "s.arch:4:" in err and "different shapes" in err
