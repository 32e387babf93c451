"""Benchmark every method against the reference networks in plain ``torch.nn``: ``python -m pbgan.bench``."""

from pbgan.bench.cli import main

__all__ = ["main"]
