"""CycleGAN: the ResNet generator's reference size, and both directions kept exactly across tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.lifelong import PlainFamily
from pbgan.methods.piggyback import PiggybackFamily
from pbgan.modules.cyclegan import CycleGANModule
from pbgan.networks.resnet import ResNetGenerator
from pbgan.sequence import build_trainer, task_specs

CYCLE = ["model=cyclegan", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]


def test_resnet_9_blocks_one_task_matches_reference_count() -> None:
    net = ResNetGenerator(PiggybackFamily(0.25), ngf=64, n_blocks=9, norm="instance")
    net.add_task()
    assert sum(p.numel() for p in net.parameters()) == 11_378_179


def test_resnet_last_two_layers_are_task_specific() -> None:
    net = ResNetGenerator(PiggybackFamily(0.25), ngf=4, n_blocks=2)
    specific = [layer.label for _, layer in net.lifelong_layers() if getattr(layer, "task_specific", False)]
    assert specific == ["up2", "head"]


def learn_two_tasks(
    module: CycleGANModule, tmp_path: Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Learn task 1, probe both directions, learn task 2; return (before, after) for A->B and B->A."""
    cfg = compose_config([*CYCLE, "trainer.max_epochs=2"])
    specs = task_specs(cfg)
    probe = torch.randn(3, 3, 32, 32)

    def learn(spec) -> None:
        module.begin_task(spec.name)
        build_trainer(cfg, tmp_path, []).fit(module, datamodule=instantiate(spec.data))

    learn(specs[0])
    before = module.translate(probe, 0, "AtoB"), module.translate(probe, 0, "BtoA")
    learn(specs[1])
    after = module.translate(probe, 0, "AtoB"), module.translate(probe, 0, "BtoA")
    return before[0], after[0], before[1], after[1]


def test_piggyback_keeps_both_generators_task_1_outputs_bit_identical(tmp_path: Path) -> None:
    module = build_module(compose_config(CYCLE))
    ab_before, ab_after, ba_before, ba_after = learn_two_tasks(module, tmp_path)
    assert torch.equal(ab_before, ab_after)
    assert torch.equal(ba_before, ba_after)
    assert module.frozen_tasks == 2


def test_a_plain_shared_generator_forgets_so_the_test_above_can_fail(tmp_path: Path) -> None:
    def shared() -> ResNetGenerator:
        return ResNetGenerator(PlainFamily(), ngf=4, n_blocks=1)

    module = CycleGANModule(shared(), shared(), discriminator={"ndf": 4, "norm": "instance"})
    ab_before, ab_after, ba_before, ba_after = learn_two_tasks(module, tmp_path)
    assert not torch.equal(ab_before, ab_after)
    assert not torch.equal(ba_before, ba_after)


def test_pix2pix_has_one_direction() -> None:
    module = build_module(compose_config())
    module.begin_task("t")
    with pytest.raises(ValueError, match="direction='BtoA'"):
        module.translate(torch.zeros(1, 3, 32, 32), 0, "BtoA")


def test_the_image_pools_travel_with_a_checkpoint() -> None:
    """A task resumed mid-way must draw from the pool history the uninterrupted run had."""
    import io

    cfg = compose_config(CYCLE)
    name = task_specs(cfg)[0].name
    module = build_module(cfg)
    module.begin_task(name)
    module.pool_a.query(torch.randn(3, 3, 32, 32))
    module.pool_b.query(torch.randn(2, 3, 32, 32))
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    fresh = build_module(cfg)
    fresh.begin_task(name)
    fresh.on_load_checkpoint(torch.load(buffer, weights_only=True))
    for mine, theirs in ((fresh.pool_a, module.pool_a), (fresh.pool_b, module.pool_b)):
        assert len(mine.images) == len(theirs.images) > 0
        assert all(torch.equal(a, b) for a, b in zip(mine.images, theirs.images))
