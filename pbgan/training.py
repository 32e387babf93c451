"""One task's lifecycle, from begun to frozen: :class:`TaskTraining` owns it.

``begin`` adds the task to every lifelong generator; ``train`` fits it with a fresh Trainer (from
its last checkpoint where a killed run left one), whose :class:`~pbgan.callbacks.TaskEndCallback`
freezes it when training ends, and then checks that it was frozen.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger

from pbgan.callbacks import TaskEndCallback
from pbgan.errors import PbganError
from pbgan.modules.base import LifelongGANModule
from pbgan.tasks import TaskSpec

log = logging.getLogger(__name__)


def build_trainer(
    cfg: DictConfig, out_dir: Path, loggers: list[Logger], checkpoint_dir: Path | None = None
) -> pl.Trainer:
    """A new Trainer for every task: the task-end callback freezes it when training ends, and
    ``checkpoint_dir`` receives a ``last.ckpt`` every epoch so a killed task can resume."""
    callbacks: list[pl.Callback] = [TaskEndCallback()]
    if checkpoint_dir is not None:
        # No monitor and top-1: the newest epoch replaces the previous one as last.ckpt.
        callbacks.append(
            ModelCheckpoint(
                dirpath=str(checkpoint_dir), filename="last", save_top_k=1, enable_version_counter=False
            )
        )
    extra = {"precision": "bf16-mixed"} if cfg.speed.bf16 else {}
    return instantiate(
        cfg.trainer,
        **extra,
        default_root_dir=str(out_dir),
        callbacks=callbacks,
        logger=loggers or False,
        enable_checkpointing=checkpoint_dir is not None,
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

    def begin(self, module: LifelongGANModule, spec: TaskSpec) -> int:
        """Add the task to every generator (the plugin's task-start hook runs); its index."""
        return module.begin_task(spec.name)

    def train(
        self,
        module: LifelongGANModule,
        task: int,
        spec: TaskSpec,
        datamodule: pl.LightningDataModule,
        checkpoint_dir: Path,
    ) -> float:
        """Fit the begun task until it is frozen; returns the seconds training took."""
        started = time.perf_counter()
        self._fit(module, task, datamodule, checkpoint_dir)
        seconds = time.perf_counter() - started
        module.to(self.eval_device)  # Lightning hands the model back on the CPU
        if module.frozen_tasks != task + 1:
            raise PbganError(f"training of task {spec.name} stopped before it finished; nothing was frozen")
        return seconds

    def _fit(
        self, module: LifelongGANModule, task: int, datamodule: pl.LightningDataModule, folder: Path
    ) -> None:
        last = folder / "last.ckpt"
        trainer = build_trainer(self.cfg, self.out_dir, self.loggers, folder)
        # Each task's training draws from its own seed: the same on every DDP rank (Lightning's
        # DDP setup re-seeds with this value too), and independent of what ran before it.
        pl.seed_everything(int(self.cfg.seed) + task, workers=True, verbose=False)
        if not last.is_file():
            trainer.fit(module, datamodule=datamodule)
            return
        log.info("[pbgan] continuing task %d from %s", task + 1, last)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(last))
        except (RuntimeError, EOFError, OSError) as error:
            if module.frozen_tasks > task:
                raise
            raise PbganError(
                f"checkpoint {last} cannot be loaded ({error}); delete it to restart task {task + 1}"
            ) from error
