"""Lightning callbacks of the lifelong sequence."""

from __future__ import annotations

import logging

import pytorch_lightning as pl

from pbgan.distributed import check_ranks_agree, rank, synchronize_task, world_size
from pbgan.faults import fault_point
from pbgan.modules.base import LifelongGANModule

# Every rank reports its digest: this logger keeps INFO where other ranks' "pbgan" is quieted.
rank_log = logging.getLogger("pbgan.ranks")
rank_log.setLevel(logging.INFO)


class TaskEndCallback(pl.Callback):
    """When a task's training ends, freeze its filters and append its new ones to the bank.

    Runs on every rank: under DDP the task's tensors are first made identical on all ranks, and
    after the freeze the ranks compare digests of their whole lifelong state. Training that is
    interrupted never reaches ``on_train_end``, so an unfinished task is never frozen.
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not isinstance(pl_module, LifelongGANModule):
            raise TypeError(f"TaskEndCallback needs a LifelongGANModule, got {type(pl_module).__name__}")
        self.freeze(trainer, pl_module)

    @staticmethod
    def freeze(trainer: pl.Trainer, pl_module: LifelongGANModule) -> None:
        """Freeze the newest task unless it is frozen already (``trainer``: the one that trained it)."""
        if pl_module.frozen_tasks > pl_module.newest_task:
            return
        fault_point("train-end")
        task = pl_module.newest_task
        synchronize_task(pl_module.lifelong_nets(), task)
        pl_module.end_task(trainer)
        if world_size() > 1:
            digest = check_ranks_agree(pl_module.lifelong_nets(), f"freezing task {task + 1}")
            rank_log.info(
                "[pbgan] rank %d/%d: task %d frozen, state digest %s", rank(), world_size(), task + 1, digest
            )
