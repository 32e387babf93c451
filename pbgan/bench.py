"""``python -m pbgan.bench``: piggyback against full, side by side in one process.

Training step (generator + discriminator, Adam) of piggyback at task 2 and at task 4 (grown bank)
against a full model, inference of a frozen task (composed weights cached) against full, peak GPU
memory where there is a GPU, and stored parameters after T tasks against T standalone models.
Several timed repetitions after warm-up; medians and ratios are printed and written as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from pbgan.lifelong.family import FullFamily, LayerFamily, PiggybackFamily
from pbgan.lifelong.network import LifelongNet
from pbgan.modules.base import SpeedConfig, apply_speed_switches, channels_last_batch
from pbgan.networks import PatchGAN, UNetGenerator
from pbgan.networks.resnet import ResNetGenerator

SCALES = {
    "tiny": {"image_size": 32, "ngf": 4, "batch": 2, "num_downs": 5, "n_blocks": 1},
    "cpu": {"image_size": 64, "ngf": 32, "batch": 8, "num_downs": 6, "n_blocks": 4},
    "paper": {"image_size": 256, "ngf": 64, "batch": 1, "num_downs": 8, "n_blocks": 9},
}


def build(arch: str, family: LayerFamily, size: dict) -> LifelongNet:
    if arch == "unet":
        return UNetGenerator(family, ngf=size["ngf"], num_downs=size["num_downs"])
    return ResNetGenerator(family, ngf=size["ngf"], n_blocks=size["n_blocks"])


def grow_to(net: LifelongNet, tasks: int) -> None:
    """Learned (frozen) tasks until task ``tasks`` is the open one."""
    while net.num_tasks < tasks:
        if net.num_tasks:
            net.end_task()
        net.add_task()


def timed(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``step`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


SWITCHES = ("channels_last", "compile", "bf16")


def train_step_fn(
    net: LifelongNet, size: dict, device: torch.device, switches: tuple[str, ...] = ()
) -> Callable[[], None]:
    """One pix2pix-style generator + discriminator step on random data, with speed ``switches``."""
    disc = PatchGAN(6, ndf=size["ngf"]).to(device)
    opt_g = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    shape = (size["batch"], 3, size["image_size"], size["image_size"])
    a, b = torch.randn(shape, device=device), torch.randn(shape, device=device)
    speed = SpeedConfig(channels_last="channels_last" in switches, compile="compile" in switches)
    apply_speed_switches([net, disc], speed)
    a, b = channels_last_batch((a, b), speed)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if "bf16" in switches else nullcontext
    )
    net.train()

    def step() -> None:
        with autocast():
            fake = net(a)
            loss_d = disc(torch.cat([a, fake.detach()], 1)).mean() - disc(torch.cat([a, b], 1)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast():
            loss_g = -disc(torch.cat([a, fake], 1)).mean() + 100 * F.l1_loss(fake.float(), b)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    return step


def inference_fn(net: LifelongNet, task: int, size: dict, device: torch.device) -> Callable[[], None]:
    net.eval()
    net.set_task(task)
    x = torch.randn(size["batch"], 3, size["image_size"], size["image_size"], device=device)

    @torch.no_grad()
    def step() -> None:
        net(x)

    return step


def peak_memory(step: Callable[[], None], device: torch.device) -> int | None:
    """Peak GPU bytes of one step (None on the CPU, where no per-step figure is honest)."""
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated(device))


def train_row(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> dict:
    """Median training step time and peak GPU memory of ``step``."""
    seconds = timed(step, device, warmup, repeats)
    return {"train_step_s": seconds, "train_peak_bytes": peak_memory(step, device)}


def usable_switches(switches: tuple[str, ...], device: torch.device) -> tuple[list[str], list[str]]:
    """(switches to measure, switches skipped on this device): bf16 autocast needs a GPU."""
    usable = [name for name in switches if name != "bf16" or device.type == "cuda"]
    return usable, [name for name in switches if name not in usable]


def run(
    arch: str,
    scale: str,
    ratio: float,
    tasks: int,
    warmup: int,
    repeats: int,
    device: torch.device,
    switches: tuple[str, ...] = (),
) -> dict:
    size = SCALES[scale]
    torch.manual_seed(0)
    rows: dict[str, dict] = {}
    full = build(arch, FullFamily(), size).to(device)
    grow_to(full, 2)
    piggy = build(arch, PiggybackFamily(ratio), size).to(device)
    grow_to(piggy, 2)
    for name, net in (("full", full), ("piggyback_task2", piggy)):
        rows[name] = train_row(train_step_fn(net, size, device), device, warmup, repeats)
    measured, skipped = usable_switches(switches, device)
    switch_rows: dict[str, dict] = {}
    for switch in measured:
        # A fresh network per switch, so one switch's layout or compiled code never leaks into another.
        net = build(arch, PiggybackFamily(ratio), size).to(device)
        grow_to(net, 2)
        step = train_step_fn(net, size, device, (switch,))
        started = time.perf_counter()
        step()  # the first step pays for compiling, if any
        first = time.perf_counter() - started
        row = train_row(step, device, warmup, repeats)
        row["first_step_s"] = first
        row["vs_off"] = row["train_step_s"] / rows["piggyback_task2"]["train_step_s"]
        switch_rows[switch] = row
    grow_to(piggy, tasks)
    rows[f"piggyback_task{tasks}"] = train_row(train_step_fn(piggy, size, device), device, warmup, repeats)
    for name, net in (("full", full), (f"piggyback_task{tasks}", piggy)):
        step = inference_fn(net, 1, size, device)  # a frozen task with composed (cached) filters
        rows[name]["inference_s"] = timed(step, device, warmup, repeats)
        rows[name]["inference_peak_bytes"] = peak_memory(step, device)
    standalone = full.stored_parameters(0)
    stored = sum(piggy.stored_parameters(t) for t in range(tasks))
    base = rows["full"]
    return {
        "arch": arch,
        "scale": scale,
        "ratio": ratio,
        "tasks": tasks,
        "device": str(device),
        **size,
        "repeats": repeats,
        "warmup": warmup,
        "rows": rows,
        "switches": switch_rows,  # piggyback task-2 training step with one switch on
        "switches_skipped": skipped,
        "ratios": {
            "train_task2_vs_full": rows["piggyback_task2"]["train_step_s"] / base["train_step_s"],
            f"train_task{tasks}_vs_full": rows[f"piggyback_task{tasks}"]["train_step_s"]
            / base["train_step_s"],
            "inference_vs_full": rows[f"piggyback_task{tasks}"]["inference_s"] / base["inference_s"],
        },
        "stored": {
            "piggyback_total": stored,
            "standalone_total": standalone * tasks,
            "share": stored / (standalone * tasks),
        },
    }


def format_result(result: dict) -> str:
    lines = [
        f"{result['arch']} @ {result['image_size']}px, ngf {result['ngf']}, batch {result['batch']}, "
        f"ratio {result['ratio']}, {result['device']} (median of {result['repeats']})"
    ]
    lines.append(f"{'':22}{'train step':>12}{'inference':>12}{'peak MB':>10}")
    for name, row in result["rows"].items():
        peak = row.get("train_peak_bytes")
        infer = row.get("inference_s")
        lines.append(
            f"{name:22}{row['train_step_s'] * 1000:10.1f}ms"
            f"{'' if infer is None else f'{infer * 1000:10.1f}ms':>12}"
            f"{'-' if peak is None else f'{peak / 2**20:.0f}':>10}"
        )
    lines += [f"{key}: {value:.3f}x" for key, value in result["ratios"].items()]
    for name, row in result["switches"].items():
        lines.append(
            f"piggyback_task2 + {name}: {row['train_step_s'] * 1000:.1f}ms per step "
            f"({row['vs_off']:.3f}x of off; first step {row['first_step_s']:.1f}s)"
        )
    for name in result["switches_skipped"]:
        lines.append(f"piggyback_task2 + {name}: not measured (needs a CUDA GPU)")
    stored = result["stored"]
    lines.append(
        f"stored after {result['tasks']} tasks: {stored['piggyback_total']:,} vs "
        f"{stored['standalone_total']:,} standalone ({stored['share']:.3f}x)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbgan.bench", description=__doc__)
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="cpu",
        help="cpu: 64px ngf 32; paper: 256px ngf 64; tiny: tests",
    )
    parser.add_argument("--arch", choices=["unet", "resnet", "both"], default="unet")
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--switches",
        default=",".join(SWITCHES),
        help=f"speed switches to measure one at a time, comma-separated from {', '.join(SWITCHES)}, or none",
    )
    parser.add_argument("--out", default="bench.json", help="JSON file for the figures")
    args = parser.parse_args(argv)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    switches = () if args.switches == "none" else tuple(filter(None, args.switches.split(",")))
    unknown = [name for name in switches if name not in SWITCHES]
    if unknown:
        parser.error(f"--switches: {', '.join(unknown)} not known; use {', '.join(SWITCHES)} or none")
    archs = ["unet", "resnet"] if args.arch == "both" else [args.arch]
    results = [
        run(arch, args.scale, args.ratio, args.tasks, args.warmup, args.repeats, device, switches)
        for arch in archs
    ]
    for result in results:
        print(format_result(result), end="\n\n")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
