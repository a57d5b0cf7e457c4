"""A study folder is untrusted input: corrupted databases, tampered settings and copies, a full
disk and two searches at once each give one clear error (exit 1), never a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl import study_sources
from archdsl.cli import main
from archdsl.errors import StudyError
from archdsl.runner import search
from archdsl.study import Study

ROOT = Path(__file__).resolve().parents[1]
NB201 = ROOT / "examples" / "nb201.arch"
EVALUATOR = "_search_evaluators:score"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished study of three trials (of a copy of nb201.arch), to be copied and spoiled."""
    base = tmp_path_factory.mktemp("made")
    shutil.copy(NB201, base / "nb201.arch")
    search(base / "nb201.arch", evaluator=EVALUATOR, budget=3,
           study_dir=base / "study").study.close()
    return base / "study"


def _copy(made: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    shutil.copytree(made, folder)
    return folder


def _sql(folder: Path, *statements: str) -> None:
    db = sqlite3.connect(folder / "study.db")
    try:
        for s in statements:
            db.executescript(s)
    finally:
        db.close()


def _without_constraints(*updates: str) -> tuple[str, ...]:
    """The trials table rebuilt without NOT NULL constraints, then `updates`."""
    return ("ALTER TABLE trials RENAME TO old; CREATE TABLE trials AS SELECT * FROM old; "
            "DROP TABLE old;", *updates)


def _one_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """Run the CLI; it must exit 1 with one `error:` on stderr (and no traceback)."""
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    return err


def _commands(folder: Path, tmp_path: Path) -> list[list[str]]:
    return [["status", "--study", str(folder)],
            ["status", "--study", str(folder), "--json"],
            ["export", "--study", str(folder), "--trial", "1", "-o", str(tmp_path / "t.arch")],
            ["export", "--study", str(folder), "--best", "-o", str(tmp_path / "b.json")],
            ["search", "--study", str(folder), "--resume", "--budget", "4", "--quiet",
             "--evaluator", EVALUATOR]]


def _assert_a_result_or_one_error(folder: Path, capsys) -> None:
    """status, export and resume on the folder: each works or prints one error, no traceback."""
    for args in _commands(folder, folder.parent)[:4]:
        rc = main(args)
        err = capsys.readouterr().err
        assert rc in (0, 1) and "Traceback" not in err
        assert rc == 0 or err.count("error:") == 1, err


ROW_FAULTS = [
    ("UPDATE trials SET config = '{\"a\":' WHERE id = 2", "trial 2 is corrupt: its config is "
                                                        "not valid JSON"),
    ("UPDATE trials SET config = '[1, 2]' WHERE id = 2", "its config is a JSON list"),
    ("UPDATE trials SET config = 7 WHERE id = 2", "its config is the number 7, not a JSON object"),
    ("UPDATE trials SET config = x'00ff' WHERE id = 2", "its config is binary data"),
    ("UPDATE trials SET config = CAST(x'7bff7d' AS TEXT) WHERE id = 2", "not UTF-8"),
    ("UPDATE trials SET config = '" + "[" * 100_000 + "' WHERE id = 2", "trial 2 is corrupt"),
    ("UPDATE trials SET metrics = '{\"params\": ' WHERE id = 3", "trial 3 is corrupt: its "
                                                                 "metrics is not valid JSON"),
    ("UPDATE trials SET metrics = 'null' WHERE id = 1", "its metrics is null"),
    ("UPDATE trials SET objective = 'high' WHERE id = 2", "its objective is the text 'high'"),
    ("UPDATE trials SET objective = 9e999 WHERE id = 2", "its objective is the number inf"),
    ("UPDATE trials SET objective = NULL WHERE id = 1", "trial 1 is corrupt: it succeeded but "
                                                        "has no objective"),
    ("UPDATE trials SET status = 'weird\x1b[31m' WHERE id = 2", "its status is 'weird\\x1b[31m'"),
    ("UPDATE trials SET started = 'yesterday' WHERE id = 2", "its start time is the text"),
    ("UPDATE trials SET duration = x'01' WHERE id = 2", "its duration is binary data"),
    ("UPDATE trials SET arch_hash = x'05' WHERE id = 2", "its arch_hash is binary data"),
    ("UPDATE trials SET error = x'00' WHERE id = 2", "its error is binary data"),
    (_without_constraints("UPDATE trials SET config = NULL WHERE id = 2"), "its config is null"),
    (_without_constraints("UPDATE trials SET searcher = NULL WHERE id = 3"),
     "trial 3 is corrupt: its searcher is null"),
    (_without_constraints("UPDATE trials SET id = 'x' WHERE id = 2"), "a trial's id is the text"),
    ("UPDATE meta SET value = '{' WHERE key = 'space_hash'", "the setting 'space_hash' is "
                                                             "corrupt: is not valid JSON"),
    ("UPDATE meta SET value = '\"zero\"' WHERE key = 'seed'", "the setting 'seed' is corrupt: "
                                                              "the text 'zero', not an integer"),
    ("UPDATE meta SET value = 'true' WHERE key = 'seed'", "the setting 'seed' is corrupt"),
    ("INSERT OR REPLACE INTO meta VALUES ('space_files', '[\"/etc/passwd\"')",
     "the setting 'space_files' is corrupt"),
    ("DELETE FROM meta WHERE key = 'evaluator'", "the study has no 'evaluator' setting"),
    ("DELETE FROM meta WHERE key = 'schema'", "not a study of this archdsl version"),
    ("UPDATE meta SET value = '2' WHERE key = 'schema'", "not a study of this archdsl version"),
    *[(f"UPDATE meta SET value = '{v}' WHERE key = 'trial_timeout'",
       f"the setting 'trial_timeout' is corrupt: {shown}")
      for v, shown in [("-1", "the number -1, not a positive number of seconds"),
                       ("0", "the number 0, not a positive"), ("NaN", "the number nan, not a"),
                       ("Infinity", "the number inf, not a"), ("true", "true, not")]],
    ("UPDATE meta SET value = '0' WHERE key = 'budget'", "the setting 'budget' is corrupt: the "
                                                         "number 0, not a number of trials"),
    ("UPDATE meta SET value = CAST(x'ff' AS TEXT) WHERE key = 'searcher'",
     "the setting 'searcher' is corrupt: is text that is not UTF-8"),
    ("DROP TABLE meta", "it has no 'meta' table"),
    ("DROP TABLE trials", "it has no 'trials' table"),
    ("ALTER TABLE trials DROP COLUMN searcher", "its 'trials' table has no column 'searcher'"),
]


@pytest.mark.parametrize("statements, message", ROW_FAULTS,
                         ids=[f"row{i}" for i in range(len(ROW_FAULTS))])
def test_a_corrupted_database_is_one_clear_error(made: Path, tmp_path: Path, capsys,
                                                 statements: str | tuple[str, ...],
                                                 message: str) -> None:
    folder = _copy(made, tmp_path)
    _sql(folder, *([statements] if isinstance(statements, str) else statements))
    for args in _commands(folder, tmp_path):
        err = _one_error(capsys, args)
        assert message in err, (args, err)
        assert "\x1b" not in err  # stored text never reaches the terminal raw


FILE_FAULTS = [
    (lambda b: b[:1000], "corrupt or not a study database"),
    (lambda b: b[:len(b) // 2], ""),
    (lambda b: b"", "it has no 'meta' table"),
    (lambda b: b"garbage " * 500, "corrupt or not a study database"),
    (lambda b: b[:100] + b"\xff" * 4000 + b[4100:], ""),
]


@pytest.mark.parametrize("spoil, message", FILE_FAULTS,
                         ids=["truncated", "half", "empty", "garbage", "overwritten"])
def test_a_damaged_database_file_is_one_clear_error(made: Path, tmp_path: Path, capsys, spoil,
                                                    message: str) -> None:
    folder = _copy(made, tmp_path)
    db = folder / "study.db"
    db.write_bytes(spoil(db.read_bytes()))
    for args in _commands(folder, tmp_path):
        err = _one_error(capsys, args)
        assert message in err and str(db) in err, err
        assert "disk is full" not in err


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(0, 40_000), data=st.binary(min_size=1, max_size=64))
def test_bytes_overwritten_anywhere_never_give_a_traceback(made: Path, tmp_path_factory, capsys,
                                                           offset: int, data: bytes) -> None:
    folder = _copy(made, tmp_path_factory.mktemp("bytes"))
    db = folder / "study.db"
    raw = bytearray(db.read_bytes())
    raw[offset:offset + len(data)] = data
    db.write_bytes(bytes(raw))
    _assert_a_result_or_one_error(folder, capsys)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["config", "metrics", "objective", "status", "started",
                               "duration", "arch_hash", "error"]),
       value=st.one_of(JSON.map(json.dumps), st.text(), st.binary(),
                       st.integers(), st.floats(), st.none()))
def test_any_stored_value_gives_a_result_or_one_error(made: Path, tmp_path_factory, capsys,
                                                      column: str, value: object) -> None:
    folder = _copy(made, tmp_path_factory.mktemp("value"))
    db = sqlite3.connect(folder / "study.db")
    try:
        with db:
            db.execute(f"UPDATE trials SET {column} = ? WHERE id = 2", (value,))
    except (sqlite3.IntegrityError, OverflowError):
        return  # NOT NULL, or an integer past 64 bits: a value this table cannot hold
    finally:
        db.close()
    _assert_a_result_or_one_error(folder, capsys)


# ---- a full disk -------------------------------------------------------------------------
def test_a_full_disk_says_so_not_corrupt(made: Path, tmp_path: Path) -> None:
    folder = _copy(made, tmp_path)
    with Study.open(folder) as study:
        pages = study.db.execute("PRAGMA page_count").fetchone()[0]
        study.db.execute(f"PRAGMA max_page_count = {pages}")  # as a disk with no room left
        with pytest.raises(StudyError) as e:
            study.start({"x": "y" * 100_000}, "h", "s", "random")
    assert "the disk is full" in e.value.format() and "corrupt" not in e.value.format()


def test_no_room_for_the_copy_says_so_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(study_sources.shutil, "copyfile", full)
    with pytest.raises(StudyError, match="the disk is full") as e:
        Study.create(tmp_path / "new" / "study", {}, sources=[str(NB201)])
    assert "corrupt" not in e.value.format()
    assert not (tmp_path / "new").exists()


# ---- two searches at once ----------------------------------------------------------------
def test_two_studies_created_at_once_one_wins_the_other_is_told(tmp_path: Path) -> None:
    for attempt in range(10):
        folder = tmp_path / f"s{attempt}"
        start = threading.Barrier(2)
        outcomes: list[object] = []

        def create(folder: Path = folder, start: threading.Barrier = start,
                   outcomes: list[object] = outcomes) -> None:
            start.wait()
            try:
                study = Study.create(folder, {"space_file": "/x.arch", "space_hash": "h",
                                              "searcher": "random", "evaluator": "e", "seed": 0})
            except Exception as e:  # noqa: BLE001 - what each one got is the point
                outcomes.append(e)
                return
            outcomes.append("made")
            time.sleep(0.05)  # a search holds its study a while
            study.close()

        threads = [threading.Thread(target=create) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [o for o in outcomes if o != "made"]
        assert outcomes.count("made") == 1 and len(errors) == 1, outcomes
        assert isinstance(errors[0], StudyError), errors
        assert ("in use by another search" in errors[0].message
                or "already holds a study" in errors[0].message)
        assert Study.open(folder).meta()["searcher"] == "random"


# ---- a study folder names only its own files ---------------------------------------------
@pytest.mark.parametrize("statement, message", [
    ("UPDATE meta SET value = '\"/etc/passwd\"' WHERE key = 'space_file'",
     "its space file /etc/passwd is not a .arch file"),
    ("UPDATE meta SET value = '\"{tmp}/zero.arch\"' WHERE key = 'space_file'",
     "zero.arch is not a .arch file"),  # a link to /dev/zero
    ("UPDATE meta SET value = '\"{tmp}/fifo.arch\"' WHERE key = 'space_file'",
     "fifo.arch is not a regular file"),
    ("UPDATE meta SET value = '\"nb201.arch\"' WHERE key = 'space_file'",
     "is not an absolute path"),
    ("UPDATE meta SET value = '\"../../tmp/evil:run\"' WHERE key = 'evaluator'",
     "its evaluator '../../tmp/evil:run' is not an evaluator's name"),
    ("UPDATE meta SET value = '\"os:system\\u001b[2J\"' WHERE key = 'evaluator'",
     "its evaluator 'os:system\\x1b[2J'"),
])
def test_resume_refuses_a_study_naming_other_files(made: Path, tmp_path: Path, capsys,
                                                   statement: str, message: str) -> None:
    folder = _copy(made, tmp_path)
    (tmp_path / "zero.arch").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.arch")
    _sql(folder, statement.replace("{tmp}", str(tmp_path)))
    err = _one_error(capsys, ["search", "--study", str(folder), "--resume", "--budget", "4",
                              "--evaluator", EVALUATOR])
    assert "does not look like its own" in err and message in err
    assert "root:" not in err


@pytest.mark.parametrize("files, message", [
    ('["/etc/passwd"]', "which is not a .arch file in"),
    ('["space/../../../etc/passwd.arch"]', "which is not a .arch file in"),
    ('"space/nb201.arch"', "the setting 'space_files' is corrupt"),
    ('[]', "is not a list of paths"),
])
def test_export_and_resume_refuse_copies_outside_the_study(made: Path, tmp_path: Path, capsys,
                                                           files: str, message: str) -> None:
    folder = _copy(made, tmp_path)
    _sql(folder, f"UPDATE meta SET value = '{files}' WHERE key = 'space_files'")
    for args in _commands(folder, tmp_path)[2:]:
        if args[-1].endswith(".json"):
            continue  # a configuration needs no space
        err = _one_error(capsys, args)
        assert message in err, err


def test_a_tampered_copy_is_refused(made: Path, tmp_path: Path, capsys) -> None:
    folder = _copy(made, tmp_path)
    copy = folder / "space" / "nb201.arch"
    copy.write_text(copy.read_text() + "\n# changed\n")
    for args in _commands(folder, tmp_path)[2:]:
        if not args[-1].endswith(".json"):
            assert "does not match the study" in _one_error(capsys, args)
    copy.unlink()
    copy.symlink_to("/etc/passwd")
    err = _one_error(capsys, _commands(folder, tmp_path)[2])
    assert "does not look like its own" in err and "root:" not in err


def test_resume_says_what_it_will_run(made: Path, tmp_path: Path, capsys) -> None:
    folder = _copy(made, tmp_path)
    assert main(["search", "--study", str(folder), "--resume", "--budget", "4", "--quiet",
                 "--evaluator", EVALUATOR]) == 0
    err = capsys.readouterr().err
    assert f"space {folder / 'space' / 'nb201.arch'} (the study's copy of " in err
    assert f"evaluator {EVALUATOR} (this imports and runs that Python function)" in err


def test_a_study_made_before_copies_were_kept(made: Path, tmp_path: Path, capsys) -> None:
    folder = _copy(made, tmp_path)
    shutil.rmtree(folder / "space")
    _sql(folder, "DELETE FROM meta WHERE key = 'space_files'")
    assert main(["export", "--study", str(folder), "--trial", "1", "-o",
                 str(tmp_path / "t.arch")]) == 0  # from the original, which has not changed
    assert main(["search", "--study", str(folder), "--resume", "--budget", "4", "--quiet",
                 "--evaluator", EVALUATOR]) == 0
    assert (folder / "space" / "nb201.arch").read_bytes() == NB201.read_bytes()  # kept now
    with Study.open(folder) as st:
        assert st.meta()["space_files"] == ["space/nb201.arch"]
    capsys.readouterr()


@pytest.mark.parametrize("config", ['{"cell/n1/edge": [1, 2]}', '{}', '{"": null}',
                                    '{"cell/n1/edge": true}'])
def test_a_config_that_does_not_fit_its_own_space_is_a_corrupt_row(made: Path, tmp_path: Path,
                                                                   capsys, config: str) -> None:
    folder = _copy(made, tmp_path)
    _sql(folder, f"UPDATE trials SET config = '{config}' WHERE id = 2")
    for args in _commands(folder, tmp_path)[2:]:
        if args[-1].endswith(".json"):
            continue  # a configuration is written as stored
        if "--trial" in args:
            args[args.index("--trial") + 1] = "2"
        err = _one_error(capsys, args)
        assert "trial 2 is corrupt: its config does not fit the space it was run on" in err
        assert "DELETE FROM trials WHERE id = 2" in err


def test_resume_refuses_an_evaluator_that_lies_in_the_study_folder(made: Path, tmp_path: Path,
                                                                    monkeypatch, capsys) -> None:
    folder = _copy(made, tmp_path)
    (folder / "evil.py").write_text("import pathlib\npathlib.Path('ran').write_text('x')\n"
                                    "def run(arch):\n    return 1.0\n")
    _sql(folder, "UPDATE meta SET value = '\"evil:run\"' WHERE key = 'evaluator'")
    monkeypatch.chdir(folder)
    err = _one_error(capsys, ["search", "--study", ".", "--resume", "--budget", "4",
                              "--evaluator", "evil:run"])  # named, yet never imported from there
    assert "would be imported from" in err and "inside the study folder" in err
    assert not (folder / "ran").exists()


def test_resume_runs_a_stored_module_function_only_when_the_user_names_it(
        made: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Issue 11 item 4: a study whose evaluator is os:system must not call os.system(arch)
    on a plain resume; the user must name the evaluator, and only the stored one."""
    folder = _copy(made, tmp_path)
    _sql(folder, "UPDATE meta SET value = '\"os:system\"' WHERE key = 'evaluator'")
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda arch: calls.append(arch) or 0)
    err = _one_error(capsys, ["search", "--study", str(folder), "--resume", "--budget", "21"])
    assert "runs the evaluator 'os:system'" in err
    assert f"`archdsl search --study {folder} --resume --evaluator os:system`" in err
    err = _one_error(capsys, ["search", "--study", str(folder), "--resume", "--budget", "21",
                              "--evaluator", EVALUATOR])
    assert "was run with --evaluator os:system, not " + EVALUATOR in err
    with pytest.raises(StudyError, match="runs the evaluator 'os:system'"):
        search(study_dir=folder, resume=True, budget=21)
    assert not calls
    with Study.open(folder) as st:
        assert st.counts() == {"ok": 3}  # nothing ran, nothing was written
    # naming it (or passing one's own evaluator object) resumes
    r = search(study_dir=folder, resume=True, budget=4, evaluator_object=lambda arch: 0.5)
    assert r.new_trials == 1
    r.study.close()


def test_a_builtin_evaluator_resumes_without_naming_it(made: Path, tmp_path: Path) -> None:
    folder = _copy(made, tmp_path)
    _sql(folder, "UPDATE meta SET value = '\"nb201\"' WHERE key = 'evaluator'")
    r = search(study_dir=folder, resume=True, budget=4)
    assert r.new_trials == 1
    r.study.close()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["schema", "space_file", "space_hash", "searcher", "evaluator",
                            "seed", "budget", "created", "space_files", "trial_timeout"]),
       value=st.one_of(JSON.map(json.dumps), st.text(),
                       st.binary(), st.integers(-2**63, 2**63 - 1)))
def test_any_stored_setting_gives_a_result_or_one_error(made: Path, tmp_path_factory, capsys,
                                                        key: str, value: object) -> None:
    folder = _copy(made, tmp_path_factory.mktemp("setting"))
    db = sqlite3.connect(folder / "study.db")
    with db:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
    db.close()
    _assert_a_result_or_one_error(folder, capsys)


# ---- reports -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reported(made: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`made` with learning curves: trials 1 and 3 reported three steps, trial 2 one (stopped)."""
    folder = _copy(made, tmp_path_factory.mktemp("reported"))
    with Study.open(folder) as study:
        for tid, steps in ((1, 3), (2, 1), (3, 3)):
            for step in range(1, steps + 1):
                study.report(tid, step, step / 10, {"valid_loss": 1 / step})
        study.set_status(2, "stopped")
    return folder


REPORT_FAULTS = [
    ("UPDATE reports SET value = 'high' WHERE trial = 3 AND step = 2",
     "the report of trial 3 at step 2 is corrupt: its value is the text 'high', not a number"),
    ("UPDATE reports SET metrics = '{\"a\":' WHERE trial = 1 AND step = 3",
     "the report of trial 1 at step 3 is corrupt: its metrics is not valid JSON"),
    ("UPDATE reports SET trial = 9 WHERE trial = 2", "the report of trial 9 at step 1 is "
                                                     "corrupt: there is no trial 9"),
    ("UPDATE reports SET step = x'1b' WHERE trial = 2", "a report of trial 2 is corrupt: its "
                                                        "step is binary data"),
]


@pytest.mark.parametrize("statement, message", REPORT_FAULTS,
                         ids=[f"report{i}" for i in range(len(REPORT_FAULTS))])
def test_a_corrupted_report_is_one_clear_error(reported: Path, tmp_path: Path, capsys,
                                               statement: str, message: str) -> None:
    folder = tmp_path / "study"
    shutil.copytree(reported, folder)
    _sql(folder, statement)
    for args in _commands(folder, tmp_path):
        err = _one_error(capsys, args)
        assert message in err and "DELETE FROM reports WHERE" in err, (args, err)


def test_a_study_with_reports_shows_them(reported: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "study"
    shutil.copytree(reported, folder)
    assert main(["status", "--study", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "1 stopped" in out and "steps" in out and "curve" in out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(["trial", "step", "value", "metrics", "time"]),
       value=st.one_of(JSON.map(json.dumps), st.text(), st.binary(),
                       st.integers(), st.floats(), st.none()))
def test_any_stored_report_value_gives_a_result_or_one_error(reported: Path, tmp_path_factory,
                                                             capsys, column: str,
                                                             value: object) -> None:
    folder = _copy(reported, tmp_path_factory.mktemp("report"))
    db = sqlite3.connect(folder / "study.db")
    try:
        with db:
            db.execute(f"UPDATE reports SET {column} = ? WHERE trial = 1 AND step = 2",
                       (value,))
    except (sqlite3.IntegrityError, OverflowError):
        return  # NOT NULL, a duplicate (trial, step), or an integer past 64 bits
    finally:
        db.close()
    _assert_a_result_or_one_error(folder, capsys)


# ---- the training and early-stopping settings ----------------------------------------------
SETTING_FAULTS = [
    ("scheduler", "3", "the setting 'scheduler' is corrupt: the number 3, not text"),
    ("device", "null", "the setting 'device' is corrupt: null, not text"),
    ("data", "[\"x\"]", "the setting 'data' is corrupt: a JSON list, not text or null"),
    ("min_epochs", "0", "the setting 'min_epochs' is corrupt: the number 0, not a whole number "
                        "of at least 1"),
    ("min_epochs", "1.5", "the setting 'min_epochs' is corrupt: the number 1.5, not an integer"),
    ("reduction_factor", "1", "the setting 'reduction_factor' is corrupt: the number 1, not a "
                              "whole number of at least 2"),
    ("max_epochs", "-4", "the setting 'max_epochs' is corrupt: the number -4"),
    ("epoch_budget", "true", "the setting 'epoch_budget' is corrupt: true, not an integer or "
                             "null"),
]


@pytest.mark.parametrize("key, value, message", SETTING_FAULTS,
                         ids=[f"setting{i}" for i in range(len(SETTING_FAULTS))])
def test_a_corrupt_training_setting_is_one_clear_error(made: Path, tmp_path: Path, capsys,
                                                       key: str, value: str,
                                                       message: str) -> None:
    folder = _copy(made, tmp_path)
    _sql(folder, f"INSERT OR REPLACE INTO meta VALUES ('{key}', '{value}')")
    for args in _commands(folder, tmp_path)[:2]:
        assert message in _one_error(capsys, args), args


def test_training_settings_are_read_back(made: Path, tmp_path: Path) -> None:
    folder = _copy(made, tmp_path)
    with Study.open(folder) as study:
        study.set_meta(scheduler="asha", min_epochs=1, reduction_factor=3, max_epochs=None,
                       epoch_budget=40, device="cuda", data="digits")
    with Study.open(folder) as study:
        meta = study.meta()
    assert (meta["scheduler"], meta["max_epochs"], meta["epoch_budget"]) == ("asha", None, 40)
