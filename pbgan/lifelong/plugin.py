"""Training plugins: what a method changes about training, as named hooks the shared module calls.

A method is a layer family plus, where it trains differently (a distillation or regularisation
term, statistics gathered when a task ends, a teacher snapshot), a plugin. The hooks, in the
order a task meets them:

- :meth:`TrainingPlugin.on_task_start`: the task's parameters exist, training has not begun;
- :meth:`TrainingPlugin.generator_loss_terms`: extra terms added to every generator loss;
- :meth:`TrainingPlugin.after_optimizer_step`: after each generator or discriminator step;
- :meth:`TrainingPlugin.on_task_end`: the task has just been frozen (the training data is still
  reachable through ``trainer``).

A plugin is an ``nn.Module`` of the Lightning module: tensors it registers as buffers (or returns
from ``get_extra_state``) move with the model and are saved in checkpoints and in the lifelong
file, so a resumed or extended run continues with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from torch import nn

if TYPE_CHECKING:
    from pbgan.modules.base import LifelongGANModule


class TrainingPlugin(nn.Module):
    """The hooks of a method's training; this base changes nothing (piggyback, pf, full, sft, mask)."""

    def on_task_start(self, module: LifelongGANModule, task: int) -> None:
        """Task ``task`` was added to every lifelong net and is about to train."""

    def generator_loss_terms(
        self, module: LifelongGANModule, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Named loss terms (already weighted) added to the generator loss of this step; each is
        logged as ``train/NAME``."""
        return {}

    def after_optimizer_step(self, module: LifelongGANModule, optimizer: str) -> None:
        """After a step of ``optimizer`` (``"generator"`` or ``"discriminator"``)."""

    def on_task_end(self, module: LifelongGANModule, task: int, trainer: pl.Trainer | None) -> None:
        """Task ``task`` has just been frozen (``trainer`` is None when a task ends outside a fit)."""
