"""The multiply-adds of a training step, counted from the convolution calls it really makes.

Every convolution call of one step is recorded (its sizes and which gradients its backward pass
computes); a plain layer costs ``filters * d * positions`` per pass, a trainable piggyback layer
the cheaper of its two exact schedules (:mod:`pbgan.lifelong.costs`). The ratio of a lifelong
step's count to the reference step's is the floor that schedule allows: what the step would cost
if every multiply-add ran as fast as the reference's. Normalisation, activations and the
optimizer are not counted.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

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


def step_macs(step: Callable[[], None], modules: list[nn.Module]) -> dict[str, int]:
    """Run ``step`` once and count its convolutions' multiply-adds: ``plain`` (every layer as an
    ordinary convolution of its shape) and ``floor`` (trainable piggyback layers by the cheaper
    exact schedule)."""
    calls: dict[nn.Module, list[ConvCall]] = {}
    active: dict[nn.Module, int] = {}

    def record(module: nn.Module, args: tuple) -> None:
        x = args[0]
        if isinstance(module, TaskConv):
            call = module.conv_call(x)
            active[module] = module.active
        else:
            call = _plain_call(module, x)
        calls.setdefault(module, []).append(call)

    convs = [
        m
        for root in modules
        for m in root.modules()
        if isinstance(m, (TaskConv, nn.Conv2d, nn.ConvTranspose2d))
    ]
    handles = [m.register_forward_pre_hook(record) for m in convs]
    try:
        step()
    finally:
        for handle in handles:
            handle.remove()
    plain = floor = 0
    for module, module_calls in calls.items():
        filters = module.out_channels
        plain += plain_macs(filters, module_calls)
        if isinstance(module, TaskConv):
            previous = module.active
            module.active = active[module]
            floor += module.floor_macs(module_calls)
            module.active = previous
        else:
            floor += plain_macs(filters, module_calls)
    return {"plain": plain, "floor": floor}
