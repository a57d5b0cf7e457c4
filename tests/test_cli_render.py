"""`archdsl render`: the files it writes, and one report with exit 1 on bad input."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
NB201 = str(ROOT / "examples/nb201.arch")
DIGITS = str(ROOT / "examples/digits.arch")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="graphviz's `dot` is not installed")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.err


def test_dot_output_needs_no_graphviz(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    rc, err = run(capsys, "render", DIGITS, "--sample", "--seed", "1", "-o",
                  str(tmp_path / "d.dot"))
    assert rc == 0 and (tmp_path / "d.dot").read_text().startswith("digraph G {")


def test_image_without_graphviz_writes_the_dot_and_says_how_to_install(
        tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    rc, err = run(capsys, "render", NB201, "--space", "-o", str(tmp_path / "s.svg"))
    assert rc == 1
    assert (tmp_path / "s.dot").read_text().startswith("digraph G {")
    assert not (tmp_path / "s.svg").exists()
    assert "graphviz" in err and "apt-get install graphviz" in err
    assert err.count("error:") == 1


@needs_dot
@pytest.mark.parametrize("suffix", ["svg", "png", "pdf"])
def test_images(tmp_path: Path, capsys, suffix: str) -> None:
    out = tmp_path / f"a.{suffix}"
    rc, err = run(capsys, "render", NB201, "--depth", "1", "--params", "-o", str(out))
    assert rc == 0 and f"wrote {out}" in err
    data = out.read_bytes()
    if suffix == "svg":
        assert ET.fromstring(data).tag.endswith("svg")
    else:
        assert data[:4] in (b"\x89PNG", b"%PDF")


@needs_dot
def test_space_with_a_configuration(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"cell/n1/edge": "nor_conv_3x3", "cell/n2/edge": "none",
                               "cell/n2/edge#2": "skip_connect", "cell/n3/edge": "none",
                               "cell/n3/edge#2": "none", "cell/n3/edge#3": "avg_pool_3x3"}))
    out = tmp_path / "s.svg"
    rc, _ = run(capsys, "render", NB201, "--space", "--config", str(cfg), "--layout", "TB",
                "-o", str(out))
    assert rc == 0 and "nor_conv_3x3" in out.read_text()


@pytest.mark.parametrize("argv, message", [
    (["-o", "x.gif"], "unknown format '.gif'"),
    (["-o", "noext"], "unknown format"),
    (["--depth", "-1", "-o", "x.dot"], "--depth must be at least 0"),
    (["-o", "/nonexistent-dir/x.dot"], "cannot write"),
])
def test_bad_output(tmp_path: Path, capsys, monkeypatch, argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    rc, err = run(capsys, "render", DIGITS, *argv)
    assert rc == 1 and message in err and err.count("error:") == 1


def test_configuration_that_does_not_fit(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text('{"cell/n1/edge": "conv_9x9"}')
    for extra in ([], ["--space"]):
        rc, err = run(capsys, "render", NB201, "--config", str(cfg), *extra, "-o",
                      str(tmp_path / "a.dot"))
        assert rc == 1 and "conv_9x9" in err and "nb201.arch:" in err
        assert not (tmp_path / "a.dot").exists()


def test_config_and_sample_exclude_each_other(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["render", NB201, "--sample", "--config", "c.json", "-o", "a.dot"])
    assert e.value.code == 1


def test_help_says_how_to_draw_more(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--depth N or --expand draws more" in text and "2000 pixels" in text


def test_the_readmes_command_draws_no_stray_node(tmp_path: Path, capsys) -> None:
    """`archdsl render examples/nb201.arch --sample --seed 1` drew a box "p2"."""
    rc, _ = run(capsys, "render", NB201, "--sample", "--seed", "1", "-o", str(tmp_path / "a.dot"))
    text = (tmp_path / "a.dot").read_text("utf-8")
    nodes = set(re.findall(r"^\s*(\w+) \[", text, re.M))
    ends = {e for edge in re.findall(r"^\s*(\w+) -> (\w+)", text, re.M) for e in edge}
    assert rc == 0 and ends <= nodes


def _readme_images_script():
    spec = importlib.util.spec_from_file_location(
        "render_readme_images", ROOT / "scripts" / "render_readme_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_readme_picture_has_its_command_beside_it() -> None:
    script = _readme_images_script()
    shown = script.pairs((ROOT / "README.md").read_text("utf-8"))
    assert set(shown) == {"docs/img/nb201.svg", "docs/img/digits_space.svg"}
    assert all((ROOT / image).is_file() for image in shown)
    with pytest.raises(script.ReadmeImageError, match="no `archdsl render"):
        script.pairs("![a](docs/img/a.svg)\narchdsl render x.arch -o b.svg\n")
    with pytest.raises(script.ReadmeImageError, match="shows no such picture"):
        script.pairs("![a](docs/img/a.svg)\narchdsl render x.arch -o a.svg\n"
                     "archdsl render y.arch -o c.svg\n")


@needs_dot
def test_readme_pictures_are_what_their_commands_draw(tmp_path: Path) -> None:
    """The README's picture showed 587,386 parameters where its command draws 372,346; the
    pictures are made by scripts/render_readme_images.py from the commands beside them."""
    script = _readme_images_script()
    assert script.differing() == [], "run: python scripts/render_readme_images.py"
    readme = tmp_path / "README.md"  # and a picture that drifted is found
    readme.write_text((ROOT / "README.md").read_text("utf-8").replace(
        "--sample --seed 1 -o nb201.svg", "--sample --seed 2 -o nb201.svg"), "utf-8")
    (tmp_path / "docs").mkdir()
    shutil.copytree(ROOT / "docs" / "img", tmp_path / "docs" / "img")
    assert script.differing(readme, tmp_path) == ["docs/img/nb201.svg"]


@pytest.mark.parametrize("space", [False, True])
def test_a_file_name_that_is_not_utf8_or_holds_escapes_draws(tmp_path: Path, capsys,
                                                             space: bool) -> None:
    # os.fsdecode gives '\udcff' for the byte 0xff: the title must still encode as UTF-8
    src = tmp_path / "a\udcff\x1b[2J.arch"
    src.write_text("input x: [4]\nnetwork { x -> one_of { relu | gelu } }\n")
    out = tmp_path / "out.dot"
    assert main(["render", str(src), "-o", str(out), *(["--space"] if space else [])]) == 0
    text = out.read_text("utf-8")
    assert "a\\udcff\\x1b[2J.arch" in text and "\x1b" not in text
    assert "Traceback" not in capsys.readouterr().err
