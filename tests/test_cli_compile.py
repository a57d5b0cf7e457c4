"""`archdsl compile`, and the backend figures that `sample --json` and `check` report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from archdsl.backends import pytorch as pt

import archdsl
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


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.jit.load(str(path)).state_dict()


def test_compile_seed_makes_the_weights_reproducible(tmp_path: Path) -> None:
    """`-o m.pt` writes the same weights every run (default seed 0), other weights with
    another seed, and leaves the process's own random state alone."""
    outs = [tmp_path / f"run{i}" / "m.pt" for i in range(3)]
    state = torch.get_rng_state()
    assert main(["compile", DIGITS, "-o", str(outs[0])]) == 0
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(1234)  # the caller's state does not matter
    assert main(["compile", DIGITS, "-o", str(outs[1]), "--seed", "0"]) == 0
    assert main(["compile", DIGITS, "-o", str(outs[2]), "--seed", "7"]) == 0
    a, b, c = (_weights(p) for p in outs)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


@pytest.mark.parametrize("seed", ["-1", "1.5", str(2**63), "x"])
def test_compile_refuses_a_bad_seed(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(["compile", DIGITS, "--seed", seed, "-o", "never.pt"])
    assert e.value.code == 1
    captured = capsys.readouterr()
    assert "argument --seed" in captured.err and captured.out == ""


def test_seeded_build_and_export_from_python(tmp_path: Path) -> None:
    space = archdsl.load(DIGITS)
    arch = space.materialize(space.default())
    state = torch.get_rng_state()
    one, two = pt.build(arch, seed=5).state_dict(), pt.build(arch, seed=5).state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(5)
    assert all(torch.equal(one[k], v) for k, v in pt.build(arch).state_dict().items())
    pt.export(arch, tmp_path / "m.pt", seed=5)
    assert all(torch.equal(one[k], v) for k, v in _weights(tmp_path / "m.pt").items())
    for bad in (-1, 2**63, 1.5, True):
        with pytest.raises(archdsl.ArchDSLError, match="seed"):
            pt.build(arch, seed=bad)


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_a_model_too_large_to_build_is_a_report(tmp_path: Path, suffix: str) -> None:
    big = tmp_path / "big.arch"
    big.write_text("input x: [4]\nnetwork {\n    x -> linear(2 ** 40)\n}\n")
    r = subprocess.run([sys.executable, "-m", "archdsl.cli", "compile", str(big), "-o",
                        str(tmp_path / f"m{suffix}")], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{big}:3:10: error: the network has 5,497,558,138,880 parameters, more than the " \
           "limit of 2,147,483,648" in r.stderr
    assert not (tmp_path / f"m{suffix}").exists()
    # .py is only text: it is written
    assert main(["compile", str(big), "-o", str(tmp_path / "m.py")]) == 0


def test_a_failed_allocation_is_reported_at_the_layer(tmp_path: Path) -> None:
    arch = archdsl.loads("input x: [4]\nnetwork { x -> linear(2 ** 62) }\n", file="huge.arch")
    with pytest.raises(archdsl.ArchLimitError) as e:
        pt.build(arch.materialize({}), max_params=2**70)
    assert e.value.format().startswith("huge.arch:2:16: error: linear: cannot make its ")


def test_summary_shows_a_file_name_with_brackets(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    """rich reads `[...]` as markup: a file name like `[bold]a.arch` is shown as it is."""
    f = tmp_path / "[bold]a[red].arch"
    f.write_text("input x: [4]\nnetwork { x -> linear(2) }\n")
    assert main(["compile", str(f), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "[bold]a[red].arch: 10 parameters" in out and "[bold]a[red].arch:1" in out


def test_a_model_torchscript_cannot_convert_is_a_report(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(model: torch.nn.Module) -> None:
        raise RuntimeError("generators are not supported\nmore detail")

    monkeypatch.setattr(torch.jit, "script", fail)
    space = archdsl.load(DIGITS)
    with pytest.raises(archdsl.ArchDSLError) as e:
        pt.export(space.materialize(space.default()), tmp_path / "m.pt")
    assert e.value.message == ("cannot convert the model to TorchScript: RuntimeError: "
                               "generators are not supported")
