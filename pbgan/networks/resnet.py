"""The CycleGAN ResNet generator (reference ``ResnetGenerator``), blocks, width and depth configurable."""

from __future__ import annotations

import torch
from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.family import LayerFamily
from pbgan.lifelong.layers import check_norm
from pbgan.lifelong.network import LifelongNet
from pbgan.networks.init import init_plain_weights


def check_resnet_size(image_size: int, n_downsampling: int) -> None:
    step = 2**n_downsampling
    if image_size % step:
        raise ConfigError(
            f"image size {image_size} cannot pass through a ResNet generator with "
            f"n_downsampling={n_downsampling}: use a multiple of {step}"
        )


class ResidualBlock(nn.Module):
    """x + (pad, conv3, norm, ReLU, [dropout], pad, conv3, norm)(x)."""

    def __init__(self, family: LayerFamily, channels: int, norm: str, dropout: bool, label: str) -> None:
        super().__init__()
        biased = norm == "instance"
        first = family.conv(channels, channels, 3, bias=biased, label=f"{label}a")
        second = family.conv(channels, channels, 3, bias=biased, label=f"{label}b")
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), first, family.norm(norm, channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), second, family.norm(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResNetGenerator(LifelongNet):
    """Reflection-padded 7x7 conv, ``n_downsampling`` stride-2 convs, ``n_blocks`` residual blocks,
    as many transposed convs back up, a 7x7 conv and Tanh.

    Its last two layers (the last transposed conv and the output conv) are task-specific.
    """

    def __init__(
        self,
        family: LayerFamily,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: str = "instance",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        check_norm(norm)
        if n_downsampling < 1 or n_blocks < 0:
            raise ConfigError(
                f"model.generator.n_downsampling={n_downsampling} and n_blocks={n_blocks}: "
                "use at least 1 downsampling and 0 or more blocks"
            )
        self.n_downsampling = n_downsampling
        biased = norm == "instance"
        stem = family.conv(input_nc, ngf, 7, bias=biased, label="stem")
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), stem, family.norm(norm, ngf), nn.ReLU(True)]
        width = ngf
        for index in range(n_downsampling):
            down = family.conv(width, width * 2, 3, 2, 1, bias=biased, label=f"down{index + 1}")
            layers += [down, family.norm(norm, width * 2), nn.ReLU(True)]
            width *= 2
        layers += [ResidualBlock(family, width, norm, dropout, f"block{n + 1}") for n in range(n_blocks)]
        for index in range(n_downsampling):
            last_up = index == n_downsampling - 1
            up = family.deconv(
                width, width // 2, 3, 2, 1, 1, biased, task_specific=last_up, label=f"up{index + 1}"
            )
            layers += [up, family.norm(norm, width // 2), nn.ReLU(True)]
            width //= 2
        head = family.conv(width, output_nc, 7, task_specific=True, label="head")
        layers += [nn.ReflectionPad2d(3), head, nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_plain_weights(self)

    @classmethod
    def fit_options(cls, node: dict, image_size: int) -> dict:
        check_resnet_size(image_size, int(node.get("n_downsampling", 2)))
        return dict(node)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
