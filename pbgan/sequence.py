"""The sequence runner: walk the task list, one fresh Trainer per task, evaluate all seen tasks.

Data flows one way: config -> runner -> datamodule and module; results come back as plain
records. The runner is a short task loop over parts with one job each: :class:`TaskTraining`
(a task from begun to frozen), :class:`ContinualEvaluator` (every seen task's metrics, probes
and samples after a stage), :class:`RunStore` (the run folder's files) and :class:`PriorState`
(tasks learned before this run: ``resume=`` and ``init_from=`` both produce one).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger

from pbgan.build import instantiate_module, method_family, module_node
from pbgan.cli import quiet_other_ranks
from pbgan.config import check_objectives_measurable, validate_config
from pbgan.distributed import is_main_process
from pbgan.errors import ConfigError, PbganError
from pbgan.evaluation import ContinualEvaluator, TaskEvalSet
from pbgan.faults import fault_point
from pbgan.loggers import LogContinuation, build_loggers, close_loggers, log_config, log_stage
from pbgan.metrics import HIGHER_IS_BETTER, ClassifierSettings, EvaluationSuite, TaskImages
from pbgan.modules.base import LifelongGANModule
from pbgan.nodes import build, target_class
from pbgan.prior import PriorState
from pbgan.results import ContinualResults, format_matrix, format_summary, format_tasks
from pbgan.store import ResumePoint, RunStore
from pbgan.tasks import TaskSpec, task_specs
from pbgan.training import TaskTraining, build_trainer

__all__ = ["SequenceRunner", "build_trainer", "run_sequence", "task_specs"]

log = logging.getLogger(__name__)

# Data settings that change how images are loaded, not which images: not part of cache keys.
LOADER_ONLY = ("batch_size", "num_workers", "pin_memory", "skip_bad_images", "verify")


def instantiate_data(spec: TaskSpec) -> pl.LightningDataModule:
    """The task's datamodule; a user-facing error inside it surfaces as itself, not Hydra's wrapper."""
    try:
        return instantiate(spec.data)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, PbganError):
            raise cause from None
        raise ConfigError(f"the data node of task {spec.name} cannot be built: {error}") from None


def check_image_sizes(
    cfg: DictConfig, specs: list[TaskSpec], datamodules: list[pl.LightningDataModule]
) -> None:
    """One generator, built for ``data.image_size``, sees every task's images: their size must be it."""
    for spec, datamodule in zip(specs, datamodules):
        size = getattr(datamodule, "image_size", None)
        if size is not None and size != cfg.data.image_size:
            raise ConfigError(
                f"task {spec.name} gives {size}-pixel images (its data node's crop_size or image_size) "
                f"but the generator is built for data.image_size={cfg.data.image_size}: set them equal"
            )


def unused_data_options(specs: list[TaskSpec], given: list[str], data: Any = None) -> list[str]:
    """Warnings for the ``data.*`` sizes ``given`` on the command line that some tasks' data nodes
    do not take: ``train_size``/``val_size`` size the synthetic tasks, ``max_images`` cuts the
    image folders, and a task without the option would silently use all it has; with ``data``
    (the resolved ``cfg.data``), also a task whose node sets the option to its own value."""
    set_options = {item.split("=", 1)[0].lstrip("+~") for item in given}
    warnings = []
    for option, applies_to, instead in (
        ("train_size", "synthetic tasks", "data.max_images=N keeps the first N images of each split"),
        ("val_size", "synthetic tasks", "data.max_images=N keeps the first N images of each split"),
        ("max_images", "image-folder tasks", "data.train_size and data.val_size size synthetic tasks"),
    ):
        if f"data.{option}" not in set_options:
            continue
        without = [spec.name for spec in specs if option not in spec.data]
        if without:
            warnings.append(
                f"warning: data.{option} applies to {applies_to} only; task(s) {', '.join(without)} "
                f"ignore it ({instead})"
            )
        if data is None:
            continue
        wanted = data.get(option)
        for spec in specs:
            if option in spec.data and spec.data[option] != wanted:
                warnings.append(
                    f"warning: task {spec.name}'s data node sets its own {option}={spec.data[option]}, so "
                    f"data.{option}={wanted} does not apply to it (change or remove {option} in that "
                    f"task's data node)"
                )
    return warnings


def command_line_overrides() -> list[str]:
    """The Hydra overrides this run was given (none outside a Hydra run, as in the tests' compose)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def check_channels(specs: list[TaskSpec], datamodules: list[pl.LightningDataModule]) -> None:
    """One generator serves every task, so every task must agree on its input and output channels."""
    channels = [(dm.input_nc, dm.output_nc) for dm in datamodules]
    if len(set(channels)) > 1:
        listing = ", ".join(f"{spec.name}: {i} -> {o}" for spec, (i, o) in zip(specs, channels))
        raise ConfigError(
            f"the tasks of this sequence disagree on channels ({listing}): one generator learns them all, "
            "so set the same input_nc/output_nc in every task's data node"
        )


def is_paired(datamodule: pl.LightningDataModule) -> bool:
    """Whether a task's examples are (input, its ground truth) pairs (a datamodule that does not
    say is taken as paired)."""
    return bool(getattr(datamodule, "paired", True))


def distinct_val_targets(datamodule: pl.LightningDataModule) -> int | None:
    """After how many val examples an unpaired task's target images repeat (None: they do not),
    as its datamodule says (``distinct_val_targets``)."""
    count = getattr(datamodule, "distinct_val_targets", None)
    return None if count is None or is_paired(datamodule) else int(count())


def check_val_size(spec: TaskSpec, datamodule: pl.LightningDataModule, metrics: list[str]) -> None:
    """Every metric needs val images, FID at least two (it estimates a covariance) and real
    images as many: an unpaired task's distinct targets (:func:`distinct_targets`)."""
    count = len(datamodule.val_dataloader().dataset)
    distinct = distinct_val_targets(datamodule)
    targets = count if distinct is None else min(count, distinct)
    needed = 2 if "fid" in metrics or "kid" in metrics else 1
    if targets >= needed:
        return
    root = getattr(datamodule, "root", None)
    where = f" ({root})" if root is not None else ""
    fix = "add images to its val (or test) folder" + (
        ", or drop fid and kid from eval.metrics" if needed == 2 else ""
    )
    what = f"{count} validation image(s)" if count < needed else f"{targets} validation target image(s)"
    raise ConfigError(f"task {spec.name}{where} has {what} and its metrics need at least {needed}: {fix}")


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


def distinct_targets(name: str, datamodule: pl.LightningDataModule, targets: torch.Tensor) -> torch.Tensor:
    """An unpaired task's real eval images, each once: a datamodule whose val set repeats targets
    (fewer target than input images) says after how many (``distinct_val_targets``). Repeated
    real images would bias KID (its estimate assumes distinct samples) and weigh some images
    twice in FID; paired tasks keep every target, one per generated image."""
    distinct = distinct_val_targets(datamodule)
    if distinct is None:
        return targets
    if distinct < len(targets):
        log.info(
            "task %s: its %d eval inputs share %d target images; FID, KID and the classifier's accuracy "
            "take each of those once",
            name,
            len(targets),
            distinct,
        )
    return targets[:distinct]


def build_suite(
    cfg: DictConfig,
    specs: list[TaskSpec],
    datamodules: list[pl.LightningDataModule],
    eval_sets: list[TaskEvalSet],
) -> EvaluationSuite:
    """The metrics of the tasks this run has data for (the suite numbers them from 0)."""
    options = OmegaConf.to_container(cfg.metrics.classifier, resolve=True)
    source_classes = bool(options.pop("source_domains", True))
    classifier = ClassifierSettings(**options)
    tasks = [
        TaskImages(
            name=spec.name,
            domain=spec.domain,
            paired=is_paired(datamodule),
            train_targets=train[1],
            eval_targets=distinct_targets(spec.name, datamodule, data.targets),
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
        list(cfg.eval.metrics),
        classifier,
        cache_dir=Path(str(cfg.paths.cache_dir)),
        inception_weights=cfg.metrics.fid.inception_weights,
        seed=int(cfg.seed),
        image_size=int(cfg.data.image_size),
        batch_size=int(cfg.eval.batch_size),
        kid_subsets=int(cfg.metrics.kid.subsets),
        kid_subset_size=int(cfg.metrics.kid.subset_size),
    )


def standalone_parameters(nodes: dict[str, dict[str, Any]], full_ngf: int) -> int:
    """Parameters of one ordinary full-width model of the module's generators (the unit every
    method's storage is compared with)."""
    plain_family = {"_target_": "pbgan.lifelong.family.PlainFamily"}
    nets = [
        build({**node, "family": plain_family, "ngf": full_ngf}, "model.generator") for node in nodes.values()
    ]
    return sum(p.numel() for net in nets for p in net.parameters())


class SequenceProgress:
    """The sequence-level progress line printed above each task's Lightning bar: which task of
    how many this run trains, how long each trains, the time so far and the estimated time left
    (the mean of this run's finished tasks, training and evaluation, times the tasks left)."""

    def __init__(self, tasks: int) -> None:
        self.tasks = tasks  # tasks of the whole sequence
        self.started = time.monotonic()
        self.finished: list[float] = []
        self._task_started = self.started

    def line(self, task: int, length: str) -> str:
        self._task_started = time.monotonic()
        elapsed = self._task_started - self.started
        parts = [f"{length} per task", f"elapsed {_duration(elapsed)}"]
        if self.finished:  # this task and those after it, at this process's mean so far
            left = self.tasks - task
            parts.append(f"about {_duration(left * sum(self.finished) / len(self.finished))} left")
        return "; " + ", ".join(parts)

    def task_done(self) -> None:
        self.finished.append(time.monotonic() - self._task_started)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class SequenceRunner:
    """Learns the tasks of a sequence one after another and records the continual results."""

    def __init__(self, cfg: DictConfig, store: RunStore, resume: bool = False) -> None:
        """``cfg``: validated and resolved; ``store``: the run folder, opened (:func:`run_sequence`)."""
        self.cfg = cfg
        self.store = store
        self.resume = resume
        self.new_specs = task_specs(cfg)
        # init_from: the file's tasks come first, learned and frozen, without their data.
        self.prior = PriorState.read(cfg.init_from, "init_from") if cfg.get("init_from") else None
        if self.prior:
            self.prior.check_new_tasks(self.new_specs)
            self.specs = self.prior.specs() + self.new_specs
            self.results = self.prior.extended_results(self.new_specs, int(cfg.seed))
            self.results.higher_is_better.update(HIGHER_IS_BETTER)
        else:
            self.specs = self.new_specs
            self.results = ContinualResults(
                tasks=[spec.name for spec in self.specs],
                domains=[spec.domain for spec in self.specs],
                ratio=method_family(cfg).share_of_new_filters,
                width=float(cfg.method.get("width", 1.0)),
                method=str(cfg.method.name),
                seed=int(cfg.seed),
                model=str(cfg.model.name),
                higher_is_better=dict(HIGHER_IS_BETTER),
            )
        self.first_new = len(self.specs) - len(self.new_specs)
        self.loggers: list[Logger] = []
        # Under DDP every rank runs the sequence (same seeds, same evaluation, so the ranks'
        # random streams stay in step); only the main process writes and logs.
        self.main = is_main_process()
        quiet_other_ranks(self.main)
        self.eval_device = evaluation_device(str(cfg.trainer.accelerator))
        self.progress = SequenceProgress(len(self.specs))

    def _task_length(self) -> str:
        """How long each task trains, as the trainer config says."""
        steps, epochs = self.cfg.trainer.get("max_steps"), self.cfg.trainer.get("max_epochs")
        if steps not in (None, -1):
            return f"{steps} optimizer steps"
        return f"{epochs} epoch{'s' if epochs != 1 else ''}"

    @property
    def out_dir(self) -> Path:
        return self.store.folder

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        datamodules = [instantiate_data(spec) for spec in self.new_specs]  # fail fast on bad data
        for warning in unused_data_options(self.new_specs, command_line_overrides(), cfg.data):
            log.warning(warning)
        new_sets, wanted = [], int(cfg.eval.num_images)
        for spec, datamodule in zip(self.new_specs, datamodules):
            datamodule.setup("fit")
            check_val_size(spec, datamodule, list(cfg.eval.metrics))
            eval_set = TaskEvalSet.from_loader(spec.name, datamodule.val_dataloader(), wanted)
            if len(eval_set) < wanted:  # every metric of the task is over these
                log.warning(
                    "warning: task %s has %d validation images, fewer than eval.num_images=%d: its metrics "
                    "(FID and KID too) are measured on %d images",
                    spec.name,
                    len(eval_set),
                    wanted,
                    len(eval_set),
                )
            new_sets.append(eval_set)
        check_channels(self.new_specs, datamodules)
        check_image_sizes(cfg, self.new_specs, datamodules)
        check_objectives_measurable(
            cfg,
            paired_tasks=sum(map(is_paired, datamodules)),
            tasks=len(self.specs),
        )
        first = datamodules[0]
        node = module_node(cfg, first.input_nc, first.output_nc)
        nodes = target_class(str(node["_target_"]), "model").generator_nodes_of(node["generator"])
        if self.prior:  # before any training: a mismatch must cost nothing
            self.prior.check_architecture(str(cfg.model.name), nodes)
            self.prior.check_settings(cfg)
        suite = build_suite(cfg, self.new_specs, datamodules, new_sets)
        self.results.classifier = suite.classifier_info
        # Re-seed: whether the classifier was trained or read from the cache must not change
        # the generator's initialisation.
        pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
        module = instantiate_module(node)
        self.results.standalone_params = standalone_parameters(nodes, int(cfg.model.generator.ngf))
        evaluator = ContinualEvaluator(
            suite,
            (self.prior.probe_sets() if self.prior else []) + new_sets,
            self.prior.probe_baselines() if self.prior else [],
            self.first_new,
            int(cfg.eval.batch_size),
            int(cfg.eval.probe_images),
            int(cfg.eval.sample_images),
            str(cfg.eval.protocol),
            int(cfg.seed),
        )
        point = self._start_state(module, nodes, evaluator)
        module.to(self.eval_device)
        self.loggers = build_loggers(cfg, self.out_dir, self._continuation(point)) if self.main else []
        log_config(self.loggers, cfg)
        training = TaskTraining(cfg, self.out_dir, self.loggers, self.eval_device)
        success = False
        try:
            for task in range(point.done, len(self.specs)):
                checkpoint = point.checkpoint if task == point.done else None
                self._learn_task(
                    module, task, training, evaluator, datamodules[task - self.first_new], checkpoint
                )
            if self.main:
                self.store.finish(self.specs)
            success = True
        finally:
            close_loggers(self.loggers, success)
        self._report(suite)
        if self.main and cfg.get("report_html", True):
            self._write_page()
        return self.results.to_dict()

    def _write_page(self) -> None:
        """The run's page (report.html): everything above with the sample grids, offline."""
        from pbgan.report.html import write_run_page

        try:
            page = write_run_page(self.out_dir)
        except (OSError, ValueError, PbganError) as error:  # the run's results stand without it
            log.warning("[pbgan] could not write %s/report.html (%s); python -m pbgan.report %s makes it",
                        self.out_dir, error, self.out_dir)  # fmt: skip
            return
        log.info("[pbgan] the run's page: %s", page)

    def _continuation(self, point: ResumePoint) -> LogContinuation:
        """How the loggers continue the run's logs: from the state the run resumes from."""
        return LogContinuation(
            run_id=self.store.run_info().get("wandb_id"),
            resuming=self.resume,
            step=point.step,
            csv_rows=point.log_rows,
        )

    def _start_state(
        self, module: LifelongGANModule, nodes: dict, evaluator: ContinualEvaluator
    ) -> ResumePoint:
        """Load the tasks learned before this run into ``module``; where the run continues."""
        payload, done = None, 0
        written = self.store.written_state(main=self.main) if self.resume else None
        if written is not None:
            state = PriorState(written[0], written[1], "resume")
            state.check_resumes(self.results.tasks, nodes)
            state.load_into(module)
            payload, done = state.payload, state.num_tasks
            self.results = state.results()
            evaluator.probe_baselines = list(state.payload["probe_baselines"])
            if self.main:  # a kill between lifelong.pt and results.json: bring them in line
                self.store.write_results(self.results)
            log.info("[pbgan] resuming %s: tasks %s are done", self.out_dir, ", ".join(state.task_names))
        elif self.prior:  # extending (an extending run resumed before its first new task too)
            self.prior.load_into(module)
            done = self.first_new
            log.info(
                "[pbgan] extending %s: tasks %s are kept frozen; new tasks follow",
                self.prior.path,
                ", ".join(module.task_names),
            )
        elif self.resume:
            log.info("[pbgan] resuming %s: no task was completed, starting at task 1", self.out_dir)
        if not self.resume:
            return ResumePoint(done=done, step=module.sequence_step)
        return self.store.resume_point(done, self.specs, payload, main=self.main, step=module.sequence_step)

    def _learn_task(
        self,
        module: LifelongGANModule,
        task: int,
        training: TaskTraining,
        evaluator: ContinualEvaluator,
        datamodule: pl.LightningDataModule,
        checkpoint: Path | None,
    ) -> None:
        spec = self.specs[task]
        log.info(
            "\n[pbgan] task %d/%d: %s (%s, target domain '%s', ratio=%s, method=%s)%s",
            task + 1,
            len(self.specs),
            spec.name,
            spec.direction,
            spec.domain,
            self.results.ratio,
            self.results.method,
            self.progress.line(task, self._task_length()),
        )
        training.begin(module, task, spec)
        self.results.record_untrained(task, evaluator.untrained(module, task))
        folder = self.store.checkpoint_dir(task, spec)
        seconds = training.train(module, task, spec, datamodule, folder, checkpoint)
        self._store_compressed(module, task, evaluator)
        rows = evaluator.stage(module, task, self.results)
        self.progress.task_done()
        self.results.record_stage(
            module.stored_parameters(task), module.stored_bytes(task), module.bank_sizes(), seconds
        )
        if not self.main:
            return
        grids = self.store.write_samples(task, spec, rows)
        self._log_stage(module, task, grids)
        probe_inputs, probe_targets = evaluator.probe_sets()
        extra = {
            "probe_baselines": evaluator.probe_baselines,
            # compacted when saved: a slice would carry the whole eval set into the file
            "probe_inputs": probe_inputs,
            "probe_targets": probe_targets,
            # how the probe outputs were computed: an extending run must compute them alike
            "probe_protocol": {"protocol": str(self.cfg.eval.protocol), "seed": int(self.cfg.seed)},
            "sequence_step": module.sequence_step,
            "log_rows": training.csv_logger.row_count() if training.csv_logger is not None else None,
        }
        self.store.write_stage(module, self.results, self.specs, int(self.cfg.data.image_size), extra)
        fault_point("stage-written")
        if task > self.first_new:  # two lifelong files hold the task before this one now
            self.store.remove_checkpoints(task - 1, self.specs[task - 1])

    def _store_compressed(self, module: LifelongGANModule, task: int, evaluator: ContinualEvaluator) -> None:
        """Apply ``storage.dtype`` to the task just finished, recording the one-time change it
        makes to the task's outputs on its eval images (both directions where the model has
        two) and its metrics just before."""
        codec = str(self.cfg.storage.dtype)
        float_bytes = module.stored_bytes(task)
        if codec == "float32":
            self.results.record_storage(task, {"dtype": codec, "float32_bytes": float_bytes})
            return
        before = evaluator.outputs(module, task)
        metrics_before = evaluator.metrics(task, before)
        before = evaluator.probe_outputs(module, task, before)
        module.compress_task(task, codec)
        after = evaluator.probe_outputs(module, task, evaluator.outputs(module, task))
        change = (after - before).abs()
        record = {
            "dtype": codec,
            "float32_bytes": float_bytes,
            "stored_bytes": module.stored_bytes(task),
            "max_abs_change": float(change.max()),
            "mean_abs_change": float(change.mean()),
            "metrics_before": metrics_before,
        }
        self.results.record_storage(task, record)
        log.info(
            "[pbgan] %s stored as %s: %d -> %d bytes; outputs changed once by at most %.3g (mean %.3g)",
            self.specs[task].name,
            codec,
            float_bytes,
            record["stored_bytes"],
            record["max_abs_change"],
            record["mean_abs_change"],
        )

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

    def _report(self, suite: EvaluationSuite) -> None:
        """The continual matrices and storage at the end of the run."""
        lines = ["", "[pbgan] continual results (rows: after learning task i; columns: task j)"]
        shown = [name for name in ("acc", suite.fid_key, suite.kid_key, "l1") if name in self.results.matrix]
        for metric in shown:
            lines += [format_matrix(self.results, metric), ""]
        lines.append(format_summary(self.results))
        if self.prior:
            lines.append(
                f"tasks 1-{self.first_new} come from {self.prior.path}: this run has none of their data, "
                "so their metrics after later tasks are '-' and every average is over the new tasks; "
                "max_abs_change compares their outputs on the probe images the file kept"
            )
        lines += ["", format_matrix(self.results, "max_abs_change", digits=6)]
        lines += ["", format_tasks(self.results)]
        params = self.results.to_dict()["params"]
        lines.append(
            f"\nstored generator parameters: {params['stored_total']:,} for "
            f"{self.results.completed} tasks vs {params['standalone_total']:,} for standalone models "
            f"({params['stored_share']:.3f}x)"
        )
        accuracy = suite.classifier_info.get("accuracy")
        if accuracy is not None:
            lines.append(f"domain classifier accuracy on held-out real images: {accuracy:.4f}")
        lines.append(f"outputs: {self.out_dir}")
        log.info("\n".join(lines))


def run_sequence(
    cfg: DictConfig, out_dir: str | Path, resume: bool = False, hydra_dir: str | Path | None = None
) -> dict[str, Any]:
    """Learn ``cfg.task_seq`` and write results into ``out_dir``; returns results.json's content.

    ``resume``: ``out_dir`` holds an interrupted run of the same config; completed tasks are
    loaded, not retrained, and the interrupted task continues from its newest durable state.
    The folder is locked for the run; ``hydra_dir``: where Hydra wrote its ``.hydra`` files.
    """
    validate_config(cfg)
    store = RunStore(out_dir)
    main = is_main_process()
    if main:  # other DDP ranks share the main process's folder and lock
        store.open(cfg, resume, Path(hydra_dir) if hydra_dir is not None else None)
    try:
        OmegaConf.resolve(cfg)
        return SequenceRunner(cfg, store, resume).run()
    finally:
        if main:
            store.close()
