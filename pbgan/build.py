"""Turn the composed config into networks and a LightningModule (the only place that reads it)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from pbgan.errors import ConfigError
from pbgan.lifelong.family import PlainFamily, effective_ratio, make_family
from pbgan.lifelong.network import LifelongNet
from pbgan.modules.base import LifelongGANModule
from pbgan.modules.cyclegan import CycleGANModule
from pbgan.modules.pix2pix import Pix2PixModule
from pbgan.networks.resnet import ResNetGenerator
from pbgan.networks.unet import MIN_DOWNS, UNetGenerator, check_unet_size

MAX_AUTO_DOWNS = 8  # unet_256: the reference's deepest UNet
ARCHS = {"unet": UNetGenerator, "resnet": ResNetGenerator}
MODELS = ("pix2pix", "cyclegan")


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


def check_resnet_size(image_size: int, n_downsampling: int) -> None:
    step = 2**n_downsampling
    if image_size % step:
        raise ConfigError(
            f"image size {image_size} cannot pass through a ResNet generator with "
            f"n_downsampling={n_downsampling}: use a multiple of {step}"
        )


def generator_settings(cfg: DictConfig, input_nc: int, output_nc: int) -> dict[str, Any]:
    """Everything needed to rebuild one generator: stored in the lifelong model file."""
    gen = dict(plain(cfg.model.generator))
    arch = gen.pop("arch", "unet")
    if arch not in ARCHS:
        raise ConfigError(f"model.generator.arch={arch!r} is not known: use one of {', '.join(ARCHS)}")
    image_size = int(cfg.data.image_size)
    if arch == "unet":
        gen["num_downs"] = resolve_num_downs(gen.get("num_downs", "auto"), image_size)
    else:
        check_resnet_size(image_size, int(gen.get("n_downsampling", 2)))
    method = dict(plain(cfg.method))
    name = str(method.pop("name"))
    width = float(method.pop("width", 1.0))
    if not 0 < width <= 1:
        raise ConfigError(f"method.width={width} must be in (0, 1]: the share of the generator's width")
    gen["ngf"] = max(1, round(int(gen["ngf"]) * width))
    return {
        "arch": arch,
        "method": name,
        "ratio": effective_ratio(name, float(cfg.ratio)),
        "method_options": method,
        "input_nc": input_nc,
        "output_nc": output_nc,
        **gen,
    }


def module_settings(cfg: DictConfig, input_nc: int, output_nc: int) -> dict[str, dict[str, Any]]:
    """Settings of every lifelong net of the configured module, by the module's net names."""
    name = str(cfg.model.name)
    if name == "pix2pix":
        return {"generator": generator_settings(cfg, input_nc, output_nc)}
    if name == "cyclegan":
        return {
            "g_ab": generator_settings(cfg, input_nc, output_nc),
            "g_ba": generator_settings(cfg, output_nc, input_nc),
        }
    raise ConfigError(f"model={name!r} is not known: use one of {', '.join(MODELS)}")


def build_generator(settings: dict[str, Any]) -> LifelongNet:
    """A lifelong generator from :func:`generator_settings` output."""
    options = dict(settings)
    family = make_family(options.pop("method"), options.pop("ratio"), **options.pop("method_options", {}))
    arch = options.pop("arch")
    if arch not in ARCHS:
        raise ConfigError(f"model.generator.arch={arch!r} is not known: use one of {', '.join(ARCHS)}")
    return ARCHS[arch](family, **options)


def standalone_parameters(settings: dict[str, dict[str, Any]], full_ngf: int) -> int:
    """Parameters of one ordinary full-width model of the module's generators (the unit every
    method's storage is compared with)."""
    total = 0
    for entry in settings.values():
        options = {k: v for k, v in entry.items() if k not in ("method", "ratio", "method_options", "arch")}
        options["ngf"] = full_ngf
        net = ARCHS[entry["arch"]](PlainFamily(), **options)
        total += sum(p.numel() for p in net.parameters())
    return total


def build_module(cfg: DictConfig, input_nc: int = 3, output_nc: int = 3) -> LifelongGANModule:
    """The LightningModule ``model.name`` names, with its lifelong generators."""
    model = cfg.model
    nets = {
        name: build_generator(settings)
        for name, settings in module_settings(cfg, input_nc, output_nc).items()
    }
    common = {
        "input_nc": input_nc,
        "output_nc": output_nc,
        "discriminator": plain(model.discriminator),
        "gan_mode": str(model.gan_mode),
        "optim": plain(model.optim),
        "speed": {k: v for k, v in plain(cfg.speed).items() if k != "bf16"},
    }
    if model.name == "pix2pix":
        return Pix2PixModule(nets["generator"], lambda_l1=float(model.lambda_l1), **common)
    return CycleGANModule(
        nets["g_ab"],
        nets["g_ba"],
        lambda_cycle=float(model.lambda_cycle),
        lambda_identity=float(model.lambda_identity),
        pool_size=int(model.pool_size),
        **common,
    )
