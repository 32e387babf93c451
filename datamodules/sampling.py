"""The training order: a new shuffle every epoch that depends on (seed, epoch) alone.

A ``DataLoader(shuffle=True, generator=...)`` draws each epoch's order from a generator whose
state carries over from the epochs before, so a run resumed at epoch ``e`` in a new process
would see epoch 0's order again. :class:`EpochShuffle` derives epoch ``e``'s order from the seed
and ``e``; Lightning calls :meth:`EpochShuffle.set_epoch` before every epoch (through its
distributed wrapper too), so an interrupted and an uninterrupted run train on the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A permutation of ``range(size)`` per epoch, a function of ``(seed, epoch)`` only."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = int(size)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> list[int]:
        key = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, dtype=np.uint64)[0] >> 1)
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(key)).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order(self.epoch))

    def __len__(self) -> int:
        return self.size
