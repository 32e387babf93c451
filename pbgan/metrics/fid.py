"""FID and KID with torchmetrics, in one of two feature spaces that are never mixed.

``fid_inception``: standard InceptionV3 pool features from a local weights file (comparable
with published FIDs). ``fid_domain``: the domain classifier's penultimate features, used when no
weights file is given; it ranks methods on the same sequence but is not comparable with
published numbers. KID (``kid_inception`` / ``kid_domain``, with ``..._std``) uses the same
feature extractor: the mean and standard deviation over random subsets of the real and the
generated features, subsets no larger than the smaller set (small val sets work). A set of
images goes through the extractor once (:class:`Features`); FID and KID take its features.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from pbgan.errors import ConfigError

FID_DOMAIN = "fid_domain"
FID_INCEPTION = "fid_inception"
KID_DOMAIN = "kid_domain"
KID_INCEPTION = "kid_inception"
KID_SEED = 0  # the subsets' random draw: fixed, and kept off the global random stream
INCEPTION_WIDTH = 2048  # InceptionV3's pool features


def check_inception_weights(path: str | Path) -> Path:
    """A readable, weights-only InceptionV3 state dict (torch-fidelity itself unpickles freely)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"metrics.fid.inception_weights={path} does not exist: give the path of the "
            "pt_inception-2015-12-05 weights file (torch-fidelity's format), or leave it null "
            "for fid_domain"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(
            f"metrics.fid.inception_weights={path} is not a readable state dict ({error})"
        ) from error
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise ConfigError(
            f"metrics.fid.inception_weights={path} does not hold InceptionV3 weights (no fc.weight)"
        )
    return path


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


class Features:
    """An extractor's features of a set of images, in chunks of ``batch_size`` images: exactly what
    torchmetrics' ``update`` computes from those chunks, computed once per set of images and handed
    to FID and KID (and, in the domain space, to Acc) rather than once by each."""

    def __init__(
        self, extractor: nn.Module, prepare: Callable[[torch.Tensor], torch.Tensor], batch_size: int
    ) -> None:
        self.extractor = extractor.eval()
        self.prepare = prepare
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [
            self.extractor(self.prepare(images[start : start + self.batch_size]))
            for start in range(0, images.shape[0], self.batch_size)
        ]


class Precomputed(nn.Module):
    """torchmetrics' feature extractor for features computed beforehand (:class:`Features`): it
    hands them through."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class TaskFID:
    """FID of generated images against one task's fixed real images (real features kept); both
    given as :class:`Features` chunks."""

    def __init__(self, metric: FrechetInceptionDistance, real: list[torch.Tensor]) -> None:
        self.metric = metric
        for chunk in real:
            metric.update(chunk, real=True)

    @torch.no_grad()
    def __call__(self, fake: list[torch.Tensor]) -> float:
        self.metric.reset()  # keeps the real features: reset_real_features=False
        for chunk in fake:
            self.metric.update(chunk, real=False)
        return float(self.metric.compute())


class TaskKID:
    """KID of generated images against one task's fixed real images (real features kept; both
    given as :class:`Features` chunks): the mean and standard deviation over ``subsets`` random
    subsets of ``subset_size`` images (at most half of the smaller set, so that subsets differ and
    the std measures their spread). The subsets are drawn from a fixed seed on a forked random
    stream, so KID is deterministic and training's random numbers do not depend on it."""

    def __init__(self, metric: KernelInceptionDistance, real: list[torch.Tensor], subset_size: int) -> None:
        self.metric = metric
        self.subset_size = subset_size
        self.real_count = sum(chunk.shape[0] for chunk in real)
        for chunk in real:
            metric.update(chunk, real=True)

    @torch.no_grad()
    def __call__(self, fake: list[torch.Tensor]) -> tuple[float, float]:
        self.metric.reset()  # keeps the real features: reset_real_features=False
        for chunk in fake:
            self.metric.update(chunk, real=False)
        count = sum(chunk.shape[0] for chunk in fake)
        # At most half the smaller set: subsets of every image would all be the same set, their
        # spread zero whatever the images, and the std would say nothing.
        self.metric.subset_size = max(2, min(self.subset_size, min(self.real_count, count) // 2))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(KID_SEED)
            mean, std = self.metric.compute()
        return float(mean), float(std)


def kid_factory(
    num_features: int, subsets: int = 100, subset_size: int = 100
) -> Callable[[list[torch.Tensor]], TaskKID]:
    """Per-task KIDs over features of ``num_features`` numbers computed beforehand."""

    def make(real: list[torch.Tensor]) -> TaskKID:
        metric = KernelInceptionDistance(
            feature=Precomputed(num_features),
            subsets=subsets,
            subset_size=subset_size,
            reset_real_features=False,
            sync_on_compute=False,  # see fid_factory
        )
        return TaskKID(metric, real, subset_size)

    return make


def fid_factory(num_features: int) -> Callable[[list[torch.Tensor]], TaskFID]:
    """Per-task FIDs over features of ``num_features`` numbers computed beforehand."""

    def make(real: list[torch.Tensor]) -> TaskFID:
        # Every rank of a DDP run evaluates the whole eval set: gathering the ranks' features
        # would count each image once per rank (and only once a process group exists, so a
        # resumed run would score differently from the run it continues).
        metric = FrechetInceptionDistance(
            feature=Precomputed(num_features), reset_real_features=False, sync_on_compute=False
        )
        return TaskFID(metric, real)

    return make


def to_inception_bytes(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats to the uint8 images InceptionV3 expects, rounded to the nearest level (as
    an image saved to a PNG is, which torch-fidelity and pytorch-fid read): truncating, as
    torchmetrics' ``normalize=True`` does, put 47 of the 256 levels of a real image read from
    disk one level lower."""
    return ((to_rgb(images) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def inception_features(weights: Path) -> nn.Module:
    """InceptionV3's 2048-d pool features (standard FID and KID) from a local weights file."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(
        name="inception-v3-compat",
        features_list=[str(INCEPTION_WIDTH)],
        feature_extractor_weights_path=str(weights),
    )
