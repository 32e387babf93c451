"""Turn the composed config into the nodes that build the LightningModule and its generators.

The model group's node names the module class (``model._target_``) and the generator class
(``model.generator._target_``); the method group's node names the layer family and the training
plugin. This module resolves what depends on the data (channels, image size, width) and hands the
nodes to :func:`pbgan.nodes.build`; the module builds its generators from its node itself, so a
Lightning checkpoint's hyperparameters rebuild it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pbgan.errors import ConfigError
from pbgan.lifelong.family import LayerFamily
from pbgan.modules.base import LifelongGANModule
from pbgan.nodes import build, plain, target_class

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def method_config(name: str, ratio: float = 0.25) -> DictConfig:
    """The method group's node of ``conf/method/NAME.yaml`` as a run with ``ratio`` composes it
    (for tools that build a method's family outside a Hydra run, such as the benchmark)."""
    path = CONFIG_DIR / "method" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"method={name!r} is not known: use one of {', '.join(known)}")
    node = OmegaConf.load(path)
    bases = [method_config(str(base), ratio).method for base in node.pop("defaults", []) if base != "_self_"]
    merged = OmegaConf.merge(*bases, node) if bases else node
    return OmegaConf.create({"ratio": ratio, "method": merged})


def check_width(width: float) -> float:
    if not 0 < width <= 1:
        raise ConfigError(f"method.width={width} must be in (0, 1]: the share of the generator's width")
    return float(width)


def generator_node(cfg: DictConfig, input_nc: int, output_nc: int) -> dict[str, Any]:
    """The resolved node of the generator that translates A -> B: its class's options fitted to the
    image size, ``ngf`` scaled by ``method.width``, and the method's layer family."""
    node = dict(plain(cfg.model.generator))
    cls = target_class(str(node.get("_target_")), "model.generator")
    node = cls.fit_options(node, int(cfg.data.image_size))
    width = check_width(float(cfg.method.get("width", 1.0)))
    node["ngf"] = max(1, round(int(node["ngf"]) * width))
    return {**node, "family": plain(cfg.method.family), "input_nc": input_nc, "output_nc": output_nc}


def method_family(cfg: DictConfig) -> LayerFamily:
    """The configured method's layer family (what results.json's ``ratio`` is read from)."""
    return build(cfg.method.family, "method.family")


def module_node(cfg: DictConfig, input_nc: int = 3, output_nc: int = 3) -> dict[str, Any]:
    """The whole LightningModule as one node: the model group's, with the resolved generator, the
    method's plugin and the speed switches."""
    return {
        **plain(cfg.model),
        "generator": generator_node(cfg, input_nc, output_nc),
        "plugin": plain(cfg.method.get("plugin")),
        "input_nc": input_nc,
        "output_nc": output_nc,
        "speed": {k: v for k, v in plain(cfg.speed).items() if k != "bf16"},
    }


def instantiate_module(node: dict[str, Any]) -> LifelongGANModule:
    """The LightningModule a :func:`module_node` names, with its lifelong generators."""
    return build(node, "model", _recursive_=False)


def build_module(cfg: DictConfig, input_nc: int = 3, output_nc: int = 3) -> LifelongGANModule:
    """The LightningModule ``model._target_`` names, with its lifelong generators."""
    return instantiate_module(module_node(cfg, input_nc, output_nc))
