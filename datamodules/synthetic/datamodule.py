"""A LightningDataModule over one embedded synthetic task, paired or unpaired (no files needed)."""

from __future__ import annotations

import pytorch_lightning as pl
from torch.utils.data import DataLoader, TensorDataset

from datamodules import DIRECTIONS, is_whole, switch
from datamodules.sampling import EpochShuffle
from datamodules.synthetic import api
from pbgan.errors import ConfigError


class SyntheticDataModule(pl.LightningDataModule):
    """Train and val splits of one synthetic task, generated once in memory from ``seed``.

    Train and val use disjoint sample indices, so val images are never trained on. Batches are
    ``(input, target)`` already in the task's ``direction``. ``paired=False`` draws inputs and
    targets from independent layouts (no correspondence, as CycleGAN data); the inputs are the
    same images as in the paired version.
    """

    def __init__(
        self,
        kind: str,
        paired: bool = True,
        image_size: int = 64,
        train_size: int = 400,
        val_size: int = 32,
        batch_size: int = 8,
        seed: int = 0,
        direction: str = "AtoB",
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        kinds = api.PAIRED_TASKS + api.STYLE_TASKS
        if kind not in kinds:
            known = ", ".join(kinds)
            raise ConfigError(f"synthetic task kind={kind!r} is not known: use one of {known}")
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction={direction!r} is not known: use AtoB or BtoA")
        for option, value, least in (
            ("train_size", train_size, 1),
            ("val_size", val_size, 1),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
            ("seed", seed, 0),
            ("image_size", image_size, api.MIN_SIZE),
        ):
            if not is_whole(value) or value < least:
                raise ConfigError(f"data.{option}={value!r} must be a whole number of at least {least}")
        self.kind = kind
        self.paired = switch(paired, "data.paired")
        self.image_size = image_size
        self.train_size = train_size
        self.val_size = val_size
        self.batch_size = batch_size
        self.seed = seed
        self.direction = direction
        self.num_workers = num_workers
        self.input_nc = 3
        self.output_nc = 3
        self._train: TensorDataset | None = None
        self._val: TensorDataset | None = None

    def _split(self, start: int, count: int) -> TensorDataset:
        make = api.generate_pairs if self.paired else api.generate_unpaired
        a, b = make(self.kind, start, count, self.image_size, self.seed)
        return TensorDataset(a, b) if self.direction == "AtoB" else TensorDataset(b, a)

    def setup(self, stage: str | None = None) -> None:
        if self._train is None:
            self._train = self._split(0, self.train_size)
            self._val = self._split(self.train_size, self.val_size)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            self._train,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(self._train), self.seed),
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(self._val, batch_size=self.batch_size, num_workers=self.num_workers)
