"""Layer families: the one place a network learns which kind of layer a method uses.

Networks (UNet, ResNet, PatchGAN) are written once against :class:`LayerFamily` and built with
whatever family the method's config node names (``method.family._target_``): plain PyTorch
layers for the per-task discriminators, a method's own layers for the lifelong generator. A new
method subclasses :class:`LayerFamily` in its own file under :mod:`pbgan.methods`.
"""

from __future__ import annotations

from torch import nn

from pbgan.lifelong.layers import (
    ConvSpec,
    InstanceNorm,
    TaskNorm,
    TaskSpecificConv,
    check_norm,
    plain_conv,
)

__all__ = ["ConvSpec", "LayerFamily", "PlainFamily", "plain_conv"]


class LayerFamily:
    """Makes the convolution and normalisation layers of a network.

    Subclasses say how a shared (bank-eligible) convolution is made; the network's last layers
    (``task_specific``) get all-new filters per task in every lifelong method, and normalisation
    is per task, unless a family says otherwise.
    """

    @property
    def share_of_new_filters(self) -> float | None:
        """The share of new filters per task after the first (results.json's ``ratio``); None
        where the method has no such notion."""
        return None

    def conv(
        self,
        c_in: int,
        c_out: int,
        k: int,
        s: int = 1,
        p: int = 0,
        bias: bool = True,
        task_specific: bool = False,
        label: str = "",
    ) -> nn.Module:
        return self.layer(ConvSpec(c_in, c_out, k, s, p, 0, bias, False, label), task_specific)

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
        label: str = "",
    ) -> nn.Module:
        return self.layer(ConvSpec(c_in, c_out, k, s, p, output_padding, bias, True, label), task_specific)

    def layer(self, spec: ConvSpec, task_specific: bool) -> nn.Module:
        return self.task_specific_conv(spec) if task_specific else self.shared_conv(spec)

    def shared_conv(self, spec: ConvSpec) -> nn.Module:
        """A convolution that the method may share across tasks."""
        raise NotImplementedError

    def task_specific_conv(self, spec: ConvSpec) -> nn.Module:
        return TaskSpecificConv(**spec.arguments())

    def norm(self, kind: str, channels: int) -> nn.Module:
        check_norm(kind)
        return TaskNorm(kind, channels)


class PlainFamily(LayerFamily):
    """Ordinary PyTorch layers: one task, nothing shared (per-task discriminators)."""

    def shared_conv(self, spec: ConvSpec) -> nn.Module:
        return plain_conv(spec)

    def task_specific_conv(self, spec: ConvSpec) -> nn.Module:
        return plain_conv(spec)

    def norm(self, kind: str, channels: int) -> nn.Module:
        check_norm(kind)
        if kind == "batch":
            return nn.BatchNorm2d(channels)
        return InstanceNorm(channels)
