"""Progressive networks (Rusu et al. 2016): a new column (a whole generator) per task, with lateral
adapters from every earlier column into it; earlier columns are frozen, so old tasks never change.

Every layer of the network is a column layer: task ``t`` owns its column's convolution, bias and
norm, and one 1x1 convolution (the lateral adapter) from the concatenated outputs of this same
layer in columns ``0 .. t-1`` into its own output:

    z_t = conv(h_t, W_t) + b_t + U_t * concat(z_0, ..., z_{t-1})

A call for task ``t`` computes columns ``0 .. t`` on one batch stacked column after column (the
net repeats its input per column and hands back the last column's output, see
:meth:`pbgan.lifelong.network.LifelongNet.columns`), so the networks need no change. What task
``t`` stores is a whole generator plus ``t * sum(C_out^2)`` adapter weights: the growth is
super-linear, which is the method's cost. The laterals take this layer's outputs (same size as the
new column's) rather than the layer's inputs, so every geometry (strides, transposed layers,
padding outside the layer) fits a stride-1 1x1 convolution.

The method is this file plus ``conf/method/progressive.yaml``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.lifelong.costs import ConvCall, conv_positions, plain_macs
from pbgan.lifelong.family import ConvSpec, LayerFamily
from pbgan.lifelong.layers import (
    INIT_STD,
    LifelongLayer,
    TaskNorm,
    check_norm,
    plain_conv,
    unusable_for_autograd,
)
from pbgan.lifelong.subpixel import subpixel_conv, subpixel_runs, subpixel_weight


def _columns(x: torch.Tensor, count: int) -> tuple[torch.Tensor, ...]:
    if x.shape[0] % count:
        raise RuntimeError(f"a batch of {x.shape[0]} does not stack {count} columns")
    return x.chunk(count, 0)


def column_outputs(columns: tuple[torch.Tensor, ...], convolve, laterals: list[torch.Tensor]) -> torch.Tensor:
    """Every column's output, each with the lateral adapter from the columns before it."""
    outs: list[torch.Tensor] = []
    for task, h in enumerate(columns):
        z = convolve(task, h)
        if task > 0:
            z = z + F.conv2d(torch.cat(outs, 1), laterals[task - 1])
        outs.append(z)
    return torch.cat(outs, 0)


class ColumnConv(LifelongLayer):
    """One layer of every column: per task a Conv2d / ConvTranspose2d of its own (PyTorch's
    layout) and, from task 1 on, the 1x1 lateral adapter from the earlier columns' outputs."""

    column_layer = True

    def __init__(self, spec: ConvSpec) -> None:
        """``spec``: the geometry a network asks of this layer (the same in every column)."""
        super().__init__(spec.label)
        self.spec = spec
        self.out_channels = spec.out_channels
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.laterals = nn.ParameterList()  # laterals[t - 1]: task t's adapter (C_out, t C_out, 1, 1)
        self._subpixel: dict[int, torch.Tensor] = {}  # frozen columns' weights for subpixel_conv

    def _create_task(self, task: int) -> None:
        spec, factory = self.spec, self.factory()
        shape = (spec.out_channels, spec.in_channels, spec.kernel_size, spec.kernel_size)
        new = torch.randn(shape, **factory) * INIT_STD  # filter-major, as every other conv draws
        self.weights.append(nn.Parameter(new.transpose(0, 1).contiguous() if spec.transposed else new))
        if spec.bias:
            self.biases.append(nn.Parameter(torch.zeros(spec.out_channels, **factory)))
        if task > 0:
            lateral = torch.randn(spec.out_channels, task * spec.out_channels, 1, 1, **factory) * INIT_STD
            self.laterals.append(nn.Parameter(lateral))

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        params = [self.weights[task]]
        if self.spec.bias:
            params.append(self.biases[task])
        if task > 0:
            params.append(self.laterals[task - 1])
        return params

    def convolve(self, task: int, x: torch.Tensor) -> torch.Tensor:
        spec, bias = self.spec, self.biases[task] if self.spec.bias else None
        if self.runs_subpixel(x, task):
            return subpixel_conv(x, self.cached_subpixel_weight(task), bias)
        if spec.transposed:
            return F.conv_transpose2d(
                x, self.weights[task], bias, spec.stride, spec.padding, spec.output_padding
            )
        return F.conv2d(x, self.weights[task], bias, spec.stride, spec.padding)

    def runs_subpixel(self, x: torch.Tensor, task: int) -> bool:
        """A frozen column's 4x4 stride-2 transposed convolution runs as one convolution where
        that is faster, as :meth:`pbgan.lifelong.layers.TaskConv.runs_subpixel` says."""
        spec = self.spec
        geometry = (spec.kernel_size, spec.stride, spec.padding, spec.output_padding)
        return self.legacy_tasks <= task < self.frozen and subpixel_runs(x, spec.transposed, geometry)

    def cached_subpixel_weight(self, task: int) -> torch.Tensor:
        cached = self._subpixel.get(task)
        if cached is None or unusable_for_autograd(cached):
            with torch.no_grad():
                cached = self._subpixel[task] = subpixel_weight(self.weights[task])
        return cached

    def rebuild_derived(self) -> None:
        self._subpixel = {}

    def _apply(self, fn, *args, **kwargs):  # .to(), .half(): the cached weights would stay behind
        self._subpixel = {}
        return super()._apply(fn, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = _columns(x, self.active + 1)
        return column_outputs(columns, self.convolve, list(self.laterals))

    def column_macs(self, x: torch.Tensor) -> int:
        """Multiply-adds of one call on the stacked batch ``x`` (the benchmark's count): every
        column's convolution and adapter, forward and the gradients the trainable column needs."""
        spec, count = self.spec, self.active + 1
        shape = (x.shape[0] // count, *x.shape[1:])
        positions, outputs = conv_positions(
            shape, spec.kernel_size, spec.stride, spec.padding, spec.output_padding, spec.transposed
        )
        grad, size = torch.is_grad_enabled(), spec.in_channels * spec.kernel_size**2
        total = 0
        for task in range(count):
            trainable = grad and task >= self.frozen and self.weights[task].requires_grad
            total += plain_macs(
                spec.out_channels,
                [ConvCall(size, positions, outputs, trainable and x.requires_grad, trainable)],
            )
            if task:
                total += plain_macs(
                    spec.out_channels,
                    [ConvCall(task * spec.out_channels, outputs, outputs, False, trainable)],
                )
        return total

    @torch.no_grad()
    def plain_layer(self, task: int) -> nn.Module:
        convs = []
        for column in range(task + 1):
            conv = plain_conv(self.spec)
            conv.weight.copy_(self.weights[column])
            if self.spec.bias:
                conv.bias.copy_(self.biases[column])
            convs.append(conv)
        laterals = [self.laterals[column].detach().clone() for column in range(task)]
        return PlainColumnConv(convs, laterals).to(self.weights[0].device)

    def extra_repr(self) -> str:
        spec = self.spec
        kind = "transposed, " if spec.transposed else ""
        return (
            f"{spec.in_channels}, {spec.out_channels}, k={spec.kernel_size}, s={spec.stride}, {kind}"
            f"column + laterals, tasks={self.num_tasks}"
        )


class ColumnNorm(TaskNorm):
    """Each column's own norm, applied to its part of the stacked batch."""

    column_layer = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = _columns(x, self.active + 1)
        return torch.cat([self.normalise(h, task) for task, h in enumerate(columns)], 0)

    def plain_layer(self, task: int) -> nn.Module:
        return PlainColumnNorm([copy.deepcopy(self.norms[column]).eval() for column in range(task + 1)])


class PlainColumnConv(nn.Module):
    """A progressive layer of one task as ordinary layers (export): its column's and the earlier
    columns' convolutions and the lateral adapters, on the stacked batch."""

    column_layer = True

    def __init__(self, convs: list[nn.Module], laterals: list[torch.Tensor]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.laterals = nn.ParameterList([nn.Parameter(lateral, requires_grad=False) for lateral in laterals])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = _columns(x, len(self.convs))
        return column_outputs(columns, lambda task, h: self.convs[task](h), list(self.laterals))


class PlainColumnNorm(nn.Module):
    """Each column's norm on its part of the stacked batch (export)."""

    column_layer = True

    def __init__(self, norms: list[nn.Module]) -> None:
        super().__init__()
        self.norms = nn.ModuleList(norms)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = _columns(x, len(self.norms))
        return torch.cat([norm(h) for norm, h in zip(self.norms, columns)], 0)


class ProgressiveFamily(LayerFamily):
    """Column layers everywhere: every layer is the task's own, with laterals from earlier columns."""

    def shared_conv(self, spec: ConvSpec) -> nn.Module:
        return ColumnConv(spec)

    task_specific_conv = shared_conv

    def norm(self, kind: str, channels: int) -> nn.Module:
        check_norm(kind)
        return ColumnNorm(kind, channels)
