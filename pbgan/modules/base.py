"""What every lifelong GAN module shares: tasks, discriminators, optimizers, schedule, inference.

Subclasses (pix2pix, CycleGAN) hold only their networks' construction and their losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytorch_lightning as pl
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from pbgan.errors import ConfigError
from pbgan.faults import fault_point
from pbgan.lifelong.network import LifelongNet
from pbgan.lifelong.plugin import TrainingPlugin


@contextmanager
def batch_statistics(module: nn.Module, on: bool = True) -> Iterator[None]:
    """Within: every norm layer that can (``batch_statistics`` attribute) normalises with the
    statistics of its input and reads or updates no running ones, and dropout is on (the
    reference test scripts' train-mode evaluation). Nothing changes when ``on`` is false."""
    if not on:
        yield
        return
    norms = [m for m in module.modules() if hasattr(m, "batch_statistics")]
    dropouts = [m for m in module.modules() if isinstance(m, nn.Dropout) and not m.training]
    for norm in norms:
        norm.batch_statistics = True
    for dropout in dropouts:
        dropout.train()
    try:
        yield
    finally:
        for norm in norms:
            norm.batch_statistics = False
        for dropout in dropouts:
            dropout.eval()


@dataclass
class OptimConfig:
    """Adam settings and the linear decay of the reference code."""

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_fraction: float = 0.5  # share of a task's steps over which the rate falls to ~0
    # Learning-rate multiplier for the piggyback matrices P (1: the paper's single rate).
    piggyback_lr_scale: float = 1.0


@dataclass
class SpeedConfig:
    """Optional speed switches (config ``speed.*``); ``python -m pbgan.bench`` measures each."""

    channels_last: bool = False  # NHWC layout for networks and batches (tensor cores on GPUs)
    compile: bool = False  # torch.compile every network when a task's training starts


def apply_speed_switches(networks: list[nn.Module], speed: SpeedConfig) -> None:
    """Put ``networks`` in the layout and compiled form the switches ask for (the module at each
    task's start, and the benchmark, which measures exactly this)."""
    if speed.channels_last:
        for net in networks:
            net.to(memory_format=torch.channels_last)
    if speed.compile:
        for net in networks:
            net.compile()


def channels_last_batch(batch: tuple[torch.Tensor, ...], speed: SpeedConfig) -> tuple[torch.Tensor, ...]:
    """A batch in the memory layout the switches ask for."""
    if speed.channels_last:
        return tuple(x.contiguous(memory_format=torch.channels_last) for x in batch)
    return tuple(batch)


def objects_among(**arguments: object) -> list[str]:
    """Constructor arguments passed as built objects rather than nodes: not hyperparameters."""
    return [name for name, value in arguments.items() if isinstance(value, nn.Module)]


def linear_decay(total_steps: int, decay_fraction: float) -> Callable[[int], float]:
    """Constant rate, then a linear fall over the last ``decay_fraction`` of the steps."""
    decay_steps = max(1, round(total_steps * decay_fraction))
    constant_steps = max(0, total_steps - decay_steps)

    def factor(step: int) -> float:  # the reference's rule, per step instead of per epoch
        return 1.0 - max(0, step + 1 - constant_steps) / float(decay_steps + 1)

    return factor


class LifelongGANModule(pl.LightningModule):
    """A GAN whose generators are lifelong nets; one task is trained per ``Trainer.fit``.

    ``begin_task`` adds a task to every lifelong net and builds fresh discriminators; the
    task-end callback calls ``end_task`` to freeze it. Optimization is manual: subclasses call
    :meth:`optimize` once for the discriminators and once for the generators per batch, and add
    :meth:`plugin_loss_terms` to the generator loss. The method's training plugin
    (:class:`~pbgan.lifelong.plugin.TrainingPlugin`) is called at each named hook.
    """

    def __init__(
        self,
        optim: OptimConfig | dict | None = None,
        speed: SpeedConfig | dict | None = None,
        plugin: TrainingPlugin | dict | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.optim = optim if isinstance(optim, OptimConfig) else OptimConfig(**(optim or {}))
        self.speed = speed if isinstance(speed, SpeedConfig) else SpeedConfig(**(speed or {}))
        if plugin is None:
            plugin = TrainingPlugin()
        elif not isinstance(plugin, TrainingPlugin):
            from pbgan.nodes import build

            plugin = build(plugin, "method.plugin")
        self.plugin = plugin
        self.task_names: list[str] = []
        # Batches trained over the whole sequence: the loggers' step axis, continuing across
        # tasks (each task's new Trainer restarts global_step, which also counts both optimizers).
        self.sequence_step = 0

    @staticmethod
    def build_generator(generator: LifelongNet | dict) -> LifelongNet:
        """A lifelong net as given, or built from its node (which it keeps as ``net.node``)."""
        if isinstance(generator, LifelongNet):
            return generator
        from pbgan.nodes import build_generator

        return build_generator(generator)

    @classmethod
    def generator_nodes_of(cls, generator: dict) -> dict[str, dict]:
        """The node of each lifelong net this module builds from its ``generator`` node."""
        return {"generator": generator}

    def generator_nodes(self) -> dict[str, dict]:
        """The node of each lifelong net (what the lifelong file stores to rebuild it)."""
        nodes = {name: getattr(net, "node", None) for name, net in self.lifelong_nets().items()}
        missing = [name for name, node in nodes.items() if node is None]
        if missing:
            raise ValueError(f"generators {missing} were not built from nodes: they cannot be saved")
        return nodes

    # -- what subclasses provide -------------------------------------------------------------
    def lifelong_nets(self) -> dict[str, LifelongNet]:
        """The lifelong generators by name."""
        raise NotImplementedError

    def build_discriminators(self) -> None:
        """Replace the discriminators with fresh ones for a new task."""
        raise NotImplementedError

    def discriminators(self) -> list[nn.Module]:
        """The current task's discriminators."""
        raise NotImplementedError

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return (p for net in self.discriminators() for p in net.parameters())

    def generate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """The active task's translation of a batch of inputs in ``direction``."""
        raise NotImplementedError

    def generator_objective(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The generators' training loss on ``batch`` for the active task, with the current
        discriminators and without the plugin's terms (what EWC's Fisher differentiates)."""
        raise NotImplementedError

    def net_inputs(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """Per lifelong net, the images of ``batch`` it takes as input, and the batch's other images
        where they fit its input too (Lifelong GAN's "swap" inputs), else None."""
        raise NotImplementedError

    #: the directions ``translate`` serves: the task's own, and for CycleGAN also the reverse
    directions: tuple[str, ...] = ("AtoB",)

    # -- tasks -------------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def newest_task(self) -> int:
        return self.num_tasks - 1

    def begin_task(self, name: str) -> int:
        """Add a task to every generator, make it active, and build fresh discriminators."""
        for net in self.lifelong_nets().values():
            net.add_task()
        self.task_names.append(name)
        self.build_discriminators()
        self.plugin.on_task_start(self, self.newest_task)
        return self.newest_task

    def end_task(self, trainer: pl.Trainer | None = None) -> None:
        """Freeze the newest task everywhere and grow the banks with its new filters; then the
        plugin's task-end hook (``trainer``: the one that trained the task, if any)."""
        for net in self.lifelong_nets().values():
            net.end_task()
        self.plugin.on_task_end(self, self.frozen_tasks - 1, trainer)

    @property
    def frozen_tasks(self) -> int:
        return min(net.frozen_tasks for net in self.lifelong_nets().values())

    def set_task(self, task: int) -> None:
        for net in self.lifelong_nets().values():
            net.set_task(task)

    def compress_task(self, task: int, codec: str) -> None:
        """Store the finished ``task`` of every lifelong generator with ``codec`` (storage.dtype)."""
        for net in self.lifelong_nets().values():
            net.compress_task(task, codec)

    def stored_parameters(self, task: int) -> int:
        return sum(net.stored_parameters(task) for net in self.lifelong_nets().values())

    def stored_bytes(self, task: int) -> int:
        return sum(net.stored_bytes(task) for net in self.lifelong_nets().values())

    def bank_sizes(self) -> dict[str, int]:
        """Bank rows per shareable layer; layer names carry the net's name when there are several."""
        nets = self.lifelong_nets()
        if len(nets) == 1:
            return next(iter(nets.values())).bank_sizes()
        return {
            f"{name}.{layer}": rows for name, net in nets.items() for layer, rows in net.bank_sizes().items()
        }

    @torch.no_grad()
    def translate(
        self, inputs: torch.Tensor, task: int, direction: str = "AtoB", reference: bool = False
    ) -> torch.Tensor:
        """Task ``task``'s outputs in eval mode (deterministic: no dropout, stored statistics);
        ``reference``: as the reference test scripts run it, dropout on and batch norms with the
        statistics of ``inputs`` itself (no running statistics read or updated; seed the global
        generator first for a deterministic dropout). Compiled networks (``speed.compile``) run
        eagerly here: a graph compiled again after a later task rounds differently, so a frozen
        task's probes would move (1e-9)."""
        if direction not in self.directions:
            raise ValueError(f"direction={direction!r}: {type(self).__name__} translates {self.directions}")
        was_training = self.training
        self.eval()
        self.set_task(task)
        try:
            with batch_statistics(self, reference), torch.compiler.set_stance("force_eager"):
                return self.generate(inputs.to(self.device), direction)
        finally:
            self.set_task(self.newest_task)
            self.train(was_training)

    # -- optimization ------------------------------------------------------------------------
    #: learning-rate multipliers of the layers' parameter groups, from ``model.optim``
    def group_rates(self) -> dict[str, float]:
        return {"weights": 1.0, "mixing": self.optim.piggyback_lr_scale}

    def generator_param_groups(self) -> list[dict]:
        """The generators' parameters that train now, one optimizer group per layer group (the
        piggyback matrices P at their own rate); frozen tasks never reach an optimizer."""
        merged: dict[str, list[nn.Parameter]] = {}
        for net in self.lifelong_nets().values():
            for role, params in net.trainable_parameter_groups().items():
                merged.setdefault(role, []).extend(params)
        rates = self.group_rates()
        return [
            {"params": params, "lr": self.optim.lr * rates.get(role, 1.0), "name": role}
            for role, params in merged.items()
            if params
        ]

    def configure_optimizers(self):
        betas = (self.optim.beta1, self.optim.beta2)
        opt_g = torch.optim.Adam(self.generator_param_groups(), betas=betas)
        opt_d = torch.optim.Adam(self.discriminator_parameters(), lr=self.optim.lr, betas=betas)
        factor = linear_decay(self.training_batches(), self.optim.decay_fraction)
        return [opt_g, opt_d], [LambdaLR(opt_g, factor), LambdaLR(opt_d, factor)]

    #: optimizer steps per training batch (generator and discriminator): what ``global_step`` and
    #: so ``trainer.max_steps`` count under manual optimization
    STEPS_PER_BATCH = 2

    def training_batches(self) -> int:
        """Batches this task trains: its epochs' batches, or fewer where ``trainer.max_steps``
        stops it first (after max_steps / 2 batches, since each batch steps both optimizers)."""
        trainer = self.trainer
        steps = trainer.max_steps
        by_steps = math.ceil(steps / self.STEPS_PER_BATCH) if steps != -1 else math.inf
        if trainer.max_epochs == -1:
            by_epochs = math.inf
        else:
            trainer.estimated_stepping_batches  # noqa: B018 (sets up the train loader if needed)
            per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
            by_epochs = per_epoch * max(int(trainer.max_epochs or 1), 1)
        total = min(by_steps, by_epochs)
        if total == math.inf:
            raise ConfigError(
                "the learning-rate decay needs a finite task length: "
                "set trainer.max_epochs or trainer.max_steps"
            )
        return max(1, int(total))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["pbgan"] = {
            "task_names": list(self.task_names),
            "frozen_tasks": self.frozen_tasks,
            "sequence_step": self.sequence_step,
            "legacy_tasks": {name: net.legacy_tasks for name, net in self.lifelong_nets().items()},
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming a task mid-way: keep counting the loggers' step where the checkpoint left it.
        A module rebuilt from the checkpoint's hyperparameters (``load_from_checkpoint``) has no
        tasks yet: it first grows the checkpoint's tasks, so their tensors have somewhere to go."""
        state = checkpoint.get("pbgan", {})
        names = state.get("task_names")
        if names and not self.task_names:
            self.grow_tasks(list(names), int(state.get("frozen_tasks", len(names))))
        if names not in (None, self.task_names):
            raise RuntimeError(f"checkpoint of tasks {names} does not fit {self.task_names}")
        self.sequence_step = int(state.get("sequence_step", self.sequence_step))
        if names:  # tasks whose probes older kernels recorded (before format 6: every frozen one)
            legacy = state.get("legacy_tasks", {})
            for name, net in self.lifelong_nets().items():
                net.keep_legacy_kernels(int(legacy.get(name, net.frozen_tasks)))

    def grow_tasks(self, names: list[str], frozen: int) -> None:
        """Empty slots for tasks ``names`` (the first ``frozen`` frozen) in every lifelong net and
        the newest task's discriminators, without the plugin's hooks: their tensors are loaded next."""
        for index, name in enumerate(names):
            for net in self.lifelong_nets().values():
                net.add_task()
                if index < frozen:
                    net.end_task()
            self.task_names.append(name)
        self.build_discriminators()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load, then derive the banks again from the loaded frozen tasks."""
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        for net in self.lifelong_nets().values():
            net.rebuild_derived()
        return result

    def on_fit_start(self) -> None:
        """Apply the speed switches to the networks this task trains."""
        apply_speed_switches([*self.lifelong_nets().values(), *self.discriminators()], self.speed)

    def prepare_batch(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """A training batch (A, B) in the layout the speed switches ask for."""
        return channels_last_batch(batch, self.speed)

    def on_train_start(self) -> None:
        self.set_task(self.newest_task)

    def optimize(self, optimizer, loss_fn: Callable[[], torch.Tensor], name: str) -> torch.Tensor:
        """One manual step of ``optimizer`` (``"generator"`` or ``"discriminator"``) on the loss
        ``loss_fn`` computes with only its parameters live; then the plugin's after-step hook."""
        self.toggle_optimizer(optimizer)
        try:
            loss = loss_fn()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()
        finally:
            self.untoggle_optimizer(optimizer)
        self.plugin.after_optimizer_step(self, name)
        return loss.detach()

    def plugin_loss_terms(
        self, batch: tuple[torch.Tensor, torch.Tensor], total: torch.Tensor, parts: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """``total`` plus the plugin's generator loss terms, each also recorded in ``parts``."""
        for name, term in self.plugin.generator_loss_terms(self, batch).items():
            parts[name] = term
            total = total + term
        return total

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        for scheduler in self.lr_schedulers():
            scheduler.step()
        self.sequence_step += 1
        fault_point("train-batch")

    def log_losses(self, losses: dict[str, torch.Tensor], batch_size: int) -> None:
        self.log_dict(
            {f"train/{name}": value for name, value in losses.items()},
            prog_bar=True,
            on_step=True,
            on_epoch=False,
            batch_size=batch_size,
        )
        self.log_step(on_step=True, batch_size=batch_size)

    def log_step(self, on_step: bool, batch_size: int) -> None:
        """Log ``step`` (Lightning hands it to the loggers as the step) and the task index."""
        for name, value in (("step", self.sequence_step), ("task", self.newest_task + 1)):
            self.log(name, float(value), on_step=on_step, on_epoch=not on_step, batch_size=batch_size)
