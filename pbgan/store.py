"""A run's folder: everything a run writes, each file atomically, and where it finds it again.

``results.json`` and ``results.csv`` (the continual results), ``samples/after<i>_<task>/`` (a
grid per seen task after each stage), ``lifelong.pt`` (every frozen task, rebuilt by its nodes)
and ``checkpoints/task<i>_<name>/last.ckpt`` (the task in training, so a killed run resumes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from pbgan.evaluation import SampleRows, save_sample_grid
from pbgan.io import write_json, write_text
from pbgan.lifelong_file import FILE_NAME, save_lifelong_file
from pbgan.modules.base import LifelongGANModule
from pbgan.results import ContinualResults, csv_text
from pbgan.tasks import TaskSpec

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


class RunStore:
    """The files of one run folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    @property
    def lifelong_path(self) -> Path:
        return self.folder / FILE_NAME

    def checkpoint_dir(self, task: int, spec: TaskSpec) -> Path:
        return self.folder / "checkpoints" / f"task{task + 1}_{spec.name}"

    def remove_checkpoints(self, task: int, spec: TaskSpec) -> None:
        """A task's checkpoints, once the lifelong file holds it frozen."""
        shutil.rmtree(self.checkpoint_dir(task, spec), ignore_errors=True)

    def write_samples(self, stage: int, spec: TaskSpec, rows: list[SampleRows]) -> dict[str, torch.Tensor]:
        """One grid per task (input | output | target rows) after learning task ``stage``; returns
        the grids by their loggers' names."""
        folder = self.folder / "samples" / f"after{stage + 1}_{spec.name}"
        return {
            f"samples/task{row.task + 1}_{row.name}": save_sample_grid(
                folder / f"task{row.task + 1}_{row.name}.png", row.inputs, row.outputs, row.targets
            )
            for row in rows
        }

    def write_stage(
        self,
        module: LifelongGANModule,
        results: ContinualResults,
        specs: list[TaskSpec],
        image_size: int,
        probe_baselines: list[torch.Tensor],
        probe_inputs: list[torch.Tensor | None],
        probe_targets: list[torch.Tensor | None],
    ) -> None:
        """results.json, results.csv and the lifelong model file after a stage.

        The file keeps each task's probe images with their outputs, so a later run that extends
        it (init_from) can check every old task without the old data."""
        content = results.to_dict()
        write_json(self.folder / RESULTS_JSON, content)
        write_text(self.folder / RESULTS_CSV, csv_text(results.tidy_rows()))
        save_lifelong_file(
            self.lifelong_path,
            module,
            [spec.describe() for spec in specs],
            content,
            image_size,
            extra={
                "probe_baselines": probe_baselines,
                # compacted when saved: a slice would carry the whole eval set into the file
                "probe_inputs": probe_inputs,
                "probe_targets": probe_targets,
                "sequence_step": module.sequence_step,
            },
        )
