"""Turn the composed config into networks and a LightningModule (the only place that reads it)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from pbgan.errors import ConfigError
from pbgan.lifelong.family import make_family
from pbgan.lifelong.network import LifelongNet
from pbgan.modules.base import LifelongGANModule
from pbgan.modules.pix2pix import Pix2PixModule
from pbgan.networks.unet import MIN_DOWNS, UNetGenerator, check_unet_size

MAX_AUTO_DOWNS = 8  # unet_256: the reference's deepest UNet


def plain(node: Any) -> Any:
    """A config node as plain Python containers (what a weights-only file can hold)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


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


def generator_settings(cfg: DictConfig, input_nc: int, output_nc: int) -> dict[str, Any]:
    """Everything needed to rebuild the generator: stored in the lifelong model file."""
    gen = dict(plain(cfg.model.generator))
    arch = gen.pop("arch", "unet")
    if arch != "unet":
        raise ConfigError(f"model.generator.arch={arch!r} is not known: use 'unet'")
    gen["num_downs"] = resolve_num_downs(gen.get("num_downs", "auto"), int(cfg.data.image_size))
    return {
        "arch": arch,
        "method": str(cfg.method.name),
        "ratio": float(cfg.ratio),
        "input_nc": input_nc,
        "output_nc": output_nc,
        **gen,
    }


def build_generator(settings: dict[str, Any]) -> LifelongNet:
    """A lifelong generator from :func:`generator_settings` output."""
    options = dict(settings)
    family = make_family(options.pop("method"), options.pop("ratio"))
    arch = options.pop("arch")
    if arch == "unet":
        return UNetGenerator(family, **options)
    raise ConfigError(f"model.generator.arch={arch!r} is not known: use 'unet'")


def build_module(cfg: DictConfig, input_nc: int = 3, output_nc: int = 3) -> LifelongGANModule:
    """The LightningModule the config's ``model.name`` names, with its lifelong generator."""
    name = cfg.model.name
    if name != "pix2pix":
        raise ConfigError(f"model.name={name!r} is not known: use 'pix2pix'")
    generator = build_generator(generator_settings(cfg, input_nc, output_nc))
    return Pix2PixModule(
        generator,
        input_nc=input_nc,
        output_nc=output_nc,
        discriminator=plain(cfg.model.discriminator),
        lambda_l1=float(cfg.model.lambda_l1),
        gan_mode=str(cfg.model.gan_mode),
        optim=plain(cfg.model.optim),
    )
