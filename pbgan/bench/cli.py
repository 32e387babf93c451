"""``python -m pbgan.bench``: every method's training step and inference against the plain network.

The reference is the pix2pix UNet + PatchGAN (``--arch unet``) or the CycleGAN ResNet generators
+ PatchGANs (``--arch resnet``) written with ordinary ``torch.nn`` layers
(:mod:`pbgan.bench.reference`). Every row runs the same step (:mod:`pbgan.bench.steps`) on its own
networks: the reference, ``full`` (a standalone model per task), piggyback with 2, 4 and 8 tasks
(the bank grows), the other methods at task 2 (Lifelong GAN and progressive networks also at
task 4: their cost grows with the tasks learned), training plugins' terms included; inference of
frozen tasks against the reference's. Timing is interleaved: each round times every row once, so
noise hits all rows alike (rounds rotate the order, so no row always runs in one position); after
warm-up rounds, ``--repeats`` rounds give each row's median, min and max, and each row's ratio to
the reference (median time over median time). The floor is the ratio of the step's multiply-adds
to the reference step's when every trainable piggyback layer runs the cheaper exact schedule
(:mod:`pbgan.bench.floor`). Figures are printed and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from pbgan.bench.floor import step_macs
from pbgan.bench.steps import (
    SCALES,
    build_generator,
    cyclegan_step,
    grow_to,
    inference_step,
    pix2pix_step,
    plugin_term,
)
from pbgan.cli import add_verbosity, returns_status, setup_logging
from pbgan.io import write_text
from pbgan.modules.base import SpeedConfig, apply_speed_switches

SWITCHES = ("channels_last", "compile", "bf16")
INFER_REPEATS_FACTOR = 4  # inference rounds per training round when not given
# (row name, method, open task) of the training rows, reference first.
TRAIN_ROWS = [
    ("reference", "reference", 1),
    ("full", "full", 2),
    ("piggyback_task2", "piggyback", 2),
    ("piggyback_task4", "piggyback", 4),
    ("piggyback_task8", "piggyback", 8),
    ("pf_task2", "pf", 2),
    ("sft_task2", "sft", 2),
    ("mask_task2", "mask", 2),
    ("lora_task2", "lora", 2),
    ("piggyback_lite_task2", "piggyback_lite", 2),
    ("piggyback_lite_task4", "piggyback_lite", 4),
    ("ewc_task2", "ewc", 2),
    ("lifelong_gan_task2", "lifelong_gan", 2),
    ("lifelong_gan_task4", "lifelong_gan", 4),
    ("progressive_task2", "progressive", 2),
    ("progressive_task4", "progressive", 4),
]
# (row name, method, tasks learned, frozen task inferred)
INFER_ROWS = [
    ("reference", "reference", 1, None),
    ("full_frozen1", "full", 2, 0),
    ("piggyback_frozen1", "piggyback", 8, 0),
    ("piggyback_frozen7", "piggyback", 8, 6),
    ("pf_frozen2", "pf", 3, 1),
    ("mask_frozen2", "mask", 3, 1),
    ("lora_frozen2", "lora", 3, 1),
    ("piggyback_lite_frozen2", "piggyback_lite", 3, 1),
    ("progressive_frozen1", "progressive", 4, 0),
    ("progressive_frozen4", "progressive", 4, 3),
]


def select(rows: list[tuple], patterns: tuple[str, ...]) -> list[tuple]:
    """``rows`` whose name matches one of ``patterns`` (fnmatch; none: every row); the reference
    row always stays first, since every ratio is taken against it."""
    if not patterns:
        return rows
    return [row for row in rows if row[0] == "reference" or any(fnmatch.fnmatch(row[0], p) for p in patterns)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(
    steps: dict[str, Callable[[], None]], device: torch.device, warmup: int, repeats: int
) -> dict[str, list[float]]:
    """Seconds of each step per round; every round runs every step once. Each round starts one
    step later in the list than the last, so every step runs as often in every position of a
    round (right after the reference, first after the previous round, ...) and whatever a
    position costs (caches, the allocator, the host's other tenants) is shared alike."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_ in range(warmup + repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            step = steps[name]
            _sync(device)
            started = time.perf_counter()
            step()
            _sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - started)
    return times


def summarise(times: dict[str, list[float]], base: str) -> dict[str, dict]:
    reference = statistics.median(times[base])
    return {
        name: {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "max_s": max(values),
            "vs_reference": statistics.median(values) / reference,
            # per-round ratios cancel slow drifts of the machine; their median is a second view
            "paired_vs_reference": statistics.median(v / r for v, r in zip(values, times[base])),
        }
        for name, values in times.items()
    }


def make_train_step(arch: str, method: str, tasks: int, size: dict, ratio: float, device: torch.device):
    """(step, networks) of one training row."""
    nets = [build_generator(arch, method, size, ratio).to(device) for _ in range(1 if arch == "unet" else 2)]
    for net in nets:
        grow_to(net, tasks)
    extra = plugin_term(method, nets, device) if method != "reference" else None
    if arch == "unet":
        return pix2pix_step(nets[0], size, device, extra), nets
    return cyclegan_step(nets[0], nets[1], size, device, extra), nets


def with_autocast(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """``step`` under bf16 autocast (what ``speed.bf16`` gives through Lightning's bf16-mixed)."""

    def run_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            step()

    return run_step


def row_memory(device: torch.device) -> Callable[[Callable[[], None]], int | None] | None:
    """Start measuring one row's GPU memory (None on the CPU, where no per-row figure is
    honest): call before the row's networks are built, then call what it returns with the row's
    step. That runs the step once and gives the peak bytes the row added to what was allocated
    when measuring started: its networks, optimizer state, gradients and activations (rows built
    earlier stay allocated and are not counted)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)

    def measure(step: Callable[[], None]) -> int:
        step()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated(device) - base)

    return measure


def run(
    arch: str,
    scale: str,
    ratio: float,
    warmup: int,
    repeats: int,
    device: torch.device,
    switches: tuple[str, ...] = (),
    rows: tuple[str, ...] = (),
    infer_repeats: int | None = None,
) -> dict:
    """Every figure of one architecture; ``rows``: fnmatch patterns of the rows to time (none: all);
    ``infer_repeats``: rounds of the inference rows (default: 4 x ``repeats``, as on the command
    line: an inference step is cheap next to a training step)."""
    size = SCALES[scale]
    infer_repeats = INFER_REPEATS_FACTOR * repeats if infer_repeats is None else infer_repeats
    torch.manual_seed(0)
    train_steps, floors, peaks, first_steps = {}, {}, {}, {}
    for name, method, tasks in select(TRAIN_ROWS, rows):
        measure = row_memory(device)
        step, _ = make_train_step(arch, method, tasks, size, ratio, device)
        peaks[name] = measure(step) if measure else None
        train_steps[name] = step
        floors[name] = step_macs(step)
    skipped = [name for name in switches if name == "bf16" and device.type != "cuda"]
    for switch in [name for name in switches if name not in skipped]:
        # piggyback at task 2 with one speed switch on, timed in the same rounds
        step, nets = make_train_step(arch, "piggyback", 2, size, ratio, device)
        if switch == "bf16":
            step = with_autocast(step, device)
        else:
            apply_speed_switches(nets, SpeedConfig(**{switch: True}))
        started = time.perf_counter()
        step()  # the first step pays for compiling, if any
        first_steps[f"piggyback_task2+{switch}"] = time.perf_counter() - started
        train_steps[f"piggyback_task2+{switch}"] = step
    infer_steps = {}
    for name, method, tasks, task in select(INFER_ROWS, rows):
        net = build_generator(arch, method, size, ratio).to(device)
        grow_to(net, tasks)
        if tasks > 1:
            net.end_task()  # every task frozen, as in a saved model
        infer_steps[name] = inference_step(net, task, size, device)
    train = summarise(interleaved(train_steps, device, warmup, repeats), "reference")
    reference_macs = floors["reference"]["plain"]
    for name, row in train.items():
        if name in floors:
            row["macs"] = floors[name]["floor"]
            row["floor_vs_reference"] = floors[name]["floor"] / reference_macs
            row["vs_floor"] = row["vs_reference"] / row["floor_vs_reference"]
        if name in first_steps:
            row["first_step_s"] = first_steps[name]
        row["peak_bytes"] = peaks.get(name)
    inference = summarise(interleaved(infer_steps, device, warmup, infer_repeats), "reference")
    return {
        "arch": arch,
        "step": "pix2pix" if arch == "unet" else "cyclegan",
        "scale": scale,
        "ratio": ratio,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        **size,
        "repeats": repeats,
        "infer_repeats": infer_repeats,
        "warmup": warmup,
        "train": train,
        "inference": inference,
        "switches_skipped": skipped,  # bf16 autocast needs a CUDA GPU
    }


def format_result(result: dict) -> str:
    lines = [
        f"{result['step']} ({result['arch']}) @ {result['image_size']}px, ngf {result['ngf']}, batch "
        f"{result['batch']}, ratio {result['ratio']}, {result.get('gpu') or result['device']}, "
        f"{result['threads']} threads, torch {result.get('torch', '?')}: "
        f"median of {result['repeats']} interleaved rounds ({result['infer_repeats']} for inference)",
        f"{'training step':26}{'median':>10}{'min':>10}{'max':>10}{'vs ref':>9}{'paired':>9}"
        f"{'floor':>8}{'vs floor':>10}",
    ]
    memory = any(row.get("peak_bytes") for row in result["train"].values())
    if memory:
        lines[-1] += f"{'GPU peak':>11}"
    for table, rows in (("train", result["train"]), ("inference", result["inference"])):
        if table == "inference":
            lines.append(f"{'inference (eval, batch)':26}")
        for name, row in rows.items():
            floor, peak = row.get("floor_vs_reference"), row.get("peak_bytes")
            lines.append(
                f"  {name:24}{row['median_s'] * 1000:8.1f}ms{row['min_s'] * 1000:8.1f}ms"
                f"{row['max_s'] * 1000:8.1f}ms{row['vs_reference']:8.3f}x{row['paired_vs_reference']:8.3f}x"
                + ("" if floor is None else f"{floor:7.3f}x{row['vs_floor']:9.3f}x")
                + ("" if not (memory and peak) else f"{peak / 2**20:8.0f}MiB")
            )
    for name in result.get("switches_skipped", []):
        lines.append(f"  piggyback_task2+{name}: not measured (needs a CUDA GPU)")
    return "\n".join(lines)


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbgan.bench", description=__doc__)
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="cpu",
        help="cpu: 64px ngf 32 batch 8; paper: 256px ngf 64 batch 1 (unet_256, resnet_9blocks); tiny: tests",
    )
    parser.add_argument("--arch", choices=["unet", "resnet", "both"], default="both")
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--infer-repeats",
        type=int,
        default=None,
        help="timed rounds of the inference rows (cheap next to a training step; default: 4 x --repeats)",
    )
    parser.add_argument(
        "--rows",
        default="all",
        help="comma-separated fnmatch patterns of the rows to time, e.g. 'full,piggyback_task*,"
        "*frozen1' (the reference always runs); default all",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--switches",
        default="none",
        help=f"speed switches timed as extra rows (piggyback task 2), comma-separated from "
        f"{', '.join(SWITCHES)}; default none",
    )
    parser.add_argument("--out", default="bench.json", help="JSON file for every figure")
    add_verbosity(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose - args.quiet)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    switches = () if args.switches == "none" else tuple(filter(None, args.switches.split(",")))
    unknown = [name for name in switches if name not in SWITCHES]
    if unknown:
        parser.error(f"--switches: {', '.join(unknown)} not known; use {', '.join(SWITCHES)} or none")
    infer_repeats = INFER_REPEATS_FACTOR * args.repeats if args.infer_repeats is None else args.infer_repeats
    if args.repeats < 1 or args.warmup < 0 or infer_repeats < 1:
        parser.error("--repeats and --infer-repeats must be at least 1 and --warmup at least 0")
    rows = () if args.rows == "all" else tuple(filter(None, args.rows.split(",")))
    names = [row[0] for row in TRAIN_ROWS + INFER_ROWS]
    unmatched = [p for p in rows if not any(fnmatch.fnmatch(name, p) for name in names)]
    if unmatched:
        known = ", ".join(dict.fromkeys(names))
        parser.error(f"--rows: {', '.join(unmatched)} match no row; rows are {known}")
    archs = ["unet", "resnet"] if args.arch == "both" else [args.arch]
    results = []
    for arch in archs:
        result = run(
            arch, args.scale, args.ratio, args.warmup, args.repeats, device, switches, rows, infer_repeats
        )
        print(format_result(result), end="\n\n", flush=True)
        results.append(result)
    write_text(Path(args.out), json.dumps(results, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0
