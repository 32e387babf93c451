"""Sequential fine-tuning (SFT): one shared generator trained task after task; only the
task-specific layers (the last layer) are per task. It forgets: that is what it measures.

The same family serves ``ewc`` and ``lifelong_gan``, which differ from ``sft`` only by their
training plugins. Batch norms share their affine parameters across tasks (they train on, like
every shared weight) while each task keeps the running statistics it was trained with
(:class:`SharedNorm`): statistics are not weights, no penalty or distillation can hold them, and
an old task evaluated with the newest task's statistics would measure the statistics' drift, not
the forgetting of weights these methods are compared on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.lifelong.family import LayerFamily, PlainFamily
from pbgan.lifelong.layers import InstanceNorm, LifelongLayer, check_norm


class SharedNorm(LifelongLayer):
    """BatchNorm2d with one affine (weight, bias) for all tasks and running statistics per task.

    The affine parameters live in an inner ``nn.BatchNorm2d`` without statistics of its own, so
    the reference initialisation (weight N(1, 0.02)) draws them in the order it always did. The
    active task normalises with batch statistics in train mode (updating its own running ones)
    and with its running ones in eval mode; a frozen task always with its running ones.
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.channels = channels
        self.eps, self.momentum = eps, momentum
        self.norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, track_running_stats=False)
        self.batch_statistics = False  # eval.protocol=reference: the input's own statistics

    def _create_task(self, task: int) -> None:
        """A new task's statistics start where the task before left them (the network is
        fine-tuned from there), the first task's as a fresh BatchNorm2d's."""
        if task == 0:
            factory = self.factory()
            mean, var = torch.zeros(self.channels, **factory), torch.ones(self.channels, **factory)
        else:
            mean, var = (t.detach().clone() for t in self.statistics(task - 1))
        self.register_buffer(f"mean{task}", mean)
        self.register_buffer(f"var{task}", var)

    def statistics(self, task: int) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"mean{task}"), getattr(self, f"var{task}")

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return []

    def task_buffers(self, task: int) -> list[torch.Tensor]:
        return list(self.statistics(task))

    def shared_tensors(self) -> list[torch.Tensor]:
        return [self.norm.weight, self.norm.bias]

    def plain_layer(self, task: int) -> nn.Module:
        plain = nn.BatchNorm2d(self.channels, eps=self.eps, momentum=self.momentum)
        mean, var = self.statistics(task)
        with torch.no_grad():
            plain.weight.copy_(self.norm.weight)
            plain.bias.copy_(self.norm.bias)
            plain.running_mean.copy_(mean)
            plain.running_var.copy_(var)
        return plain.to(mean.device).eval()

    def upgrade_state(self, prefix: str, state: dict[str, torch.Tensor], version: int) -> None:
        """Format 3 and older kept one plain BatchNorm2d shared by all tasks, statistics too: its
        statistics become every task's (so the old file computes exactly what it did)."""
        if version >= 4 or f"{prefix}running_mean" not in state:
            return
        mean, var = state.pop(f"{prefix}running_mean"), state.pop(f"{prefix}running_var")
        state.pop(f"{prefix}num_batches_tracked", None)
        for name in ("weight", "bias"):
            state[f"{prefix}norm.{name}"] = state.pop(f"{prefix}{name}")
        for task in range(self.num_tasks):
            state[f"{prefix}mean{task}"], state[f"{prefix}var{task}"] = mean.clone(), var.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_statistics:
            return F.batch_norm(x, None, None, self.norm.weight, self.norm.bias, True, 0.0, self.eps)
        task = self.active
        mean, var = self.statistics(task)
        training = self.training and task >= self.frozen
        return F.batch_norm(x, mean, var, self.norm.weight, self.norm.bias, training, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return f"{self.channels}, shared affine, statistics per task, tasks={self.num_tasks}"


class FineTuneFamily(PlainFamily):
    """Plain shared layers (one copy drifts across tasks), per-task last layers, batch norms
    with shared affine parameters and per-task statistics."""

    task_specific_conv = LayerFamily.task_specific_conv

    def norm(self, kind: str, channels: int) -> nn.Module:
        check_norm(kind)
        if kind == "batch":
            return SharedNorm(channels)
        return InstanceNorm(channels)
