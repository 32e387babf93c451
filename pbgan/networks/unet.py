"""The pix2pix UNet generator (reference ``UnetGenerator``), depth and width configurable."""

from __future__ import annotations

import torch
from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.family import LayerFamily
from pbgan.lifelong.layers import check_norm
from pbgan.lifelong.network import LifelongNet
from pbgan.networks.init import init_plain_weights

MIN_DOWNS = 2
MAX_AUTO_DOWNS = 8  # unet_256: the reference's deepest UNet


def check_unet_depth(num_downs: int) -> None:
    if num_downs < MIN_DOWNS:
        raise ConfigError(f"model.generator.num_downs={num_downs} is too small: use at least {MIN_DOWNS}")


def check_unet_size(image_size: int, num_downs: int) -> None:
    """An image passes the UNet only if every downsampling halves it exactly down to >= 1 pixel."""
    check_unet_depth(num_downs)
    step = 2**num_downs
    if image_size >= step and image_size % step == 0:
        return
    most = (image_size & -image_size).bit_length() - 1 if image_size > 0 else 0
    if most >= MIN_DOWNS:
        hint = f"set model.generator.num_downs={most} (or fewer)"
    else:
        example = step * max(1, round(image_size / step))
        hint = f"use an image size that is a multiple of {step}, for example {example}"
    raise ConfigError(
        f"image size {image_size} cannot pass through a UNet with num_downs={num_downs}: "
        f"each downsampling halves the image, so the size must be a multiple of "
        f"2^{num_downs} = {step}; {hint}"
    )


def resolve_num_downs(num_downs: int | str, image_size: int) -> int:
    """``auto``: as many halvings as the image size allows, at most unet_256's eight."""
    if num_downs != "auto":
        check_unet_size(image_size, int(num_downs))
        return int(num_downs)
    depth = 0
    while depth < MAX_AUTO_DOWNS and image_size % 2 ** (depth + 1) == 0:
        depth += 1
    check_unet_size(image_size, max(depth, MIN_DOWNS))
    return depth


def level_width(ngf: int, level: int) -> int:
    """Channels after downsampling ``level`` times: ngf, 2 ngf, 4 ngf, then 8 ngf from there on."""
    return ngf * min(2**level, 8)


class UNetBlock(nn.Module):
    """One level of the UNet: down, the inner levels, up, then the skip concatenation."""

    def __init__(
        self,
        family: LayerFamily,
        outer: int,
        inner: int,
        input_channels: int | None,
        submodule: nn.Module | None,
        norm: str,
        level: int,
        outermost: bool = False,
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        innermost = submodule is None
        biased = norm == "instance"  # a bias before BatchNorm is redundant (reference use_bias)
        in_channels = outer if input_channels is None else input_channels
        down_conv = family.conv(in_channels, inner, 4, 2, 1, bias=biased, label=f"down{level + 1}")
        up_in = inner if innermost else inner * 2
        up_label = f"up{level + 1}"
        layers: list[nn.Module]
        if outermost:
            up_conv = family.deconv(up_in, outer, 4, 2, 1, bias=True, task_specific=True, label=up_label)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = family.deconv(up_in, outer, 4, 2, 1, bias=biased, label=up_label)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, family.norm(norm, outer)]
        else:
            up_conv = family.deconv(up_in, outer, 4, 2, 1, bias=biased, label=up_label)
            layers = [
                nn.LeakyReLU(0.2, True),
                down_conv,
                family.norm(norm, inner),
                submodule,
                nn.ReLU(True),
                up_conv,
                family.norm(norm, outer),
            ]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UNetGenerator(LifelongNet):
    """UNet with ``num_downs`` downsamplings (8 = reference unet_256, 7 = unet_128).

    The last layer (outermost transposed conv) is task-specific; all others are shareable.
    """

    def __init__(
        self,
        family: LayerFamily,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ) -> None:
        super().__init__()
        check_norm(norm)
        check_unet_depth(num_downs)
        self.num_downs = num_downs
        block: nn.Module | None = None
        for level in reversed(range(1, num_downs)):
            outer, inner = level_width(ngf, level - 1), level_width(ngf, level)
            middle = block is not None and level >= 4  # the 8 ngf-wide blocks between
            block = UNetBlock(family, outer, inner, None, block, norm, level, dropout=dropout and middle)
        self.model = UNetBlock(family, output_nc, ngf, input_nc, block, norm, 0, outermost=True)
        init_plain_weights(self)

    @classmethod
    def fit_options(cls, node: dict, image_size: int) -> dict:
        return {**node, "num_downs": resolve_num_downs(node.get("num_downs", "auto"), image_size)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
