"""LightningDataModules over image folders in the pix2pix and CycleGAN layouts.

- :class:`AlignedDataModule` (pix2pix "aligned"): every image holds A (left half) and B (right
  half) side by side; folders ``train/``, ``val/``, ``test/`` (val falls back to test and back).
  ``unpaired=True`` pairs each A with the B of another image (a seeded derangement), for learning
  the same data without correspondence.
- :class:`UnalignedDataModule` (CycleGAN): ``trainA/``, ``trainB/``, ``testA/``, ``testB/`` and
  optionally ``valA/``, ``valB/`` (val falls back to test); never paired.

Both yield ``(input, target)`` batches of float tensors in [-1, 1], already in the task's
``direction`` (``BtoA`` makes B the input). Training batches are resized, randomly cropped and
flipped (the same crop and flip for both images of a paired example); val and test batches are
deterministic. The constructor only stores its options, so Hydra can always build it; every check
(options, folders, image files) happens in :meth:`setup` and raises :class:`PbganError` naming the
path or option and the fix. The datasets that read the files are in
:mod:`datamodules.folder_datasets`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from datamodules import DIRECTIONS, is_whole, switch
from datamodules.download import DATASETS, ENV_VAR, download_command
from datamodules.folder_datasets import (
    SKIP_HINT,
    AlignedDataset,
    UnalignedDataset,
    derangement,
    permutation,
)
from datamodules.images import (
    IMAGE_EXTENSIONS,
    BadImage,
    Preprocess,
    check_image,
    image_mode,
    list_images,
)
from datamodules.sampling import EpochShuffle
from pbgan.errors import ConfigError, PbganError

VERIFY = ("header", "decode")
ALIGNED_LAYOUT = (
    "an aligned (pix2pix) dataset holds train/ and val/ (or test/) folders of images that each show "
    "A (left half) and B (right half) side by side"
)
UNALIGNED_LAYOUT = (
    "an unaligned (CycleGAN) dataset holds trainA/ and trainB/ folders of images, and valA/ + valB/ "
    "or testA/ + testB/ for validation"
)


# -- datamodules --------------------------------------------------------------------------------
class FolderDataModule(pl.LightningDataModule):
    """Options and loaders shared by both layouts; subclasses build the datasets in :meth:`_build`."""

    layout_help = ""
    paired = False

    def __init__(
        self,
        root: str,
        direction: str = "AtoB",
        input_nc: int = 3,
        output_nc: int = 3,
        load_size: int | None = None,
        crop_size: int = 256,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        max_images: int | None = None,
        skip_bad_images: bool = False,
        verify: str = "header",
        seed: int = 0,
        val_split: str | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(str(root)).expanduser()
        self.direction = direction
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.load_size = load_size
        self.crop_size = crop_size
        self.preprocess = preprocess
        self.flip = switch(flip, "data.flip")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = switch(pin_memory, "data.pin_memory")
        self.max_images = max_images
        self.skip_bad_images = switch(skip_bad_images, "data.skip_bad_images")
        self.verify = verify
        self.seed = seed
        self.val_split = val_split
        # The image size the model sees (None with preprocess=none: the files' own sizes).
        self.image_size = crop_size if preprocess != "none" else None
        self._train: Dataset | None = None
        self._val: Dataset | None = None
        self._test: Dataset | None = None

    # -- checks ----------------------------------------------------------------------------
    def _check_options(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"data.direction={self.direction!r} is not known: use AtoB or BtoA")
        for option in ("input_nc", "output_nc"):
            if getattr(self, option) not in (1, 3):
                raise ConfigError(
                    f"data.{option}={getattr(self, option)!r}: images are read as 1 channel (grey, PIL 'L') "
                    f"or 3 (PIL 'RGB'): use 1 or 3"
                )
        if not is_whole(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"data.batch_size={self.batch_size!r} must be a whole number of at least 1")
        if not is_whole(self.num_workers) or self.num_workers < 0:
            raise ConfigError(f"data.num_workers={self.num_workers!r} must be a whole number of at least 0")
        if self.max_images is not None and (not is_whole(self.max_images) or self.max_images < 1):
            raise ConfigError(f"data.max_images={self.max_images!r} must be null (all) or at least 1")
        if self.verify not in VERIFY:
            raise ConfigError(f"data.verify={self.verify!r} is not known: use one of {', '.join(VERIFY)}")
        self.load_size = Preprocess.check(self.preprocess, self.load_size, self.crop_size)

    def _transform(self, train: bool) -> Preprocess:
        return Preprocess(self.preprocess, self.load_size, self.crop_size, train, self.flip and train)

    def _missing_root(self) -> PbganError:
        name = self.root.name
        if name in DATASETS:
            fix = (
                f"download it with `{download_command(name, self.root.parent)}` (`python -m pbgan.data list` "
                f"shows which datasets are present)"
            )
        else:
            fix = f"create it: {self.layout_help}"
        return PbganError(
            f"dataset folder {self.root} does not exist: {fix}; or point paths.data_dir (or ${ENV_VAR}) "
            f"at the folder that holds {name}/"
        )

    def _missing_folder(self, folder: Path, hint: str = "") -> PbganError:
        text = f"{self.root} has no {folder.name}/ folder: {self.layout_help}"
        if hint:
            text += f". {hint}"
        if self.root.name in DATASETS:
            text += (
                f". If the download was incomplete, `{download_command(self.root.name, self.root.parent)} "
                f"--force` replaces it"
            )
        return PbganError(text)

    def _check_size(self, path: Path, size: tuple[int, int]) -> tuple[int, int]:
        """Check one image's ``size`` (an aligned pair's half) as stored; the size the model sees
        of it in evaluation."""
        if self._transform(True).too_small(size):
            raise PbganError(
                f"{path} is {size[0]}x{size[1]} pixels, smaller than crop_size={self.crop_size}: "
                f"preprocess=crop cuts crop_size squares out of images that are not resized; use "
                f"preprocess=resize_and_crop, or a smaller crop_size"
            )
        return self._transform(False).resized_size(size)

    def _scan(self, folder: Path) -> list[Path]:
        """The checked images of one split folder (sorted; at most ``max_images``)."""
        if not folder.is_dir():
            raise self._missing_folder(folder)
        files = list_images(folder)
        if not files:
            others = sum(1 for p in folder.rglob("*") if p.is_file())
            found = f" (it has {others} other files)" if others else ""
            raise PbganError(
                f"{folder} holds no images{found}: put the {folder.name} images there as "
                f"{', '.join(IMAGE_EXTENSIONS)} files; {self.layout_help}"
            )
        if self.max_images is not None:
            files = files[: self.max_images]
        sizes: dict[tuple[int, int], Path] = {}  # the sizes the model sees, a file of each
        good, bad = [], []
        for path in files:
            try:
                size = check_image(path, decode=self.verify == "decode")
            except BadImage as error:
                if not self.skip_bad_images:
                    raise PbganError(
                        f"cannot read image {path} ({error.reason}): replace or delete the file, {SKIP_HINT}"
                    ) from error
                bad.append(error)
                continue
            sizes.setdefault(self._check_size(path, size), path)
            good.append(path)
        if bad:
            shown = "; ".join(str(error) for error in bad[:3]) + ("; ..." if len(bad) > 3 else "")
            warnings.warn(
                f"skipped {len(bad)} unreadable image(s) in {folder} (data.skip_bad_images=true): {shown}",
                stacklevel=2,
            )
        if not good:
            raise PbganError(f"{folder} holds no readable images: replace the files listed above")
        if self.preprocess == "none" and len(sizes) > 1:
            (size, path), (other, other_path) = list(sizes.items())[:2]
            raise PbganError(
                f"{folder}: with preprocess=none each image keeps its own size (rounded to a multiple of "
                f"4), and a task's images are stacked (in batches, and whole for the evaluation and the "
                f"domain classifier), so they need one size: {path} gives {size[0]}x{size[1]}, "
                f"{other_path} {other[0]}x{other[1]}; use a preprocess that gives every image one size "
                f"(resize_and_crop), or make the files one size"
            )
        return good

    def _split_name(self, names: list[str], exists) -> str:
        """The val split: ``val_split`` if set, else the first of ``names`` that exists."""
        if self.val_split is not None:
            return str(self.val_split)
        for name in names:
            if exists(name):
                return name
        raise PbganError(
            f"{self.root} has no {' or '.join(self._show_split(n) for n in names)} folder for validation: "
            f"{self.layout_help}; or set val_split: train in the task's data node to validate on "
            f"training images"
        )

    def _show_split(self, name: str) -> str:
        return f"{name}/"

    # -- Lightning ---------------------------------------------------------------------------
    def _build(self, split: str) -> Dataset:
        raise NotImplementedError

    def _val_name(self) -> str:
        raise NotImplementedError

    def _test_name(self) -> str:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        testing = stage in ("test", "predict")
        if (self._test if testing else self._train) is not None:
            return
        self._check_options()
        if not self.root.is_dir():
            raise self._missing_root()
        if testing:
            self._test = self._build(self._test_name())
        else:
            self._train = self._build("train")
            self._val = self._build(self._val_name())

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(dataset), int(self.seed)) if train else None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self._train, train=True)

    def val_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self._val, train=False)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return self._loader(self._test, train=False)


class AlignedDataModule(FolderDataModule):
    """pix2pix's aligned layout: ``root/{train,val,test}/*.jpg``, each image A|B side by side.

    ``check_aligned`` (default true) requires every image to be twice as wide as high (two square
    halves); set it false for non-square halves. ``unpaired=True`` gives each A the B half of
    another image (a seeded derangement, fixed per split), so the task has no correspondence.
    """

    layout_help = ALIGNED_LAYOUT

    def __init__(self, root: str, check_aligned: bool = True, unpaired: bool = False, **options: Any) -> None:
        super().__init__(root, **options)
        self.check_aligned = switch(check_aligned, "data.check_aligned")
        self.unpaired = switch(unpaired, "data.unpaired")
        self.paired = not self.unpaired

    def _check_size(self, path: Path, size: tuple[int, int]) -> tuple[int, int]:
        width, height = size
        if width < 2 or (self.check_aligned and width != 2 * height):
            raise PbganError(
                f"{path} is {width}x{height} pixels, but an aligned image holds A and B side by side as two "
                f"squares, so its width must be twice its height ({2 * height}): fix or remove the file; if "
                f"your A and B halves are not square, set check_aligned: false in the task's data node; if "
                f"the folder holds single images rather than A|B pairs, use the unaligned layout "
                f"(datamodules.folders.UnalignedDataModule)"
            )
        return super()._check_size(path, (width // 2, height))

    def _missing_folder(self, folder: Path, hint: str = "") -> PbganError:
        if not hint and (self.root / "trainA").is_dir():
            hint = (
                f"{self.root} has trainA/: it looks like an unaligned (CycleGAN) dataset, so use "
                f"_target_: datamodules.folders.UnalignedDataModule"
            )
        return super()._missing_folder(folder, hint)

    def _val_name(self) -> str:
        return self._split_name(["val", "test"], lambda name: (self.root / name).is_dir())

    def _test_name(self) -> str:
        return "test" if (self.root / "test").is_dir() else self._val_name()

    def _build(self, split: str) -> Dataset:
        files = self._scan(self.root / split)
        train = split == "train"
        partners = None
        if self.unpaired:
            offset = {"train": 0, "val": 1, "test": 2}.get(split, 3)
            partners = derangement(len(files), int(self.seed) * 4 + offset)
        a_nc, b_nc = (
            (self.input_nc, self.output_nc) if self.direction == "AtoB" else (self.output_nc, self.input_nc)
        )
        return AlignedDataset(
            files,
            (image_mode(a_nc), image_mode(b_nc)),
            swap=self.direction == "BtoA",
            preprocess=self._transform(train),
            partners=partners,
            skip_bad_images=self.skip_bad_images,
        )


class UnalignedDataModule(FolderDataModule):
    """CycleGAN's unaligned layout: ``root/{trainA,trainB}`` and ``valA/valB`` or ``testA/testB``.

    A training epoch has ``max(len(A), len(B))`` examples, each target drawn through a seeded
    permutation of the target folder; val has one example per input image, targets in file order.
    """

    layout_help = UNALIGNED_LAYOUT

    def distinct_val_targets(self) -> int:
        """How many val examples, from the first, have distinct target images: val pairs input i
        with target ``i % len(targets)``, so where the target folder holds fewer images than the
        input folder they repeat after this many (the evaluation's real side takes each once)."""
        self.setup("fit")
        return len(self._val.targets)

    def _show_split(self, name: str) -> str:
        return f"{name}A/ + {name}B/"

    def _missing_folder(self, folder: Path, hint: str = "") -> PbganError:
        if not hint and (self.root / "train").is_dir():
            hint = (
                f"{self.root} has train/: it looks like an aligned (pix2pix) dataset, so use "
                f"_target_: datamodules.folders.AlignedDataModule (unpaired: true learns it without pairs)"
            )
        return super()._missing_folder(folder, hint)

    def _exists(self, split: str) -> bool:
        return (self.root / f"{split}A").is_dir() and (self.root / f"{split}B").is_dir()

    def _val_name(self) -> str:
        return self._split_name(["val", "test"], self._exists)

    def _test_name(self) -> str:
        return "test" if self._exists("test") else self._val_name()

    def _build(self, split: str) -> Dataset:
        a_files = self._scan(self.root / f"{split}A")
        b_files = self._scan(self.root / f"{split}B")
        inputs, targets = (a_files, b_files) if self.direction == "AtoB" else (b_files, a_files)
        train = split == "train"
        if train:
            order = permutation(len(targets), int(self.seed))
            size = max(len(inputs), len(targets))
            partners = [order[i % len(targets)] for i in range(size)]
        else:
            partners = [i % len(targets) for i in range(len(inputs))]
        return UnalignedDataset(
            inputs,
            targets,
            partners,
            (image_mode(self.input_nc), image_mode(self.output_nc)),
            preprocess=self._transform(train),
            skip_bad_images=self.skip_bad_images,
        )
