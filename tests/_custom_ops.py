"""A user-defined operation for the backend tests (importable, so `.py` export can import it)."""

from __future__ import annotations

import torch
from torch import nn


class ChannelScale(nn.Module):
    """Multiplies every channel by a learned factor, then repeats the channels `times` times."""

    def __init__(self, in_shape: list[int], times: int = 1) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(in_shape[0]))
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, -1] + [1] * (x.dim() - 2)
        return (x * self.scale.view(shape)).repeat_interleave(self.times, dim=1)


def channel_scale_shape(in_shape: list[int], times: int = 1) -> list[int]:
    if len(in_shape) < 2:
        raise ValueError(f"expects [channels, ...], got {in_shape}")
    return [in_shape[0] * times, *in_shape[1:]]
