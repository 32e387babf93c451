"""Evaluate every task seen so far: metrics on val images, probe outputs, sample grids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.utils import make_grid, save_image

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


def translate_all(
    module: LifelongGANModule, task: int, inputs: torch.Tensor, batch_size: int, direction: str = "AtoB"
) -> torch.Tensor:
    """Task ``task``'s outputs for ``inputs``, in batches, returned on the CPU."""
    outputs = [
        module.translate(inputs[start : start + batch_size], task, direction).cpu()
        for start in range(0, inputs.shape[0], batch_size)
    ]
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
