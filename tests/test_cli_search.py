"""`archdsl search`, `status` and `export` as a user runs them, kill -9 and Ctrl-C included."""

from __future__ import annotations

import json
import os
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
    for name in ("best.arch", "best.py", "best.json", "progress.png"):
        assert (study / name).stat().st_size > 0
    assert (study / "progress.png").read_bytes()[:4] == b"\x89PNG"
    fixed = archdsl.load(study / "best.arch")
    assert fixed.count() == 1
    best = json.loads((study / "best.json").read_text())
    assert main(["status", "--study", str(study), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"ok": 6}
    assert status["best"][0]["config"] == best["config"]
    assert status["best"][0]["objective"] == max(t["objective"] for t in status["best"])
    for suffix in (".arch", ".py", ".json"):
        out_file = tmp_path / f"best{suffix}"
        assert main(["export", "--study", str(study), "--best", "-o", str(out_file)]) == 0
        assert out_file.stat().st_size > 0
    assert json.loads((tmp_path / "best.json").read_text()) == best["config"]
    assert main(["export", "--study", str(study), "--trial", "2", "-o",
                 str(tmp_path / "t2.json")]) == 0
    compile(Path(tmp_path / "best.py").read_text(), "best.py", "exec")


@pytest.mark.parametrize("args, message", [
    (["search", NB201, "--searcher", "randm"], "unknown searcher 'randm'"),
    (["search", NB201, "--evaluator", "nb2O1"], "unknown evaluator 'nb2O1'"),
    (["search", NB201, "--budget", "0"], "--budget must be at least 1"),
    (["search", NB201, "--workers", "0"], "--workers must be at least 1"),
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
    assert main(["search", "space.arch", "--resume", "--budget", "3", "--quiet"]) == 1
    assert "has changed since the study began" in capsys.readouterr().err
    assert main(["search", "space.arch", "--resume", "--budget", "3", "--quiet",
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
