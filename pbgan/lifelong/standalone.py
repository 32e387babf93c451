"""One task of a lifelong network as an ordinary network: every lifelong layer replaced by the
plain PyTorch layer it computes for that task (composed weights, the task's bias and norm).

The result has no task switch and no bank: it can be scripted, traced, exported to ONNX and
shipped on its own.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from pbgan.lifelong.layers import LifelongLayer, TaskConv, TaskNorm
from pbgan.lifelong.network import LifelongNet


@torch.no_grad()
def plain_layer(layer: LifelongLayer, task: int) -> nn.Module:
    """The plain layer that ``layer`` computes for ``task``."""
    if isinstance(layer, TaskNorm):
        return copy.deepcopy(layer.norms[task]).eval()
    if not isinstance(layer, TaskConv):
        raise TypeError(f"no plain equivalent for {type(layer).__name__}")
    weight = layer.task_weight(task)
    if layer.transposed:
        conv: nn.Module = nn.ConvTranspose2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.output_padding,
            bias=layer.has_bias,
        )
    else:
        conv = nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            bias=layer.has_bias,
        )
    conv.weight.copy_(weight)
    if layer.has_bias:
        conv.bias.copy_(layer.biases[task])
    return conv.to(weight.device)


def standalone_network(net: LifelongNet, task: int) -> nn.Module:
    """A deep copy of ``net`` computing only ``task``, in eval mode, with no gradients."""
    if not 0 <= task < net.num_tasks:
        raise IndexError(f"task {task} does not exist: the network has {net.num_tasks} tasks")
    plain = copy.deepcopy(net)
    replacements = [(name, plain_layer(layer, task)) for name, layer in plain.lifelong_layers()]
    for name, module in replacements:
        parent_name, _, child = name.rpartition(".")
        parent = plain.get_submodule(parent_name) if parent_name else plain
        setattr(parent, child, module)
    plain.eval()
    plain.requires_grad_(False)
    return plain
