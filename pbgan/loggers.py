"""Experiment loggers for a whole task sequence (W&B, CSV, TensorBoard, or several).

The loggers are made once per sequence and handed to every task's Trainer, so a sequence is
one W&B run; the module logs a ``step`` that keeps counting across tasks, and the runner logs
the evaluation of every stage at that step. Backends are imported only when configured, so
``logger=csv`` works where wandb is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger

from pbgan.errors import ConfigError


def build_loggers(cfg: DictConfig, out_dir: Path) -> list[Logger]:
    """Instantiate every logger under ``cfg.logger`` (a mapping name -> logger config)."""
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        try:
            loggers.append(instantiate(node, save_dir=str(out_dir)))
        except ImportError as error:
            raise ConfigError(
                f"logger={name} needs a package that is not installed ({error}); install it or pick "
                "another logger, for example logger=csv"
            ) from error
    return loggers


def is_wandb(logger: Logger) -> bool:
    return type(logger).__name__ == "WandbLogger"


def is_tensorboard(logger: Logger) -> bool:
    return type(logger).__name__ == "TensorBoardLogger"


def flat_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as a flat ``a/b/c -> value`` dict every backend accepts."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}/{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node if isinstance(node, (int, float, str, bool)) or node is None else str(node)

    walk("", OmegaConf.to_container(cfg, resolve=True))
    return flat


def log_config(loggers: list[Logger], cfg: DictConfig) -> None:
    config = flat_config(cfg)
    for logger in loggers:
        logger.log_hyperparams(config)


def log_stage(
    loggers: list[Logger],
    step: int,
    metrics: dict[str, float],
    tables: dict[str, tuple[list[str], list[list[Any]]]],
    images: dict[str, torch.Tensor],
) -> None:
    """After a task: scalar metrics, tables (the continual matrices) and sample grids."""
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        if is_wandb(logger):
            for key, (columns, rows) in tables.items():
                logger.log_table(key=key, columns=columns, data=rows, step=step)
            for key, grid in images.items():
                logger.log_image(key=key, images=[grid], step=step)
        elif is_tensorboard(logger):
            writer = logger.experiment
            for key, (columns, rows) in tables.items():
                lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
                lines += [
                    "| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |"
                    for row in rows
                ]
                writer.add_text(key, "\n".join(lines), global_step=step)
            for key, grid in images.items():
                writer.add_image(key, grid, global_step=step)
        logger.save()


def close_loggers(loggers: list[Logger], success: bool) -> None:
    """End the sequence's runs (W&B: finish the one run; others: flush)."""
    for logger in loggers:
        logger.finalize("success" if success else "failed")
        if is_wandb(logger):
            import wandb

            if wandb.run is not None:
                wandb.finish(exit_code=0 if success else 1)
