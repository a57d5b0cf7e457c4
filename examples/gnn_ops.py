"""Message-passing operations for examples/gnn.arch, in plain PyTorch, registered as .arch
layers with `register_op(..., inputs=2)`.

Each takes node features h [N, F] and an edge list [2, E] (row 0: source nodes, row 1: target
nodes, indices below N) and returns new node features [N, out]: a node's new features are
computed from its own and from the messages along its incoming edges. Loaded with
`--ops examples.gnn_ops` (from the repository's root) or, in Python, by importing this module.

    gcn(h, edges, out)    mean of the node's and its in-neighbours' features, then a linear map
                          (Kipf and Welling's GCN, with mean instead of symmetric normalisation)
    sage(h, edges, out)   a linear map of the node plus one of its in-neighbours' mean
                          (GraphSAGE-mean)
    gin(h, edges, out)    an MLP of (1 + eps) * the node + the sum of its in-neighbours, eps
                          learnt (GIN)
    gat(h, edges, out)    a weighted mean over the node and its in-neighbours, the weights
                          learnt from both ends of each edge (single-head GAT)

May import: torch and archdsl (register_op, ArgSpec); nothing else.
"""

from __future__ import annotations

import torch
from archdsl.backends.pytorch import register_op
from torch import nn

from archdsl import ArgSpec

__all__ = ["GCN", "SAGE", "GIN", "GAT", "graph_shape"]


def _gather(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """h [B, N, F], index [B, E] -> the rows of h at index: [B, E, F]."""
    return torch.gather(h, 1, index.unsqueeze(-1).expand(-1, -1, h.shape[-1]))


def _scatter_sum(msg: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """msg [B, E, F] summed into n rows by index [B, E] -> [B, n, F]."""
    out = msg.new_zeros(msg.shape[0], n, msg.shape[-1])
    return out.scatter_add_(1, index.unsqueeze(-1).expand_as(msg), msg)


def _in_degree(index: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """How many edges end at each node: [B, n, 1]."""
    ones = torch.ones(index.shape, dtype=dtype, device=index.device)
    deg = torch.zeros(index.shape[0], n, dtype=dtype, device=index.device)
    return deg.scatter_add_(1, index, ones).unsqueeze(-1)


def _neighbour_sum(h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The sum of each node's in-neighbours' features: [B, N, F]."""
    return _scatter_sum(_gather(h, edges[:, 0]), edges[:, 1], h.shape[1])


class GCN(nn.Module):
    """Mean over the node itself and its in-neighbours, then a linear map."""

    def __init__(self, in_shapes: list[list[int]], out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_shapes[0][1], out)

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        deg = _in_degree(edges[:, 1], h.shape[1], h.dtype) + 1
        return self.lin((h + _neighbour_sum(h, edges)) / deg)


class SAGE(nn.Module):
    """A linear map of the node plus a linear map of its in-neighbours' mean (0 without any)."""

    def __init__(self, in_shapes: list[list[int]], out: int) -> None:
        super().__init__()
        self.own = nn.Linear(in_shapes[0][1], out)
        self.neighbours = nn.Linear(in_shapes[0][1], out, bias=False)

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        deg = _in_degree(edges[:, 1], h.shape[1], h.dtype).clamp(min=1)
        return self.own(h) + self.neighbours(_neighbour_sum(h, edges) / deg)


class GIN(nn.Module):
    """An MLP (linear, relu, linear) of (1 + eps) * the node + the sum of its in-neighbours."""

    def __init__(self, in_shapes: list[list[int]], out: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(nn.Linear(in_shapes[0][1], out), nn.ReLU(), nn.Linear(out, out))

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        return self.mlp((1 + self.eps) * h + _neighbour_sum(h, edges))


class GAT(nn.Module):
    """Single-head graph attention: z = W h; along each edge j -> i (and a self-loop i -> i)
    a score leaky_relu(a_t . z_i + a_s . z_j); node i's output is the softmax-weighted sum of
    z_j over its incoming edges and itself."""

    def __init__(self, in_shapes: list[list[int]], out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_shapes[0][1], out, bias=False)
        self.att_source = nn.Parameter(torch.randn(out) / out**0.5)
        self.att_target = nn.Parameter(torch.randn(out) / out**0.5)

    def forward(self, h: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        z = self.lin(h)  # [B, N, out]
        n = h.shape[1]
        loops = torch.arange(n, device=edges.device).expand(edges.shape[0], n)
        src = torch.cat([edges[:, 0], loops], dim=1)  # [B, E + N]
        dst = torch.cat([edges[:, 1], loops], dim=1)
        score = nn.functional.leaky_relu(
            (z * self.att_target).sum(-1).gather(1, dst)
            + (z * self.att_source).sum(-1).gather(1, src), 0.2)  # [B, E + N]
        top = score.new_full((score.shape[0], n), float("-inf"))
        top = top.scatter_reduce(1, dst, score, "amax")  # each target's largest score
        weight = torch.exp(score - top.gather(1, dst))
        total = weight.new_zeros(weight.shape[0], n).scatter_add_(1, dst, weight)
        weight = weight / total.gather(1, dst)  # a softmax over each target's edges
        return _scatter_sum(_gather(z, src) * weight.unsqueeze(-1), dst, n)


def graph_shape(in_shapes: list[list[int]], out: int) -> list[int]:
    """Node features [N, F] and edges [2, E] -> [N, out]."""
    h, edges = in_shapes
    if len(h) != 2 or len(edges) != 2 or edges[0] != 2:
        raise ValueError(f"takes node features [N, F] and edges [2, E], got {h} and {edges}")
    return [h[0], out]


def _linear_flops(in_shapes: list[list[int]], out: int) -> int:
    """Multiply-accumulates of one linear map of every node's features."""
    return in_shapes[0][0] * in_shapes[0][1] * out


_FLOPS = {"gcn": _linear_flops,
          "sage": lambda s, out: 2 * _linear_flops(s, out),
          "gin": lambda s, out: _linear_flops(s, out) + s[0][0] * out * out,
          "gat": _linear_flops}
for _name, _module, _doc in [
        ("gcn", GCN, "graph convolution: mean over the node and its in-neighbours, linear"),
        ("sage", SAGE, "GraphSAGE-mean: linear(node) + linear(mean of in-neighbours)"),
        ("gin", GIN, "GIN: MLP((1 + eps) * node + sum of in-neighbours)"),
        ("gat", GAT, "single-head graph attention over the node and its in-neighbours")]:
    register_op(_name, _module, graph_shape, args=[ArgSpec("out", "int")],
                flops=_FLOPS[_name], doc=_doc, inputs=2)
