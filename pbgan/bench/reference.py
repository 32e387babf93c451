"""The reference networks written with ordinary ``torch.nn`` layers, as a user would run them.

These mirror junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` (``UnetGenerator``,
``NLayerDiscriminator``, ``ResnetGenerator``) layer for layer, and deliberately do not go
through pbgan's layer families: they are what the benchmark measures pbgan against.
"""

from __future__ import annotations

import torch
from torch import nn

from pbgan.networks.init import init_plain_weights  # the reference init_weights(net, "normal", 0.02)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class SkipBlock(nn.Module):
    """The reference ``UnetSkipConnectionBlock``."""

    def __init__(
        self,
        outer: int,
        inner: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        input_nc = outer if input_nc is None else input_nc
        down = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1)
            layers = [down, submodule, nn.ReLU(True), up, nn.Tanh()]
        elif submodule is None:
            up = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, _norm(norm, outer)]
        else:
            up = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias)
            layers = [
                nn.LeakyReLU(0.2, True),
                down,
                _norm(norm, inner),
                submodule,
                nn.ReLU(True),
                up,
                _norm(norm, outer),
            ]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class ReferenceUNet(nn.Module):
    """The reference ``UnetGenerator`` (num_downs 8: unet_256)."""

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64, norm: str = "batch"
    ) -> None:
        super().__init__()
        block = SkipBlock(ngf * 8, ngf * 8, norm=norm)
        for _ in range(num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=True)
        for outer in (4, 2, 1):
            block = SkipBlock(ngf * outer, ngf * outer * 2, submodule=block, norm=norm)
        self.model = SkipBlock(output_nc, ngf, input_nc, block, outermost=True, norm=norm)
        init_plain_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ReferencePatchGAN(nn.Module):
    """The reference ``NLayerDiscriminator``."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            previous, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * previous, ndf * mult, 4, 2 if n < n_layers else 1, 1, bias=bias),
                _norm(norm, ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_plain_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        bias = norm == "instance"
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            _norm(norm, channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ReferenceResNet(nn.Module):
    """The reference ``ResnetGenerator`` (n_blocks 9: resnet_9blocks)."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_downsampling: int = 2,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, bias=bias),
            _norm(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(n_downsampling):
            width = ngf * 2**i
            layers += [nn.Conv2d(width, width * 2, 3, 2, 1, bias=bias), _norm(norm, width * 2), nn.ReLU(True)]
        width = ngf * 2**n_downsampling
        layers += [ResnetBlock(width, norm) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            width = ngf * 2 ** (n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1, bias=bias),
                _norm(norm, width // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_plain_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
