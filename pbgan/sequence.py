"""The sequence runner: walk the task list, one fresh Trainer per task, evaluate all seen tasks.

Data flows one way: config -> runner -> datamodule and module; results come back as plain
dicts that the runner writes (results.json, sample grids, the lifelong model file).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger

from pbgan.build import build_module, module_settings, standalone_parameters
from pbgan.callbacks import TaskEndCallback
from pbgan.config import validate_config
from pbgan.distributed import is_main_process
from pbgan.errors import ConfigError, PbganError
from pbgan.evaluation import TaskEvalSet, max_abs_change, save_sample_grid, translate_all
from pbgan.extend import PriorModel
from pbgan.io import write_json, write_text
from pbgan.lifelong.family import effective_ratio
from pbgan.lifelong_file import (
    FILE_NAME,
    load_lifelong_file,
    restore_module,
    save_lifelong_file,
    settings_differences,
)
from pbgan.loggers import build_loggers, close_loggers, log_config, log_stage
from pbgan.metrics import HIGHER_IS_BETTER, ClassifierSettings, EvaluationSuite, TaskImages
from pbgan.modules.base import LifelongGANModule
from pbgan.results import ContinualResults, csv_text, format_matrix, format_summary
from pbgan.tasks import TaskSpec, task_specs


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


def instantiate_data(spec: TaskSpec) -> pl.LightningDataModule:
    """The task's datamodule; a user-facing error inside it surfaces as itself, not Hydra's wrapper."""
    try:
        return instantiate(spec.data)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, PbganError):
            raise cause from None
        raise


def check_channels(specs: list[TaskSpec], datamodules: list[pl.LightningDataModule]) -> None:
    """One generator serves every task, so every task must agree on its input and output channels."""
    channels = [(dm.input_nc, dm.output_nc) for dm in datamodules]
    if len(set(channels)) > 1:
        listing = ", ".join(f"{spec.name}: {i} -> {o}" for spec, (i, o) in zip(specs, channels))
        raise ConfigError(
            f"the tasks of this sequence disagree on channels ({listing}): one generator learns them all, "
            "so set the same input_nc/output_nc in every task's data node"
        )


# Data settings that change how images are loaded, not which images: not part of cache keys.
LOADER_ONLY = ("batch_size", "num_workers", "pin_memory", "skip_bad_images", "verify")


def data_key(spec: TaskSpec) -> dict[str, Any]:
    """What identifies a task's data, without loader settings (the classifier cache key)."""
    data = OmegaConf.to_container(spec.data, resolve=True)
    return {
        "domain": spec.domain,
        "direction": spec.direction,
        **{k: v for k, v in data.items() if k not in LOADER_ONLY},
    }


def evaluation_device(accelerator: str) -> torch.device:
    """Where the generators translate the eval images: this rank's GPU when training uses one."""
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def collect_images(loader: Any, limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``limit`` (inputs, targets) images from a loader of (input, target) batches."""
    inputs, targets, seen = [], [], 0
    for batch_inputs, batch_targets in loader:
        inputs.append(batch_inputs)
        targets.append(batch_targets)
        seen += len(batch_targets)
        if seen >= limit:
            break
    return torch.cat(inputs)[:limit], torch.cat(targets)[:limit]


class SequenceRunner:
    """Learns the tasks of a sequence one after another and records the continual results."""

    def __init__(self, cfg: DictConfig, out_dir: str | Path, resume: bool = False) -> None:
        validate_config(cfg)
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.resume = resume
        new_specs = task_specs(cfg)
        # Per task: its val images (metrics and probes); an old task of init_from: its stored
        # probe images only, or None when the file kept none.
        self.eval_sets: list[TaskEvalSet | None] = []
        self.probe_baselines: list[torch.Tensor] = []
        # init_from: the file's tasks come first, learned and frozen, without their data.
        self.prior = PriorModel.load(cfg.init_from) if cfg.get("init_from") else None
        if self.prior:
            self.prior.check_new_tasks(new_specs)
            self.specs = self.prior.specs() + new_specs
            self.results = self.prior.results(new_specs, int(cfg.seed))
            self.results.higher_is_better.update(HIGHER_IS_BETTER)
            self.eval_sets = self.prior.probe_sets()
            self.probe_baselines = self.prior.probe_baselines()
        else:
            self.specs = new_specs
            self.results = ContinualResults(
                tasks=[spec.name for spec in self.specs],
                domains=[spec.domain for spec in self.specs],
                ratio=effective_ratio(str(cfg.method.name), float(cfg.ratio)),
                width=float(cfg.method.get("width", 1.0)),
                method=str(cfg.method.name),
                seed=int(cfg.seed),
                model=str(cfg.model.name),
                higher_is_better=dict(HIGHER_IS_BETTER),
            )
        self.first_new = len(self.specs) - len(new_specs)
        self.suite: EvaluationSuite | None = None
        self.loggers: list[Logger] = []
        # Under DDP every rank runs the sequence (same seeds, same evaluation, so the ranks'
        # random streams stay in step); only the main process writes and logs.
        self.main = is_main_process()
        self.eval_device = evaluation_device(str(cfg.trainer.accelerator))

    def _say(self, *args: Any, **kwargs: Any) -> None:
        """Print on the main process only (under DDP every rank runs this code)."""
        if self.main:
            print(*args, **kwargs)

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        new_specs = self.specs[self.first_new :]
        datamodules = [instantiate_data(spec) for spec in new_specs]  # fail fast on bad data
        new_sets = []
        for spec, datamodule in zip(new_specs, datamodules):
            datamodule.setup("fit")
            new_sets.append(
                TaskEvalSet.from_loader(spec.name, datamodule.val_dataloader(), int(cfg.eval.num_images))
            )
        self.eval_sets = self.eval_sets + new_sets
        check_channels(new_specs, datamodules)
        first = datamodules[0]
        settings = module_settings(cfg, first.input_nc, first.output_nc)
        if self.prior:  # before any training: a mismatch must cost nothing
            self.prior.check_architecture(str(cfg.model.name), settings)
        self.suite = self._build_suite(new_specs, datamodules, new_sets)
        self.results.classifier = self.suite.classifier_info
        # Re-seed: whether the classifier was trained or read from the cache must not change
        # the generator's initialisation.
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        module = build_module(cfg, first.input_nc, first.output_nc)
        self.results.standalone_params = standalone_parameters(settings, int(cfg.model.generator.ngf))
        done = self._restore(module, settings) if self.resume else 0
        if self.prior and done == 0:
            self.prior.load_into(module)
            done = self.first_new
            self._say(
                f"[pbgan] extending {self.prior.path}: tasks {', '.join(module.task_names)} are kept "
                "frozen; new tasks follow",
                flush=True,
            )
        module.to(self.eval_device)
        self.loggers = build_loggers(cfg, self.out_dir) if self.main else []
        log_config(self.loggers, cfg)
        success = False
        try:
            for task in range(done, len(self.specs)):
                datamodule = datamodules[task - self.first_new]
                self._learn_task(module, task, self.specs[task], datamodule)
                if self.main:
                    self._write_outputs(module, settings)
                    shutil.rmtree(self._checkpoint_dir(task), ignore_errors=True)
            success = True
        finally:
            close_loggers(self.loggers, success)
        self._print_summary()
        return self.results.to_dict()

    def _restore(self, module: LifelongGANModule, settings: dict[str, Any]) -> int:
        """Load the learned tasks, results and probe outputs of an interrupted run; tasks done."""
        path = self.out_dir / FILE_NAME
        if not path.is_file():
            self._say(f"[pbgan] resuming {self.out_dir}: no task was completed, starting at task 1")
            return 0
        payload = load_lifelong_file(path)
        names = [task["name"] for task in payload["tasks"]]
        if names != self.results.tasks[: len(names)]:
            raise PbganError(
                f"{path} learned tasks {names}, which do not start this sequence {self.results.tasks}: "
                "resume with the command that made the run"
            )
        stored = {name: entry["settings"] for name, entry in payload["generators"].items()}
        changed = settings_differences(stored, settings)
        if changed:
            raise PbganError(
                f"{path} was trained with other model settings than this command's ({'; '.join(changed)}): "
                "resume with the command that made the run"
            )
        restore_module(module, payload)
        self.results = ContinualResults.from_dict(payload["results"])
        self.probe_baselines = list(payload["probe_baselines"])
        self._say(f"[pbgan] resuming {self.out_dir}: tasks {', '.join(names)} are done", flush=True)
        return len(names)

    def _checkpoint_dir(self, task: int) -> Path:
        return self.out_dir / "checkpoints" / f"task{task + 1}_{self.specs[task].name}"

    def _fit(self, module: LifelongGANModule, task: int, datamodule: pl.LightningDataModule) -> None:
        """Train one task, from its last checkpoint when a killed run left one."""
        folder = self._checkpoint_dir(task)
        last = folder / "last.ckpt"
        trainer = build_trainer(self.cfg, self.out_dir, self.loggers, folder)
        # Each task's training draws from its own seed: the same on every DDP rank (Lightning's
        # DDP setup re-seeds with this value too), and independent of what ran before it.
        pl.seed_everything(int(self.cfg.seed) + task, workers=True, verbose=False)
        if not last.is_file():
            trainer.fit(module, datamodule=datamodule)
            return
        self._say(f"[pbgan] continuing task {task + 1} from {last}", flush=True)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(last))
        except (RuntimeError, EOFError, OSError) as error:
            if module.frozen_tasks > task:
                raise
            raise PbganError(
                f"checkpoint {last} cannot be loaded ({error}); delete it to restart task {task + 1}"
            ) from error

    def _build_suite(
        self, specs: list[TaskSpec], datamodules: list[pl.LightningDataModule], eval_sets: list[TaskEvalSet]
    ) -> EvaluationSuite:
        """The metrics of the tasks this run has data for (the suite numbers them from 0)."""
        metrics_cfg = self.cfg.metrics
        options = OmegaConf.to_container(metrics_cfg.classifier, resolve=True)
        source_classes = bool(options.pop("source_domains", True))
        classifier = ClassifierSettings(**options)
        tasks = [
            TaskImages(
                name=spec.name,
                domain=spec.domain,
                paired=bool(getattr(datamodule, "paired", True)),
                train_targets=train[1],
                eval_targets=data.targets,
                data_key=data_key(spec),
                source_domain=spec.source_domain if source_classes else None,
                train_inputs=train[0],
                eval_inputs=data.inputs,
            )
            for spec, datamodule, data in zip(specs, datamodules, eval_sets)
            for train in [collect_images(datamodule.train_dataloader(), classifier.train_images)]
        ]
        return EvaluationSuite(
            tasks,
            list(self.cfg.eval.metrics),
            classifier,
            cache_dir=Path(str(self.cfg.paths.cache_dir)),
            inception_weights=metrics_cfg.fid.inception_weights,
            seed=int(self.cfg.seed),
            image_size=int(self.cfg.data.image_size),
            batch_size=int(self.cfg.eval.batch_size),
        )

    def _learn_task(
        self, module: LifelongGANModule, task: int, spec: TaskSpec, datamodule: pl.LightningDataModule
    ) -> None:
        total = len(self.specs)
        self._say(
            f"\n[pbgan] task {task + 1}/{total}: {spec.name} ({spec.direction}, target domain "
            f"'{spec.domain}', ratio={self.results.ratio}, method={self.results.method})",
            flush=True,
        )
        module.begin_task(spec.name)
        self.results.record_untrained(task, self._metrics(task, self._outputs(module, task)))
        started = time.perf_counter()
        self._fit(module, task, datamodule)
        seconds = time.perf_counter() - started
        module.to(self.eval_device)  # Lightning hands the model back on the CPU
        if module.frozen_tasks != task + 1:
            raise PbganError(f"training of task {spec.name} stopped before it finished; nothing was frozen")
        grids = self._evaluate_stage(module, task)
        self.results.record_stage(
            module.stored_parameters(task),
            module.stored_bytes(task),
            module.bank_sizes(),
            seconds,
        )
        self._log_stage(module, task, grids)

    def _outputs(self, module: LifelongGANModule, task: int) -> torch.Tensor:
        """Task ``task``'s outputs on all its eval images (one pass serves metrics and probes)."""
        return translate_all(module, task, self.eval_sets[task].inputs, int(self.cfg.eval.batch_size))

    def _probe_outputs(self, module: LifelongGANModule, task: int, forward: torch.Tensor) -> torch.Tensor:
        """Outputs on the probe inputs in every direction the module serves (CycleGAN: both)."""
        if "BtoA" not in module.directions:
            return forward
        reals = self.eval_sets[task].targets[: len(forward)]
        backward = translate_all(module, task, reals, int(self.cfg.eval.batch_size), "BtoA")
        return torch.cat([forward.flatten(1), backward.flatten(1)], 1)

    def _metrics(self, task: int, outputs: torch.Tensor) -> dict[str, float]:
        """Task ``task``'s metrics; none for an init_from task (its data is not part of this run)."""
        if task < self.first_new:
            return {}
        return self.suite.evaluate(task - self.first_new, outputs)

    def _evaluate_stage(self, module: LifelongGANModule, stage: int) -> dict[str, torch.Tensor]:
        """After learning task ``stage``: metrics, forgetting and samples of every task seen."""
        probes = int(self.cfg.eval.probe_images)
        samples = int(self.cfg.eval.sample_images)
        folder = self.out_dir / "samples" / f"after{stage + 1}_{self.specs[stage].name}"
        grids = {}
        for task in range(stage + 1):
            data = self.eval_sets[task]
            if data is None:  # an init_from task whose file kept no probe images
                continue
            outputs = self._outputs(module, task)
            self.results.record_metrics(stage, task, self._metrics(task, outputs))
            # An init_from task's eval set is its stored probes: compare all of them.
            probe = self._probe_outputs(module, task, outputs if task < self.first_new else outputs[:probes])
            if task == stage:  # its own tensor: a slice would keep every eval output alive
                self.probe_baselines.append(probe.clone())
            change = max_abs_change(self.probe_baselines[task], probe)
            self.results.record_change(stage, task, change)
            if not self.main:
                continue
            grids[f"samples/task{task + 1}_{data.name}"] = save_sample_grid(
                folder / f"task{task + 1}_{data.name}.png",
                data.inputs[:samples],
                outputs[:samples],
                data.targets[:samples],
            )
        return grids

    def _log_stage(self, module: LifelongGANModule, stage: int, grids: dict[str, torch.Tensor]) -> None:
        if not self.loggers:
            return
        scalars = {
            f"eval/task{task + 1}_{self.specs[task].name}/{name}": value
            for name, matrix in self.results.matrix.items()
            for task, value in enumerate(matrix[stage])
            if value is not None
        }
        for name, values in self.results.summary().items():
            scalars.update({f"summary/{name}/{key}": v for key, v in values.items() if v is not None})
        scalars["params/stored_task"] = self.results.per_task_params[stage]
        scalars["params/stored_total"] = sum(self.results.per_task_params)
        columns = ["after"] + self.results.tasks
        tables = {
            f"matrix/{name}": (
                columns,
                [[self.results.tasks[i], *row] for i, row in enumerate(matrix[: stage + 1])],
            )
            for name, matrix in self.results.matrix.items()
        }
        log_stage(self.loggers, module.sequence_step, scalars, tables, grids)

    def _write_outputs(self, module: LifelongGANModule, settings: dict[str, Any]) -> None:
        """results.json, results.csv and the lifelong model file, each written atomically.

        The file keeps each task's probe images with their outputs, so a later run that extends
        it (init_from) can check every old task without the old data."""
        results = self.results.to_dict()
        write_json(self.out_dir / "results.json", results)
        write_text(self.out_dir / "results.csv", csv_text(self.results.tidy_rows()))
        counts = [len(baseline) for baseline in self.probe_baselines]
        probe_sets = self.eval_sets[: len(counts)]
        save_lifelong_file(
            self.out_dir / FILE_NAME,
            module,
            settings,
            [s.describe() for s in self.specs],
            results,
            int(self.cfg.data.image_size),
            extra={
                "probe_baselines": self.probe_baselines,
                # compacted when saved: a slice would carry the whole eval set into the file
                "probe_inputs": [None if d is None else d.inputs[:n] for d, n in zip(probe_sets, counts)],
                "probe_targets": [None if d is None else d.targets[:n] for d, n in zip(probe_sets, counts)],
                "sequence_step": module.sequence_step,
            },
        )

    def _print_summary(self) -> None:
        self._say("\n[pbgan] continual results (rows: after learning task i; columns: task j)")
        shown = [name for name in ("acc", self.suite.fid_key, "l1") if name in self.results.matrix]
        for metric in shown:
            self._say(format_matrix(self.results, metric))
            self._say()
        self._say(format_summary(self.results))
        if self.prior:
            self._say(
                f"tasks 1-{self.first_new} come from {self.prior.path}: this run has none of their data, "
                "so their metrics after later tasks are '-' and every average is over the new tasks; "
                "max_abs_change compares their outputs on the probe images the file kept"
            )
        self._say()
        self._say(format_matrix(self.results, "max_abs_change", digits=6))
        params = self.results.to_dict()["params"]
        self._say(
            f"\nstored generator parameters: {params['stored_total']:,} for "
            f"{self.results.completed} tasks vs {params['standalone_total']:,} for standalone models "
            f"({params['stored_share']:.3f}x)"
        )
        accuracy = self.suite.classifier_info.get("accuracy")
        if accuracy is not None:
            self._say(f"domain classifier accuracy on held-out real images: {accuracy:.4f}")
        self._say(f"outputs: {self.out_dir}", flush=True)


def run_sequence(cfg: DictConfig, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Learn ``cfg.task_seq`` and write results into ``out_dir``; returns results.json's content.

    ``resume``: ``out_dir`` holds an interrupted run of the same config; completed tasks are
    loaded, not retrained, and the interrupted task continues from its last checkpoint.
    """
    OmegaConf.resolve(cfg)
    return SequenceRunner(cfg, out_dir, resume).run()
