"""FID and KID with torchmetrics, in one of two feature spaces that are never mixed.

``fid_inception``: standard InceptionV3 pool features from a local weights file (comparable
with published FIDs). ``fid_domain``: the domain classifier's penultimate features, used when no
weights file is given; it ranks methods on the same sequence but is not comparable with
published numbers. KID (``kid_inception`` / ``kid_domain``, with ``..._std``) uses the same
feature extractor: the mean and standard deviation over random subsets of the real and the
generated features, subsets no larger than the smaller set (small val sets work).
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


class TaskFID:
    """FID of generated images against one task's fixed real images (real features kept)."""

    def __init__(
        self,
        metric: FrechetInceptionDistance,
        prepare: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        batch_size: int,
    ) -> None:
        self.metric = metric
        self.prepare = prepare
        self.batch_size = batch_size
        self._update(real, real=True)

    def _update(self, images: torch.Tensor, real: bool) -> None:
        for start in range(0, images.shape[0], self.batch_size):
            self.metric.update(self.prepare(images[start : start + self.batch_size]), real=real)

    @torch.no_grad()
    def __call__(self, fake: torch.Tensor) -> float:
        self.metric.reset()  # keeps the real features: reset_real_features=False
        self._update(fake, real=False)
        return float(self.metric.compute())


class TaskKID:
    """KID of generated images against one task's fixed real images (real features kept): the
    mean and standard deviation over ``subsets`` random subsets of ``subset_size`` images (at most
    half of the smaller set, so that subsets differ and the std measures their spread). The
    subsets are drawn from a fixed seed on a forked random stream, so KID is deterministic and
    training's random numbers do not depend on it."""

    def __init__(
        self,
        metric: KernelInceptionDistance,
        prepare: Callable[[torch.Tensor], torch.Tensor],
        real: torch.Tensor,
        batch_size: int,
        subset_size: int,
    ) -> None:
        self.metric = metric
        self.prepare = prepare
        self.batch_size = batch_size
        self.subset_size = subset_size
        self.real_count = real.shape[0]
        for start in range(0, real.shape[0], batch_size):
            metric.update(prepare(real[start : start + batch_size]), real=True)

    @torch.no_grad()
    def __call__(self, fake: torch.Tensor) -> tuple[float, float]:
        self.metric.reset()  # keeps the real features: reset_real_features=False
        for start in range(0, fake.shape[0], self.batch_size):
            self.metric.update(self.prepare(fake[start : start + self.batch_size]), real=False)
        # At most half the smaller set: subsets of every image would all be the same set, their
        # spread zero whatever the images, and the std would say nothing.
        self.metric.subset_size = max(2, min(self.subset_size, min(self.real_count, fake.shape[0]) // 2))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(KID_SEED)
            mean, std = self.metric.compute()
        return float(mean), float(std)


def kid_factory(
    features: nn.Module, prepare: Callable, batch_size: int, subsets: int = 100, subset_size: int = 100
) -> Callable[[torch.Tensor], TaskKID]:
    """Per-task KIDs sharing one feature extractor."""

    def make(real: torch.Tensor) -> TaskKID:
        metric = KernelInceptionDistance(
            feature=features,
            subsets=subsets,
            subset_size=subset_size,
            reset_real_features=False,
            sync_on_compute=False,  # see fid_factory
        )
        return TaskKID(metric, prepare, real, batch_size, subset_size)

    return make


def fid_factory(features: nn.Module, prepare: Callable, batch_size: int) -> Callable[[torch.Tensor], TaskFID]:
    """Per-task FIDs sharing one feature extractor."""

    def make(real: torch.Tensor) -> TaskFID:
        # Every rank of a DDP run evaluates the whole eval set: gathering the ranks' features
        # would count each image once per rank (and only once a process group exists, so a
        # resumed run would score differently from the run it continues).
        metric = FrechetInceptionDistance(feature=features, reset_real_features=False, sync_on_compute=False)
        return TaskFID(metric, prepare, real, batch_size)

    return make


def to_inception_bytes(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats to the uint8 images InceptionV3 expects (as torchmetrics' normalize=True)."""
    return (((to_rgb(images) + 1) / 2).clamp(0, 1) * 255).byte()


def inception_features(weights: Path) -> nn.Module:
    """InceptionV3's 2048-d pool features (standard FID and KID) from a local weights file."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(weights)
    )
