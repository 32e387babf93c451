"""The domain classifier behind Acc (and behind FID when no Inception weights are given).

A small CNN is trained on real target-domain images of every task in the sequence. Acc of a
task is then the share of its generated images that the classifier assigns to the task's
target domain. Training is seeded and the result is cached on disk, keyed by a fingerprint of
everything that decides it, so reruns of a sequence reuse one classifier.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.errors import PbganError
from pbgan.faults import fault_point
from pbgan.io import save_torch
from pbgan.metrics.fid import to_rgb

# Bump when the network or its training changes: old caches are ignored (2: train images in
# EpochShuffle order).
CLASSIFIER_VERSION = 2


@dataclass(frozen=True)
class ClassifierSettings:
    width: int = 32
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    train_images: int = 400  # real target images per domain used for training
    augment: bool = True  # flips, blur and noise: judge domains by content, not by crispness


class DomainClassifier(nn.Module):
    """Four conv blocks, global average pooling, a linear head; works at any size >= 8."""

    def __init__(self, num_domains: int, width: int = 32) -> None:
        super().__init__()
        widths = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for index, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            if index < 3:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], num_domains)
        self.num_features = widths[-1]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features: the space FID (domain) is measured in. Grey images (one channel,
        ``input_nc``/``output_nc`` 1) are seen as RGB with three equal channels."""
        return self.body(to_rgb(images)).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class DomainFeatures(nn.Module):
    """The classifier's features as a torchmetrics FID feature extractor (images in [-1, 1])."""

    def __init__(self, classifier: DomainClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images)


def fingerprint(description: dict[str, Any]) -> str:
    """A stable hash of what decides the classifier (tasks' data, image size, settings)."""
    text = json.dumps({"version": CLASSIFIER_VERSION, **description}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips, a 3x3 blur on half the images, and mild noise (seeded).

    Generated images are blurrier and noisier than real ones; without this the classifier learns
    "crisp" as part of every domain and Acc says little about content.
    """
    count = images.shape[0]
    flip = torch.rand(count, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    blur = torch.rand(count, generator=generator) < 0.5
    images = torch.where(blur[:, None, None, None], blurred, images)
    scale = torch.rand(count, 1, 1, 1, generator=generator) * 0.1
    return images + scale * torch.randn(images.shape, generator=generator)


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, num_domains: int, settings: ClassifierSettings, seed: int
) -> DomainClassifier:
    """Seeded training on real images in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainClassifier(num_domains, settings.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    model.train()
    for _ in range(settings.epochs):
        fault_point("classifier-epoch")
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, images.shape[0], settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if batch.numel() < 2:
                continue
            x = augment_batch(images[batch], generator) if settings.augment else images[batch]
            loss = F.cross_entropy(model(x), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model: DomainClassifier, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Predicted domain index of each image."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(images[s : s + batch_size].to(device)).argmax(1).cpu()
        for s in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def save_classifier(path: Path, model: DomainClassifier, meta: dict[str, Any]) -> None:
    payload = {"state_dict": model.state_dict(), "meta": meta}
    save_torch(path, payload)


def load_classifier(
    path: Path, num_domains: int, settings: ClassifierSettings
) -> tuple[DomainClassifier, dict]:
    """A cached classifier; a damaged cache file is reported, never silently retrained over."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        with torch.random.fork_rng(devices=[]):  # building it must not move the run's RNG
            model = DomainClassifier(num_domains, settings.width)
        model.load_state_dict(payload["state_dict"])
    except Exception as error:
        raise PbganError(
            f"cached domain classifier {path} cannot be read ({error}); delete it to retrain"
        ) from error
    return model.eval(), payload["meta"]


def settings_dict(settings: ClassifierSettings) -> dict[str, Any]:
    return asdict(settings)
