"""Checks of the composed config that Hydra cannot do: values, not just option names."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf

from datamodules import is_whole, switch
from pbgan.errors import ConfigError
from pbgan.lifelong.storage import check_codec
from pbgan.methods.piggyback import check_ratio


def check_whole(cfg: DictConfig, dotted: str, least: int = 1) -> None:
    """The option ``dotted`` is a whole number of at least ``least``."""
    node: object = cfg
    for key in dotted.split("."):
        node = node[key]  # type: ignore[index]
    if not is_whole(node) or node < least:
        bound = "at least 1" if least == 1 else f"{least} or more"
        raise ConfigError(f"{dotted}={node!r} must be a whole number of {bound}")


def check_task_length(cfg: DictConfig) -> None:
    """Every task must train at least one batch: a task that trains nothing cannot be frozen."""
    epochs, steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1)
    if steps is not None and steps != -1 and (not isinstance(steps, int) or steps < 2):
        raise ConfigError(
            f"trainer.max_steps={steps!r} trains no batch (each batch takes a generator and a "
            "discriminator step): use at least 2, or -1 to train by trainer.max_epochs"
        )
    if epochs is not None and epochs != -1 and (not isinstance(epochs, int) or epochs < 1):
        raise ConfigError(f"trainer.max_epochs={epochs!r} trains nothing: use at least 1 (epochs per task)")
    if epochs == -1 and steps in (None, -1):
        raise ConfigError("set trainer.max_epochs or trainer.max_steps: each task needs a finite length")
    if epochs is None and steps in (None, -1):
        raise ConfigError(
            "trainer.max_epochs=null with no trainer.max_steps would train each task for Lightning's "
            "default of 1000 epochs: give the epochs per task (trainer.max_epochs=N) or trainer.max_steps"
        )


#: pbgan's on/off options (those of the data nodes are checked by the datamodules)
SWITCHES = (
    "report_html",
    "speed.channels_last",
    "speed.compile",
    "speed.bf16",
    "data.skip_bad_images",
    "data.pin_memory",
    "metrics.classifier.augment",
    "metrics.classifier.source_domains",
    "model.generator.dropout",
    "method.plugin.online",
    "method.plugin.swap",
    "logger.wandb.offline",
    "logger.tensorboard.default_hp_metric",
)


def check_switches(cfg: DictConfig) -> None:
    """Each on/off option is ``true`` or ``false``: a word such as ``maybe`` stays a string in
    Hydra, which Python would read as on."""
    for dotted in SWITCHES:
        value = OmegaConf.select(cfg, dotted, default=None)
        if value is not None:
            switch(value, dotted)


def objective_names(cfg: DictConfig) -> list[str]:
    """The figures ``objective`` names (none when it is null)."""
    wanted = cfg.get("objective")
    if wanted is None:
        return []
    return [str(wanted)] if isinstance(wanted, str) else [str(name) for name in wanted]


def check_objective(cfg: DictConfig) -> None:
    """``objective`` names only figures the run will have: its metrics or storage shares."""
    from pbgan.results import OBJECTIVE_ALIASES, STORAGE_OBJECTIVES

    metrics = set(cfg.eval.metrics)
    for name in objective_names(cfg):
        aliases = (alias for alias, keys in OBJECTIVE_ALIASES.items() if name == alias or name in keys)
        family = next(aliases, name)
        if name in STORAGE_OBJECTIVES or family in metrics:
            continue
        known = ", ".join([*OBJECTIVE_ALIASES, "l1", "psnr", "ssim", "acc", *STORAGE_OBJECTIVES])
        raise ConfigError(
            f"objective {name!r} is not measured by this run (eval.metrics={sorted(metrics)}): use one of "
            f"{known} (a metric also listed in eval.metrics), or a list of them"
        )


def objective_higher_is_better(name: str) -> bool:
    """Whether larger values of the objective ``name`` are better: the metric's direction (``fid``
    and ``kid`` by either kind's); the storage shares are better small."""
    from pbgan.metrics.suite import HIGHER_IS_BETTER
    from pbgan.results import OBJECTIVE_ALIASES

    return HIGHER_IS_BETTER.get(OBJECTIVE_ALIASES.get(name, (name,))[0], False)


def check_objective_directions(cfg: DictConfig, direction: object) -> None:
    """A sweeper's ``direction`` (Optuna's ``minimize``/``maximize``, one or a list) gives one
    direction per objective, each the way that objective gets better: a study that maximises FID
    or minimises Acc runs all its trials before anyone sees it searched for the worst."""
    names = objective_names(cfg)
    if direction is None or not names:
        return
    check_objective(cfg)  # a name it does not know is refused as such, not given a direction
    single = isinstance(direction, str) or not hasattr(direction, "__iter__")
    given = [direction] if single else list(direction)
    # Optuna's sweeper keeps an unset direction as its enum: Direction.minimize
    directions = [str(value).rsplit(".", 1)[-1].lower() for value in given]
    if len(directions) != len(names):
        raise ConfigError(
            f"objective={names} returns {len(names)} value(s) but hydra.sweeper.direction={directions} "
            f"gives {len(directions)}: give one direction per objective, e.g. "
            f"hydra.sweeper.direction=[{','.join('minimize' for _ in names)}]"
        )
    for index, (name, given_direction) in enumerate(zip(names, directions)):
        better = objective_higher_is_better(name)
        wanted = "maximize" if better else "minimize"
        if given_direction != wanted:
            where = "hydra.sweeper.direction" + (f"[{index}]" if len(names) > 1 else "")
            raise ConfigError(
                f"{where}={given_direction} for objective {name!r}, which is better "
                f"{'higher' if better else 'lower'}: the study would search for its worst value; "
                f"use {wanted}"
            )


def check_objectives_measurable(cfg: DictConfig, paired_tasks: int, tasks: int) -> None:
    """Before training: the sequence can give every objective a value. Ground-truth metrics need a
    paired task among the ``paired_tasks`` this run learns (the tasks of a file it extends are not
    measured again: their later rows hold no value), a new task's share needs a second task of
    the ``tasks``."""
    from pbgan.metrics.suite import PAIRED_ONLY

    whole_run = {"new_task_share": "stored_share", "new_task_bytes_share": "bytes_share"}
    for name in objective_names(cfg):
        if name in PAIRED_ONLY and not paired_tasks:
            raise ConfigError(
                f"objective {name!r} is measured against a ground truth, and no task of "
                f"task_seq={cfg.task_seq.get('name', '?')} is paired: use fid, kid or acc"
            )
        if name in whole_run and tasks < 2:
            raise ConfigError(
                f"objective {name!r} is what each task after the first stores, and this run has one task: "
                f"use {whole_run[name]}, or a sequence of two tasks or more"
            )


def check_metric_options(cfg: DictConfig) -> None:
    """The evaluation's counts and the domain classifier's settings, before the classifier trains."""
    from dataclasses import fields

    from pbgan.metrics.classifier import ClassifierSettings

    check_whole(cfg, "eval.sample_images", least=0)
    if "kid" in cfg.eval.metrics:
        for option in ("metrics.kid.subsets", "metrics.kid.subset_size"):
            check_whole(cfg, option)
    known = {field.name for field in fields(ClassifierSettings)} | {"source_domains"}
    unknown = sorted(set(cfg.metrics.classifier) - known)
    if unknown:
        raise ConfigError(
            f"metrics.classifier.{unknown[0]} is not a classifier setting: use {', '.join(sorted(known))}"
        )
    for option in ("width", "epochs", "batch_size", "train_images"):
        check_whole(cfg, f"metrics.classifier.{option}")


def validate_config(cfg: DictConfig) -> None:
    """Refuse impossible settings before any work starts, naming the option and the fix."""
    check_ratio(cfg.ratio)
    if "family" not in cfg.method:
        raise ConfigError(
            f"method={cfg.method.get('name')!r} names no layer family: a method's YAML needs a "
            "'family' node with a _target_ (see conf/method/piggyback.yaml)"
        )
    seed = cfg.get("seed")
    if not is_whole(seed) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a whole number of 0 or more, for example seed=0")
    for option in (
        "data.image_size",
        "eval.num_images",
        "eval.batch_size",
        "eval.probe_images",
        "model.generator.ngf",
        "model.discriminator.ndf",
    ):
        check_whole(cfg, option)
    check_metric_options(cfg)
    check_task_length(cfg)
    check_switches(cfg)
    check_codec(str(cfg.get("storage", {}).get("dtype", "float32")))
    check_objective(cfg)
    protocol = cfg.eval.get("protocol", "eval")
    if protocol not in ("eval", "reference"):
        raise ConfigError(
            f"eval.protocol={protocol!r} is not known: use eval (eval mode, running statistics) or "
            "reference (the reference test scripts: batch 1, batch statistics, seeded dropout)"
        )
    if cfg.speed.bf16 and (cfg.trainer.accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(
            "speed.bf16=true needs a CUDA GPU (bf16 autocast on a CPU is slower than float32): "
            "drop it on this machine"
        )
    if cfg.eval.probe_images > cfg.eval.num_images or cfg.eval.sample_images > cfg.eval.num_images:
        raise ConfigError(
            f"eval.probe_images={cfg.eval.probe_images} and eval.sample_images="
            f"{cfg.eval.sample_images} must not exceed eval.num_images={cfg.eval.num_images}"
        )
