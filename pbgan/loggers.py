"""Experiment loggers for a whole task sequence (W&B, CSV, TensorBoard, or several).

The loggers are made once per sequence and handed to every task's Trainer, so a sequence is
one W&B run; the module logs a ``step`` that keeps counting across tasks, and the runner logs
the evaluation of every stage at that step. Backends are imported only when configured, so
``logger=csv`` works where wandb is not installed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from pbgan.errors import ConfigError, PbganError
from pbgan.faults import fault_point
from pbgan.io import write_error, write_text


class DurableCSVWriter(ExperimentWriter):
    """Lightning's CSV writer, but it continues the run's file instead of deleting it and keeps its
    first ``keep_rows`` rows (what the durable state a run resumes from had logged: the rest is
    done again).

    A save appends its new rows, flushed to disk, so saving costs the rows it adds, not the whole
    file (rewriting it at every save made a long run's logging quadratic: 20,000 rows took 183 s).
    The file is rewritten, atomically, only where its rows change: a resume that drops rows past
    ``keep_rows``, or new columns (until that rewrite succeeds, later saves rewrite too: rows are
    never appended under an older header). An append that fails (a full disk, even after a short
    write) is cut back, so the file holds whole rows only; a process killed mid-append can leave
    a partial last row, past every row a durable state counts, which the next writer drops."""

    def __init__(self, log_dir: str, keep_rows: int | None = None) -> None:  # noqa: D107
        # Not super().__init__: Lightning's deletes an existing metrics.csv.
        self.log_dir = log_dir
        self.metrics: list[dict[str, Any]] = []  # logged, not yet saved
        self.hparams: dict[str, Any] = {}
        self.metrics_file_path = str(Path(log_dir) / self.NAME_METRICS_FILE)
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.metrics_keys: list[str] = []
        self.file_keys: list[str] = []  # the columns of the file's header, as written
        self.saved_rows = 0  # whole rows in the file
        path = Path(self.metrics_file_path)
        if path.is_file():
            self.metrics_keys, rows = self._read()
            self.file_keys = list(self.metrics_keys)
            # A process killed mid-append leaves its last row cut short: never one to keep.
            kept = rows[:-1] if self._ends_mid_row() else rows
            if keep_rows is not None:
                kept = kept[:keep_rows]
            if len(kept) < len(rows):
                self._rewrite(kept)
            self.saved_rows = len(kept)

    @property
    def row_count(self) -> int:
        """Rows logged so far, saved or not."""
        return self.saved_rows + len(self.metrics)

    def _ends_mid_row(self) -> bool:
        """Whether the file's last line lacks its line end (a row whose writing was cut short)."""
        with open(self.metrics_file_path, "rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"

    def _read(self) -> tuple[list[str], list[dict[str, Any]]]:
        with open(self.metrics_file_path, newline="") as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=self.metrics_keys)
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.metrics_file_path, text.getvalue())

    def _append(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` at the end of the file, unbuffered and synced; on any failure the file
        is cut back to its size before, so it keeps whole rows only."""
        path = Path(self.metrics_file_path)
        text = io.StringIO(newline="")
        csv.DictWriter(text, fieldnames=self.file_keys).writerows(rows)
        data = memoryview(text.getvalue().encode())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as error:
            raise write_error(path, error) from error
        try:
            size = os.fstat(fd).st_size
            try:
                fault_point(f"write:{path.name}")
                while data:  # a write can be short (a disk filling up): go on until it fails
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError as error:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # whole rows only: what was there before this save
                raise write_error(path, error) from error
        finally:
            try:
                os.close(fd)
            except OSError as error:
                raise write_error(path, error) from error

    def save(self) -> None:
        if not self.metrics:
            return
        self._record_new_keys()
        if self.metrics_keys != self.file_keys or not Path(self.metrics_file_path).is_file():
            # New columns (or none written yet): the whole file, atomically. The header counts as
            # written only once this succeeds, so a save after a failed one rewrites it again.
            rows = self._read()[1] if self.saved_rows else []
            self._rewrite(rows[: self.saved_rows] + self.metrics)
            self.file_keys = list(self.metrics_keys)
        else:
            self._append(self.metrics)
        self.saved_rows += len(self.metrics)
        self.metrics = []

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        text = yaml.safe_dump(self.hparams, sort_keys=False) if self.hparams else ""
        write_text(Path(self.log_dir) / self.NAME_HPARAMS_FILE, text)


class DurableCSVLogger(CSVLogger):
    """``CSVLogger`` whose file survives a resume: a resumed run appends to it (``keep_rows``:
    the rows the state it resumes from had logged) and every save is atomic."""

    def __init__(self, *args: Any, keep_rows: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_rows = keep_rows

    @property
    @rank_zero_experiment
    def experiment(self) -> DurableCSVWriter:
        if self._experiment is None:
            self._experiment = DurableCSVWriter(self.log_dir, self.keep_rows)
        return self._experiment

    def row_count(self) -> int:
        """Rows in the file once it is saved (the durable states record it)."""
        self.save()
        return self.experiment.row_count


@dataclass
class LogContinuation:
    """How a run's loggers take up its logs: ``run_id`` (W&B's, fixed when the run began) and,
    resuming, the durable state's loggers' ``step`` and the CSV rows it had written."""

    run_id: str | None = None
    resuming: bool = False
    step: int = 0
    csv_rows: int | None = None

    def options(self, target: str) -> dict[str, Any]:
        """Constructor arguments for the logger class ``target`` names."""
        name = target.rsplit(".", 1)[-1]
        if name == "DurableCSVLogger" and self.resuming:
            return {"keep_rows": self.csv_rows}
        if name == "TensorBoardLogger" and self.resuming:
            # events past the state resumed from are done again: hide the first process's ones
            return {"purge_step": self.step + 1}
        if name == "WandbLogger" and self.run_id:
            return {"id": self.run_id, **({"resume": "allow"} if self.resuming else {})}
        return {}


def build_loggers(
    cfg: DictConfig, out_dir: Path, continuation: LogContinuation | None = None
) -> list[Logger]:
    """Instantiate every logger under ``cfg.logger`` (a mapping name -> logger config), each
    continuing the run's logs where ``continuation`` says."""
    continuation = continuation or LogContinuation()
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        extra = continuation.options(str(node.get("_target_", "")))
        try:
            loggers.append(instantiate(node, save_dir=str(out_dir), **extra))
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
    """End the sequence's runs (W&B: finish the one run; others: flush). After a failure, a
    logger that cannot be flushed (a full disk) must not hide the error that stopped the run."""
    for logger in loggers:
        try:
            logger.finalize("success" if success else "failed")
        except PbganError:
            if success:
                raise
            continue
        if is_wandb(logger):
            import wandb

            if wandb.run is not None:
                wandb.finish(exit_code=0 if success else 1)
