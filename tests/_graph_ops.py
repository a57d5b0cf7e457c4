"""A two-input user operation for the tests (issue 16, item 2): `graph_conv(h, edges, out)`,
one round of message passing over an edge list, in plain PyTorch."""

from __future__ import annotations

import torch
from archdsl.backends.pytorch import register_op
from torch import nn

import archdsl


class GraphConv(nn.Module):
    """h [N, F] and edges [2, E] (source row, target row; node indices) -> [N, out]: each node
    gets the mean of its in-neighbours' features, then a linear map of [own, neighbours]."""

    def __init__(self, in_shapes: list[list[int]], out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * in_shapes[0][1], out)

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        src, dst = edges[:, 0], edges[:, 1]  # [B, E] each
        msg = torch.gather(h, 1, src.unsqueeze(-1).expand(-1, -1, h.shape[-1]))
        agg = torch.zeros_like(h).scatter_add_(1, dst.unsqueeze(-1).expand_as(msg), msg)
        deg = torch.zeros(h.shape[:2], dtype=h.dtype).scatter_add_(
            1, dst, torch.ones(dst.shape, dtype=h.dtype)).clamp(min=1)
        return self.lin(torch.cat([h, agg / deg.unsqueeze(-1)], dim=-1))


def graph_conv_shape(in_shapes: list[list[int]], out: int) -> list[int]:
    h, edges = in_shapes
    if len(h) != 2 or len(edges) != 2 or edges[0] != 2:
        raise ValueError(f"takes node features [N, F] and edges [2, E], got {h} and {edges}")
    return [h[0], out]


register_op("graph_conv", GraphConv, graph_conv_shape, args=[archdsl.ArgSpec("out", "int")],
            params=lambda in_shapes, out: 2 * in_shapes[0][1] * out + out,
            flops=lambda in_shapes, out: in_shapes[0][0] * 2 * in_shapes[0][1] * out,
            inputs=2)
