"""Devices (archdsl/devices.py): specs checked against what torch sees, workers pinned to GPUs.

This machine has no GPU: GPUs are simulated by patching torch.cuda's answers."""

from __future__ import annotations

import pytest
import torch

from archdsl.devices import check_device, resolve_device
from archdsl.errors import ArchDSLError
from archdsl.evaluators import get_evaluator


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_without_a_gpu_auto_is_the_cpu(no_gpu: None) -> None:
    for spec in ("auto", "cpu"):
        check_device(spec)
        assert [resolve_device(spec, w) for w in range(3)] == ["cpu"] * 3


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_clear_error(no_gpu: None, spec: str) -> None:
    with pytest.raises(ArchDSLError, match=f"--device {spec}: this machine has no CUDA GPU: "
                                           r"torch .* sees no CUDA GPU") as info:
        resolve_device(spec)
    assert "--device auto" in (info.value.hint or "")


def test_cuda_on_this_machine_as_it_is() -> None:
    """Unpatched: what this machine really has decides."""
    if torch.cuda.is_available():
        assert resolve_device("cuda").startswith("cuda:")
    else:
        with pytest.raises(ArchDSLError, match="no CUDA GPU"):
            check_device("cuda")
        with pytest.raises(ArchDSLError, match="no CUDA GPU"):
            get_evaluator("train", device="cuda")
        with pytest.raises(ArchDSLError, match="no CUDA GPU"):
            get_evaluator("digits", device="cuda:0")


def test_workers_are_pinned_round_robin(two_gpus: None) -> None:
    for spec in ("auto", "cuda"):
        assert [resolve_device(spec, w) for w in range(5)] == [
            "cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert [resolve_device("cuda:1", w) for w in range(3)] == ["cuda:1"] * 3
    assert resolve_device("cuda:01") == "cuda:1"
    assert resolve_device("cpu", 1) == "cpu"


def test_a_gpu_number_is_checked(two_gpus: None) -> None:
    check_device("cuda:1")
    with pytest.raises(ArchDSLError, match=r"--device cuda:2: there is no GPU 2: .*sees 2 CUDA "
                                           r"GPUs \(cuda:0 to cuda:1\)"):
        check_device("cuda:2")


def test_mps(monkeypatch: pytest.MonkeyPatch, no_gpu: None) -> None:
    with pytest.raises(ArchDSLError, match="mps is not available"):
        check_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto", 3) == "mps" and resolve_device("mps") == "mps"


@pytest.mark.parametrize("spec", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "", "cpu:0"])
def test_an_unknown_spec_lists_the_devices(spec: str) -> None:
    with pytest.raises(ArchDSLError, match="unknown device") as info:
        check_device(spec)
    assert "cuda:N" in (info.value.hint or "")


def test_an_option_an_evaluator_does_not_take_is_refused() -> None:
    with pytest.raises(ArchDSLError, match="evaluator 'nb201' takes no device option"):
        get_evaluator("nb201", device="cpu")
    with pytest.raises(ArchDSLError, match="evaluator 'digits' takes no data option") as info:
        get_evaluator("digits", data="x.npz")
    assert "train" in (info.value.hint or "")
    assert get_evaluator("nb201", device=None).name == "nb201"  # None: not given
    with pytest.raises(ArchDSLError, match="unknown evaluator 'trian'") as info:
        get_evaluator("trian", data="x.npz")
    assert "train" in (info.value.hint or "")
