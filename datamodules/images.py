"""Image files on disk: finding them, checking and reading them, and the reference preprocessing.

The preprocessing follows the pix2pix / CycleGAN reference: resize to ``load_size`` (or scale the
width to it), random crop to ``crop_size``, random horizontal flip, scale to [-1, 1]. The same crop
and flip can be applied to several images (the two halves of a paired example). Val and test
transforms are deterministic: resize (or centre crop) straight to ``crop_size``, never flip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pbgan.errors import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
PREPROCESS = ("resize_and_crop", "crop", "scale_width_and_crop", "none")
LOAD_MARGIN = 286 / 256  # the reference resizes 256-pixel crops' images to 286 first
SIZE_BASE = 4  # preprocess=none rounds sizes to a multiple of this, as the reference does
READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
RESAMPLE = Image.BICUBIC


class BadImage(Exception):
    """A file that PIL cannot read as an image; the message says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (in its subfolders too unless ``recursive=False``), sorted by
    path so the order never changes."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[0].lower() + text[1:] if text else text


def check_image(path: Path, decode: bool = False) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header.

    The header check catches files that are not images and (for PNG) broken or truncated chunks;
    ``decode=True`` decodes the pixels as well, which also catches a truncated JPEG.
    """
    try:
        with Image.open(path) as image:
            size = image.size
            if decode:
                image.load()
            else:
                image.verify()
    except READ_ERRORS as error:
        raise BadImage(path, _reason(error)) from error
    return size


def eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) grey image as 8-bit L, its range scaled: PIL's own
    ``convert`` clips every value above 255, which turns a 16-bit image white."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0
    return grey_levels(values)


def grey_levels(values: np.ndarray) -> Image.Image:
    """Grey values on the 0-255 scale as an 8-bit L image, rounded to the nearest level."""
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")


def float_to_eight_bit(image: Image.Image, path: Path) -> Image.Image:
    """A 32-bit float grey image (PIL ``F``, as float TIFFs load) as 8-bit L: values in [0, 1]
    scaled by 255, values in [0, 255] kept (so a float image in 0-255 whose brightest pixel is
    at most 1 reads as 0-1). PIL's own ``convert`` keeps the numbers as they are, so a [0, 1]
    image turned black; any other range has no one meaning and is refused."""
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all():
        raise BadImage(
            path, "32-bit float pixels that are not numbers (NaN or infinite): save it as an 8-bit image"
        )
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise BadImage(
            path,
            f"32-bit float pixels from {low:g} to {high:g}, neither in 0-1 nor in 0-255: "
            "save it as an 8-bit image",
        )
    return grey_levels(values * 255 if high <= 1 else values)


def read_image(path: Path) -> Image.Image:
    """The decoded image, RGB or L as stored (converted later to the task's channels); 16-bit
    images are scaled to 8 bits."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode.startswith("I"):
                return eight_bit(image)
            if image.mode == "F":
                return float_to_eight_bit(image, path)
            if image.mode not in ("RGB", "L"):
                return image.convert("RGB")
            return image.copy()
    except READ_ERRORS as error:
        raise BadImage(path, _reason(error)) from error


def image_mode(channels: int) -> str:
    """The PIL mode for a channel count: 1 -> ``L`` (grey), 3 -> ``RGB``."""
    return "L" if channels == 1 else "RGB"


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a float tensor (C, H, W) in [-1, 1]."""
    # numpy, single-threaded: torch's thread pool only adds overhead on images this small
    pixels = np.asarray(image, dtype=np.uint8)
    pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], -1).transpose(2, 0, 1)
    scaled = np.empty(pixels.shape, np.float32)
    np.multiply(pixels, np.float32(1 / 127.5), out=scaled, casting="unsafe")
    scaled -= np.float32(1.0)
    return torch.from_numpy(scaled)


@dataclass(frozen=True)
class Params:
    """One random draw of the training transform: where to crop and whether to flip."""

    x: int
    y: int
    flip: bool


@dataclass(frozen=True)
class Preprocess:
    """The reference preprocessing for one split: ``train`` draws crops and flips, val does not."""

    mode: str
    load_size: int
    crop_size: int
    train: bool
    flip: bool = True

    @staticmethod
    def check(mode: str, load_size: int | None, crop_size: int) -> int:
        """Validate the options; returns the load size (``None``: the reference margin, 286 for 256)."""
        if mode not in PREPROCESS:
            raise ConfigError(f"data.preprocess={mode!r} is not known: use one of {', '.join(PREPROCESS)}")
        if not isinstance(crop_size, int) or isinstance(crop_size, bool) or crop_size < 1:
            raise ConfigError(f"data.crop_size={crop_size!r} must be a whole number of at least 1")
        if load_size is None:
            return round(crop_size * LOAD_MARGIN)
        if not isinstance(load_size, int) or isinstance(load_size, bool) or load_size < 1:
            raise ConfigError(f"data.load_size={load_size!r} must be a whole number of at least 1 (or null)")
        if mode in ("resize_and_crop", "scale_width_and_crop") and load_size < crop_size:
            raise ConfigError(
                f"data.load_size={load_size} is smaller than data.crop_size={crop_size}: images are "
                f"resized to load_size and then cropped to crop_size, so use load_size >= crop_size "
                f"(the reference: 286 for 256)"
            )
        return load_size

    # -- the resize stage --------------------------------------------------------------------
    def _target(self) -> int:
        return self.load_size if self.train else self.crop_size

    def resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size after the resize stage, before cropping."""
        width, height = size
        if self.mode == "resize_and_crop":
            return self._target(), self._target()
        if self.mode == "scale_width_and_crop":
            target = self._target()
            if width == target and height >= self.crop_size:
                return size
            return target, int(max(target * height / width, self.crop_size))
        if self.mode == "none":
            return (
                max(SIZE_BASE, round(width / SIZE_BASE) * SIZE_BASE),
                max(SIZE_BASE, round(height / SIZE_BASE) * SIZE_BASE),
            )
        return size

    def sample(self, size: tuple[int, int]) -> Params:
        """Draw a crop position and a flip for an image of ``size`` (from torch's generator)."""
        width, height = self.resized_size(size)
        if not self.train:
            return Params(
                max(0, (width - self.crop_size) // 2), max(0, (height - self.crop_size) // 2), False
            )
        x = int(torch.randint(0, max(0, width - self.crop_size) + 1, ()))
        y = int(torch.randint(0, max(0, height - self.crop_size) + 1, ()))
        flip = self.flip and bool(torch.rand(()) < 0.5)
        return Params(x, y, flip)

    def apply(self, image: Image.Image, params: Params) -> torch.Tensor:
        """Resize, crop and flip ``image`` with ``params``; returns a tensor in [-1, 1]."""
        size = self.resized_size(image.size)
        if size != image.size:
            image = image.resize(size, RESAMPLE)
        if self.mode != "none":
            image = image.crop((params.x, params.y, params.x + self.crop_size, params.y + self.crop_size))
        if params.flip:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(image)

    def __call__(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """The same crop and flip for every image of ``images`` (paired halves); one draw."""
        params = self.sample(images[0].size)
        return [self.apply(image, params) for image in images]

    def too_small(self, size: tuple[int, int]) -> bool:
        """``preprocess=crop`` cannot cut ``crop_size`` out of a smaller image."""
        return self.mode == "crop" and min(size) < self.crop_size
