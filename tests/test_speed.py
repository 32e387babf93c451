"""The optional speed switches (speed.*): they train the same model, and refuse where they cannot help."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.errors import ConfigError
from pbgan.modules.pix2pix import Pix2PixModule
from pbgan.sequence import build_trainer, run_sequence, task_specs


class BatchLayout(Pix2PixModule):
    """Records the memory layout of the batches the training step works on."""

    layouts: list[bool]

    def prepare_batch(self, batch):
        batch = super().prepare_batch(batch)
        self.layouts.append(batch[0].is_contiguous(memory_format=torch.channels_last))
        return batch


def train_one_task(overrides: list[str], root: Path) -> Pix2PixModule:
    cfg = compose_config(overrides)
    spec = task_specs(cfg)[0]
    torch.manual_seed(0)
    module = build_module(cfg)
    module.__class__ = BatchLayout
    module.layouts = []
    module.begin_task(spec.name)
    build_trainer(cfg, root, []).fit(module, datamodule=instantiate(spec.data))
    return module


def test_channels_last_trains_in_nhwc_and_matches_nchw(tmp_path: Path) -> None:
    nhwc = train_one_task(["speed.channels_last=true"], tmp_path / "a")
    nchw = train_one_task([], tmp_path / "b")
    assert nhwc.layouts and all(nhwc.layouts) and not any(nchw.layouts)
    assert nhwc.discriminator.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    probe = torch.rand(2, 3, 32, 32) * 2 - 1
    # Same model up to float rounding of the other convolution kernels.
    torch.testing.assert_close(nhwc.translate(probe, 0), nchw.translate(probe, 0), atol=1e-3, rtol=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_bf16_without_a_gpu_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="speed.bf16=true needs a CUDA GPU"):
        run_sequence(compose_config(["speed.bf16=true"]), tmp_path)


@pytest.mark.slow
def test_compiled_networks_learn_two_tasks(tmp_path: Path) -> None:
    """Compiled networks train, and evaluate frozen tasks (pbgan.lifelong.subpixel's oneDNN call
    included) with their outputs unchanged by a later task."""
    results = run_sequence(
        compose_config(["speed.compile=true", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]),
        tmp_path,
    )
    assert results["completed_tasks"] == 2
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
