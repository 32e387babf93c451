"""Lightning callbacks of the lifelong sequence."""

from __future__ import annotations

import pytorch_lightning as pl

from pbgan.modules.base import LifelongGANModule


class TaskEndCallback(pl.Callback):
    """When a task's training ends, freeze its filters and append its new ones to the bank.

    Runs on every rank, so the bank grows identically everywhere. Training that is interrupted
    never reaches ``on_train_end``, so an unfinished task is never frozen as if it were learned.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not isinstance(pl_module, LifelongGANModule):
            raise TypeError(f"TaskEndCallback needs a LifelongGANModule, got {type(pl_module).__name__}")
        if pl_module.frozen_tasks <= pl_module.newest_task:
            pl_module.end_task()
