"""Config nodes with ``_target_``: how pbgan builds its objects, and rebuilds them from a file.

What is built is what is saved: the resolved node of each generator (with its layer family) goes
into the lifelong file and is instantiated again to load it. A file's nodes come from outside, so
every ``_target_`` in them must name a class of one of pbgan's extension points before anything
is called.
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from pbgan.errors import PbganError


def plain(node: Any) -> Any:
    """A config node as plain Python containers (what a weights-only file can hold)."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def targets(node: Any) -> list[str]:
    """Every ``_target_`` inside a plain node, outermost first."""
    if isinstance(node, dict):
        own = [str(node["_target_"])] if "_target_" in node else []
        return own + [t for value in node.values() for t in targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in targets(value)]
    return []


def extension_bases() -> tuple[type, ...]:
    """The classes a node may build: networks, layer families, plugins and modules."""
    from pbgan.lifelong.family import LayerFamily
    from pbgan.lifelong.network import LifelongNet
    from pbgan.lifelong.plugin import TrainingPlugin
    from pbgan.modules.base import LifelongGANModule

    return (LifelongNet, LayerFamily, TrainingPlugin, LifelongGANModule)


def target_class(target: str, where: str, imports: bool = True) -> type:
    """The class ``target`` names, if it is one of pbgan's extension points. ``imports=False`` (a
    node read from a model file): its module must be pbgan's or one already imported, since
    importing a module runs its code and a file may come from anyone."""
    module = target.rpartition(".")[0]
    if not imports and not (module == "pbgan" or module.startswith("pbgan.") or module in sys.modules):
        raise PbganError(
            f"{where}: _target_ {target!r} is defined in {module!r}, which is not imported; a model "
            "file never makes pbgan import a module (that would run its code): if you trust it, "
            f"import it first (generate and export: --import {module})"
        )
    try:
        cls = get_class(target)
    except Exception as error:  # ImportError, AttributeError, or not a class
        raise PbganError(
            f"{where}: _target_ {target!r} cannot be imported ({error}); check the name, or install "
            "the package that defines it"
        ) from None
    if not issubclass(cls, extension_bases()):
        raise PbganError(
            f"{where}: _target_ {target!r} is not a pbgan network, layer family, training plugin or "
            "module; a config or model file may only build those"
        )
    return cls


def build(node: Any, where: str, imports: bool = True, **kwargs: Any) -> Any:
    """Instantiate a plain node after checking every ``_target_`` in it (``imports``: see
    :func:`target_class`); a user error raised while building surfaces as itself, not as Hydra's
    wrapper."""
    node = plain(node)
    for target in targets(node):
        target_class(target, where, imports)
    try:
        return instantiate(node, **kwargs, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, PbganError):
            raise cause from None
        raise PbganError(f"{where}: {error}") from None


def build_generator(node: Any, where: str = "model.generator", imports: bool = True) -> Any:
    """A lifelong generator from its resolved node; the net keeps the node (``net.node``), which
    is what the lifelong file stores to rebuild it."""
    from pbgan.lifelong.network import LifelongNet

    node = plain(node)
    net = build(node, where, imports)
    if not isinstance(net, LifelongNet):
        raise PbganError(f"{where}: _target_ {node.get('_target_')!r} does not build a lifelong network")
    net.node = node
    return net
