"""`archdsl compile`, and the backend figures that `sample --json` and `check` report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
DIGITS = str(ROOT / "examples" / "digits.arch")
NB201 = str(ROOT / "examples" / "nb201.arch")


def test_compile_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"cell/n1/edge": "nor_conv_3x3"}))
    # a partial configuration is not enough: every decision must be given
    assert main(["compile", NB201, "--config", str(cfg), "--json"]) == 1
    assert "error:" in capsys.readouterr().err
    from archdsl.evaluators.nb201 import from_arch_string

    cfg.write_text(json.dumps(from_arch_string(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|")))
    assert main(["compile", NB201, "--config", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 129_306 and out["output_shape"] == [10] and out["flops"] > 0


def test_compile_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", DIGITS, "--summary"]) == 0
    out = capsys.readouterr().out
    assert "output shape" in out and "[1, 8, 8]" in out and "[10]" in out
    assert "digits.arch:" in out


def test_compile_to_python_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "model.py"
    assert main(["compile", DIGITS, "-o", str(out)]) == 0
    spec = importlib.util.spec_from_file_location("model", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.Net()(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_compile_to_torchscript_and_onnx(tmp_path: Path, suffix: str) -> None:
    if suffix == ".onnx":
        pytest.importorskip("onnx", reason="onnx is not installed")
    out = tmp_path / f"model{suffix}"
    assert main(["compile", DIGITS, "-o", str(out)]) == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("argv,message", [
    (["compile", DIGITS, "-o", "model.h5"], "cannot compile to 'model.h5'"),
    (["compile", DIGITS, "-o", "/proc/nope/model.py"], "cannot write /proc/nope/model.py"),
    (["compile", DIGITS, "--config", "/nonexistent.json"], "cannot read the configuration"),
])
def test_compile_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str],
                           message: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compile_shape_error_is_a_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.arch"
    bad.write_text("input x: [3, 8, 8]\nnetwork {\n  x -> conv2d(8)\n    -> linear(10)\n}\n")
    r = subprocess.run([sys.executable, "-m", "archdsl.cli", "compile", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{bad}:4:8: error: linear expects" in r.stderr
    assert "hint: flatten or global_avg_pool first" in r.stderr
    # check finds it too, before anything is compiled
    r = subprocess.run([sys.executable, "-m", "archdsl.cli", "check", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and f"{bad}:4:8: error" in r.stderr


def test_sample_json_reports_params_and_flops(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", DIGITS, "-n", "3", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert line["params"] > 0 and line["flops"] > 0 and line["output_shape"] == [10]
        assert line["params"] <= 200_000  # digits.arch: require params <= 200_000
