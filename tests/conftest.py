"""Shared test helpers: the real configs composed with Hydra's compose API at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")

# Small enough for 2 CPU cores: 32x32 images, 4-wide networks, a few batches per task.
TINY = [
    "data.image_size=32",
    "data.train_size=8",
    "data.val_size=4",
    "data.batch_size=4",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "eval.num_images=4",
    "eval.probe_images=4",
    "eval.sample_images=2",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "logger=none",
]


def compose_config(overrides: list[str] | None = None, tiny: bool = True) -> DictConfig:
    """The project's config as ``python -m pbgan.run`` would compose it."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=(TINY if tiny else []) + list(overrides or []))


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
