"""Metrics of generated images: paired L1/PSNR/SSIM, Acc (domain classifier) and FID."""

from pbgan.metrics.classifier import ClassifierSettings, DomainClassifier
from pbgan.metrics.suite import HIGHER_IS_BETTER, METRICS, EvaluationSuite, TaskImages, paired_metrics

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "ClassifierSettings",
    "DomainClassifier",
    "EvaluationSuite",
    "TaskImages",
    "paired_metrics",
]
