"""Every method trains on both GAN variants; which ones keep old tasks exactly; honest storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.methods.mask import MaskedConv
from pbgan.sequence import run_sequence

TWO_TASKS = ["~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag", "trainer.max_epochs=2"]
CYCLE = ["model=cyclegan", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]
KEEPS_OLD_TASKS = {"piggyback": True, "pf": True, "full": True, "mask": True, "sft": False}


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
@pytest.mark.parametrize("method", sorted(KEEPS_OLD_TASKS))
def test_method_trains_two_tasks_and_keeps_or_forgets_task_1(method: str, model: str, tmp_path: Path) -> None:
    overrides = [*TWO_TASKS, f"method={method}", *(CYCLE if model == "cyclegan" else [])]
    results = run_sequence(compose_config(overrides), tmp_path)
    assert results["method"] == method and results["completed_tasks"] == 2
    change = results["forgetting"]["max_abs_change"][1][0]
    if KEEPS_OLD_TASKS[method]:
        assert change == 0.0
    else:
        assert change > 0.0
    per_task = results["params"]["per_task"]
    assert results["params"]["stored_total"] == sum(per_task)
    if method == "full":
        assert per_task[1] == per_task[0] == results["params"]["standalone_total"] // 2
    if method in ("piggyback", "pf", "mask", "sft"):
        assert per_task[1] < per_task[0]


def test_pf_ignores_ratio_and_says_so(tmp_path: Path) -> None:
    results = run_sequence(compose_config([*TWO_TASKS, "method=pf", "ratio=0.5"]), tmp_path)
    assert results["ratio"] == 0.0
    assert all(sizes[0] == sizes[1] for sizes in results["bank_sizes"].values())


def test_mask_starts_all_ones_and_never_moves_frozen_weights(tmp_path: Path) -> None:
    cfg = compose_config([*TWO_TASKS, "method=mask"])
    module = build_module(cfg)
    module.begin_task("one")
    module.end_task()
    frozen = {
        name: layer.weight.detach().clone()
        for name, layer in module.generator.named_modules()
        if isinstance(layer, MaskedConv)
    }
    module.begin_task("two")
    layers = [layer for layer in module.generator.modules() if isinstance(layer, MaskedConv)]
    assert layers and all(
        torch.equal(layer.mask(1).detach(), torch.ones_like(layer.weight)) for layer in layers
    )
    module.optim.lr = 0.05  # a large step, so any leak into the frozen weights would show
    opt = torch.optim.Adam(module.generator_param_groups(), lr=0.05)
    module.generator.train()
    for _ in range(3):
        opt.zero_grad()
        module.generator(torch.randn(4, 3, 32, 32)).square().mean().backward()
        opt.step()
    for name, layer in module.generator.named_modules():
        if isinstance(layer, MaskedConv):
            assert torch.equal(layer.weight, frozen[name]), name
            assert not layer.weight.requires_grad
    assert any(not torch.equal(layer.mask(1).detach(), torch.ones_like(layer.weight)) for layer in layers)


def test_mask_storage_is_one_bit_per_masked_weight() -> None:
    layer = MaskedConv(8, 16, 3, bias=True)
    layer.add_task()
    layer.end_task()
    layer.add_task()
    params, size = layer.stored_counts(1)
    assert size == 8 * 16 * 9 // 8 + 4 * 16
    assert params == 8 * 16 * 9 // 32 + 16


def test_narrow_full_scales_the_width_and_compares_with_the_full_width_model(tmp_path: Path) -> None:
    wide = run_sequence(compose_config([*TWO_TASKS, "method=full"]), tmp_path / "wide")
    narrow = run_sequence(
        compose_config([*TWO_TASKS, "method=full", "method.width=0.5"]), tmp_path / "narrow"
    )
    assert narrow["width"] == 0.5
    assert narrow["params"]["per_task"][0] < wide["params"]["per_task"][0] / 2
    assert narrow["params"]["standalone_total"] == wide["params"]["standalone_total"]
