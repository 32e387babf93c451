"""Evaluate every task seen so far: metrics on val images, probe outputs, sample grids."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchvision.utils import make_grid, save_image

from pbgan.faults import fault_point
from pbgan.io import atomic_write
from pbgan.modules.base import LifelongGANModule


@dataclass
class TaskEvalSet:
    """A task's fixed val images: the metric set, and the probe inputs forgetting is measured on."""

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def from_loader(cls, name: str, loader: DataLoader, num_images: int) -> TaskEvalSet:
        inputs, targets, seen = [], [], 0
        for batch_inputs, batch_targets in loader:
            inputs.append(batch_inputs)
            targets.append(batch_targets)
            seen += batch_inputs.shape[0]
            if seen >= num_images:
                break
        return cls(name, torch.cat(inputs)[:num_images], torch.cat(targets)[:num_images])

    def __len__(self) -> int:
        return self.inputs.shape[0]


PROTOCOLS = ("eval", "reference")


def image_seed(seed: int, task: int, direction: str, index: int) -> int:
    """The dropout seed of one image under the reference protocol: fixed by the run's seed, the
    task, the direction and the image's place in the task's eval set, so every evaluation of the
    same image draws the same dropout (the forgetting audit stays exact)."""
    return (seed * 1_000_003 + task * 10_007 + (direction == "BtoA") * 7_919_993 + index) % (2**63)


@contextmanager
def deterministic_kernels() -> Iterator[None]:
    """cuDNN restricted to deterministic algorithms, picked by its heuristics rather than by
    timing (``benchmark``), for as long as the block runs; training keeps its own settings.

    On a GPU the same weights and inputs can otherwise give outputs that differ in the last bit
    from one evaluation to the next (a transposed convolution's backward-data algorithm may add in
    any order, or a timed pick may choose another algorithm), and the forgetting audit compares
    them exactly. On the CPU this changes nothing."""
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


@deterministic_kernels()
def translate_all(
    module: LifelongGANModule,
    task: int,
    inputs: torch.Tensor,
    batch_size: int,
    direction: str = "AtoB",
    protocol: str = "eval",
    seed: int = 0,
) -> torch.Tensor:
    """Task ``task``'s outputs for ``inputs``, returned on the CPU.

    ``protocol="eval"``: in batches of ``batch_size`` in eval mode (running statistics, no
    dropout). ``"reference"``: as the pix2pix/CycleGAN test script (batch 1, batch-norm statistics
    of the image itself, dropout on), each image with its own seeded dropout (:func:`image_seed`),
    so the outputs are deterministic and do not depend on how the images are grouped. On a GPU,
    cuDNN runs deterministic algorithms (:func:`deterministic_kernels`)."""
    if protocol == "eval":
        outputs = [
            module.translate(inputs[start : start + batch_size], task, direction).cpu()
            for start in range(0, inputs.shape[0], batch_size)
        ]
        return torch.cat(outputs)
    if protocol != "reference":
        raise ValueError(f"eval.protocol={protocol!r}: use one of {', '.join(PROTOCOLS)}")
    device = module.device
    devices = []  # the CUDA generator the dropout draws from, when the module is on a GPU
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    outputs = []
    for index in range(inputs.shape[0]):
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(image_seed(seed, task, direction, index))
            outputs.append(module.translate(inputs[index : index + 1], task, direction, reference=True).cpu())
    return torch.cat(outputs)


def max_abs_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """Largest absolute change of any output number: exactly 0.0 when nothing was forgotten."""
    return float((after - before).abs().max())


def save_sample_grid(
    path: Path, inputs: torch.Tensor, outputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Write a PNG with one row per sample, input | output | target; returns the grid image."""
    rgb = [x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x for x in (inputs, outputs, targets)]
    rows = torch.stack(rgb, dim=1).flatten(0, 1)
    grid = make_grid(rows, nrow=3, padding=2, normalize=True, value_range=(-1, 1))
    atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))
    return grid


@dataclass
class SampleRows:
    """The first few eval images of one task with its outputs: one sample grid."""

    task: int
    name: str
    inputs: torch.Tensor
    outputs: torch.Tensor
    targets: torch.Tensor


class ContinualEvaluator:
    """Every seen task's metrics, probe outputs and samples after each stage of a sequence.

    ``eval_sets[t]``: task t's val images, or for a task of an ``init_from`` file its stored probe
    images only (None where the file kept none); ``first_new``: the first task this run has data
    for. Probe outputs recorded right after a task is learned are its baseline: any later change
    of them is forgetting (``max_abs_change``).
    """

    def __init__(
        self,
        suite: Any,
        eval_sets: list[TaskEvalSet | None],
        probe_baselines: list[torch.Tensor],
        first_new: int,
        batch_size: int,
        probe_images: int,
        sample_images: int,
        protocol: str = "eval",
        seed: int = 0,
    ) -> None:
        self.suite = suite
        self.eval_sets = eval_sets
        self.probe_baselines = probe_baselines
        self.first_new = first_new
        self.batch_size = batch_size
        self.probe_images = probe_images
        self.sample_images = sample_images
        self.protocol = protocol  # eval.protocol: how outputs are computed (translate_all)
        self.seed = seed

    def outputs(self, module: LifelongGANModule, task: int) -> torch.Tensor:
        """Task ``task``'s outputs on all its eval images (one pass serves metrics and probes)."""
        inputs = self.eval_sets[task].inputs
        return translate_all(module, task, inputs, self.batch_size, "AtoB", self.protocol, self.seed)

    def metrics(self, task: int, outputs: torch.Tensor) -> dict[str, float]:
        """Task ``task``'s metrics; none for an init_from task (its data is not part of this run)."""
        if task < self.first_new:
            return {}
        return self.suite.evaluate(task - self.first_new, outputs)

    def untrained(self, module: LifelongGANModule, task: int) -> dict[str, float]:
        """The metrics of a task just begun, before any training: results.json's ``untrained``
        (forward transfer compares with a ``full`` run instead; see pbgan.report.tables)."""
        return self.metrics(task, self.outputs(module, task))

    def probe_outputs(self, module: LifelongGANModule, task: int, forward: torch.Tensor) -> torch.Tensor:
        """Outputs on the probe inputs in every direction the module serves (CycleGAN: both)."""
        if "BtoA" not in module.directions:
            return forward
        reals = self.eval_sets[task].targets[: len(forward)]
        backward = translate_all(module, task, reals, self.batch_size, "BtoA", self.protocol, self.seed)
        return torch.cat([forward.flatten(1), backward.flatten(1)], 1)

    def stage(self, module: LifelongGANModule, stage: int, results: Any) -> list[SampleRows]:
        """After learning task ``stage``: record metrics and forgetting of every task seen into
        ``results``; returns each task's sample rows."""
        samples = []
        for task in range(stage + 1):
            data = self.eval_sets[task]
            if data is None:  # an init_from task whose file kept no probe images
                continue
            outputs = self.outputs(module, task)
            fault_point("evaluation")
            results.record_metrics(stage, task, self.metrics(task, outputs))
            # An init_from task's eval set is its stored probes: compare all of them.
            own = outputs if task < self.first_new else outputs[: self.probe_images]
            probe = self.probe_outputs(module, task, own)
            if task == stage:  # its own tensor: a slice would keep every eval output alive
                self.probe_baselines.append(probe.clone())
            results.record_change(stage, task, max_abs_change(self.probe_baselines[task], probe))
            count = self.sample_images
            samples.append(
                SampleRows(task, data.name, data.inputs[:count], outputs[:count], data.targets[:count])
            )
        return samples

    def probe_sets(self) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
        """The probe inputs and targets of every task with a baseline (what the model file keeps)."""
        counts = [len(baseline) for baseline in self.probe_baselines]
        sets = self.eval_sets[: len(counts)]
        return (
            [None if d is None else d.inputs[:n] for d, n in zip(sets, counts)],
            [None if d is None else d.targets[:n] for d, n in zip(sets, counts)],
        )
