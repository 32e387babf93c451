"""The paper's other comparisons: EWC, Lifelong GAN and progressive networks.

EWC's penalty and Fisher are checked against their definitions; EWC and Lifelong GAN forget task 1
(they are not exact) but less than sequential fine-tuning with the same seed; progressive networks
keep every old task bit-identical at a storage cost that grows with every task; each trains
through the command line on both GAN variants, and resumes after a kill to the uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pbgan_testing import TINY, compose_config, run_pbgan
from test_crash import assert_same_run, crash_and_resume, pbgan_run

from pbgan.build import build_module
from pbgan.export import export_task
from pbgan.lifelong_file import load_lifelong_file
from pbgan.methods.ewc import EWCPlugin, shared_parameters
from pbgan.methods.lifelong_gan import montage
from pbgan.sequence import run_sequence

TWO_TASKS = ["~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
CYCLE = ["model=cyclegan", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]


def batches(count: int, seed: int, size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.rand(2, 3, size, size, generator=generator) * 2 - 1,
            torch.rand(2, 3, size, size, generator=generator) * 2 - 1,
        )
        for _ in range(count)
    ]


@pytest.fixture
def ewc_module():
    torch.manual_seed(0)
    module = build_module(compose_config(["method=ewc", "method.plugin.fisher_batches=2"]))
    module.begin_task("one")
    return module


def test_ewc_fisher_is_the_mean_squared_gradient_on_the_task_data(ewc_module) -> None:
    module, plugin = ewc_module, ewc_module.plugin
    assert isinstance(plugin, EWCPlugin)
    data = batches(3, seed=1)
    fisher = plugin.estimate_fisher(module, data)
    params = shared_parameters(module)
    assert set(fisher) == set(params) and params
    # The definition, computed here on its own: eval mode, squared gradients, mean over 2 batches.
    module.eval()
    expected = {name: torch.zeros_like(p) for name, p in params.items()}
    for batch in data[:2]:
        grads = torch.autograd.grad(
            module.generator_objective(batch), list(params.values()), allow_unused=True
        )
        for name, grad in zip(params, grads):
            if grad is not None:
                expected[name] += grad**2 / 2
    for name in params:
        assert torch.allclose(fisher[name], expected[name], rtol=1e-5, atol=1e-12), name
        assert (fisher[name] >= 0).all()
    assert sum(float(f.sum()) for f in fisher.values()) > 0
    # Only the first fisher_batches batches count; other data gives another Fisher.
    changed = plugin.estimate_fisher(module, [*data[:2], batches(1, seed=9)[0]])
    assert all(torch.equal(changed[name], fisher[name]) for name in fisher)
    other = plugin.estimate_fisher(module, batches(2, seed=5))
    assert any(not torch.allclose(other[name], fisher[name]) for name in fisher)


def test_ewc_penalty_is_zero_at_the_anchor_and_grows_with_the_distance(ewc_module) -> None:
    module, plugin = ewc_module, ewc_module.plugin
    plugin.strength = 3.0
    params = shared_parameters(module)
    name, param = next((n, p) for n, p in params.items() if p.dim() == 4)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    fisher[name] = torch.full_like(param, 0.5)
    plugin.anchors = [{n: p.detach().clone() for n, p in params.items()}]
    plugin.fishers = [fisher]
    assert float(plugin.penalty(module).detach()) == 0.0
    values = []
    for delta in (1e-3, 1e-2, 1e-1):
        with torch.no_grad():
            original = param.detach().clone()
            param.add_(delta)
        value = float(plugin.penalty(module).detach())
        # lambda / 2 * sum F (theta - theta*)^2 = 3 / 2 * 0.5 * delta^2 * numel
        assert value == pytest.approx(1.5 * 0.5 * delta**2 * param.numel(), rel=1e-4)
        values.append(value)
        with torch.no_grad():
            param.copy_(original)
    assert values == sorted(values) and values[0] > 0
    # A second task's pair adds its own term.
    plugin.anchors.append({n: p.detach().clone() - 1.0 for n, p in params.items()})
    plugin.fishers.append(fisher)
    assert float(plugin.penalty(module).detach()) == pytest.approx(1.5 * 0.5 * param.numel(), rel=1e-4)


def test_online_ewc_keeps_one_running_fisher() -> None:
    torch.manual_seed(0)
    module = build_module(compose_config(["method=ewc_online", "method.plugin.fisher_batches=1"]))
    plugin = module.plugin
    assert plugin.online and plugin.decay == 0.9

    class Trainer:  # what on_task_end reads: the task's datamodule
        def __init__(self, data):
            self.datamodule = type("DM", (), {"train_dataloader": lambda _self: data})()

    first, second = batches(1, seed=1), batches(1, seed=2)
    module.begin_task("one")
    module.end_task(Trainer(first))
    f1 = {k: v.clone() for k, v in plugin.fishers[0].items()}
    module.begin_task("two")
    f2 = plugin.estimate_fisher(module, second)
    module.end_task(Trainer(second))
    assert len(plugin.fishers) == len(plugin.anchors) == 1
    for name in f1:
        assert torch.allclose(plugin.fishers[0][name], 0.9 * f1[name] + f2[name], rtol=1e-5, atol=1e-12)


def test_ewc_needs_the_task_data_when_a_task_ends(ewc_module) -> None:
    with pytest.raises(Exception, match="Fisher"):
        ewc_module.end_task()


def test_montage_is_made_of_patches_of_the_batch() -> None:
    torch.manual_seed(0)
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    out = montage(images, 2)
    assert out.shape == images.shape
    values = set(images.flatten().tolist())
    assert set(out.flatten().tolist()) <= values
    # each 4x4 cell is a contiguous 4x4 patch of one source image
    for k in range(2):
        for i in (0, 4):
            for j in (0, 4):
                cell = out[k, 0, i : i + 4, j : j + 4]
                src, rem = divmod(int(cell[0, 0]), 64)
                top, left = divmod(rem, 8)
                assert torch.equal(cell, images[src, 0, top : top + 4, left : left + 4])


# Long enough, and at a high enough rate, that fine-tuning visibly moves task 1's outputs.
FORGET = [*TWO_TASKS, "trainer.max_epochs=4", "data.train_size=16", "model.optim.lr=2e-3"]


def task1_change(folder: Path) -> float:
    """Mean |change| of task 1's outputs on the probe images from right after task 1 to the end."""
    from pbgan.lifelong_file import restore_generator

    payload = load_lifelong_file(folder / "lifelong.pt")
    net = restore_generator(payload["generators"]["generator"], payload["frozen_tasks"], payload["version"])
    net.set_task(0)
    with torch.no_grad():
        now = net(payload["probe_inputs"][0])
    return float((now - payload["probe_baselines"][0]).abs().mean())


def test_ewc_and_lifelong_gan_forget_task_1_but_less_than_sft(tmp_path: Path) -> None:
    changes = {}
    for method, extra in (
        ("sft", []),
        ("ewc", []),
        ("lifelong_gan", []),
    ):
        folder = tmp_path / method
        results = run_sequence(compose_config([*FORGET, f"method={method}", *extra]), folder)
        assert results["forgetting"]["max_abs_change"][1][0] > 0  # not exact: task 1 moved
        changes[method] = task1_change(folder)
    assert changes["sft"] > 0
    assert changes["ewc"] < changes["sft"], changes
    assert changes["lifelong_gan"] < changes["sft"], changes


def test_progressive_keeps_old_tasks_exactly_at_a_growing_cost(tmp_path: Path) -> None:
    three = ["~task_seq.tasks.edges2bag", "method=progressive"]
    results = run_sequence(compose_config(three), tmp_path)
    change = results["forgetting"]["max_abs_change"]
    assert change[1][0] == 0.0 and change[2][0] == 0.0 and change[2][1] == 0.0
    per_task = results["params"]["per_task"]
    assert per_task[2] > per_task[1] > per_task[0]
    # What task t adds beyond a column: t * sum over layers of C_out^2 lateral weights.
    lateral = per_task[1] - per_task[0]
    assert per_task[2] - per_task[0] == 2 * lateral
    # The exported task 3 is one plain network computing its column with the laterals.
    written = export_task(tmp_path / "lifelong.pt", "3", tmp_path / "exported", ("torchscript",))
    path, difference = written["torchscript"]
    assert path.is_file() and difference < 1e-5
    # generate: task 2's outputs of a folder of images, one per input, batched as asked
    from PIL import Image

    from pbgan.generate import generate

    (tmp_path / "in").mkdir()
    for index in range(3):
        Image.new("RGB", (32, 32), (40 * index, 90, 200)).save(tmp_path / "in" / f"img{index}.png")
    outputs = generate(tmp_path / "lifelong.pt", "2", tmp_path / "in", tmp_path / "out", batch_size=2)
    assert sorted(p.name for p in outputs) == ["img0.png", "img1.png", "img2.png"]


@pytest.mark.parametrize(
    "method, model",
    [
        ("ewc", "pix2pix"),
        ("lifelong_gan", "pix2pix"),
        ("progressive", "pix2pix"),
        ("progressive", "cyclegan"),
        pytest.param("ewc", "cyclegan", marks=pytest.mark.slow),
        pytest.param("lifelong_gan", "cyclegan", marks=pytest.mark.slow),
    ],
)
def test_method_trains_two_tasks_through_the_cli(method: str, model: str, tmp_path: Path) -> None:
    done = run_pbgan(
        *TINY,
        *TWO_TASKS,
        "trainer.max_epochs=2",
        f"method={method}",
        *(CYCLE if model == "cyclegan" else []),
        f"hydra.run.dir={tmp_path}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["method"] == method and results["model"] == model and results["completed_tasks"] == 2
    change = results["forgetting"]["max_abs_change"][1][0]
    per_task = results["params"]["per_task"]
    if method == "progressive":
        assert change == 0.0 and per_task[1] > per_task[0]
    else:
        assert change > 0.0 and per_task[1] < per_task[0]
    train_log = (tmp_path / "run.log").read_text() if (tmp_path / "run.log").exists() else ""
    assert "Traceback" not in train_log


@pytest.mark.parametrize(
    "method",
    [
        "ewc",
        pytest.param("lifelong_gan", marks=pytest.mark.slow),
        pytest.param("progressive", marks=pytest.mark.slow),
    ],
)
def test_a_killed_run_resumes_to_the_uninterrupted_one(method: str, tmp_path: Path) -> None:
    """Mid task 2 the plugin's state matters: EWC's Fisher and anchors, Lifelong GAN's snapshot."""
    reference = tmp_path / "reference"
    done = pbgan_run(f"method={method}", f"hydra.run.dir={reference}")
    assert done.returncode == 0, done.stderr[-3000:]
    crash_and_resume(tmp_path / "run", "train-batch@7:kill", extra=[f"method={method}"])
    assert_same_run(tmp_path / "run", reference)


def test_fine_tuning_norms_share_weights_and_keep_each_tasks_statistics() -> None:
    from pbgan.methods.finetune import SharedNorm

    torch.manual_seed(0)
    module = build_module(compose_config(["method=sft"]))
    net = module.generator
    norms = [layer for _, layer in net.lifelong_layers() if isinstance(layer, SharedNorm)]
    assert norms
    module.begin_task("one")
    net.train()
    net(torch.rand(4, 3, 32, 32) * 2 - 1)
    module.end_task()
    first = [tuple(t.clone() for t in norm.statistics(0)) for norm in norms]
    module.begin_task("two")
    net.train()
    net(torch.rand(4, 3, 32, 32) * 2 + 1)  # another distribution: task 2's statistics move
    for norm, (mean, var) in zip(norms, first):
        assert torch.equal(norm.statistics(0)[0], mean) and torch.equal(norm.statistics(0)[1], var)
    assert any(not torch.equal(norm.statistics(1)[0], mean) for norm, (mean, _) in zip(norms, first))
    # the affine parameters are shared: trainable in task 2, stored once (with task 1)
    shared = {id(t) for t in net.shared_tensors()}
    assert all(id(norm.norm.weight) in shared and norm.norm.weight.requires_grad for norm in norms)


def test_a_format_3_fine_tuning_file_loads_with_its_single_statistics(tmp_path: Path) -> None:
    """Format 3 kept one plain BatchNorm2d per norm for all tasks: every task gets its statistics."""
    from pbgan.lifelong_file import restore_generator

    folder = tmp_path / "run"
    run_sequence(compose_config([*TWO_TASKS, "method=sft"]), folder)
    payload = load_lifelong_file(folder / "lifelong.pt")
    entry = payload["generators"]["generator"]
    state = dict(entry["state_dict"])
    old = {}
    for key, value in state.items():
        if key.endswith(".norm.weight") or key.endswith(".norm.bias"):
            old[key.replace(".norm.", ".")] = value
        elif key.endswith(".mean1"):
            old[key[: -len("mean1")] + "running_mean"] = value
        elif key.endswith(".var1"):
            old[key[: -len("var1")] + "running_var"] = value
            old[key[: -len("var1")] + "num_batches_tracked"] = torch.tensor(7)
        elif not (key.endswith(".mean0") or key.endswith(".var0")):
            old[key] = value
    net = restore_generator({**entry, "state_dict": old}, payload["frozen_tasks"], version=3)
    now = restore_generator(entry, payload["frozen_tasks"], payload["version"])
    assert net.legacy_tasks == 2 and now.legacy_tasks == 0
    now.keep_legacy_kernels(2)  # the kernels the format 3 file's tasks keep
    from pbgan.methods.finetune import SharedNorm

    for _, layer in now.lifelong_layers():  # the old file's statistics were the last task's
        if isinstance(layer, SharedNorm):
            for mine, last in zip(layer.statistics(0), layer.statistics(1)):
                mine.copy_(last)
    probe = payload["probe_inputs"][1]
    for task in (0, 1):
        net.set_task(task)
        now.set_task(task)
        with torch.no_grad():
            assert torch.equal(net(probe), now(probe))


@pytest.mark.parametrize("method", ["piggyback", "full", "sft", "mask"])
def test_only_progressive_nets_stack_columns(method: str) -> None:
    """Other nets run each batch once, however many tasks they have learned."""
    module = build_module(compose_config([f"method={method}"]))
    for name in ("one", "two", "three"):
        if module.num_tasks:
            module.end_task()
        module.begin_task(name)
    seen = []
    hook = module.generator.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    module.generator(torch.rand(2, 3, 32, 32))
    hook.remove()
    assert module.generator.columns() == 1 and seen == [2]
    progressive = build_module(compose_config(["method=progressive"]))
    for name in ("one", "two", "three"):
        if progressive.num_tasks:
            progressive.end_task()
        progressive.begin_task(name)
    assert progressive.generator.columns() == 3
    assert progressive.generator(torch.rand(2, 3, 32, 32)).shape[0] == 2


@pytest.mark.parametrize("method", ["ewc", "lifelong_gan", "progressive"])
def test_extending_a_file_keeps_what_the_method_needs(method: str, tmp_path: Path) -> None:
    """init_from: EWC's Fisher and anchor of the file's task come along, Lifelong GAN distils from
    the loaded model, progressive adds a column beside the loaded ones."""
    first = ["~task_seq.tasks.map2aerial", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
    second = ["~task_seq.tasks.labels2street", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
    run_sequence(compose_config([*first, f"method={method}"]), tmp_path / "first")
    model = tmp_path / "first" / "lifelong.pt"
    results = run_sequence(
        compose_config([*second, f"method={method}", f"init_from={model}"]), tmp_path / "extended"
    )
    change = results["forgetting"]["max_abs_change"][1][0]
    per_task = results["params"]["per_task"]
    if method == "progressive":
        assert change == 0.0 and per_task[1] > per_task[0]
    else:
        assert change > 0.0
    if method == "ewc":
        before = load_lifelong_file(model)["plugin"]["_extra_state"]
        after = load_lifelong_file(tmp_path / "extended" / "lifelong.pt")["plugin"]["_extra_state"]
        assert len(before["fishers"]) == 1 and len(after["fishers"]) == 2
        assert all(torch.equal(after["fishers"][0][k], v) for k, v in before["fishers"][0].items())
        assert all(torch.equal(after["anchors"][0][k], v) for k, v in before["anchors"][0].items())
