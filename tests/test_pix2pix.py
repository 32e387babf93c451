"""The pix2pix LightningModule trained through real Trainers, task after task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.methods.piggyback import PiggybackConv
from pbgan.modules.base import linear_decay
from pbgan.sequence import build_trainer, task_specs


def learn(module, cfg, spec, root: Path) -> None:
    module.begin_task(spec.name)
    build_trainer(cfg, root, []).fit(module, datamodule=instantiate(spec.data))


def test_old_task_outputs_and_tensors_survive_later_tasks(tmp_path: Path) -> None:
    cfg = compose_config(["trainer.max_epochs=2"])
    specs = task_specs(cfg)
    module = build_module(cfg)
    learn(module, cfg, specs[0], tmp_path)
    assert module.frozen_tasks == 1
    probe = torch.randn(3, 3, 32, 32)
    outputs = module.translate(probe, 0)
    tensors = [t.detach().clone() for t in module.generator.task_tensors(0)]
    first_discriminator = module.discriminator

    for spec in specs[1:3]:
        learn(module, cfg, spec, tmp_path)
        assert module.discriminator is not first_discriminator

    assert module.frozen_tasks == 3
    assert torch.equal(module.translate(probe, 0), outputs)
    for before, after in zip(tensors, module.generator.task_tensors(0)):
        assert torch.equal(before, after)
    assert all(not p.requires_grad for t in range(3) for p in module.generator.task_parameters(t))
    # The later tasks were really trained (the test could fail): their outputs differ from task 1's.
    assert not torch.equal(module.translate(probe, 2), outputs)


def test_training_moves_the_newest_task_only(tmp_path: Path) -> None:
    cfg = compose_config()
    spec = task_specs(cfg)[0]
    module = build_module(cfg)
    module.begin_task(spec.name)
    initial = [p.detach().clone() for p in module.generator.task_parameters(0)]
    build_trainer(cfg, tmp_path, []).fit(module, datamodule=instantiate(spec.data))
    moved = [not torch.equal(a, b) for a, b in zip(initial, module.generator.task_parameters(0)) if a.numel()]
    assert all(moved)


def test_learning_rate_is_constant_then_falls_linearly() -> None:
    factor = linear_decay(total_steps=10, decay_fraction=0.5)
    values = [factor(step) for step in range(10)]
    assert values[:5] == [1.0] * 5
    assert all(a > b for a, b in zip(values[4:], values[5:]))
    assert values[-1] == pytest.approx(1 / 6)


def test_piggyback_matrices_can_learn_at_their_own_rate() -> None:
    module = build_module(compose_config(["model.optim.piggyback_lr_scale=4"]))
    module.begin_task("first")
    assert [g["lr"] for g in module.generator_param_groups()] == [2e-4]  # task 1 has no P
    module.end_task()
    module.begin_task("second")
    plain, matrices = module.generator_param_groups()
    assert plain["lr"] == 2e-4 and matrices["lr"] == 8e-4
    expected = {
        id(layer.piggyback[1]) for layer in module.generator.modules() if isinstance(layer, PiggybackConv)
    }
    assert {id(p) for p in matrices["params"]} == expected and expected
