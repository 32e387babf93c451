"""Layer families: the one place a network learns which kind of layer the method uses.

Networks (UNet, PatchGAN, ...) are written once against :class:`LayerFamily` and built from
whatever family the config names: plain PyTorch layers for per-task discriminators, piggyback
layers for the lifelong generator; later methods add families here.
"""

from __future__ import annotations

from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.layers import PiggybackConv, TaskNorm, check_ratio

NORMS = ("batch", "instance")


def check_norm(kind: str) -> None:
    if kind not in NORMS:
        raise ConfigError(f"norm={kind!r} is not known: use one of {', '.join(NORMS)}")


class LayerFamily:
    """Makes the convolution and normalisation layers of a network."""

    def conv(
        self,
        c_in: int,
        c_out: int,
        k: int,
        s: int = 1,
        p: int = 0,
        bias: bool = True,
        task_specific: bool = False,
    ) -> nn.Module:
        raise NotImplementedError

    def deconv(
        self,
        c_in: int,
        c_out: int,
        k: int,
        s: int = 1,
        p: int = 0,
        output_padding: int = 0,
        bias: bool = True,
        task_specific: bool = False,
    ) -> nn.Module:
        raise NotImplementedError

    def norm(self, kind: str, channels: int) -> nn.Module:
        raise NotImplementedError


class PlainFamily(LayerFamily):
    """Ordinary PyTorch layers: one task, nothing shared (per-task discriminators)."""

    def conv(self, c_in, c_out, k, s=1, p=0, bias=True, task_specific=False):
        return nn.Conv2d(c_in, c_out, k, s, p, bias=bias)

    def deconv(self, c_in, c_out, k, s=1, p=0, output_padding=0, bias=True, task_specific=False):
        return nn.ConvTranspose2d(c_in, c_out, k, s, p, output_padding, bias=bias)

    def norm(self, kind, channels):
        check_norm(kind)
        if kind == "batch":
            return nn.BatchNorm2d(channels)
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class PiggybackFamily(LayerFamily):
    """Piggyback layers with a share ``ratio`` of unconstrained filters per new task."""

    def __init__(self, ratio: float) -> None:
        check_ratio(ratio)
        self.ratio = float(ratio)

    def conv(self, c_in, c_out, k, s=1, p=0, bias=True, task_specific=False):
        return PiggybackConv(c_in, c_out, k, s, p, bias=bias, ratio=self.ratio, task_specific=task_specific)

    def deconv(self, c_in, c_out, k, s=1, p=0, output_padding=0, bias=True, task_specific=False):
        return PiggybackConv(
            c_in,
            c_out,
            k,
            s,
            p,
            output_padding,
            bias=bias,
            transposed=True,
            ratio=self.ratio,
            task_specific=task_specific,
        )

    def norm(self, kind, channels):
        check_norm(kind)
        return TaskNorm(kind, channels)


METHODS = ("piggyback",)


def make_family(method: str, ratio: float) -> LayerFamily:
    """The layer family of a method named in the config."""
    if method == "piggyback":
        return PiggybackFamily(ratio)
    raise ConfigError(f"method={method!r} is not known: use one of {', '.join(METHODS)}")
