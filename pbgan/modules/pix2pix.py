"""Paired translation (pix2pix): conditional GAN loss plus lambda * L1 to the ground truth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.lifelong.network import LifelongNet
from pbgan.lifelong.plugin import TrainingPlugin
from pbgan.modules.base import LifelongGANModule, OptimConfig, SpeedConfig, objects_among
from pbgan.modules.losses import GANLoss
from pbgan.networks.patchgan import PatchGAN


class Pix2PixModule(LifelongGANModule):
    """One lifelong UNet generator; a fresh PatchGAN on (input, output) pairs for every task."""

    def __init__(
        self,
        generator: LifelongNet | dict,
        input_nc: int = 3,
        output_nc: int = 3,
        discriminator: dict | None = None,
        lambda_l1: float = 100.0,
        gan_mode: str = "vanilla",
        optim: OptimConfig | dict | None = None,
        speed: SpeedConfig | dict | None = None,
        plugin: TrainingPlugin | dict | None = None,
        name: str = "pix2pix",
    ) -> None:
        """``generator``: a lifelong net, or its node (``_target_``, layer family, options)."""
        super().__init__(optim, speed, plugin)
        self.save_hyperparameters(ignore=objects_among(generator=generator, plugin=plugin))
        self.generator = self.build_generator(generator)
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.discriminator_settings = dict(discriminator or {})
        self.discriminator: nn.Module | None = None
        self.lambda_l1 = lambda_l1
        self.gan_loss = GANLoss(gan_mode)

    def lifelong_nets(self) -> dict[str, LifelongNet]:
        return {"generator": self.generator}

    def build_discriminators(self) -> None:
        self.discriminator = PatchGAN(self.input_nc + self.output_nc, **self.discriminator_settings)
        self.discriminator.to(self.device)

    def discriminators(self) -> list[nn.Module]:
        return [self.discriminator]

    def generate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        return self.generator(inputs)

    def generator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake_b: torch.Tensor, parts: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The generator's loss (GAN + lambda_l1 * L1) for outputs ``fake_b``; its parts in ``parts``."""
        parts["g_gan"] = self.gan_loss(self.discriminator(torch.cat([real_a, fake_b], 1)), True)
        parts["g_l1"] = F.l1_loss(fake_b, real_b)
        return parts["g_gan"] + self.lambda_l1 * parts["g_l1"]

    def generator_objective(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        real_a, real_b = self.prepare_batch(batch)
        return self.generator_losses(real_a, real_b, self.generator(real_a), {})

    def net_inputs(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        real_a, real_b = batch
        return {"generator": (real_a, real_b if real_b.shape[1] == real_a.shape[1] else None)}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real_a, real_b = self.prepare_batch(batch)
        opt_g, opt_d = self.optimizers()
        fake_b = self.generator(real_a)

        def discriminator_loss() -> torch.Tensor:
            fake = self.discriminator(torch.cat([real_a, fake_b.detach()], 1))
            real = self.discriminator(torch.cat([real_a, real_b], 1))
            return 0.5 * (self.gan_loss(fake, False) + self.gan_loss(real, True))

        parts: dict[str, torch.Tensor] = {}

        def generator_loss() -> torch.Tensor:
            total = self.generator_losses(real_a, real_b, fake_b, parts)
            return self.plugin_loss_terms((real_a, real_b), total, parts)

        loss_d = self.optimize(opt_d, discriminator_loss, "discriminator")
        loss_g = self.optimize(opt_g, generator_loss, "generator")
        losses = {"d": loss_d, "g": loss_g, **{k: v.detach() for k, v in parts.items()}}
        self.log_losses(losses, batch_size=real_a.shape[0])

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Per-epoch L1 of the task being learned, for the training curves."""
        real_a, real_b = batch
        l1 = F.l1_loss(self.generator(real_a), real_b)
        self.log("val/l1", l1, prog_bar=True, batch_size=real_a.shape[0])
        self.log_step(on_step=False, batch_size=real_a.shape[0])
