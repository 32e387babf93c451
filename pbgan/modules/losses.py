"""Adversarial losses of the reference code: vanilla (BCE on logits) and LSGAN (MSE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pbgan.errors import ConfigError

GAN_MODES = ("vanilla", "lsgan")


class GANLoss:
    """Loss of discriminator predictions against an all-real or all-fake target."""

    def __init__(self, mode: str = "vanilla") -> None:
        if mode not in GAN_MODES:
            raise ConfigError(f"gan_mode={mode!r} is not known: use one of {', '.join(GAN_MODES)}")
        self.mode = mode

    def __call__(self, prediction: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.full_like(prediction, 1.0 if real else 0.0)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(prediction, target)
        return F.mse_loss(prediction, target)
