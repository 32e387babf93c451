"""Unpaired translation (CycleGAN): two lifelong generators, LSGAN, cycle and identity losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.lifelong.network import LifelongNet
from pbgan.lifelong.plugin import TrainingPlugin
from pbgan.modules.base import LifelongGANModule, OptimConfig, SpeedConfig, objects_among
from pbgan.modules.image_pool import ImagePool
from pbgan.modules.losses import GANLoss
from pbgan.networks.patchgan import PatchGAN


class CycleGANModule(LifelongGANModule):
    """G_AB and G_BA are both lifelong, so every learned task runs in both directions.

    Each task gets fresh discriminators D_A (judges A -> B outputs against real B, as in the
    reference code's naming) and D_B, and fresh image pools.
    """

    directions = ("AtoB", "BtoA")

    def __init__(
        self,
        generator: LifelongNet | dict,
        g_ba: LifelongNet | None = None,
        input_nc: int = 3,
        output_nc: int = 3,
        discriminator: dict | None = None,
        gan_mode: str = "lsgan",
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        optim: OptimConfig | dict | None = None,
        speed: SpeedConfig | dict | None = None,
        plugin: TrainingPlugin | dict | None = None,
        name: str = "cyclegan",
    ) -> None:
        """``generator``: G_AB as a lifelong net (then ``g_ba`` is G_BA), or G_AB's node, from
        which G_BA is built with input and output channels swapped."""
        super().__init__(optim, speed, plugin)
        self.save_hyperparameters(ignore=objects_among(generator=generator, g_ba=g_ba, plugin=plugin))
        if isinstance(generator, LifelongNet):
            if g_ba is None:
                raise TypeError("CycleGANModule: pass g_ba with a generator net, or a generator node")
            self.g_ab, self.g_ba = generator, g_ba
        else:
            nodes = self.generator_nodes_of(generator)
            self.g_ab = self.build_generator(nodes["g_ab"])
            self.g_ba = self.build_generator(nodes["g_ba"])
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.discriminator_settings = dict(discriminator or {})
        self.d_a: nn.Module | None = None
        self.d_b: nn.Module | None = None
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_cycle = lambda_cycle
        # Identity maps need equal channel counts on both sides (reference: only then).
        self.lambda_identity = lambda_identity if input_nc == output_nc else 0.0
        self.pool_size = pool_size
        self.pool_a = ImagePool(pool_size)
        self.pool_b = ImagePool(pool_size)

    @classmethod
    def generator_nodes_of(cls, generator: dict) -> dict[str, dict]:
        """G_AB as configured; G_BA with input and output channels swapped."""
        swapped = {**generator, "input_nc": generator["output_nc"], "output_nc": generator["input_nc"]}
        return {"g_ab": generator, "g_ba": swapped}

    def lifelong_nets(self) -> dict[str, LifelongNet]:
        return {"g_ab": self.g_ab, "g_ba": self.g_ba}

    def build_discriminators(self) -> None:
        self.d_a = PatchGAN(self.output_nc, **self.discriminator_settings).to(self.device)
        self.d_b = PatchGAN(self.input_nc, **self.discriminator_settings).to(self.device)
        self.pool_a = ImagePool(self.pool_size)
        self.pool_b = ImagePool(self.pool_size)

    def discriminators(self) -> list[nn.Module]:
        return [self.d_a, self.d_b]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Also the image pools: a task resumed mid-way draws from the history the uninterrupted
        run would (an empty pool after a resume made the run differ from then on)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["pbgan"]["image_pools"] = {
            "a": [image.detach().cpu() for image in self.pool_a.images],
            "b": [image.detach().cpu() for image in self.pool_b.images],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        pools = checkpoint.get("pbgan", {}).get("image_pools")
        if pools is not None:  # checkpoints written before the pools were kept: an empty pool
            self.pool_a.images = [image.to(self.device) for image in pools["a"]]
            self.pool_b.images = [image.to(self.device) for image in pools["b"]]

    def generate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        return self.g_ab(inputs) if direction == "AtoB" else self.g_ba(inputs)

    def generator_losses(
        self,
        real_a: torch.Tensor,
        real_b: torch.Tensor,
        parts: dict[str, torch.Tensor],
        fakes: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Both generators' loss (LSGAN, cycle, identity); its parts in ``parts``, the translations
        (detached, for the discriminators' pools) in ``fakes``."""
        fake_b, fake_a = self.g_ab(real_a), self.g_ba(real_b)
        if fakes is not None:
            fakes.update(a=fake_a.detach(), b=fake_b.detach())
        parts["g_gan_ab"] = self.gan_loss(self.d_a(fake_b), True)
        parts["g_gan_ba"] = self.gan_loss(self.d_b(fake_a), True)
        parts["cycle_a"] = F.l1_loss(self.g_ba(fake_b), real_a)
        parts["cycle_b"] = F.l1_loss(self.g_ab(fake_a), real_b)
        total = (
            parts["g_gan_ab"] + parts["g_gan_ba"] + self.lambda_cycle * (parts["cycle_a"] + parts["cycle_b"])
        )
        if self.lambda_identity > 0:
            parts["idt_a"] = F.l1_loss(self.g_ab(real_b), real_b)
            parts["idt_b"] = F.l1_loss(self.g_ba(real_a), real_a)
            total = total + self.lambda_cycle * self.lambda_identity * (parts["idt_a"] + parts["idt_b"])
        return total

    def generator_objective(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        real_a, real_b = self.prepare_batch(batch)
        return self.generator_losses(real_a, real_b, {})

    def net_inputs(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        real_a, real_b = batch
        return {"g_ab": (real_a, real_b), "g_ba": (real_b, real_a)}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real_a, real_b = self.prepare_batch(batch)
        opt_g, opt_d = self.optimizers()
        parts: dict[str, torch.Tensor] = {}
        fakes: dict[str, torch.Tensor] = {}

        def generator_loss() -> torch.Tensor:
            total = self.generator_losses(real_a, real_b, parts, fakes)
            return self.plugin_loss_terms((real_a, real_b), total, parts)

        def discriminator_loss() -> torch.Tensor:
            old_b, old_a = self.pool_b.query(fakes["b"]), self.pool_a.query(fakes["a"])
            loss_a = 0.5 * (self.gan_loss(self.d_a(real_b), True) + self.gan_loss(self.d_a(old_b), False))
            loss_b = 0.5 * (self.gan_loss(self.d_b(real_a), True) + self.gan_loss(self.d_b(old_a), False))
            parts["d_a"], parts["d_b"] = loss_a, loss_b
            return loss_a + loss_b

        # Each generator runs three times (two without identity loss): compose its weights once.
        calls = 3 if self.lambda_identity > 0 else 2
        with self.g_ab.sharing_weights(calls), self.g_ba.sharing_weights(calls):
            loss_g = self.optimize(opt_g, generator_loss, "generator")
        loss_d = self.optimize(opt_d, discriminator_loss, "discriminator")
        losses = {"g": loss_g, "d": loss_d, **{k: v.detach() for k, v in parts.items()}}
        self.log_losses(losses, batch_size=real_a.shape[0])

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Per-epoch cycle-consistency error of the task being learned (there is no ground truth)."""
        real_a, real_b = batch
        cycle = F.l1_loss(self.g_ba(self.g_ab(real_a)), real_a) + F.l1_loss(
            self.g_ab(self.g_ba(real_b)), real_b
        )
        self.log("val/cycle_l1", cycle / 2, prog_bar=True, batch_size=real_a.shape[0])
        self.log_step(on_step=False, batch_size=real_a.shape[0])
