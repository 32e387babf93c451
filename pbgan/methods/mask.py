"""Binary masks (Mallya et al., ECCV 2018): frozen task-1 weights, a learned binary mask per later
task, per-task bias, norm and last layer. The method is this file plus ``conf/method/mask.yaml``."""

from __future__ import annotations

import math

import torch
from torch import nn

from pbgan.lifelong.family import ConvSpec, LayerFamily
from pbgan.lifelong.layers import INIT_STD, TaskConv


class _BinarizeSTE(torch.autograd.Function):
    """Forward: exactly 1 where score > threshold, else 0. Backward: the gradient unchanged."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class MaskedConv(TaskConv):
    """Mallya et al.'s binary masks: task 0 learns the weights, later tasks learn which to keep.

    Task 0 trains an ordinary weight W (then frozen forever). Task t >= 1 learns a real-valued
    score per weight, initialised to ``init_score``; its weight is ``W * (score > threshold)``
    with a straight-through gradient to the scores. Every task has its own bias. What a later
    task must store is one bit per weight plus its bias (see :meth:`stored_counts`).
    """

    def __init__(self, *args, threshold: float = 5e-3, init_score: float = 1e-2, **kwargs) -> None:
        """:class:`TaskConv`'s geometry arguments, and the mask's ``threshold`` and ``init_score``."""
        super().__init__(*args, **kwargs)
        self.threshold, self.init_score = threshold, init_score
        channels = (self.out_channels, self.in_channels)
        shape = channels[::-1] if self.transposed else channels
        self.weight = nn.Parameter(torch.randn(*shape, self.kernel_size, self.kernel_size) * INIT_STD)
        self.scores = nn.ParameterList()

    def _create_task(self, task: int) -> None:
        fill = self.init_score if task > 0 else 0.0
        shape = self.weight.shape if task > 0 else (0,)
        self.scores.append(nn.Parameter(torch.full(shape, fill, **self.factory())))
        self._add_bias()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        params = [self.weight] if task == 0 else [self.scores[task]]
        if self.has_bias:
            params.append(self.biases[task])
        return params

    def mask(self, task: int) -> torch.Tensor:
        """The binary mask of ``task`` in the forward pass, the identity gradient in the backward."""
        return _BinarizeSTE.apply(self.scores[task], self.threshold)

    def task_weight(self, task: int) -> torch.Tensor:
        return self.weight if task == 0 else self.weight * self.mask(task)

    def compressible(self, task: int) -> list[tuple[nn.Parameter, int]]:
        """A later task stores one bit per weight already: only task 1's weight is compressed."""
        return super().compressible(task) if task == 0 else []

    def stored_counts(self, task: int) -> tuple[int, int]:
        if task == 0:
            return super().stored_counts(task)
        bits = self.weight.numel()
        bias = self.biases[task].numel() if self.has_bias else 0
        return bias + math.ceil(bits / 32), 4 * bias + math.ceil(bits / 8)

    def role(self) -> str:
        return f"mask threshold={self.threshold}"


class MaskFamily(LayerFamily):
    """Masked shared convolutions; per-task norms and last layer."""

    def __init__(self, threshold: float = 5e-3, init_score: float = 1e-2) -> None:
        self.threshold, self.init_score = threshold, init_score

    def shared_conv(self, spec: ConvSpec) -> MaskedConv:
        return MaskedConv(**spec.arguments(), threshold=self.threshold, init_score=self.init_score)
