"""Fixtures shared by every test."""

from __future__ import annotations

import pbgan_testing  # noqa: F401  (sets the private classifier cache before any config resolves)
import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
