"""The PatchGAN discriminator (reference ``NLayerDiscriminator``)."""

from __future__ import annotations

import torch
from torch import nn

from pbgan.lifelong.family import LayerFamily, PlainFamily
from pbgan.networks.init import init_plain_weights


class PatchGAN(nn.Module):
    """Classifies overlapping patches as real or fake; ``n_layers`` stride-2 convs deep."""

    def __init__(
        self,
        input_nc: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        family: LayerFamily | None = None,
    ) -> None:
        super().__init__()
        family = family or PlainFamily()
        biased = norm == "instance"
        layers: list[nn.Module] = [family.conv(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            next_width = ndf * min(2**n, 8)
            layers += [
                family.conv(width, next_width, 4, stride, 1, bias=biased),
                family.norm(norm, next_width),
                nn.LeakyReLU(0.2, True),
            ]
            width = next_width
        layers.append(family.conv(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        init_plain_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
