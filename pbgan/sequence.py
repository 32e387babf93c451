"""The sequence runner: walk the task list, one fresh Trainer per task, evaluate all seen tasks.

Data flows one way: config -> runner -> datamodule and module; results come back as plain
dicts that the runner writes (results.json, sample grids, the lifelong model file).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pbgan.build import build_module, generator_settings
from pbgan.callbacks import TaskEndCallback
from pbgan.config import validate_config
from pbgan.errors import ConfigError, PbganError
from pbgan.evaluation import TaskEvalSet, max_abs_change, paired_metrics, save_sample_grid, translate_all
from pbgan.io import write_json
from pbgan.lifelong_file import FILE_NAME, save_lifelong_file
from pbgan.modules.base import LifelongGANModule
from pbgan.results import ContinualResults, format_matrix

log = logging.getLogger("pbgan")


@dataclass
class TaskSpec:
    """One task of the sequence, as its config describes it."""

    name: str
    domain: str
    direction: str
    data: DictConfig

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "domain": self.domain, "direction": self.direction}


def task_specs(cfg: DictConfig) -> list[TaskSpec]:
    """The tasks of ``cfg.task_seq`` in order."""
    tasks = cfg.task_seq.get("tasks") or {}
    if not tasks:
        raise ConfigError(f"task_seq={cfg.task_seq.get('name')!r} lists no tasks under 'tasks'")
    return [
        TaskSpec(
            name=str(task.get("name", key)),
            domain=str(task.get("domain", key)),
            direction=str(task.get("direction", "AtoB")),
            data=task.data,
        )
        for key, task in tasks.items()
    ]


def build_logger(cfg: DictConfig, out_dir: Path, task: int, spec: TaskSpec) -> Any:
    """The Lightning logger the ``logger`` config group names, or False for none."""
    if not cfg.get("logger"):
        return False
    return instantiate(cfg.logger, save_dir=str(out_dir), version=f"task{task + 1}_{spec.name}")


def build_trainer(cfg: DictConfig, out_dir: Path, task: int, spec: TaskSpec) -> pl.Trainer:
    """A new Trainer for every task: the task-end callback freezes it when training ends."""
    return instantiate(
        cfg.trainer,
        default_root_dir=str(out_dir),
        callbacks=[TaskEndCallback()],
        logger=build_logger(cfg, out_dir, task, spec),
    )


class SequenceRunner:
    """Learns the tasks of a sequence one after another and records the continual results."""

    def __init__(self, cfg: DictConfig, out_dir: str | Path) -> None:
        validate_config(cfg)
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.specs = task_specs(cfg)
        self.results = ContinualResults(
            tasks=[spec.name for spec in self.specs],
            domains=[spec.domain for spec in self.specs],
            ratio=float(cfg.ratio),
            method=str(cfg.method.name),
            seed=int(cfg.seed),
            model=str(cfg.model.name),
        )
        self.eval_sets: list[TaskEvalSet] = []
        self.probe_baselines: list[torch.Tensor] = []

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        datamodules = [instantiate(spec.data) for spec in self.specs]  # fail fast on bad data
        first = datamodules[0]
        module = build_module(cfg, first.input_nc, first.output_nc)
        settings = {"generator": generator_settings(cfg, first.input_nc, first.output_nc)}
        for task, (spec, datamodule) in enumerate(zip(self.specs, datamodules)):
            self._learn_task(module, task, spec, datamodule)
            save_lifelong_file(
                self.out_dir / FILE_NAME, module, settings,
                [s.describe() for s in self.specs], self.results.to_dict(),
            )
        self._print_summary()
        return self.results.to_dict()

    def _learn_task(
        self, module: LifelongGANModule, task: int, spec: TaskSpec, datamodule: pl.LightningDataModule
    ) -> None:
        total = len(self.specs)
        print(f"\n[pbgan] task {task + 1}/{total}: {spec.name} ({spec.direction}, target domain "
              f"'{spec.domain}', ratio={self.results.ratio}, method={self.results.method})", flush=True)
        datamodule.setup("fit")
        eval_cfg = self.cfg.eval
        self.eval_sets.append(
            TaskEvalSet.from_loader(spec.name, datamodule.val_dataloader(), int(eval_cfg.num_images))
        )
        module.begin_task(spec.name)
        self.results.record_untrained(task, self._metrics(module, task))
        started = time.perf_counter()
        build_trainer(self.cfg, self.out_dir, task, spec).fit(module, datamodule=datamodule)
        seconds = time.perf_counter() - started
        if module.frozen_tasks != task + 1:
            raise PbganError(f"training of task {spec.name} stopped before it finished; nothing was frozen")
        self._evaluate_stage(module, task)
        self.results.record_stage(
            module.stored_parameters(task), module.stored_bytes(task),
            module.generator.bank_sizes(), seconds,
        )
        write_json(self.out_dir / "results.json", self.results.to_dict())

    def _outputs(self, module: LifelongGANModule, task: int) -> torch.Tensor:
        """Task ``task``'s outputs on all its eval images (one pass serves metrics and probes)."""
        return translate_all(module, task, self.eval_sets[task].inputs, int(self.cfg.eval.batch_size))

    def _metrics(self, module: LifelongGANModule, task: int) -> dict[str, float]:
        return paired_metrics(self._outputs(module, task), self.eval_sets[task].targets)

    def _evaluate_stage(self, module: LifelongGANModule, stage: int) -> None:
        """After learning task ``stage``: metrics, forgetting and samples of every task seen."""
        probes = int(self.cfg.eval.probe_images)
        samples = int(self.cfg.eval.sample_images)
        folder = self.out_dir / "samples" / f"after{stage + 1}_{self.specs[stage].name}"
        for task in range(stage + 1):
            data = self.eval_sets[task]
            outputs = self._outputs(module, task)
            self.results.record_metrics(stage, task, paired_metrics(outputs, data.targets))
            if task == stage:
                self.probe_baselines.append(outputs[:probes])
            change = max_abs_change(self.probe_baselines[task], outputs[:probes])
            self.results.record_change(stage, task, change)
            save_sample_grid(
                folder / f"task{task + 1}_{data.name}.png",
                data.inputs[:samples], outputs[:samples], data.targets[:samples],
            )

    def _print_summary(self) -> None:
        print("\n[pbgan] continual results (rows: after learning task i; columns: task j)")
        for metric in self.results.matrix:
            print(format_matrix(self.results, metric))
            print()
        print(format_matrix(self.results, "max_abs_change", digits=6))
        params = self.results.to_dict()["params"]
        print(
            f"\nstored generator parameters: {params['stored_total']:,} for "
            f"{self.results.completed} tasks vs {params['standalone_total']:,} for standalone models "
            f"({params['stored_share']:.3f}x)"
        )
        print(f"outputs: {self.out_dir}", flush=True)


def run_sequence(cfg: DictConfig, out_dir: str | Path) -> dict[str, Any]:
    """Learn ``cfg.task_seq`` and write results into ``out_dir``; returns results.json's content."""
    OmegaConf.resolve(cfg)
    return SequenceRunner(cfg, out_dir).run()
