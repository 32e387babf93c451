"""Drawing and noise helpers shared by every synthetic task family.

Everything here is IEEE-exact elementwise arithmetic or ``rng.random``/``integers`` draws (see
the package docstring), so the renderers built on it stay bit-identical across machines.
"""

from __future__ import annotations

import numpy as np

Image = np.ndarray  # (size, size, 3) float64 during rendering, float32 at the API boundary
Mask = np.ndarray  # (size, size) bool
Field = np.ndarray  # (size, size) float64 scalar field (noise, shading)


def coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1] as broadcastable column (y) and row (x) vectors.

    Working in fractions of the image makes every layout independent of the resolution.
    """
    c = (np.arange(size, dtype=np.float64) + 0.5) / size
    return c[:, None], c[None, :]


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One uniform draw in [lo, hi) built from ``rng.random`` only (portable bits)."""
    return lo + (hi - lo) * float(rng.random())


def smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic ease curve; gives smooth value noise and soft edges without transcendentals."""
    return t * t * (3.0 - 2.0 * t)


def interp_index(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower lattice index and smoothed fractional weight for upsampling ``cells`` to ``size``."""
    t = (np.arange(size, dtype=np.float64) + 0.5) / size * cells
    i = np.minimum(t.astype(np.int64), cells - 1)
    return i, smoothstep(t - i)


def value_noise(rng: np.random.Generator, size: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a random lattice upsampled with smoothed bilinear weights.

    Different cell counts per axis give stretched noise (wood grain, ripples, clouds).
    """
    cells_y, cells_x = max(1, int(cells_y)), max(1, int(cells_x))
    grid = rng.random((cells_y + 1, cells_x + 1))
    iy, wy = interp_index(size, cells_y)
    ix, wx = interp_index(size, cells_x)
    rows = grid[iy] * (1.0 - wy)[:, None] + grid[iy + 1] * wy[:, None]
    return rows[:, ix] * (1.0 - wx)[None, :] + rows[:, ix + 1] * wx[None, :]


def fractal_noise(rng: np.random.Generator, size: int, base_cells: int, octaves: int) -> Field:
    """Sum of value-noise octaves (each twice as fine, half as strong), normalised to [0, 1]."""
    total = np.zeros((size, size))
    amp, norm, cells = 1.0, 0.0, base_cells
    for _ in range(octaves):
        total += amp * value_noise(rng, size, min(cells, size), min(cells, size))
        norm += amp
        amp *= 0.5
        cells *= 2
    return total / norm


def shift(mask: Mask, dy: int, dx: int) -> Mask:
    """Translate a mask by whole pixels (no wrap-around); used to cast simple shadows."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def rect(yy: np.ndarray, xx: np.ndarray, y0: float, y1: float, x0: float, x1: float) -> Mask:
    """Axis-aligned rectangle [y0, y1) x [x0, x1) in fractional coordinates."""
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


def ellipse_value(yy, xx, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Normalised squared radius of an ellipse: < 1 inside, 1 on the boundary."""
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    return dy * dy + dx * dx


def frac(x: np.ndarray) -> np.ndarray:
    """Fractional part; the basis of every periodic pattern (windows, bars, dashes)."""
    return x - np.floor(x)


def wave(x: np.ndarray) -> np.ndarray:
    """Smooth periodic wave in [0, 1] with period 1 (sine-like, built from a triangle wave)."""
    return smoothstep(np.abs(2.0 * frac(x) - 1.0))


def min_width(size: int, fraction: float, pixels: float = 1.2) -> float:
    """A line width in fractions that never drops below ``pixels`` so thin lines survive 16x16."""
    return max(fraction, pixels / size)


def paint(img: Image, mask: Mask, layer) -> None:
    """Copy ``layer`` (image or colour) into ``img`` where ``mask`` is set, in place."""
    if np.ndim(layer) == 1:
        img[mask] = layer
    else:
        img[mask] = layer[mask]


def tint(color, shade: np.ndarray) -> Image:
    """Multiply a colour by a per-pixel brightness field -> (size, size, 3) image."""
    return shade[..., None] * np.asarray(color, dtype=np.float64)[None, None, :]


def palette_image(labels: np.ndarray, palette: np.ndarray) -> Image:
    """Flat-colour rendering of an integer label map (the structural input A)."""
    return palette[labels]


def hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """Scalar HSV -> RGB with plain arithmetic (random per-sample object colours)."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def pick(rng: np.random.Generator, options: np.ndarray) -> np.ndarray:
    """One row of ``options`` chosen uniformly, with a little per-sample colour jitter."""
    base = options[int(rng.integers(len(options)))]
    return np.clip(base * (0.92 + 0.16 * rng.random(3)), 0.0, 1.0)


def partition(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """n+1 increasing cut points from lo to hi with uneven random spacing."""
    w = 0.5 + rng.random(n)
    return lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(w) / np.cumsum(w)[-1]])
