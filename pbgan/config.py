"""Checks of the composed config that Hydra cannot do: values, not just option names."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from pbgan.errors import ConfigError
from pbgan.methods.piggyback import check_ratio


def check_positive(cfg: DictConfig, dotted: str) -> None:
    node: object = cfg
    for key in dotted.split("."):
        node = node[key]  # type: ignore[index]
    if not isinstance(node, int) or isinstance(node, bool) or node < 1:
        raise ConfigError(f"{dotted}={node!r} must be a whole number of at least 1")


def validate_config(cfg: DictConfig) -> None:
    """Refuse impossible settings before any work starts, naming the option and the fix."""
    check_ratio(cfg.ratio)
    if "family" not in cfg.method:
        raise ConfigError(
            f"method={cfg.method.get('name')!r} names no layer family: a method's YAML needs a "
            "'family' node with a _target_ (see conf/method/piggyback.yaml)"
        )
    for option in ("data.image_size", "eval.num_images", "eval.batch_size", "eval.probe_images"):
        check_positive(cfg, option)
    if cfg.speed.bf16 and (cfg.trainer.accelerator == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(
            "speed.bf16=true needs a CUDA GPU (bf16 autocast on a CPU is slower than float32): "
            "drop it on this machine"
        )
    if cfg.eval.probe_images > cfg.eval.num_images or cfg.eval.sample_images > cfg.eval.num_images:
        raise ConfigError(
            f"eval.probe_images={cfg.eval.probe_images} and eval.sample_images="
            f"{cfg.eval.sample_images} must not exceed eval.num_images={cfg.eval.num_images}"
        )
