"""`archdsl search`, `status` and `export` as a user runs them, kill -9 and Ctrl-C included."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl.study import Study

ROOT = Path(__file__).resolve().parents[1]
EV = "_search_evaluators:score"  # resuming a module:function study names it again
NB201 = str(ROOT / "examples" / "nb201.arch")
TESTS = str(ROOT / "tests")


def _cli(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": TESTS, "ARCHDSL_TEST_SLEEP": "0.3"}
    return subprocess.Popen([sys.executable, "-m", "archdsl.cli", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ok_trials(study: Path) -> int:
    if not (study / "study.db").exists():
        return 0
    db = sqlite3.connect(study / "study.db", timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM trials WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _wait_for(study: Path, n: int, proc: subprocess.Popen, limit: float = 120) -> None:
    t0 = time.monotonic()
    while _ok_trials(study) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < limit, "no trials finished in time"
        time.sleep(0.2)


def test_search_status_export(tmp_path: Path, capsys) -> None:
    study = tmp_path / "s"
    assert main(["search", NB201, "--evaluator", "_search_evaluators:score", "--budget", "6",
                 "--study", str(study), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "6 trials (6 ok, 0 failed)" in out.out and "rank" in out.out
    for name in ("best.arch", "best.py", "best.json", "best.svg", "progress.png"):
        assert (study / name).stat().st_size > 0
        assert f"wrote {study / name}" in out.out  # where the results are, on stdout
    assert (study / "progress.png").read_bytes()[:4] == b"\x89PNG"
    assert (study / "best.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    fixed = archdsl.load(study / "best.arch")
    assert fixed.count() == 1
    best = json.loads((study / "best.json").read_text())
    assert main(["status", "--study", str(study), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"ok": 6}
    assert status["best"][0]["config"] == best["config"]
    assert status["best"][0]["objective"] == max(t["objective"] for t in status["best"])
    for suffix in (".arch", ".py", ".json", ".onnx", ".pt"):
        out_file = tmp_path / f"best{suffix}"
        assert main(["export", "--study", str(study), "--best", "-o", str(out_file)]) == 0
        assert out_file.stat().st_size > 0
        assert f"wrote {out_file} (trial {best['trial']}" in capsys.readouterr().out
    assert json.loads((tmp_path / "best.json").read_text()) == best["config"]
    assert main(["export", "--study", str(study), "--trial", "2", "-o",
                 str(tmp_path / "t2.json")]) == 0
    compile(Path(tmp_path / "best.py").read_text(), "best.py", "exec")


@pytest.mark.parametrize("args, message", [
    (["search", NB201, "--searcher", "randm"], "unknown searcher 'randm'"),
    (["search", NB201, "--evaluator", "nb2O1"], "unknown evaluator 'nb2O1'"),
    (["search", NB201, "--budget", "0"], "--budget must be at least 1"),
    (["search", NB201, "--workers", "0"], "--workers must be at least 1"),
    (["search", NB201, "--workers", "100000", "--budget", "1"], "--workers 100000 is too many"),
    *[(["search", NB201, f"{option}={value}"], f"{option} must be a positive number of seconds")
      for option in ("--time", "--trial-timeout") for value in ("nan", "inf", "-inf", "0", "-1")],
    (["search", "--resume"], "--resume needs --study"),
    (["status", "--study", "nowhere"], "no study in nowhere"),
    (["export", "--study", "nowhere", "--best", "-o", "x.tflite"], "cannot export to 'x.tflite'"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, monkeypatch, capsys, args: list[str],
                                      message: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "studies").exists()  # nothing made


def test_resume_refuses_a_changed_file(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "space.arch"
    f.write_text(Path(NB201).read_text())
    assert main(["search", "space.arch", "--evaluator", "_search_evaluators:score",
                 "--budget", "2", "--quiet"]) == 0  # default study folder: studies/space
    f.write_text(f.read_text().replace("# nb201.arch", "# edited nb201.arch"))
    capsys.readouterr()
    assert main(["search", "space.arch", "--resume", "--evaluator", EV, "--budget", "3", "--quiet"]) == 1
    assert "has changed since the study began" in capsys.readouterr().err
    assert main(["search", "space.arch", "--resume", "--evaluator", EV, "--budget", "3", "--quiet",
                 "--allow-changed"]) == 0
    with Study.open(tmp_path / "studies" / "space") as st:
        assert len(st.trials("ok")) == 3


def test_kill_9_loses_no_finished_trial(tmp_path: Path) -> None:
    study = tmp_path / "k"
    proc = _cli(tmp_path, "search", NB201, "--evaluator", "_search_evaluators:slow",
                "--budget", "200", "--study", str(study), "--quiet")
    try:
        _wait_for(study, 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    with Study.open(study) as st:
        kept = [(t.id, t.config, t.objective) for t in st.trials("ok")]
    assert len(kept) >= 3
    proc = _cli(tmp_path, "search", "--study", str(study), "--resume",
                "--evaluator", "_search_evaluators:slow",
                "--budget", str(len(kept) + 2), "--quiet")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    with Study.open(study) as st:
        ok = st.trials("ok")
        assert [(t.id, t.config, t.objective) for t in ok][:len(kept)] == kept
        assert len({t.arch_hash for t in ok}) == len(ok) == len(kept) + 2


def test_ctrl_c_ends_cleanly_and_keeps_the_trials(tmp_path: Path) -> None:
    study = tmp_path / "c"
    proc = _cli(tmp_path, "search", NB201, "--evaluator", "_search_evaluators:slow",
                "--budget", "200", "--study", str(study), "--quiet", "--workers", "2")
    try:
        _wait_for(study, 2, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "interrupted; finished trials are kept" in err and "Traceback" not in err
    with Study.open(study) as st:
        counts = st.counts()
        assert counts["ok"] >= 2 and "running" not in counts


def test_export_pt_weights_follow_the_seed(tmp_path: Path, capsys) -> None:
    import torch

    study = tmp_path / "s"
    assert main(["search", NB201, "--evaluator", "_search_evaluators:score", "--budget", "2",
                 "--study", str(study), "--quiet"]) == 0
    weights = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        out = tmp_path / f"{name}.pt"
        assert main(["export", "--study", str(study), "--trial", "1", "-o", str(out),
                     "--seed", seed]) == 0
        weights.append(torch.jit.load(str(out)).state_dict())
    same = [torch.equal(weights[0][k], weights[1][k]) for k in weights[0]]
    other = [torch.equal(weights[0][k], weights[2][k]) for k in weights[0]]
    assert all(same) and not all(other)


SPACE = """from "lib/blocks.arch" import head
input x: [16]
param w = choice(32, 64, 128)
network { x -> linear(w) -> relu -> head() }
"""
BLOCKS = "block head() { linear(10) }\n"


def test_the_study_keeps_its_sources(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.arch").write_text(BLOCKS)
    (tmp_path / "space.arch").write_text(SPACE)
    assert main(["search", "space.arch", "--evaluator", "_search_evaluators:score",
                 "--searcher", "grid", "--budget", "3", "--quiet", "--study", "s"]) == 0
    copy = tmp_path / "s" / "space"
    assert (copy / "space.arch").read_text() == SPACE
    assert (copy / "lib" / "blocks.arch").read_text() == BLOCKS
    with Study.open(tmp_path / "s") as st:
        wide = next(t.id for t in st.trials() if t.config["w"] == 128)
    # the original is edited (128 no longer a choice), then its import deleted
    (tmp_path / "space.arch").write_text(SPACE.replace(", 128", ""))
    (tmp_path / "lib" / "blocks.arch").unlink()
    capsys.readouterr()
    assert main(["export", "--study", "s", "--trial", str(wide), "-o", "wide.arch"]) == 0
    assert "out = 128" in (tmp_path / "wide.arch").read_text()
    assert main(["status", "--study", "s"]) == 0
    # resuming on the changed original is refused; with --allow-changed the copy follows it
    (tmp_path / "lib" / "blocks.arch").write_text(BLOCKS)
    capsys.readouterr()
    assert main(["search", "--study", "s", "--resume", "--evaluator", EV, "--budget", "4", "--quiet"]) == 1
    assert "has changed since the study began" in capsys.readouterr().err
    assert main(["search", "--study", "s", "--resume", "--evaluator", EV, "--budget", "4", "--quiet",
                 "--allow-changed"]) == 0
    assert (copy / "space.arch").read_text() == SPACE.replace(", 128", "")
    assert main(["export", "--study", "s", "--trial", str(wide), "-o", "wide.arch"]) == 1
    err = capsys.readouterr().err
    assert f"trial {wide} does not fit the study's space" in err and "Traceback" not in err


def test_the_leaderboard_shows_the_evaluators_metrics(tmp_path: Path, capsys) -> None:
    with Study.create(tmp_path / "s", {"space_file": NB201, "space_hash": "h",
                                       "searcher": "random", "evaluator": "nb201",
                                       "seed": 0}) as st:
        for i, (valid, test) in enumerate([(80.5, 91.25), (84.0, 93.76)]):
            tid = st.start({"i": i}, f"hash{i}", "h", "random")
            st.finish(tid, valid, {"params": 1000 + i, "flops": 5, "cost": 200.0,
                                   "c10_valid_200": valid + 5, "c10_test_200": test}, None,
                      0.1)
    capsys.readouterr()
    assert main(["status", "--study", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "rank" in line)
    for column in ("c10_valid_12", "c10_valid_200", "c10_test_200", "cost", "params"):
        assert column in header
    first = next(line for line in out.splitlines() if "hash1" in line)
    assert "93.76" in first and "89" in first and "1,001" in first


def test_a_users_evaluators_metrics_are_shown_too(tmp_path: Path, capsys) -> None:
    with Study.create(tmp_path / "s", {"space_file": NB201, "space_hash": "h",
                                       "searcher": "random", "evaluator": "mine:score",
                                       "seed": 0}) as st:
        tid = st.start({}, "abc", "h", "random")
        st.finish(tid, 0.5, {"params": 3, "flops": 4, "latency_ms": 12.5, "note": "x",
                             "[red]markup[/]": 1}, None, 0.1)
    capsys.readouterr()
    assert main(["status", "--study", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "latency_ms" in out and "12.5" in out and "note" not in out
    assert "[red]markup[/]" in out  # shown as stored, not read as rich markup


def test_resume_shows_the_best_so_far_at_once(tmp_path: Path, capsys) -> None:
    from archdsl.cli_search import _Bar

    study = tmp_path / "s"
    assert main(["search", NB201, "--evaluator", "_search_evaluators:score", "--budget", "3",
                 "--study", str(study), "--quiet"]) == 0
    with Study.open(study) as st:
        best = st.best(1)[0].objective
    seen: list[float | None] = []

    class Bar(_Bar):
        def start(self, done: int, budget: int | None, seconds: float | None,
                  best: float | None = None) -> None:
            seen.append(best)
            super().start(done, budget, seconds, best)

    from archdsl.runner import search

    search(study_dir=study, resume=True, evaluator=EV, budget=4, progress=Bar(quiet=False)).study.close()
    assert seen == [best]
    assert f"best {best:.4g}" in capsys.readouterr().err


def test_progress_png_shows_every_value_with_whole_trial_numbers(tmp_path: Path) -> None:
    from archdsl.study_view import progress_figure

    with Study.create(tmp_path / "s", {"space_file": NB201, "space_hash": "h",
                                       "searcher": "random", "evaluator": "nb201",
                                       "seed": 0}) as st:
        for i, value in enumerate([0.5, 0.2, 0.9]):
            tid = st.start({"i": i}, f"h{i}", "h", "random")
            st.finish(tid, value, {"cost": 3000.0}, None, 0.01)
        fig = progress_figure(st)
    by_trial, by_time = fig.axes
    low, high = by_trial.get_ylim()
    assert low < 0.2 and high > 0.9  # not from the first trial's value up
    assert by_time.get_ylim() == (low, high)
    assert all(float(x).is_integer() for x in by_trial.get_xticks())
    assert "simulated" in by_time.get_xlabel() and "hours" in by_time.get_xlabel()
    assert by_time.get_xlim()[1] > 2.4  # three trials of 3000 simulated seconds: 2.5 hours


def test_progress_png_title_shows_stored_names_as_text(tmp_path: Path) -> None:
    from archdsl.study_view import plot

    name = "a$\\frac$\x1b[2J.arch"  # mathtext and a terminal escape in a stored file name
    with Study.create(tmp_path / "s", {"space_file": name, "space_hash": "h",
                                       "searcher": "random", "evaluator": "nb201",
                                       "seed": 0}) as st:
        tid = st.start({"i": 0}, "h0", "h", "random")
        st.finish(tid, 0.5, {}, None, 0.01)
        assert plot(st, tmp_path / "p.png") == tmp_path / "p.png"  # no ValueError from mathtext
    import matplotlib.pyplot as plt

    from archdsl.study_view import progress_figure

    with Study.open(tmp_path / "s") as st:
        title = progress_figure(st)._suptitle.get_text()
    plt.close("all")
    assert title.startswith("a$\\frac$\\x1b[2J.arch: random search")


def test_two_searches_started_together_on_one_new_folder(tmp_path: Path) -> None:
    args = ["search", NB201, "--evaluator", "_search_evaluators:score", "--budget", "1",
            "--study", str(tmp_path / "new" / "s"), "--quiet"]
    procs = [_cli(tmp_path, *args) for _ in range(2)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert sorted(rc for rc, _ in results) == [0, 1], results
    err = next(e for rc, e in results if rc == 1)
    assert "Traceback" not in err and err.count("error:") == 1, err
    assert "in use by another search" in err or "already holds a study" in err
    with Study.open(tmp_path / "new" / "s") as st:
        assert len(st.trials("ok")) == 1


def test_ctrl_c_before_the_search_starts_says_nothing_was_written(tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    import archdsl.cli_search as cli_search

    def interrupted(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_search, "search", interrupted)
    assert main(["search", NB201, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "interrupted before the search started; nothing was written" in err
    assert "--resume" not in err


def test_results_are_the_best_trial_that_fits_the_changed_space(tmp_path: Path) -> None:
    from archdsl.study_view import write_results

    space = archdsl.loads("input x: [4]\nparam w = choice(8, 16)\nnetwork { x -> linear(w) }\n")
    with Study.create(tmp_path / "s", {"space_file": NB201, "space_hash": "h",
                                       "searcher": "random", "evaluator": "e", "seed": 0}) as st:
        for w, value in ((8, 0.5), (32, 0.9)):  # w = 32: from before the space changed
            st.finish(st.start({"w": w}, f"h{w}", "old", "random"), value, {}, None, 0.1)
        written = write_results(st, space)
    assert tmp_path / "s" / "best.arch" in written
    assert json.loads((tmp_path / "s" / "best.json").read_text())["config"] == {"w": 8}


def test_the_best_diagram_is_its_dot_text_without_graphviz(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from archdsl.study_view import write_results

    space = archdsl.loads("input x: [4]\nnetwork { x -> linear(2) }\n")
    with Study.create(tmp_path / "s", {"space_file": NB201, "space_hash": "h",
                                       "searcher": "random", "evaluator": "e", "seed": 0}) as st:
        st.finish(st.start({}, "h", "h", "random"), 0.5, {}, None, 0.1)
        real = shutil.which
        monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if n == "dot" else real(n))
        written = write_results(st, space)
    dot = tmp_path / "s" / "best.dot"
    assert dot in written and not (tmp_path / "s" / "best.svg").exists()
    assert dot.read_text().startswith("digraph") and "10 parameters" in dot.read_text()


def test_a_full_disk_when_writing_results_says_so(tmp_path: Path, monkeypatch) -> None:
    import errno

    from archdsl.errors import ArchDSLError
    from archdsl.study_view import write_results

    space = archdsl.loads("input x: [4]\nnetwork { x -> linear(2) }\n")
    with Study.create(tmp_path / "s", {"space_file": NB201, "space_hash": "h",
                                       "searcher": "random", "evaluator": "e", "seed": 0}) as st:
        st.finish(st.start({}, "h", "h", "random"), 0.5, {}, None, 0.1)

        def full(self: Path, *args: object, **kw: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Path, "write_text", full)
        with pytest.raises(ArchDSLError, match="the disk is full") as e:
            write_results(st, space)
    assert "corrupt" not in e.value.format()


def test_a_space_with_an_import_path_is_copied_with_it(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "proj").mkdir()
    (tmp_path / "lib" / "blocks.arch").write_text(BLOCKS)
    (tmp_path / "proj" / "space.arch").write_text(SPACE.replace('"lib/blocks.arch"',
                                                                '"blocks.arch"'))
    search = ["search", "proj/space.arch", "--evaluator", "_search_evaluators:score",
              "--searcher", "grid", "--quiet", "--study", "s"]
    assert main([*search, "--budget", "2", "--import-path", "lib"]) == 0
    copy = tmp_path / "s" / "space"
    assert (copy / "lib" / "blocks.arch").read_text() == BLOCKS
    assert (copy / "proj" / "space.arch").is_file()
    # resuming needs no --import-path: the search's folders are kept
    assert main(["search", "--study", "s", "--resume", "--evaluator", EV, "--budget", "3", "--quiet"]) == 0
    shutil.rmtree(tmp_path / "lib")  # the copy keeps what the import path held
    assert main(["export", "--study", "s", "--trial", "1", "-o", "t1.arch"]) == 0
    assert main(["search", "--study", "s", "--resume", "--evaluator", EV, "--budget", "3", "--quiet"]) == 1
    assert "has changed since the study began" in capsys.readouterr().err
