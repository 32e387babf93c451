"""The folder datasets behind :mod:`datamodules.folders`: reading aligned (A|B side by side) and
unaligned (CycleGAN) image files as ``(input, target)`` tensor pairs.

A file that cannot be read raises :class:`PbganError` naming it and the fix, or with
``skip_bad_images`` is replaced by the next example, with one warning per file. The seeded pairings
(:func:`derangement`, :func:`permutation`) are chosen by the datamodules.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from datamodules.images import BadImage, Preprocess, read_image
from pbgan.errors import PbganError

SKIP_HINT = "or set data.skip_bad_images=true to skip unreadable images with a warning"


def derangement(count: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (one cycle): index i is paired with result[i] != i."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    partner = [0] * count
    for k, index in enumerate(order):
        partner[index] = order[(k + 1) % count]
    return partner


def permutation(count: int, seed: int) -> list[int]:
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()


# -- datasets -----------------------------------------------------------------------------------
class _FolderDataset(Dataset):
    """Shared reading: a bad file raises a PbganError, or is replaced by the next example (skip)."""

    def __init__(self, preprocess: Preprocess, skip_bad_images: bool) -> None:
        self.preprocess = preprocess
        self.skip_bad_images = skip_bad_images
        self._warned: set[Path] = set()

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        size = len(self)
        for attempt in range(size):
            try:
                return self._item((index + attempt) % size)
            except BadImage as error:
                if not self.skip_bad_images:
                    raise PbganError(
                        f"cannot read image {error.path} ({error.reason}): replace or delete the file, "
                        f"{SKIP_HINT}"
                    ) from error
                if error.path not in self._warned:
                    self._warned.add(error.path)
                    warnings.warn(
                        f"skipping unreadable image {error.path} ({error.reason}) "
                        f"(data.skip_bad_images=true)",
                        stacklevel=2,
                    )
        raise PbganError(f"no readable image is left among the {size} examples of this split: {SKIP_HINT}")


class AlignedDataset(_FolderDataset):
    """Images holding A|B side by side; ``partners`` pairs each A with another image's B (unpaired)."""

    def __init__(
        self,
        files: list[Path],
        modes: tuple[str, str],
        swap: bool,
        preprocess: Preprocess,
        partners: list[int] | None = None,
        skip_bad_images: bool = False,
    ) -> None:
        super().__init__(preprocess, skip_bad_images)
        self.files = files
        self.modes = modes
        self.swap = swap
        self.partners = partners

    def __len__(self) -> int:
        return len(self.files)

    def halves(self, index: int) -> tuple[Image.Image, Image.Image]:
        """A and B of one file, each in its channel mode."""
        both = read_image(self.files[index])
        width, height = both.size
        half = width // 2
        a = both.crop((0, 0, half, height)).convert(self.modes[0])
        b = both.crop((half, 0, width, height)).convert(self.modes[1])
        return a, b

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.partners is None:
            a, b = self.preprocess(self.halves(index))
        else:
            a = self.preprocess([self.halves(index)[0]])[0]
            b = self.preprocess([self.halves(self.partners[index])[1]])[0]
        return (b, a) if self.swap else (a, b)


class UnalignedDataset(_FolderDataset):
    """Example i: input image ``i % len(inputs)`` and target image ``partners[i]``."""

    def __init__(
        self,
        inputs: list[Path],
        targets: list[Path],
        partners: list[int],
        modes: tuple[str, str],
        preprocess: Preprocess,
        skip_bad_images: bool = False,
    ) -> None:
        super().__init__(preprocess, skip_bad_images)
        self.inputs = inputs
        self.targets = targets
        self.partners = partners
        self.modes = modes

    def __len__(self) -> int:
        return len(self.partners)

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source = read_image(self.inputs[index % len(self.inputs)]).convert(self.modes[0])
        target = read_image(self.targets[self.partners[index]]).convert(self.modes[1])
        return self.preprocess([source])[0], self.preprocess([target])[0]
