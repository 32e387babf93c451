"""``python -m pbgan.generate MODEL --task NAME --input PATH --output DIR``: translate images.

Any learned task of a lifelong model file, an image or a folder of images in, one PNG per input
out (same stem), in batches with a progress bar, on the GPU when there is one; CycleGAN tasks in
either direction (``--direction BtoA``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import functional as TF
from torchvision.utils import save_image
from tqdm import tqdm

from datamodules import is_whole
from datamodules.images import IMAGE_EXTENSIONS, BadImage, list_images, read_image
from pbgan.cli import add_imports, add_verbosity, import_trusted, output_folder, returns_status, setup_logging
from pbgan.errors import PbganError
from pbgan.io import atomic_write
from pbgan.lifelong_file import check_input_size, generator_name, load_task_generator


def input_images(source: Path) -> list[Path]:
    """``source`` itself, or the images directly in the folder ``source``, sorted. Not those in
    subfolders: every output goes into one folder, named by its input's stem."""
    if not source.exists():
        raise PbganError(f"input {source} does not exist")
    if source.is_file():
        return [source]
    images = list_images(source, recursive=False)
    if not images:
        raise PbganError(f"input folder {source} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return images


def output_names(images: list[Path]) -> dict[Path, str]:
    """Each input's output file name: ``STEM.png``, or ``NAME.png`` (the whole input name) where
    inputs share a stem (``x.jpg`` and ``x.jpeg``); where that still meets another input's name
    (``x.png`` and ``x.png.png`` both give ``x.png.png``), ``NAME-2.png``, ``NAME-3.png``, ... so
    no output overwrites another."""
    stems: dict[str, int] = {}
    for path in images:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for path in images:
        base = path.stem if stems[path.stem] == 1 else path.name
        name, count = f"{base}.png", 1
        while name.lower() in taken:  # case too: a case-insensitive file system has one file for both
            count += 1
            name = f"{base}-{count}.png"
        taken.add(name.lower())
        names[path] = name
    return names


def load_image(path: Path, channels: int, size: int) -> torch.Tensor:
    """An image as the model saw them in training: decoded as the datamodules decode it (16-bit
    and float images scaled to 8 bits), resized to ``size``, scaled to [-1, 1]."""
    try:
        image = read_image(path).convert("L" if channels == 1 else "RGB")
    except BadImage as error:
        raise PbganError(f"cannot read image {error}") from error
    image = image.resize((size, size), Image.BICUBIC)
    return TF.to_tensor(image) * 2 - 1


def pick_device(name: str) -> torch.device:
    """``--device``: ``auto`` (a GPU if there is one), or a device torch knows and this machine has."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PbganError(f"--device {name}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PbganError(f"--device {name}: this machine has no CUDA GPU; use cpu (or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PbganError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


@torch.no_grad()
def generate(
    model: str | Path,
    task: str,
    source: str | Path,
    output: str | Path,
    direction: str = "AtoB",
    batch_size: int = 8,
    device: str = "auto",
    image_size: int | None = None,
) -> list[Path]:
    """Translate every image of ``source`` with ``task``; returns the written paths."""
    net, _, payload = load_task_generator(model, task, direction)
    node = payload["generators"][generator_name(payload, direction)]["node"]
    size = check_input_size(node, image_size or int(payload.get("image_size", 256)), "--image-size")
    images = input_images(Path(source))
    out_dir = output_folder(output, "--output")
    names = output_names(images)
    sources = {path.resolve() for path in images}
    for path in images:  # checked before anything is written: an input is the user's, never replaced
        if (out_dir / names[path]).resolve() in sources:
            raise PbganError(
                f"--output {out_dir}: its {names[path]} would replace an input image ({path}); "
                "write the translations to another folder"
            )
    if not is_whole(batch_size) or batch_size < 1:
        raise PbganError(f"--batch-size {batch_size!r}: use a whole number of at least 1")
    target = pick_device(device)
    net = net.to(target).eval()
    written = []
    for start in tqdm(range(0, len(images), batch_size), desc=f"generate {task}", unit="batch"):
        paths = images[start : start + batch_size]
        batch = torch.stack([load_image(p, int(node["input_nc"]), size) for p in paths]).to(target)
        for path, result in zip(paths, net(batch).cpu()):
            destination = out_dir / names[path]
            unit = (result + 1) / 2
            atomic_write(destination, lambda tmp, unit=unit: save_image(unit, tmp, format="png"))
            written.append(destination)
    return written


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbgan.generate", description=__doc__)
    parser.add_argument("model", help="a lifelong model file (lifelong.pt of a run)")
    parser.add_argument("--task", required=True, help="task name or 1-based number")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the translated PNGs")
    parser.add_argument("--direction", default="AtoB", help="AtoB, or BtoA for CycleGAN tasks")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--image-size", type=positive_int, default=None, help="resize inputs to this (default: training size)"
    )
    add_imports(parser)
    add_verbosity(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose - args.quiet)
    import_trusted(args.imports)
    written = generate(
        args.model,
        args.task,
        args.input,
        args.output,
        args.direction,
        args.batch_size,
        args.device,
        args.image_size,
    )
    print(f"wrote {len(written)} images to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
