"""Layer families: the one place a network learns which kind of layer the method uses.

Networks (UNet, PatchGAN, ...) are written once against :class:`LayerFamily` and built from
whatever family the config names: plain PyTorch layers for per-task discriminators, piggyback
layers for the lifelong generator; later methods add families here.
"""

from __future__ import annotations

from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.layers import MaskedConv, PiggybackConv, TaskNorm, check_ratio

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


class FullFamily(LayerFamily):
    """A standalone model per task: every layer has all-new filters for every task, no bank."""

    def conv(self, c_in, c_out, k, s=1, p=0, bias=True, task_specific=False):
        return PiggybackConv(c_in, c_out, k, s, p, bias=bias, task_specific=True)

    def deconv(self, c_in, c_out, k, s=1, p=0, output_padding=0, bias=True, task_specific=False):
        return PiggybackConv(
            c_in, c_out, k, s, p, output_padding, bias=bias, transposed=True, task_specific=True
        )

    def norm(self, kind, channels):
        check_norm(kind)
        return TaskNorm(kind, channels)


class FineTuneFamily(PlainFamily):
    """Sequential fine-tuning (SFT): one shared model trained task after task; only the
    task-specific layers (the last layer) are per task. It forgets: that is what it measures."""

    def conv(self, c_in, c_out, k, s=1, p=0, bias=True, task_specific=False):
        if task_specific:
            return PiggybackConv(c_in, c_out, k, s, p, bias=bias, task_specific=True)
        return super().conv(c_in, c_out, k, s, p, bias)

    def deconv(self, c_in, c_out, k, s=1, p=0, output_padding=0, bias=True, task_specific=False):
        if task_specific:
            return PiggybackConv(
                c_in, c_out, k, s, p, output_padding, bias=bias, transposed=True, task_specific=True
            )
        return super().deconv(c_in, c_out, k, s, p, output_padding, bias)


class MaskFamily(LayerFamily):
    """Mallya et al. (ECCV 2018): frozen task-1 weights, a learned binary mask per later task,
    per-task bias, norm and last layer."""

    def __init__(self, threshold: float = 5e-3, init_score: float = 1e-2) -> None:
        self.threshold, self.init_score = threshold, init_score

    def conv(self, c_in, c_out, k, s=1, p=0, bias=True, task_specific=False):
        if task_specific:
            return PiggybackConv(c_in, c_out, k, s, p, bias=bias, task_specific=True)
        return MaskedConv(
            c_in, c_out, k, s, p, bias=bias, threshold=self.threshold, init_score=self.init_score
        )

    def deconv(self, c_in, c_out, k, s=1, p=0, output_padding=0, bias=True, task_specific=False):
        if task_specific:
            return PiggybackConv(
                c_in, c_out, k, s, p, output_padding, bias=bias, transposed=True, task_specific=True
            )
        return MaskedConv(
            c_in,
            c_out,
            k,
            s,
            p,
            output_padding,
            bias=bias,
            transposed=True,
            threshold=self.threshold,
            init_score=self.init_score,
        )

    def norm(self, kind, channels):
        check_norm(kind)
        return TaskNorm(kind, channels)


METHODS = ("piggyback", "pf", "full", "sft", "mask")
# Methods whose share of new filters is fixed by the method itself, whatever ``ratio`` says.
FIXED_RATIOS = {"pf": 0.0}


def effective_ratio(method: str, ratio: float) -> float | None:
    """The share of new filters a method really uses (None where it has no such notion)."""
    if method == "piggyback":
        check_ratio(ratio)
        return float(ratio)
    return FIXED_RATIOS.get(method)


def make_family(method: str, ratio: float | None = None, **options: float) -> LayerFamily:
    """The layer family of a method named in the config."""
    if method in ("piggyback", "pf"):
        return PiggybackFamily(effective_ratio(method, ratio if ratio is not None else 0.0))
    if method == "full":
        return FullFamily()
    if method == "sft":
        return FineTuneFamily()
    if method == "mask":
        return MaskFamily(**options)
    raise ConfigError(f"method={method!r} is not known: use one of {', '.join(METHODS)}")
