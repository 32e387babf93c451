"""LightningModules: one per GAN variant over a shared lifelong base."""

from pbgan.modules.base import LifelongGANModule, OptimConfig
from pbgan.modules.pix2pix import Pix2PixModule

__all__ = ["LifelongGANModule", "OptimConfig", "Pix2PixModule"]
