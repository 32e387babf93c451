"""Issue 16: storing a task with fewer numbers (low-rank matrices, per-layer shares of new filters),
checked against the formulas, computed independently of the implementation."""

from __future__ import annotations

import fnmatch
import json

import pytest
import torch
import torch.nn.functional as F
from pbgan_testing import TINY, compose_config, run_pbgan
from PIL import Image
from test_crash import assert_same_run, crash_and_resume, pbgan_run
from test_layers import grow

from pbgan.errors import ConfigError
from pbgan.export import export_task
from pbgan.generate import generate
from pbgan.lifelong import TaskNorm, storage
from pbgan.lifelong_file import load_lifelong_file
from pbgan.methods.lora import LowRankConv
from pbgan.methods.piggyback import PiggybackConv, PiggybackFamily, unconstrained_count
from pbgan.networks import UNetGenerator
from pbgan.networks.resnet import ResNetGenerator
from pbgan.sequence import run_sequence


@pytest.mark.parametrize("transposed", [False, True])
def test_low_rank_composition_equals_the_explicit_product(transposed: bool) -> None:
    layer = PiggybackConv(6, 16, 3, 1, 1, transposed=transposed, ratio=0.25, rank=2)
    grow(layer, 3)
    n_u = unconstrained_count(0.25, 16)
    for task in (1, 2):
        rows = 16 + (task - 1) * n_u
        a, c = layer.piggyback[task].detach(), layer.piggyback_right[task].detach()
        assert a.shape == (rows, 2) and c.shape == (2, 16 - n_u)
        # The bank filter-major, built by hand from task 1's and task 2's stored filters.
        first = layer.unconstrained[0].detach()
        second = (
            layer.unconstrained[1].detach()[:, :n_u] if transposed else layer.unconstrained[1].detach()[:n_u]
        )
        if transposed:
            first, second = first.transpose(0, 1), second.transpose(0, 1)
        bank = torch.cat([first, second])[:rows].reshape(rows, -1)
        explicit = ((a @ c).t() @ bank).view(16 - n_u, 6, 3, 3)
        weight = layer.weight(task).detach()
        composed = weight[:, n_u:].transpose(0, 1) if transposed else weight[n_u:]
        torch.testing.assert_close(composed, explicit, rtol=1e-4, atol=1e-4)
        # The forward pass (whichever schedule it picks) is the plain convolution with that weight.
        layer.set_task(task)
        x = torch.randn(2, 6, 5, 5)
        conv = F.conv_transpose2d if transposed else F.conv2d
        expected = conv(x, layer.weight(task), layer.biases[task], 1, 1)
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_low_rank_layer_stores_the_factors_only_where_they_are_smaller() -> None:
    layer = PiggybackConv(4, 8, 3, ratio=0.25, rank=4)
    grow(layer, 3)
    # Task 2: M = 8, N - n_u = 6: 4 * (8 + 6) = 56 > 48, so the full matrix is kept.
    assert not layer.low_rank(1) and layer.piggyback[1].shape == (8, 6)
    assert layer.piggyback_right[1].numel() == 0
    wide = PiggybackConv(4, 64, 3, ratio=0.25, rank=4)
    grow(wide, 2)
    # M = 64, N - n_u = 48: 4 * 112 = 448 numbers instead of 3072.
    assert wide.low_rank(1)
    params, _ = wide.stored_counts(1)
    assert params == 16 * 4 * 9 + 4 * (64 + 48) + 64


def test_low_rank_gradients_reach_both_factors() -> None:
    layer = PiggybackConv(4, 32, 3, 1, 1, ratio=0.25, rank=3)
    grow(layer, 2)
    layer.set_task(1)
    layer(torch.randn(2, 4, 6, 6)).square().mean().backward()
    groups = layer.parameter_groups(1)
    assert {id(p) for p in groups["mixing"]} == {id(layer.piggyback[1]), id(layer.piggyback_right[1])}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["mixing"])


def expected_task_params(net, task: int, shares: dict[str, float], default: float, rank: int | None) -> int:
    """Per layer: n_u d + mixing + N (bias) + norm; task-specific layers whole; mixing
    ``M (N - n_u)``, or ``r (M + N - n_u)`` where that is smaller."""
    total = 0
    for _, layer in net.lifelong_layers():
        if isinstance(layer, TaskNorm):
            total += 2 * layer.channels if layer.kind == "batch" else 0
            continue
        n, d = layer.out_channels, layer.in_channels * layer.kernel_size**2
        bias = n if layer.has_bias else 0
        if layer.task_specific or task == 0:
            total += n * d + bias
            continue
        share = next((s for p, s in shares.items() if fnmatch.fnmatchcase(layer.label, p)), default)
        n_u = int(share * n + 0.5)
        rows = n + (task - 1) * n_u
        mixing = rows * (n - n_u)
        if rank is not None and rows * (n - n_u) > 0 and rank * (rows + n - n_u) < mixing:
            mixing = rank * (rows + n - n_u)
        total += n_u * d + mixing + bias
    return total


@pytest.mark.parametrize("rank", [None, 2])
def test_schedule_gives_each_layer_its_documented_share(rank: int | None) -> None:
    shares = {"down1": 0.5, "down*": 0.125, "up2": 0.0}
    net = UNetGenerator(PiggybackFamily(0.25, rank=rank, ratio_schedule=shares), num_downs=5, ngf=8)
    layers = {layer.label: layer for _, layer in net.lifelong_layers() if isinstance(layer, PiggybackConv)}
    assert layers["down1"].ratio == 0.5 and layers["down1"].n_new == 4  # 0.5 * 8
    assert layers["down2"].ratio == 0.125 and layers["down2"].n_new == 2  # 0.125 * 16
    assert layers["down5"].ratio == 0.125 and layers["down5"].n_new == 8  # 0.125 * 64
    assert layers["up2"].n_new == 0 and layers["up3"].ratio == 0.25  # no pattern: ratio
    for task in range(3):
        net.add_task()
        got = sum(layer.stored_counts(task)[0] for _, layer in net.lifelong_layers())
        assert got == expected_task_params(net, task, shares, 0.25, rank)
        net.end_task()


def test_schedule_works_on_resnet_block_names() -> None:
    net = ResNetGenerator(PiggybackFamily(0.25, ratio_schedule={"block*": 0.0}), ngf=8, n_blocks=2)
    layers = {layer.label: layer for _, layer in net.lifelong_layers() if isinstance(layer, PiggybackConv)}
    assert layers["block1a"].n_new == 0 and layers["block2b"].n_new == 0
    assert layers["stem"].n_new == 2 and layers["down1"].n_new == 4


@pytest.mark.parametrize(
    "kwargs, option",
    [
        ({"rank": 0}, "method.rank"),
        ({"rank": 1.5}, "method.rank"),
        ({"ratio_schedule": {"down*": 1.5}}, "method.ratio_schedule.down*"),
        ({"ratio_schedule": [0.1, 0.2]}, "method.ratio_schedule"),
    ],
)
def test_bad_compact_options_name_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(ConfigError, match=option.replace("*", r"\*")):
        PiggybackFamily(0.25, **kwargs)


@pytest.mark.parametrize("transposed", [False, True])
def test_lora_task_is_task_one_plus_the_low_rank_product(transposed: bool) -> None:
    layer = LowRankConv(6, 10, 3, 1, 1, transposed=transposed, rank=2)
    layer.add_task()
    base = layer.base[0].detach().clone()
    layer.end_task()
    layer.add_task()
    # A new task starts exactly as task 1 (U = 0) with task 1's bias.
    assert torch.equal(layer.task_weight(1), base)
    assert torch.equal(layer.biases[1], layer.biases[0])
    with torch.no_grad():
        layer.lora_up[1].normal_()
    u, v = layer.lora_up[1].detach(), layer.lora_down[1].detach()
    update = (u @ v).view(10, 6, 3, 3)
    expected = base + (update.transpose(0, 1) if transposed else update)
    torch.testing.assert_close(layer.task_weight(1).detach(), expected)
    params, _ = layer.stored_counts(1)
    assert params == 2 * (10 + 6 * 9) + 10
    # Task 1 is untouched by task 2's training.
    layer.set_task(1)
    layer(torch.randn(1, 6, 4, 4)).sum().backward()
    assert layer.base[0].grad is None and layer.lora_up[1].grad is not None


# --- compressed storage of a finished task (storage.dtype) -------------------------------------


@pytest.mark.parametrize("codec", ["float32", "float16", "bfloat16", "int8"])
@pytest.mark.parametrize("axis", [0, 1])
def test_a_stored_tensor_decodes_to_exactly_the_values_the_network_uses(codec: str, axis: int) -> None:
    tensor = torch.randn(6, 5, 3, 3) * 0.1
    entry = storage.encode(tensor, codec, axis)
    value = storage.decode(entry)
    assert value.dtype == torch.float32 and value.shape == tensor.shape
    assert torch.equal(value, storage.quantize(tensor, codec, axis))
    # Encoding the rounded values again stores the same numbers (the codec is idempotent).
    assert torch.equal(storage.decode(storage.encode(value, codec, axis)), value)
    if codec == "int8":
        scale = tensor.movedim(axis, 0).reshape(tensor.shape[axis], -1).abs().amax(1) / 127
        shape = [1] * 4
        shape[axis] = -1
        assert ((value - tensor).abs() <= scale.view(shape) / 2 + 1e-7).all()
        assert entry["q"].dtype == torch.int8 and entry["scale"].numel() == tensor.shape[axis]
    expected = {
        "float32": 4 * 270,
        "float16": 2 * 270,
        "bfloat16": 2 * 270,
        "int8": 270 + 4 * tensor.shape[axis],
    }
    assert storage.stored_bytes(tensor, codec, axis) == expected[codec]


def tiny_unet(family) -> UNetGenerator:
    net = UNetGenerator(family, num_downs=5, ngf=8)
    torch.manual_seed(0)
    net.add_task()
    net.end_task()
    net.add_task()
    return net


@pytest.mark.parametrize("codec", ["float16", "int8"])
def test_a_compressed_task_is_stored_at_its_size_and_restored_bit_identically(codec: str, tmp_path) -> None:
    net = tiny_unet(PiggybackFamily(0.25, rank=2)).eval()
    x = torch.randn(2, 3, 32, 32)
    float_bytes = net.stored_bytes(0)
    net.set_task(0)
    before = net(x)
    net.compress_task(0, codec)
    after = net(x)
    assert not torch.equal(before, after)  # a one-time change ...
    net.set_task(1)
    with torch.no_grad():  # ... after which training a later task cannot move task 1
        for p in net.task_parameters(1):
            p.add_(0.1)
    net.set_task(0)
    assert torch.equal(net(x), after)
    # Bytes: every weight tensor at the codec's size, biases and norms as float32.
    rounded = [(p, axis) for _, p, axis in net.compressible(0)]
    saved = sum(p.numel() * 4 - storage.stored_bytes(p, codec, axis) for p, axis in rounded)
    assert net.stored_bytes(0) == float_bytes - saved
    # The file keeps the stored form and gives back the same network bit for bit.
    plain, small = tmp_path / "plain.pt", tmp_path / "small.pt"
    torch.save(net.state_dict(), plain)
    torch.save(net.stored_state(), small)
    # on disk, the file shrinks by what the count says, give or take the archive's own records
    shrink = plain.stat().st_size - small.stat().st_size
    assert abs(shrink - saved) < 0.02 * saved + 20_000, (shrink, saved)
    fresh = tiny_unet(PiggybackFamily(0.25, rank=2)).eval()
    fresh.load_stored_state(torch.load(small, weights_only=True), dict(net.storage))
    fresh.rebuild_derived()
    fresh.set_task(0)
    assert torch.equal(fresh(x), after) and fresh.storage == {0: codec}
    assert fresh.stored_bytes(0) == net.stored_bytes(0)


def test_compression_needs_a_finished_task_and_a_known_codec() -> None:
    net = tiny_unet(PiggybackFamily(0.25))
    with pytest.raises(RuntimeError, match="not finished"):
        net.compress_task(1, "int8")
    with pytest.raises(ConfigError, match="storage.dtype"):
        net.compress_task(0, "int4")


TWO = ["task_seq=synth_paired2", "trainer.max_epochs=2"]


def test_a_run_records_the_one_time_change_of_compressed_storage(tmp_path) -> None:
    plain = run_sequence(compose_config(TWO), tmp_path / "float32")
    packed = run_sequence(compose_config([*TWO, "storage.dtype=int8"]), tmp_path / "int8")
    # Compressed once at each task's end, then exact: no later task moves task 1.
    assert packed["forgetting"]["max_abs_change"][1][0] == 0.0
    record = packed["storage"][0]
    assert record["dtype"] == "int8" and plain["storage"][0] == {
        "dtype": "float32",
        "float32_bytes": plain["params"]["per_task_bytes"][0],
    }
    # The recorded change is the measured one: the same seed's float32 outputs of task 1 (its
    # probes are all its eval images here) against the compressed ones.
    before = load_lifelong_file(tmp_path / "float32" / "lifelong.pt")["probe_baselines"][0]
    after = load_lifelong_file(tmp_path / "int8" / "lifelong.pt")["probe_baselines"][0]
    measured = (after - before).abs()
    assert record["max_abs_change"] == pytest.approx(float(measured.max()), rel=1e-6)
    assert record["mean_abs_change"] == pytest.approx(float(measured.mean()), rel=1e-6)
    assert record["max_abs_change"] > 0
    assert record["metrics_before"]["l1"] == pytest.approx(plain["matrix"]["l1"][0][0], rel=1e-6)
    # Stored bytes count the compressed size; the standalone comparison stays float32.
    assert packed["params"]["per_task_bytes"][0] == record["stored_bytes"] < record["float32_bytes"]
    assert record["float32_bytes"] == plain["params"]["per_task_bytes"][0]
    assert packed["params"]["standalone_bytes_total"] == plain["params"]["standalone_bytes_total"]
    assert (tmp_path / "int8" / "lifelong.pt").stat().st_size < (
        tmp_path / "float32" / "lifelong.pt"
    ).stat().st_size


COMPACT = {
    "lora": ["method=lora", "method.rank=2"],
    "low_rank_int8": ["method.rank=2", "storage.dtype=int8", "method.ratio_schedule={down1:0.5,up*:0.125}"],
    "pf_float16": ["method=pf", "method.rank=2", "storage.dtype=float16"],
}
CYCLE = ["model=cyclegan", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]


@pytest.mark.parametrize(
    "setting, model",
    [
        ("low_rank_int8", "pix2pix"),
        pytest.param("low_rank_int8", "cyclegan", marks=pytest.mark.slow),
        ("lora", "pix2pix"),
        pytest.param("lora", "cyclegan", marks=pytest.mark.slow),
        pytest.param("pf_float16", "pix2pix", marks=pytest.mark.slow),
        pytest.param("pf_float16", "cyclegan", marks=pytest.mark.slow),
    ],
)
def test_compact_settings_train_exactly_through_the_cli_and_export(
    setting: str, model: str, tmp_path
) -> None:
    done = run_pbgan(
        *TINY, *TWO, *COMPACT[setting], *(CYCLE if model == "cyclegan" else []), f"hydra.run.dir={tmp_path}"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["completed_tasks"] == 2 and results["model"] == model
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    per_task = results["params"]["per_task"]
    assert per_task[1] < per_task[0] / 2
    codec = next((o.split("=")[1] for o in COMPACT[setting] if o.startswith("storage.dtype=")), "float32")
    assert [record["dtype"] for record in results["storage"]] == [codec, codec]
    # The exported task 1 computes what the lifelong file does; generate reads the file too.
    written = export_task(tmp_path / "lifelong.pt", "1", tmp_path / "exported", ("torchscript",))
    path, difference = written["torchscript"]
    assert path.is_file() and difference < 1e-5
    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32), (40, 90, 200)).save(tmp_path / "in" / "a.png")
    assert [p.name for p in generate(tmp_path / "lifelong.pt", "2", tmp_path / "in", tmp_path / "out")] == [
        "a.png"
    ]


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["lora", "low_rank_int8"])
def test_a_killed_compact_run_resumes_to_the_uninterrupted_one(setting: str, tmp_path) -> None:
    reference = tmp_path / "reference"
    done = pbgan_run(*COMPACT[setting], f"hydra.run.dir={reference}")
    assert done.returncode == 0, done.stderr[-3000:]
    crash_and_resume(tmp_path / "run", "train-batch@7:kill", extra=COMPACT[setting])
    assert_same_run(tmp_path / "run", reference)


def test_extending_a_compressed_file_keeps_its_tasks_exact(tmp_path) -> None:
    first = ["~task_seq.tasks.map2aerial", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
    second = ["~task_seq.tasks.labels2street", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
    options = ["method.rank=2", "storage.dtype=int8"]
    run_sequence(compose_config([*first, *options]), tmp_path / "first")
    model = tmp_path / "first" / "lifelong.pt"
    results = run_sequence(compose_config([*second, *options, f"init_from={model}"]), tmp_path / "extended")
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    assert [r["dtype"] for r in results["storage"]] == ["int8", "int8"]
    payload = load_lifelong_file(tmp_path / "extended" / "lifelong.pt")
    assert payload["generators"]["generator"]["storage"] == {0: "int8", 1: "int8"}
