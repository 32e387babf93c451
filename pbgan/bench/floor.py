"""The multiply-adds of a training step, counted from the convolution calls it really makes.

Every convolution call of one step is recorded (its sizes and which gradients its backward pass
computes); a plain layer costs ``filters * d * positions`` per pass, a trainable piggyback layer
the cheaper of its two exact schedules (:mod:`pbgan.lifelong.costs`). The ratio of a lifelong
step's count to the reference step's is the floor that schedule allows: what the step would cost
if every multiply-add ran as fast as the reference's. Normalisation, activations and the
optimizer are not counted. A third exact schedule, split (:mod:`pbgan.lifelong.splitconv`),
needs fewer multiply-adds than both while the bank is small; it is left out of the count, so the
floor stays the bound of composing and mixing and a row that splits can come in under it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_pre_hook

from pbgan.lifelong.costs import ConvCall, conv_positions, plain_macs
from pbgan.lifelong.layers import TaskConv


def _plain_call(module: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor) -> ConvCall:
    transposed = isinstance(module, nn.ConvTranspose2d)
    kernel, stride, padding = module.kernel_size[0], module.stride[0], module.padding[0]
    output_padding = module.output_padding[0] if transposed else 0
    positions, outputs = conv_positions(tuple(x.shape), kernel, stride, padding, output_padding, transposed)
    in_channels = module.in_channels
    grad = torch.is_grad_enabled()
    return ConvCall(
        in_channels * kernel * kernel,
        positions,
        outputs,
        grad and x.requires_grad,
        grad and module.weight.requires_grad,
    )


def step_macs(step: Callable[[], None]) -> dict[str, int]:
    """Run ``step`` once and count the multiply-adds of every convolution it calls (generators and
    discriminators): ``plain`` (every layer as an ordinary convolution of its shape) and ``floor``
    (trainable piggyback layers by the cheaper exact schedule)."""
    calls: dict[nn.Module, tuple[int | None, list[ConvCall]]] = {}
    columns = [0]  # column layers (progressive networks) count their own calls

    def record(module: nn.Module, args: tuple) -> None:
        if hasattr(module, "column_macs"):
            columns[0] += module.column_macs(args[0])
            return
        if isinstance(module, TaskConv):
            task, call = module.active, module.conv_call(args[0])
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            task, call = None, _plain_call(module, args[0])
        else:
            return
        calls.setdefault(module, (task, []))[1].append(call)

    handle = register_module_forward_pre_hook(record)
    try:
        step()
    finally:
        handle.remove()
    plain = floor = columns[0]
    for module, (task, module_calls) in calls.items():
        plain += plain_macs(module.out_channels, module_calls)
        if isinstance(module, TaskConv):
            floor += module.floor_macs(module_calls, task)
        else:
            floor += plain_macs(module.out_channels, module_calls)
    return {"plain": plain, "floor": floor}
