"""``python -m pbgan.export MODEL --task NAME``: one task as a standalone generator.

The task's weights are composed into plain conv layers (no bank, no task switch) and written as
TorchScript and/or ONNX; the exported model's outputs are checked against the lifelong model's.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from pbgan.cli import add_imports, add_verbosity, import_trusted, output_folder, returns_status, setup_logging
from pbgan.errors import PbganError
from pbgan.io import atomic_write, save_torch
from pbgan.lifelong.standalone import standalone_network
from pbgan.lifelong_file import check_input_size, generator_name, load_task_generator

FORMATS = ("torchscript", "onnx")

log = logging.getLogger(__name__)


def export_task(
    model: str | Path,
    task: str,
    out_dir: str | Path,
    formats: tuple[str, ...] = FORMATS,
    direction: str = "AtoB",
    image_size: int | None = None,
) -> dict[str, tuple[Path, float]]:
    """Write the task's standalone generator in each format; returns path and max |difference|."""
    net, index, payload = load_task_generator(model, task, direction)
    node = payload["generators"][generator_name(payload, direction)]["node"]
    size = check_input_size(node, image_size or int(payload.get("image_size", 256)), "--image-size")
    channels = int(node["input_nc"])
    plain = standalone_network(net, index)
    example = torch.rand(1, channels, size, size) * 2 - 1
    with torch.no_grad():
        expected = net.eval()(example)
    name = payload["tasks"][index]["name"]
    out_dir = output_folder(out_dir, "--out")
    written: dict[str, tuple[Path, float]] = {}
    for fmt in formats:
        if fmt == "torchscript":
            path = out_dir / f"{name}_{direction}.torchscript.pt"
            traced = torch.jit.trace(plain, example)
            save_torch(path, traced, torch.jit.save)
            actual = torch.jit.load(str(path))(example)
        elif fmt == "onnx":
            path = out_dir / f"{name}_{direction}.onnx"
            actual = export_onnx(plain, example, path)
        else:
            raise PbganError(f"format {fmt!r} is not known: use {', '.join(FORMATS)}")
        written[fmt] = (path, float((actual - expected).abs().max()))
    return written


def export_onnx(plain: torch.nn.Module, example: torch.Tensor, path: Path) -> torch.Tensor:
    """ONNX export checked with onnxruntime (both from the optional extra ``pip install .[onnx]``)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise PbganError('ONNX export needs the optional extra: pip install -e ".[onnx]"') from error

    def write(tmp: Path) -> None:
        torch.onnx.export(
            plain,
            (example,),
            str(tmp),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={name: {0: "batch", 2: "height", 3: "width"} for name in ("input", "output")},
            dynamo=False,
        )

    atomic_write(path, write)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": example.numpy()})[0])


def onnx_available() -> bool:
    """Whether the optional ``onnx`` extra (onnx and onnxruntime) is installed."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def chosen_formats(name: str) -> tuple[str, ...]:
    """``--format``: one format, or ``all`` (every format this install can write: ONNX needs the
    optional extra, and without it ``all`` writes TorchScript and says so)."""
    if name != "all":
        if name == "onnx" and not onnx_available():  # refused before anything is written
            raise PbganError('--format onnx needs the optional extra: pip install -e ".[onnx]"')
        return (name,)
    if onnx_available():
        return FORMATS
    log.warning(
        'warning: no ONNX export: it needs the optional extra (pip install -e ".[onnx]"); TorchScript only'
    )
    return ("torchscript",)


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbgan.export", description=__doc__)
    parser.add_argument("model", help="a lifelong model file (lifelong.pt of a run)")
    parser.add_argument("--task", required=True, help="task name or 1-based number")
    parser.add_argument("--out", default="exported", help="output folder (default: exported)")
    parser.add_argument(
        "--format",
        choices=[*FORMATS, "all"],
        default="all",
        help="all: TorchScript, and ONNX where installed",
    )
    parser.add_argument("--direction", default="AtoB", help="AtoB, or BtoA for CycleGAN tasks")
    parser.add_argument(
        "--image-size", type=int, default=None, help="example input size (default: training size)"
    )
    add_imports(parser)
    add_verbosity(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose - args.quiet)
    import_trusted(args.imports)
    formats = chosen_formats(args.format)
    written = export_task(args.model, args.task, args.out, formats, args.direction, args.image_size)
    for fmt, (path, diff) in written.items():
        print(f"{fmt}: {path} (max |output - lifelong output| = {diff:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
