"""The task registry and the public API: seeded samples of any kind, as arrays or tensors."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch

from datamodules.synthetic.bag import make_edges2bag
from datamodules.synthetic.draw import Image
from datamodules.synthetic.facade import make_seg2facade
from datamodules.synthetic.maps import make_map2aerial
from datamodules.synthetic.street import make_labels2street
from datamodules.synthetic.style import make_photo2outline, make_photo2pastel

PAIRED_TASKS: tuple[str, ...] = ("labels2street", "map2aerial", "seg2facade", "edges2bag")
STYLE_TASKS: tuple[str, ...] = ("photo2pastel", "photo2outline")
MIN_SIZE: int = 16

PairMaker = Callable[[int, np.random.Generator], tuple[Image, Image]]

_PAIR_MAKERS: dict[str, PairMaker] = {
    "labels2street": make_labels2street,
    "map2aerial": make_map2aerial,
    "seg2facade": make_seg2facade,
    "edges2bag": make_edges2bag,
    "photo2pastel": make_photo2pastel,
    "photo2outline": make_photo2outline,
}
assert tuple(_PAIR_MAKERS) == PAIRED_TASKS + STYLE_TASKS

# Kinds that share their A domain draw it from a common stream: the photo of sample i is the
# same for every style kind, so evaluation inputs are shared across the style sequence.
_SHARED_STREAM: dict[str, str] = {kind: "photo" for kind in STYLE_TASKS}


def _task_id(kind: str) -> int:
    """Stable per-kind seed component (CRC32 of the name), independent of registry order."""
    return zlib.crc32(kind.encode("utf-8"))


def _check_kind(kind: str) -> PairMaker:
    """Look up a task, failing loudly with the list of valid kinds."""
    try:
        return _PAIR_MAKERS[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown synthetic task kind {kind!r}; valid kinds: {', '.join(_PAIR_MAKERS)}"
        ) from None


def _check_size(size: int) -> int:
    """Images are square; below MIN_SIZE the layouts degenerate, so refuse them."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an int >= {MIN_SIZE} (minimum size), got {size!r}")
    if size < MIN_SIZE:
        raise ValueError(f"size must be >= {MIN_SIZE} (minimum size), got {size}")
    return int(size)


def make_pair(kind: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (A, B) pair of ``kind`` drawn from ``rng``: float32 (size, size, 3) arrays in [0, 1].

    A carries the structure (labels or edges); B the texture and shading on the same geometry.
    For style kinds A is a landscape photo, drawn from ``rng`` before anything style-specific,
    so every style kind gives the same A for the same generator state.
    """
    maker = _check_kind(kind)
    size = _check_size(size)
    a, b = maker(size, rng)
    return (np.clip(a, 0.0, 1.0).astype(np.float32), np.clip(b, 0.0, 1.0).astype(np.float32))


def sample_rng(kind: str, index: int, seed: int) -> np.random.Generator:
    """Per-sample generator keyed by (seed, kind, index), so sample i never depends on how many
    samples were requested or in which order; train/val use disjoint index ranges.

    Style kinds are keyed by their shared stream name ("photo") instead of their own name, so
    their A image (drawn first) is identical across ``STYLE_TASKS``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.default_rng([int(seed), _task_id(_SHARED_STREAM.get(kind, kind)), int(index)])


def _unpaired_rng(kind: str, index: int, seed: int) -> np.random.Generator:
    """Generator of the *B* side of unpaired sample i: keyed by (seed, kind, index, 1), a stream
    disjoint from every ``sample_rng`` key (those have three words), and keyed by the kind's own
    name even for style kinds, so the pastel and outline B sets show different scenes too."""
    return np.random.default_rng([int(seed), _task_id(kind), int(index), 1])


def _check_range(start: int, count: int) -> None:
    if count < 0 or start < 0:
        raise ValueError(f"start and count must be non-negative, got start={start}, count={count}")


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """(count, size, size, 3) float32 in [0, 1] -> (count, 3, size, size) tensor in [-1, 1]."""
    out = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return torch.from_numpy(out * np.float32(2.0) - np.float32(1.0))


def generate_pairs(
    kind: str, start: int, count: int, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples ``start .. start+count-1`` of ``kind`` as float32 tensors (count, 3, size, size)
    scaled to [-1, 1] (the tanh range of the generators); bit-identical for equal arguments."""
    return _render(kind, start, count, size, seed, paired=True)


def generate_unpaired(
    kind: str, start: int, count: int, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpaired samples ``start .. start+count-1`` of ``kind`` (any kind, paired or style).

    A is exactly ``generate_pairs(kind, start, count, size, seed)[0]`` (shared evaluation
    inputs). B_i is the B image of an independent layout drawn from the disjoint stream keyed by
    (seed, kind, start+i, 1), so it is a valid image of the B domain but not the translation of
    A_i (nor of any A_j, except by chance). Same tensor format as ``generate_pairs``.
    """
    return _render(kind, start, count, size, seed, paired=False)


def _render(
    kind: str, start: int, count: int, size: int, seed: int, paired: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """A and B images of samples ``start ..``; unpaired: each B from its own independent layout."""
    _check_kind(kind)
    size = _check_size(size)
    _check_range(start, count)
    a_all = np.empty((count, size, size, 3), dtype=np.float32)
    b_all = np.empty((count, size, size, 3), dtype=np.float32)
    for i in range(count):
        a_all[i], b_all[i] = make_pair(kind, size, sample_rng(kind, start + i, seed))
        if not paired:
            b_all[i] = make_pair(kind, size, _unpaired_rng(kind, start + i, seed))[1]
    return _to_tensor(a_all), _to_tensor(b_all)
