"""A task's checkpoints: written atomically, two kept, each verified before a run resumes from it.

Lightning writes checkpoints through :class:`DurableCheckpointIO`: the new ``last.ckpt`` is
written beside the old one as a temp file and fsynced; then the old one becomes
``previous.ckpt`` and the new one takes its place. A kill at any instant leaves at least one
complete checkpoint. :func:`pick_checkpoint` checks them (every record's CRC-32) newest first,
sets a damaged one aside as ``NAME.damaged`` with a one-line warning, and returns the newest good
one; a run never trains from a damaged file.

Each checkpoint also carries the random state of the process (``ResumeState``: torch CPU and CUDA,
numpy, Python), restored before training continues, so the data order and every random draw after
a resume are those of the uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO

from pbgan.errors import PbganError
from pbgan.io import DamagedFile, atomic_write, set_damaged_aside, verify_archive, write_torch

log = logging.getLogger(__name__)

LAST = "last.ckpt"
PREVIOUS = "previous.ckpt"


class DurableCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic writes that keep the previous checkpoint."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        previous = path.with_name(PREVIOUS) if path.name == LAST else None

        def write(tmp: Path) -> None:
            write_torch(tmp, checkpoint)
            # The old checkpoint becomes the previous one only once the new one is complete.
            if previous is not None and path.is_file():
                os.replace(path, previous)

        atomic_write(path, write)

    def load_checkpoint(
        self, path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        verify_archive(path)
        if map_location is None:
            return super().load_checkpoint(path, weights_only=weights_only)
        return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)


def pick_checkpoint(folder: Path, set_aside: bool = True) -> Path | None:
    """The newest intact checkpoint in a task's folder (``last.ckpt``, else ``previous.ckpt``);
    ``None`` where there is none. Damaged ones are renamed ``*.damaged`` and named in a warning
    (``set_aside=False``, the other DDP ranks: only skipped, the main process renames them)."""
    damaged = []
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.is_file():
            continue
        try:
            verify_archive(path)
        except DamagedFile as error:
            if not set_aside:
                continue
            set_damaged_aside(path, error)
            damaged.append(path)
            continue
        if damaged:
            log.warning("warning: resuming from %s instead (one epoch earlier)", path)
        return path
    if damaged:
        raise PbganError(
            f"every checkpoint in {folder} is damaged ({', '.join(p.name for p in damaged)}, set aside as "
            f"*.damaged): remove {folder} to train this task again from its start"
        )
    return None


def random_state() -> dict[str, Any]:
    """Every random stream a training step can draw from."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _plain_numpy_state(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _plain_numpy_state(state: tuple) -> tuple:
    """numpy's state with its key array as a tensor: checkpoints load with ``weights_only``."""
    name, keys, position, has_gauss, gauss = state
    return (str(name), torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss))


def set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeState(pl.Callback):
    """What a checkpoint needs besides the model and the loops for an exact resume: the process's
    random state (restored before training continues), the seconds the task has trained so far
    (a task's time counts the time before a kill) and how many rows the CSV log held (saved
    first, so the log a resume continues is complete up to the checkpoint)."""

    def __init__(self, csv_logger: Any | None = None) -> None:
        self.csv_logger = csv_logger
        self.seconds_before = 0.0  # training time of the processes before this one
        self._started = time.perf_counter()

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self._started

    def state_dict(self) -> dict[str, Any]:
        rows = self.csv_logger.row_count() if self.csv_logger is not None else None
        return {"random": random_state(), "seconds": self.seconds(), "log_rows": rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_random_state(state_dict["random"])
        self.seconds_before = float(state_dict.get("seconds", 0.0))
        self._started = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        restart_at_epoch_end(trainer)


def restart_at_epoch_end(trainer: pl.Trainer) -> None:
    """Undo Lightning's second count of the epoch a checkpoint ended, where it restarts there.

    The checkpoints are written in ``on_train_epoch_end``, after the epoch counted as processed.
    Resumed with ``trainer.max_steps`` set (iteration-based training), Lightning restarts the
    loop at that epoch's end and runs the epoch's end once more, counting it processed again:
    every later epoch then handed the data sampler (:class:`~datamodules.sampling.EpochShuffle`)
    the next epoch's number, so the resumed run trained on other data orders than the
    uninterrupted one. One count back makes the replayed end land where the checkpoint was.
    (Epoch-based training resumes at the epoch's end without replaying it.)"""
    loop = trainer.fit_loop
    if not (loop.restarted_on_epoch_end and loop._iteration_based_training()):
        return
    progress = loop.epoch_progress
    if progress.current.processed != progress.current.completed + 1:
        return  # not the state Lightning's epoch-end checkpoint leaves: nothing to undo
    progress.current.processed -= 1
    progress.total.processed -= 1
