"""What archdsl prints about untrusted names stays on its line and moves no cursor: file names,
imported paths and source lines with control characters are shown escaped."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archdsl.cli import main
from archdsl.errors import ArchDSLError, Span, printable

NASTY = "a\x1b[2Jb\nc\rd\x00e\u2028f"


def _ok(text: str) -> bool:
    """Nothing a terminal would act on: no ESC, NUL, CR or odd line breaks."""
    return not any(c in text for c in "\x1b\x00\r\u2028\x07")


@given(st.text())
@settings(max_examples=200)
def test_printable_keeps_printable_text_and_escapes_the_rest(text):
    one_line = printable(text, False)
    assert one_line.isprintable()
    assert printable(one_line, False) == one_line
    assert all(line.isprintable() for line in printable(text).split("\n"))
    if text.isprintable():
        assert printable(text) == text == one_line


def test_an_error_about_a_file_with_a_nasty_name_is_one_clean_report():
    text = "input x: [4]\nnetwork { x -> re\x1blu }\n"
    e = ArchDSLError("unknown layer 're\x1blu'", Span(NASTY, 2, 16, 2, 21, text), "a\x07 hint")
    report = e.format()
    assert _ok(report), report
    first, source, caret, hint = report.split("\n")
    assert first.startswith(r"a\x1b[2Jb\nc\rd\x00e\u2028f:2:16: error: unknown layer 're\x1blu'")
    assert source == "    network { x -> re?lu }"
    assert caret.index("^") == source.index("r", 10)  # the caret still under the layer
    assert hint == r"hint: a\x07 hint"


@pytest.mark.parametrize("body, command", [
    ("input x: [4]\nnetwork { x -> relux }\n", ["check"]),
    ("input x: [4]\nnetwork { x -> relu }\n", ["check"]),
    ("input x: [4]\nnetwork { x -> relu }\n", ["compile"]),
    ('import "\x1b[2J.arch"\ninput x: [4]\nnetwork { x -> relu }\n', ["check"]),
])
def test_the_cli_prints_nasty_names_escaped(capsys, tmp_path: Path, body, command):
    name = "a\x1b[2Jb\nc.arch"
    (tmp_path / name).write_text(body)
    main([*command, str(tmp_path / name)])
    out, err = capsys.readouterr()
    assert _ok(out + err), (out, err)
    assert "\\x1b[2Jb\\nc.arch" in out + err


def test_a_line_break_in_a_named_file_cannot_forge_a_report_line(capsys, tmp_path: Path):
    forged = str(tmp_path / "nope\nerror: forged line")
    darts = str(Path(__file__).parents[1] / "examples" / "darts.arch")
    assert main(["compile", darts, "--config", forged]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.count("error:") == 2, err
    assert "nope\\nerror: forged line" in err
