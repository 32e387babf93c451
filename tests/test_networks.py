"""Networks against the reference pytorch-CycleGAN-and-pix2pix parameter counts (DESIGN 2)."""

from __future__ import annotations

import pytest
import torch

from pbgan.errors import ConfigError
from pbgan.methods.piggyback import PiggybackFamily
from pbgan.networks import PatchGAN, UNetGenerator, check_unet_size


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("num_downs", "reference"), [(8, 54_413_955), (7, 41_828_995)])
def test_unet_one_task_matches_reference_count(num_downs: int, reference: int) -> None:
    net = UNetGenerator(PiggybackFamily(0.25), num_downs=num_downs, ngf=64, norm="batch")
    net.add_task()
    assert count(net) == reference
    assert net.stored_parameters(0) == reference


@pytest.mark.parametrize(
    ("input_nc", "norm", "reference"), [(6, "batch", 2_768_705), (3, "instance", 2_764_737)]
)
def test_patchgan_matches_reference_count(input_nc: int, norm: str, reference: int) -> None:
    assert count(PatchGAN(input_nc, ndf=64, n_layers=3, norm=norm)) == reference


def test_unet_last_layer_is_task_specific_and_others_share_the_bank() -> None:
    net = UNetGenerator(PiggybackFamily(0.25), num_downs=5, ngf=4)
    specific = [name for name, layer in net.lifelong_layers() if getattr(layer, "task_specific", False)]
    assert len(specific) == 1
    assert "up1" not in net.bank_sizes() and "down1" in net.bank_sizes()


@pytest.mark.parametrize(("size", "num_downs"), [(32, 5), (64, 6), (48, 4)])
def test_unet_keeps_image_size(size: int, num_downs: int) -> None:
    net = UNetGenerator(PiggybackFamily(0.5), num_downs=num_downs, ngf=4)
    net.add_task()
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 3, size, size)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize(
    ("size", "num_downs", "hint"), [(48, 6, "num_downs=4"), (40, 7, "num_downs=3"), (2, 3, "multiple of 8")]
)
def test_image_size_the_unet_cannot_take_is_refused_with_a_fix(size: int, num_downs: int, hint: str) -> None:
    with pytest.raises(ConfigError, match=f"image size {size}") as error:
        check_unet_size(size, num_downs)
    assert hint in str(error.value)
