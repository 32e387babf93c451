"""Lifelong GAN (Zhai et al., ICCV 2019): one shared generator fine-tuned task after task (as
``sft``: only the last layers are per task) with knowledge distillation from a frozen snapshot of
the model as it was before the task began.

The earlier tasks' data is gone, so the distillation runs on auxiliary inputs made from the new
task's own training batch, as Lifelong GAN does:

- **montage**: each auxiliary image is a ``grid x grid`` patchwork of patches cut at random places
  from random images of the batch's inputs;
- **swap**: the batch's targets used as inputs (where they have the input's channels).

While task ``t`` trains, every earlier task's output on those inputs must stay what the snapshot
gives: ``weight * mean_s L1(G_s(aux), G*_s(aux))`` over the earlier tasks ``s``. Both run in eval
mode (no dropout, the norms' stored statistics), the way a task is evaluated, so the term is zero
when the task begins and measures exactly the drift an old task's outputs would show.

The snapshot is taken when a task begins (from the model that ``lifelong.pt`` holds after the task
before, so a resumed or extended run takes the same one) and is not saved: it is no part of the
model. The method is this file plus ``conf/method/lifelong_gan.yaml``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from pbgan.errors import ConfigError
from pbgan.lifelong.network import LifelongNet
from pbgan.lifelong.plugin import TrainingPlugin

if TYPE_CHECKING:
    from pbgan.modules.base import LifelongGANModule


def montage(images: torch.Tensor, grid: int) -> torch.Tensor:
    """As many images as ``images``, each a ``grid x grid`` patchwork: every cell is a patch of the
    cell's size cut at a random place from a random image (the global random stream: seeded per
    task and saved in checkpoints, so a resumed run cuts the same patches)."""
    n, _, height, width = images.shape
    rows = [round(i * height / grid) for i in range(grid + 1)]
    cols = [round(j * width / grid) for j in range(grid + 1)]
    out = torch.empty_like(images)
    for i in range(grid):
        for j in range(grid):
            h, w = rows[i + 1] - rows[i], cols[j + 1] - cols[j]
            sources = torch.randint(n, (n,)).tolist()
            tops = torch.randint(height - h + 1, (n,)).tolist()
            lefts = torch.randint(width - w + 1, (n,)).tolist()
            for k, (src, top, left) in enumerate(zip(sources, tops, lefts)):
                out[k, :, rows[i] : rows[i + 1], cols[j] : cols[j + 1]] = images[
                    src, :, top : top + h, left : left + w
                ]
    return out


class DistillationPlugin(TrainingPlugin):
    """Lifelong GAN's distillation of every earlier task on montage and swap inputs."""

    def __init__(self, weight: float = 10.0, grid: int = 2, swap: bool = True) -> None:
        """``weight``: the distillation term's weight (``method.distill_weight``); ``grid``: montage
        cells per side (1: whole images at random offsets, i.e. the inputs themselves); ``swap``:
        also distill on the targets used as inputs."""
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ConfigError(f"method.distill_weight={weight!r}: use a number >= 0, for example 10")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise ConfigError(f"method.plugin.grid={grid!r}: montage cells per side, a whole number >= 1")
        self.weight = float(weight)
        self.grid = grid
        self.swap = bool(swap)
        # The snapshot, outside the module's state (a list hides it from nn.Module registration).
        self._teacher: list[dict[str, LifelongNet]] = []

    def on_task_start(self, module: LifelongGANModule, task: int) -> None:
        self._teacher = []
        if task == 0:
            return
        snapshot = {}
        for name, net in module.lifelong_nets().items():
            frozen = copy.deepcopy(net).eval()
            frozen.requires_grad_(False)
            snapshot[name] = frozen
        self._teacher = [snapshot]

    def teacher(self, name: str, device: torch.device) -> LifelongNet:
        net = self._teacher[0][name]
        if net.active_task >= 0 and next(net.parameters()).device != device:
            net.to(device)
        return net

    def auxiliary_inputs(self, own: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
        parts = [montage(own, self.grid)]
        if self.swap and other is not None:
            parts.append(other)
        return torch.cat(parts)

    def generator_loss_terms(self, module: LifelongGANModule, batch) -> dict[str, torch.Tensor]:
        earlier = module.newest_task
        if not self._teacher or earlier == 0 or self.weight == 0:
            return {}
        inputs = module.net_inputs(batch)
        terms = []
        for name, net in module.lifelong_nets().items():
            aux = self.auxiliary_inputs(*inputs[name])
            teacher = self.teacher(name, aux.device)
            was_training = net.training
            net.eval()
            try:
                for task in range(earlier):
                    net.set_task(task)
                    teacher.set_task(task)
                    with torch.no_grad():
                        target = teacher(aux)
                    terms.append(F.l1_loss(net(aux), target))
            finally:
                net.set_task(module.newest_task)
                net.train(was_training)
        return {"distill": self.weight * torch.stack(terms).mean()}

    def on_task_end(self, module: LifelongGANModule, task: int, trainer) -> None:
        self._teacher = []  # the snapshot is needed only while a task trains

    def extra_repr(self) -> str:
        return f"weight={self.weight}, grid={self.grid}, swap={self.swap}"
