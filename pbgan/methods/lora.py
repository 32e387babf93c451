"""Residual low-rank adapters (the LoRA idea, Hu et al. 2021) as a lifelong baseline: task 1 learns
ordinary weights, frozen forever; every later task keeps a low-rank update of every shared layer,
``W_t = W_1 + U_t V_t`` (``U_t``: ``N x r``, ``V_t``: ``r x C_in k k``), plus its own bias, norms
and last layer(s). Old tasks stay bit-identical; a task costs ``r (N + C_in k k) + N`` numbers a
layer. The method is this file plus ``conf/method/lora.yaml``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.family import ConvSpec, LayerFamily
from pbgan.lifelong.layers import INIT_STD, TaskConv


def check_lora_rank(rank: int) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(
            f"method.rank={rank!r} is not a rank: use a whole number >= 1 for the low-rank "
            "update of every layer (for example method.rank=8)"
        )


class LowRankConv(TaskConv):
    """Conv2d or ConvTranspose2d whose later tasks add a rank-``rank`` update to task 1's weight.

    The update starts at zero (``U_t = 0``, ``V_t ~ N(0, 1/(C_in k k))``), so a new task begins as
    task 1 and learns only the difference; a task's bias starts as task 1's. Filters are stored in
    PyTorch's layout for the kind of convolution; the update is made filter-major.
    """

    def __init__(self, *args, rank: int = 8, **kwargs) -> None:
        """:class:`TaskConv`'s geometry arguments, and the ``rank`` of every later task's update."""
        super().__init__(*args, **kwargs)
        check_lora_rank(rank)
        self.rank = rank
        self.base = nn.ParameterList()  # task 1's weight (one entry)
        self.lora_up = nn.ParameterList()  # U_t (N x r); an empty tensor for task 1
        self.lora_down = nn.ParameterList()  # V_t (r x C_in k k); an empty tensor for task 1

    def _create_task(self, task: int) -> None:
        factory = self.factory()
        if task == 0:
            shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
            new = torch.randn(shape, **factory) * INIT_STD  # drawn filter-major, stored in its layout
            self.base.append(nn.Parameter(new.transpose(0, 1).contiguous() if self.transposed else new))
            self.lora_up.append(nn.Parameter(torch.empty(0, **factory)))
            self.lora_down.append(nn.Parameter(torch.empty(0, **factory)))
            self._add_bias()
            return
        down = torch.randn(self.rank, self.filter_size, **factory) / math.sqrt(self.filter_size)
        self.lora_down.append(nn.Parameter(down))
        self.lora_up.append(nn.Parameter(torch.zeros(self.out_channels, self.rank, **factory)))
        if self.has_bias:
            self.biases.append(nn.Parameter(self.biases[0].detach().clone()))

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        params = [self.base[0]] if task == 0 else [self.lora_up[task], self.lora_down[task]]
        if self.has_bias:
            params.append(self.biases[task])
        return params

    def parameter_groups(self, task: int) -> dict[str, list[nn.Parameter]]:
        """A later task's factors train in the ``mixing`` group (``model.optim.piggyback_lr_scale``),
        as piggyback's matrices do; task 1's weight and every bias at the base rate."""
        if task == 0:
            return {"weights": self.task_parameters(task), "mixing": []}
        factors = [self.lora_up[task], self.lora_down[task]]
        return {"weights": [self.biases[task]] if self.has_bias else [], "mixing": factors}

    def task_weight(self, task: int) -> torch.Tensor:
        base = self.base[0]
        if task == 0:
            return base
        k = self.kernel_size
        update = (self.lora_up[task] @ self.lora_down[task]).view(self.out_channels, self.in_channels, k, k)
        return base + (update.transpose(0, 1) if self.transposed else update)

    def role(self) -> str:
        return f"low-rank update rank={self.rank}"


class LowRankFamily(LayerFamily):
    """Low-rank residual adapters on task 1's shared convolutions; per-task norms and last layers."""

    def __init__(self, rank: int = 8) -> None:
        check_lora_rank(rank)
        self.rank = rank

    def shared_conv(self, spec: ConvSpec) -> LowRankConv:
        return LowRankConv(**spec.arguments(), rank=self.rank)
