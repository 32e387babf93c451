"""The reference networks, written once against a layer family."""

from pbgan.networks.patchgan import PatchGAN
from pbgan.networks.unet import UNetGenerator, check_unet_size

__all__ = ["PatchGAN", "UNetGenerator", "check_unet_size"]
