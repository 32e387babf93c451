"""One task's lifecycle, from begun to frozen: :class:`TaskTraining` owns it.

``begin`` adds the task to every lifelong generator; ``train`` fits it with a fresh Trainer (from
its last checkpoint where a killed run left one), whose :class:`~pbgan.callbacks.TaskEndCallback`
freezes it when training ends, and then checks that it was frozen.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger

from pbgan.callbacks import TaskEndCallback
from pbgan.checkpoints import DurableCheckpointIO, ResumeState
from pbgan.errors import PbganError
from pbgan.loggers import DurableCSVLogger
from pbgan.modules.base import LifelongGANModule
from pbgan.tasks import TaskSpec

log = logging.getLogger(__name__)


def task_seed(seed: int, task: int, purpose: str) -> int:
    """The seed of one part of one task, from the run's seed and the task's index alone: ``init``
    (the task's new tensors and discriminators) or ``train`` (its data order and every random
    draw of its training). A resumed run starts each task from the same seeds."""
    if purpose == "train":
        return seed + task
    if purpose == "init":
        return seed + 1000 * (task + 1)
    raise ValueError(f"unknown seed purpose {purpose!r}")


def build_trainer(
    cfg: DictConfig,
    out_dir: Path,
    loggers: list[Logger],
    checkpoint_dir: Path | None = None,
    resume_state: ResumeState | None = None,
) -> pl.Trainer:
    """A new Trainer for every task: the task-end callback freezes it when training ends, and
    ``checkpoint_dir`` receives a ``last.ckpt`` every epoch (the one before kept as
    ``previous.ckpt``, both written atomically) so a killed task resumes exactly."""
    callbacks: list[pl.Callback] = [TaskEndCallback()]
    if checkpoint_dir is not None:
        # No monitor and top-1: the newest epoch replaces the previous one as last.ckpt.
        callbacks.append(
            ModelCheckpoint(
                dirpath=str(checkpoint_dir), filename="last", save_top_k=1, enable_version_counter=False
            )
        )
        callbacks.append(resume_state or ResumeState())
    extra = {"precision": "bf16-mixed"} if cfg.speed.bf16 else {}
    return instantiate(
        cfg.trainer,
        **extra,
        default_root_dir=str(out_dir),
        callbacks=callbacks,
        logger=loggers or False,
        enable_checkpointing=checkpoint_dir is not None,
        plugins=[DurableCheckpointIO()],
    )


class TaskTraining:
    """Begins, trains and freezes the tasks of one sequence run, one at a time."""

    def __init__(
        self, cfg: DictConfig, out_dir: Path, loggers: list[Logger], eval_device: torch.device
    ) -> None:
        self.cfg = cfg
        self.out_dir = out_dir
        self.loggers = loggers
        self.eval_device = eval_device
        self.csv_logger = next((lg for lg in loggers if isinstance(lg, DurableCSVLogger)), None)

    def begin(self, module: LifelongGANModule, task: int, spec: TaskSpec) -> int:
        """Add the task to every generator (the plugin's task-start hook runs) from the task's own
        seed; its index."""
        pl.seed_everything(task_seed(int(self.cfg.seed), task, "init"), workers=True, verbose=False)
        return module.begin_task(spec.name)

    def train(
        self,
        module: LifelongGANModule,
        task: int,
        spec: TaskSpec,
        datamodule: pl.LightningDataModule,
        checkpoint_dir: Path,
        checkpoint: Path | None = None,
    ) -> float:
        """Fit the begun task until it is frozen (from ``checkpoint`` where a killed run left
        one); returns the seconds its training took, in this process and those before."""
        state = ResumeState(self.csv_logger)
        trainer = build_trainer(self.cfg, self.out_dir, self.loggers, checkpoint_dir, state)
        # Each task's training draws from its own seed: the same on every DDP rank (Lightning's
        # DDP setup re-seeds with this value too), and independent of what ran before it. A
        # checkpoint brings back the random state it was saved with.
        pl.seed_everything(task_seed(int(self.cfg.seed), task, "train"), workers=True, verbose=False)
        if checkpoint is None:
            trainer.fit(module, datamodule=datamodule)
        else:
            log.info("[pbgan] continuing task %d from %s", task + 1, checkpoint)
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(checkpoint))
        seconds = state.seconds()
        module.to(self.eval_device)  # Lightning hands the model back on the CPU
        if module.frozen_tasks == task and trainer.global_step > 0:
            # Resumed from the checkpoint of the task's last epoch: Lightning has nothing left to
            # train and skips its train-end hooks, so the task is frozen here, as it would have been.
            TaskEndCallback.freeze(trainer, module)
        if module.frozen_tasks != task + 1:
            raise PbganError(
                f"training of task {spec.name} ended without training a batch: check trainer.max_epochs, "
                "trainer.max_steps and trainer.limit_train_batches"
            )
        return seconds
