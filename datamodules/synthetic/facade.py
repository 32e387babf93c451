"""seg2facade: CMP-facade-like labels -> building facade."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.draw import (
    Image,
    Mask,
    coords,
    frac,
    fractal_noise,
    paint,
    palette_image,
    pick,
    tint,
    uniform,
    value_noise,
)

_FC_WALL, _FC_WINDOW, _FC_DOOR, _FC_BALCONY = range(4)
_FC_PALETTE = np.array(
    [
        [0.0, 0.0, 0.67],  # wall
        [0.0, 0.6, 1.0],  # window
        [1.0, 0.6, 0.0],  # door
        [0.9, 0.15, 0.15],  # balcony
    ]
)
_FC_PLASTER = np.array(
    [
        [0.88, 0.82, 0.7],
        [0.88, 0.76, 0.6],
        [0.88, 0.75, 0.71],
        [0.79, 0.78, 0.76],
        [0.92, 0.9, 0.86],
        [0.78, 0.82, 0.74],
    ]
)


@dataclass(frozen=True)
class FacadeLayout:
    """Region masks A and B share, and each region's local (u, v) in [0, 1] for B's detail."""

    window: Mask
    shop: Mask  # ground-floor shop windows
    door: Mask
    balcony: Mask
    sill: Mask
    win_u: np.ndarray
    win_v: np.ndarray
    door_u: np.ndarray
    door_v: np.ndarray
    bal_u: np.ndarray
    bal_v: np.ndarray
    sill_v: np.ndarray


def _unit(t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] to [0, 1] (local coordinates inside a window, door or balcony)."""
    return (t - lo) / (hi - lo)


def _facade_layout(rng, yy, xx) -> FacadeLayout:
    """Regular grid of floors x columns; window/door/balcony masks with local coordinates."""
    n_cols, n_floors = int(rng.integers(2, 6)), int(rng.integers(3, 7))
    top = uniform(rng, 0.0, 0.1)
    floor_h = (1.0 - top) / (n_floors - 1 + uniform(rng, 1.15, 1.5))
    ground_y = top + (n_floors - 1) * floor_h
    mu, mt, mb = uniform(rng, 0.2, 0.33), uniform(rng, 0.18, 0.3), uniform(rng, 0.72, 0.82)
    door_col = int(rng.integers(n_cols))
    has_balcony = rng.random(n_floors - 1) < 0.35
    blank = rng.random((n_floors - 1, n_cols)) < 0.08

    col = np.minimum(np.floor(xx * n_cols).astype(np.int64), n_cols - 1)
    cu = frac(xx * n_cols)
    fv = (yy - top) / floor_h
    floor_i = np.clip(np.floor(fv).astype(np.int64), 0, n_floors - 2)
    cv = frac(fv)
    upper = (yy >= top) & (yy < ground_y)
    gv = (yy - ground_y) / (1.0 - ground_y)
    ground = yy >= ground_y
    in_u = (cu >= mu) & (cu < 1.0 - mu)

    window = upper & in_u & (cv >= mt) & (cv < mb) & ~blank[floor_i, col]
    shop = ground & (col != door_col) & (cu >= 0.12) & (cu < 0.88) & (gv >= 0.2) & (gv < 0.85)
    door = ground & (col == door_col) & (cu >= 0.28) & (cu < 0.72) & (gv >= 0.22)
    bal_lo, bal_hi = mu - 0.08, 1.0 - mu + 0.08
    balcony = (
        upper & has_balcony[floor_i] & (cu >= bal_lo) & (cu < bal_hi) & (cv >= mb - 0.22) & (cv < mb + 0.06)
    )
    sill = (
        upper
        & (cu >= mu - 0.04)
        & (cu < 1.0 - mu + 0.04)
        & (cv >= mb)
        & (cv < mb + 0.05)
        & ~blank[floor_i, col]
    )
    return FacadeLayout(
        window=window,
        shop=shop,
        door=door,
        balcony=balcony,
        sill=sill,
        win_u=np.where(ground, _unit(cu, 0.12, 0.88), _unit(cu, mu, 1.0 - mu)),
        win_v=np.where(ground, _unit(gv, 0.2, 0.85), _unit(cv, mt, mb)),
        door_u=_unit(cu, 0.28, 0.72),
        door_v=_unit(gv, 0.22, 1.0),
        bal_u=_unit(cu, bal_lo, bal_hi),
        bal_v=_unit(cv, mb - 0.22, mb + 0.06),
        sill_v=_unit(cv, mb, mb + 0.05),
    )


def _facade_labels(lay: FacadeLayout, size: int) -> np.ndarray:
    """Integer label map; balconies are drawn over windows, as in the CMP annotations."""
    labels = np.full((size, size), _FC_WALL, dtype=np.int64)
    labels[lay.window | lay.shop] = _FC_WINDOW
    labels[lay.door] = _FC_DOOR
    labels[lay.balcony] = _FC_BALCONY
    return labels


def _facade_wall(rng, lay: FacadeLayout, yy, size: int) -> Image:
    """Plaster: blotchy low-frequency noise, fine grain, grime towards the street, stone sills."""
    plaster = pick(rng, _FC_PLASTER)
    texture = 0.86 + 0.22 * fractal_noise(rng, size, 4, 4) + 0.07 * rng.random((size, size))
    img = tint(plaster, texture * (1.02 - 0.12 * yy))
    sill_shade = np.where(lay.sill_v > 0.7, 0.8, 1.05)
    paint(img, lay.sill, tint([0.88, 0.86, 0.8], sill_shade * texture))
    return img


def _facade_glass(rng, lay: FacadeLayout, size: int) -> Image:
    """Windows: dark glass with a sky tint and a diagonal reflection, framed and cross-barred."""
    u, v = lay.win_u, lay.win_v
    frame_color = np.array([0.92, 0.9, 0.86]) if rng.random() < 0.6 else np.array([0.3, 0.2, 0.12])
    streak = uniform(rng, 0.3, 1.2)
    reflection = np.clip(1.0 - np.abs(u + 0.6 * v - streak) / 0.18, 0.0, 1.0)
    glass = np.array([0.07, 0.09, 0.13]) + tint([0.12, 0.16, 0.22], 1.0 - v) + 0.35 * reflection[..., None]
    t = 0.1
    frame = (
        (u < t) | (u > 1 - t) | (v < t) | (v > 1 - t) | (np.abs(u - 0.5) < t / 2) | (np.abs(v - 0.35) < t / 2)
    )
    return np.where(frame[..., None], frame_color, glass)


def _facade_door(rng, lay: FacadeLayout, size: int) -> Image:
    """Wooden door: vertical grain, two recessed panels, dark frame."""
    u, v = lay.door_u, lay.door_v
    grain = value_noise(rng, size, 2, max(2, size // 3))
    wood = pick(rng, np.array([[0.42, 0.25, 0.12], [0.3, 0.17, 0.08], [0.5, 0.33, 0.18]]))
    pu = frac(u * 2.0)
    panel = (pu > 0.2) & (pu < 0.8) & (frac(v * 2.0) > 0.12) & (frac(v * 2.0) < 0.88)
    shade = (0.75 + 0.45 * grain) * np.where(panel, 0.82, 1.0)
    frame = (u < 0.07) | (u > 0.93) | (v < 0.05)
    return tint(wood, np.where(frame, 0.5, shade))


def _facade_railing(lay: FacadeLayout, behind: Image, size: int) -> Image:
    """Balcony: dark metal rails and bars, with the (shaded) facade visible between the bars."""
    u, v = lay.bal_u, lay.bal_v
    bars = frac(u * 9.0) < 0.3
    metal = (v < 0.14) | (v > 0.82) | bars
    highlight = np.where(v < 0.07, 1.6, 1.0)
    iron = tint([0.12, 0.12, 0.13], highlight)
    return np.where(metal[..., None], iron, behind * 0.7)


def make_seg2facade(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Facade pair: A = wall/window/door/balcony labels, B = plaster, glass, wood and railings."""
    yy, xx = coords(size)
    lay = _facade_layout(rng, yy, xx)
    labels = _facade_labels(lay, size)
    out = _facade_wall(rng, lay, yy, size)
    paint(out, lay.window | lay.shop, _facade_glass(rng, lay, size))
    paint(out, lay.door, _facade_door(rng, lay, size))
    paint(out, lay.balcony, _facade_railing(lay, out.copy(), size))
    return palette_image(labels, _FC_PALETTE), out
