"""The benchmark command runs and reports every figure it promises (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbgan.bench import main
from pbgan.bench.cli import INFER_ROWS, TRAIN_ROWS


def test_bench_writes_all_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["--scale", "tiny", "--arch", "both", "--repeats", "1", "--warmup", "0", "--out", str(out)]
    assert main(args + ["--switches", "channels_last,bf16"]) == 0
    results = json.loads(out.read_text())
    assert [r["step"] for r in results] == ["pix2pix", "cyclegan"]
    for result in results:
        rows = {name for name, _, _ in TRAIN_ROWS} | {"piggyback_task2+channels_last"}
        assert set(result["train"]) == rows
        assert set(result["inference"]) == {name for name, *_ in INFER_ROWS}
        train = result["train"]
        assert train["reference"]["vs_reference"] == 1.0 and train["reference"]["floor_vs_reference"] == 1.0
        for name, row in train.items():
            assert row["min_s"] <= row["median_s"] <= row["max_s"]
            if "+" not in name:
                assert row["macs"] > 0 and row["floor_vs_reference"] > 0
        # full and the fine-tuned model run exactly the reference's convolutions
        assert train["full"]["floor_vs_reference"] == 1.0 == train["sft_task2"]["floor_vs_reference"]
        # the growing bank makes deeper tasks cost more
        floors = [train[f"piggyback_task{t}"]["floor_vs_reference"] for t in (2, 4, 8)]
        assert floors == sorted(floors)
        if result["device"] == "cpu":
            assert result["switches_skipped"] == ["bf16"]
    printed = capsys.readouterr().out
    assert "piggyback_task8" in printed and "vs floor" in printed
    assert "piggyback_task2+bf16: not measured" in printed


def test_bench_times_only_the_rows_asked_for(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["--scale", "tiny", "--arch", "unet", "--repeats", "1", "--infer-repeats", "3", "--warmup", "0"]
    assert main(args + ["--rows", "full,piggyback_task*,*frozen7", "--out", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert list(result["train"]) == ["reference", "full", *(f"piggyback_task{t}" for t in (2, 4, 8))]
    assert list(result["inference"]) == ["reference", "piggyback_frozen7"]
    assert result["infer_repeats"] == 3
    assert main(args + ["--rows", "no_such_row"]) == 2
    assert "no_such_row match no row" in capsys.readouterr().err


def test_rounds_rotate_so_every_row_runs_in_every_position() -> None:
    """A row always timed right after the reference (or first in a round) would carry that
    position's cost in every figure; rotated rounds spread it over all rows alike."""
    import torch

    from pbgan.bench.cli import interleaved

    calls: list[str] = []
    steps = {name: (lambda name=name: calls.append(name)) for name in ("reference", "a", "b")}
    times = interleaved(steps, torch.device("cpu"), warmup=1, repeats=6)
    assert {name: len(values) for name, values in times.items()} == {"reference": 6, "a": 6, "b": 6}
    rounds = [calls[i : i + 3] for i in range(0, len(calls), 3)]
    assert all(sorted(r) == ["a", "b", "reference"] for r in rounds)  # every row once a round
    timed = rounds[1:]
    for position in range(3):  # each row in each position equally often
        assert sorted(r[position] for r in timed) == ["a", "a", "b", "b", "reference", "reference"]


def _run_order(net, kinds: tuple) -> list:
    """``net``'s modules of ``kinds`` in the order one forward pass runs them."""
    import torch

    order: list = []
    modules = [m for m in net.modules() if isinstance(m, kinds)]
    hooks = [m.register_forward_hook(lambda m, *_: order.append(m)) for m in modules]
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    return order


@pytest.mark.parametrize("arch", ["unet", "resnet"])
def test_the_reference_computes_what_pbgan_computes_for_one_task(arch: str, monkeypatch) -> None:
    """Given the same weights, the benchmark's plain reference and pbgan's network at its first
    task give the same outputs, gradients and running statistics bit for bit (train and eval
    mode): the benchmark times two implementations of one network. (Training through the
    group-norm kernel, pbgan's instance norms round differently: tests/test_layers.py bounds it.)"""
    import torch
    from torch import nn

    from pbgan.bench.steps import SCALES, build_generator, grow_to
    from pbgan.lifelong import layers
    from pbgan.lifelong.layers import TaskConv, TaskNorm

    monkeypatch.setattr(layers, "group_norm_serves", lambda device_type: False)

    torch.manual_seed(0)
    size = SCALES["tiny"]
    ours = build_generator(arch, "piggyback", size, 0.25)
    reference = build_generator(arch, "reference", size, 0.25)
    grow_to(ours, 1)
    norms = (nn.BatchNorm2d, nn.InstanceNorm2d)
    pairs = list(
        zip(
            _run_order(ours.eval(), (TaskConv, TaskNorm)),
            _run_order(reference.eval(), (nn.Conv2d, nn.ConvTranspose2d, *norms)),
            strict=True,
        )
    )
    with torch.no_grad():
        for mine, theirs in pairs:
            for tensor in theirs.parameters():
                tensor.copy_(torch.randn_like(tensor) * 0.1)
            if isinstance(mine, TaskNorm):
                assert isinstance(theirs, norms)
                mine.norms[0].load_state_dict(theirs.state_dict())
            else:
                mine.task_weight(0).copy_(theirs.weight)
                if theirs.bias is not None:
                    mine.biases[0].copy_(theirs.bias)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    outputs = []
    for net in (ours.train(), reference.train()):
        out = net(x)
        (grad,) = torch.autograd.grad(out, x, torch.ones_like(out), retain_graph=True)
        out.pow(2).sum().backward()
        outputs.append((out, grad))
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1], outputs[1][1])
    for mine, theirs in pairs:
        if isinstance(mine, TaskNorm):
            for a, b in zip(mine.norms[0].state_dict().values(), theirs.state_dict().values(), strict=True):
                assert torch.equal(a, b)
            continue
        assert torch.equal(mine.task_weight(0).grad, theirs.weight.grad)
        if theirs.bias is not None:
            assert torch.equal(mine.biases[0].grad, theirs.bias.grad)
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), reference.eval()(x))
