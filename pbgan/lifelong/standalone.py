"""One task of a lifelong network as an ordinary network: every lifelong layer replaced by the
plain PyTorch layer it computes for that task (composed weights, the task's bias and norm).

The result has no task switch and no bank: it can be scripted, traced, exported to ONNX and
shipped on its own.
"""

from __future__ import annotations

import copy

from torch import nn

from pbgan.lifelong.network import LifelongNet


def standalone_network(net: LifelongNet, task: int) -> nn.Module:
    """A deep copy of ``net`` computing only ``task``, in eval mode, with no gradients."""
    if not 0 <= task < net.num_tasks:
        raise IndexError(f"task {task} does not exist: the network has {net.num_tasks} tasks")
    plain = copy.deepcopy(net)
    if net.stacks_columns():  # a progressive net: the task's column and every column before it
        plain.fixed_columns = task + 1
    replacements = [(name, layer.plain_layer(task)) for name, layer in plain.lifelong_layers()]
    for name, module in replacements:
        parent_name, _, child = name.rpartition(".")
        parent = plain.get_submodule(parent_name) if parent_name else plain
        setattr(parent, child, module)
    plain.eval()
    plain.requires_grad_(False)
    return plain
