"""Every metric of a task sequence behind one call: ``suite.evaluate(task, outputs)``.

Built once per sequence from each task's real images: the domain classifier (trained or read
from the cache), one FID per task with its real features computed once, and the paired metrics
for tasks that have a ground truth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from pbgan.errors import ConfigError
from pbgan.metrics.classifier import (
    ClassifierSettings,
    DomainClassifier,
    DomainFeatures,
    fingerprint,
    load_classifier,
    predict,
    save_classifier,
    settings_dict,
    train_classifier,
)
from pbgan.metrics.fid import (
    FID_DOMAIN,
    FID_INCEPTION,
    INCEPTION_WIDTH,
    KID_DOMAIN,
    KID_INCEPTION,
    Features,
    TaskFID,
    TaskKID,
    check_inception_weights,
    fid_factory,
    inception_features,
    kid_factory,
    to_inception_bytes,
    to_rgb,
)

log = logging.getLogger(__name__)

METRICS = ("l1", "psnr", "ssim", "acc", "fid", "kid")
PAIRED_ONLY = ("l1", "psnr", "ssim")
# Direction of every key a suite can report: forgetting and the printed summary depend on it.
HIGHER_IS_BETTER = {
    "l1": False,
    "psnr": True,
    "ssim": True,
    "acc": True,
    FID_DOMAIN: False,
    FID_INCEPTION: False,
    KID_DOMAIN: False,
    KID_INCEPTION: False,
    f"{KID_DOMAIN}_std": False,
    f"{KID_INCEPTION}_std": False,
}


@dataclass
class TaskImages:
    """A task's real images as the suite needs them."""

    name: str
    domain: str
    paired: bool
    train_targets: torch.Tensor  # real target-domain images the classifier learns from
    eval_targets: torch.Tensor  # held-out real targets: classifier accuracy, FID's real side, GT
    data_key: dict[str, Any]  # what identifies the task's data (for the classifier's cache key)
    # The input domain as an extra classifier class: an output left looking like its input
    # (or an untrained generator's) is then not counted as the target domain by default.
    source_domain: str | None = None
    train_inputs: torch.Tensor | None = None
    eval_inputs: torch.Tensor | None = None

    def labelled_sets(self, split: str) -> list[tuple[str, torch.Tensor]]:
        """(domain, real images) of this task for the classifier: targets, and inputs if kept."""
        targets, inputs = (
            (self.train_targets, self.train_inputs)
            if split == "train"
            else (self.eval_targets, self.eval_inputs)
        )
        sets = [(self.domain, targets)]
        if self.source_domain is not None and inputs is not None:
            sets.append((self.source_domain, inputs))
        return sets


def paired_metrics(outputs: torch.Tensor, targets: torch.Tensor, names: tuple[str, ...]) -> dict[str, float]:
    """Ground-truth metrics on images in [-1, 1]; PSNR and SSIM on the [0, 1] scale."""
    result: dict[str, float] = {}
    if "l1" in names:
        result["l1"] = float((outputs - targets).abs().mean())
    unit_out, unit_target = (outputs + 1) / 2, (targets + 1) / 2
    if "psnr" in names:
        result["psnr"] = float(peak_signal_noise_ratio(unit_out, unit_target, data_range=1.0))
    if "ssim" in names:
        result["ssim"] = float(structural_similarity_index_measure(unit_out, unit_target, data_range=1.0))
    return result


class EvaluationSuite:
    """Metrics of generated images for every task of one sequence."""

    def __init__(
        self,
        tasks: list[TaskImages],
        metrics: list[str],
        classifier: ClassifierSettings,
        cache_dir: Path,
        inception_weights: str | None,
        seed: int,
        image_size: int,
        batch_size: int = 64,
        kid_subsets: int = 100,
        kid_subset_size: int = 100,
    ) -> None:
        unknown = [name for name in metrics if name not in METRICS]
        if unknown:
            raise ConfigError(f"eval.metrics has unknown {unknown}: choose from {list(METRICS)}")
        self.tasks = tasks
        self.metrics = tuple(metrics)
        targets = [task.domain for task in tasks]
        sources = [task.source_domain for task in tasks if task.source_domain is not None]
        self.domains = list(dict.fromkeys(targets + sources))
        self.batch_size = batch_size
        self.classifier_info: dict[str, Any] = {}
        self.classifier: DomainClassifier | None = None
        distances = "fid" in metrics or "kid" in metrics
        weights = check_inception_weights(inception_weights) if inception_weights and distances else None
        if "acc" in metrics or (distances and weights is None):
            self.classifier = self._classifier(classifier, cache_dir, seed, image_size)
        self.fid_key = FID_INCEPTION if weights is not None else FID_DOMAIN
        self.kid_key = KID_INCEPTION if weights is not None else KID_DOMAIN
        self._fids: list[TaskFID | None] = [None] * len(tasks)
        self._kids: list[TaskKID | None] = [None] * len(tasks)
        self._make_fid: Callable[[list[torch.Tensor]], TaskFID] | None = None
        self._make_kid: Callable[[list[torch.Tensor]], TaskKID] | None = None
        self._features: Features | None = None
        if distances:  # one feature extractor behind FID and KID, run once per set of images
            if weights is not None:
                extractor, prepare, width = inception_features(weights), to_inception_bytes, INCEPTION_WIDTH
            else:
                extractor, prepare = DomainFeatures(self.classifier), to_rgb
                width = self.classifier.num_features
            self._features = Features(extractor, prepare, batch_size)
            if "fid" in metrics:
                self._make_fid = fid_factory(width)
            if "kid" in metrics:
                self._make_kid = kid_factory(width, kid_subsets, kid_subset_size)

    # -- the classifier ----------------------------------------------------------------------
    def _classifier(
        self, settings: ClassifierSettings, cache_dir: Path, seed: int, image_size: int
    ) -> DomainClassifier:
        key = fingerprint(
            {
                "domains": self.domains,
                "tasks": [task.data_key for task in self.tasks],
                "image_size": image_size,
                "settings": settings_dict(settings),
                "seed": seed,
            }
        )
        path = Path(cache_dir).expanduser() / "classifiers" / f"domain_{key}.pt"
        labels = {domain: index for index, domain in enumerate(self.domains)}
        if path.is_file():
            model, meta = load_classifier(path, len(self.domains), settings)
            cached = True
        else:
            started = time.perf_counter()
            images, targets = self._training_set(settings, labels)
            log.info(
                "[pbgan] training the domain classifier on %d real images of %d domains "
                "(cached for later runs)",
                len(images),
                len(self.domains),
            )
            model = train_classifier(images, targets, len(self.domains), settings, seed)
            meta = {"seconds": time.perf_counter() - started}
            cached = False
        accuracy, per_domain = self._held_out_accuracy(model, labels)
        if not cached:
            meta.update(accuracy=accuracy)
            save_classifier(path, model, meta)
        self.classifier_info = {
            "domains": self.domains,
            "accuracy": accuracy,
            "per_domain_accuracy": per_domain,
            "fingerprint": key,
            "path": str(path),
            "cached": cached,
        }
        log.info(
            "[pbgan] domain classifier: held-out accuracy %.4f on real images (%s %s)",
            accuracy,
            "read from" if cached else "saved to",
            path,
        )
        return model

    def _training_set(
        self, settings: ClassifierSettings, labels: dict[str, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images, targets = [], []
        for task in self.tasks:
            for domain, real in task.labelled_sets("train"):
                chosen = to_rgb(real[: settings.train_images])  # grey and colour domains in one set
                images.append(chosen)
                targets.append(torch.full((len(chosen),), labels[domain], dtype=torch.long))
        return torch.cat(images), torch.cat(targets)

    def _held_out_accuracy(
        self, model: DomainClassifier, labels: dict[str, int]
    ) -> tuple[float, dict[str, float]]:
        correct: dict[str, list[float]] = {domain: [] for domain in self.domains}
        for task in self.tasks:
            for domain, real in task.labelled_sets("eval"):
                hits = predict(model, real, self.batch_size) == labels[domain]
                correct[domain] += hits.float().tolist()
        per_domain = {domain: sum(hits) / len(hits) for domain, hits in correct.items() if hits}
        every = [hit for hits in correct.values() for hit in hits]
        return sum(every) / len(every), per_domain

    # -- evaluation --------------------------------------------------------------------------
    def accuracy(self, task: int, images: torch.Tensor, features: list[torch.Tensor] | None = None) -> float:
        """Share of ``images`` the classifier assigns to task ``task``'s target domain (from the
        classifier's ``features`` of them, in chunks of ``batch_size``, where already computed:
        its head over them is its forward pass over the images)."""
        label = self.domains.index(self.tasks[task].domain)
        if features is None:
            predicted = predict(self.classifier, images, self.batch_size)
        else:
            with torch.no_grad():
                chunks = [self.classifier.head(chunk).argmax(1).cpu() for chunk in features]
            predicted = torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.long)
        return float((predicted == label).float().mean())

    def _build_distances(self, task: int) -> None:
        """Task ``task``'s FID and KID, from one pass of the extractor over its real eval images."""
        real = self._features(self.tasks[task].eval_targets)
        if self._make_fid is not None:
            self._fids[task] = self._make_fid(real)
        if self._make_kid is not None:
            self._kids[task] = self._make_kid(real)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The FID / KID extractor's features of ``images`` (chunks of ``batch_size``)."""
        return self._features(images)

    def fid(self, task: int, images: torch.Tensor, features: list[torch.Tensor] | None = None) -> float:
        """FID of ``images`` (or of their ``features``) against task ``task``'s real eval images."""
        if self._fids[task] is None:
            self._build_distances(task)
        return self._fids[task](self.features(images) if features is None else features)

    def kid(
        self, task: int, images: torch.Tensor, features: list[torch.Tensor] | None = None
    ) -> tuple[float, float]:
        """(mean, std) of the KID of ``images`` (or of their ``features``) against task ``task``'s
        real eval images."""
        if self._kids[task] is None:
            self._build_distances(task)
        return self._kids[task](self.features(images) if features is None else features)

    @torch.no_grad()
    def evaluate(self, task: int, outputs: torch.Tensor) -> dict[str, float]:
        """Every configured metric of task ``task``'s generated ``outputs`` (val inputs' order)."""
        info = self.tasks[task]
        result: dict[str, float] = {}
        if info.paired:
            result.update(paired_metrics(outputs, info.eval_targets[: len(outputs)], self.metrics))
        # one pass of the feature extractor over the outputs serves FID, KID and, in the domain
        # classifier's space, Acc
        features = self.features(outputs) if self._features is not None else None
        if "acc" in self.metrics:
            shared = features if self.fid_key == FID_DOMAIN else None
            result["acc"] = self.accuracy(task, outputs, shared)
        if "fid" in self.metrics:
            result[self.fid_key] = self.fid(task, outputs, features)
        if "kid" in self.metrics:
            result[self.kid_key], result[f"{self.kid_key}_std"] = self.kid(task, outputs, features)
        return result
