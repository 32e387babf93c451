"""map2aerial: map tiles -> aerial photograph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.draw import (
    Image,
    Mask,
    coords,
    ellipse_value,
    frac,
    fractal_noise,
    paint,
    palette_image,
    shift,
    smoothstep,
    tint,
    uniform,
    value_noise,
    wave,
)

_MP_BLOCK, _MP_PARK, _MP_WATER, _MP_ROAD, _MP_HIGHWAY = range(5)
_MP_PALETTE = np.array(
    [
        [0.93, 0.92, 0.89],  # city block
        [0.68, 0.85, 0.6],  # park
        [0.66, 0.83, 0.9],  # water
        [1.0, 1.0, 1.0],  # road
        [0.99, 0.84, 0.45],  # highway
    ]
)
_MP_ROOFS = np.array(
    [[0.55, 0.55, 0.55], [0.7, 0.4, 0.3], [0.8, 0.79, 0.76], [0.42, 0.4, 0.38], [0.6, 0.5, 0.42]]
)


@dataclass(frozen=True)
class MapLayout:
    """Masks and lot coordinates A and B share; the lot grid is keyed to the roads A shows."""

    road: Mask
    highway: Mask
    marking: Mask  # the highway's dashed centre line
    park: Mask
    water: Mask
    lot_u: np.ndarray  # (1, size): x in building lots of its block
    lot_v: np.ndarray  # (size, 1): y in building lots of its block


def _road_lines(rng, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres (jittered, one per 1/n band) and widths of n parallel roads."""
    pos = (np.arange(n) + 0.2 + 0.6 * rng.random(n)) / n
    widths = np.maximum(0.02 + 0.025 * rng.random(n), 1.5 / size)
    return pos, widths


def _lot_coords(pos: np.ndarray, widths: np.ndarray, c: np.ndarray, lot: float) -> np.ndarray:
    """Coordinate along one axis measured in building lots, aligned to the block between roads.

    The integer part indexes the lot and the fractional part is the position inside it, so the
    roof grid of the aerial view is a function of the road layout that A shows.
    """
    idx = np.searchsorted(pos, c)
    lo = np.concatenate([[0.0], pos + widths / 2])[idx]
    hi = np.concatenate([pos - widths / 2, [1.0]])[idx]
    span = np.maximum(hi - lo, 1e-6)
    return (c - lo) / span * np.maximum(1.0, np.round(span / lot))


def _map_layout(rng, yy, xx, size: int) -> MapLayout:
    """Road grid (maybe one highway), parks, water and the lot grid of the city blocks."""
    vx, vw = _road_lines(rng, int(rng.integers(2, 5)), size)
    hy, hw = _road_lines(rng, int(rng.integers(2, 5)), size)
    road = np.zeros((size, size), dtype=bool)
    for p, w in zip(vx, vw, strict=True):
        road |= np.broadcast_to(np.abs(xx - p) < w / 2, road.shape)
    for p, w in zip(hy, hw, strict=True):
        road |= np.broadcast_to(np.abs(yy - p) < w / 2, road.shape)
    highway = np.zeros_like(road)
    marking = np.zeros_like(road)
    if rng.random() < 0.6:
        vertical = bool(rng.random() < 0.5)
        p = uniform(rng, 0.15, 0.85)
        d, along = (xx, yy) if vertical else (yy, xx)
        highway = np.broadcast_to(np.abs(d - p) < max(0.035, 2.0 / size), road.shape).copy()
        marking = (
            np.broadcast_to((np.abs(d - p) < 0.6 / size) & (frac(along * 8.0) < 0.55), road.shape) & highway
        )
    parks = rng.random((len(hy) + 1, len(vx) + 1)) < 0.28
    park = parks[np.searchsorted(hy, yy[:, 0])[:, None], np.searchsorted(vx, xx[0])[None, :]]
    lot = uniform(rng, 0.05, 0.09)
    return MapLayout(
        road=road,
        highway=highway,
        marking=marking,
        park=park,
        water=_map_water(rng, yy, xx, size),
        lot_u=_lot_coords(vx, vw, xx, lot),
        lot_v=_lot_coords(hy, hw, yy, lot),
    )


def _map_water(rng, yy, xx, size: int) -> Mask:
    """A winding river band or a wobbly lake (or, rarely, no water)."""
    wobble = value_noise(rng, size, 2, 2) - 0.5
    choice = rng.random()
    if choice < 0.55:
        d = rng.random(2) - 0.5
        n = d / np.sqrt(d[0] * d[0] + d[1] * d[1] + 1e-6)
        cy, cx = uniform(rng, 0.3, 0.7), uniform(rng, 0.3, 0.7)
        dist = (yy - cy) * n[0] + (xx - cx) * n[1] + 0.25 * wobble
        return np.abs(dist) < uniform(rng, 0.06, 0.12)
    if choice < 0.9:
        cy, cx = uniform(rng, 0.2, 0.8), uniform(rng, 0.2, 0.8)
        ry, rx = uniform(rng, 0.12, 0.25), uniform(rng, 0.12, 0.25)
        return ellipse_value(yy, xx, cy, cx, ry, rx) + 1.2 * wobble < 1.0
    return np.zeros((size, size), dtype=bool)


def _map_labels(lay: MapLayout, size: int) -> np.ndarray:
    """Label map: blocks, parks, water over them, roads (bridges) and highway on top."""
    labels = np.where(lay.park, _MP_PARK, _MP_BLOCK).astype(np.int64)
    labels = np.broadcast_to(labels, (size, size)).copy()
    labels[lay.water] = _MP_WATER
    labels[lay.road] = _MP_ROAD
    labels[lay.highway] = _MP_HIGHWAY
    return labels


def _aerial_roofs(rng, lay: MapLayout, size: int) -> Image:
    """Roofs on the lot grid of each block: gable shading, varied tones, alleys with shadows."""
    u = np.broadcast_to(lay.lot_u, (size, size))
    v = np.broadcast_to(lay.lot_v, (size, size))
    cu, cv = frac(u), frac(v)
    iu = np.floor(u).astype(np.int64) % 32
    iv = np.floor(v).astype(np.int64) % 32
    tones = rng.integers(0, len(_MP_ROOFS), size=(32, 32))
    roof = (cu > 0.1) & (cu < 0.9) & (cv > 0.1) & (cv < 0.9)
    colors = _MP_ROOFS[tones[iv, iu]] * (0.9 + 0.2 * rng.random((32, 32, 1)))[iv, iu]
    gable = np.where(cu < 0.5, 0.82, 1.08) * (0.92 + 0.1 * rng.random((size, size)))
    roofs = colors * gable[..., None]
    alley = tint([0.42, 0.41, 0.38], 0.9 + 0.15 * rng.random((size, size)))
    off = max(1, size // 64)
    alley[~roof & shift(roof, off, off)] *= 0.45
    return np.where(roof[..., None], roofs, alley)


def _aerial_vegetation(rng, size: int) -> Image:
    """Dark, clumpy tree canopies over lighter grass: strongly textured green."""
    clumps = fractal_noise(rng, size, max(2, size // 10), 3)
    canopy = smoothstep(np.clip((clumps - 0.45) * 4.0, 0.0, 1.0))
    fine = 0.75 + 0.5 * rng.random((size, size))
    grass = np.array([0.3, 0.42, 0.18])
    trees = np.array([0.08, 0.2, 0.07])
    base = grass + (trees - grass) * canopy[..., None]
    return base * fine[..., None]


def _aerial_water(rng, yy, xx, size: int) -> Image:
    """Deep blue-green water with wind ripples (waves bent by low-frequency noise)."""
    bend = value_noise(rng, size, 3, 3)
    angle = rng.random(2) - 0.5
    phase = (yy * angle[0] + xx * angle[1]) * 40.0 + 3.0 * bend
    ripples = wave(phase) * (0.5 + 0.5 * value_noise(rng, size, 4, 4))
    shade = 0.8 + 0.35 * ripples + 0.08 * rng.random((size, size))
    return tint([0.1, 0.24, 0.3], shade)


def _aerial_roads(rng, labels: np.ndarray, marking: Mask, size: int) -> Image:
    """Asphalt with grain; highways slightly lighter with a pale dashed centre line."""
    grain = 0.85 + 0.3 * rng.random((size, size))
    img = tint([0.33, 0.33, 0.34], grain)
    img[labels == _MP_HIGHWAY] *= 1.25
    img[marking] = [0.85, 0.82, 0.6]
    return img


def make_map2aerial(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Map pair: A = flat map colours, B = aerial photo (roofs, vegetation, water, asphalt)."""
    yy, xx = coords(size)
    lay = _map_layout(rng, yy, xx, size)
    labels = _map_labels(lay, size)
    out = _aerial_roofs(rng, lay, size)
    paint(out, labels == _MP_PARK, _aerial_vegetation(rng, size))
    paint(out, labels == _MP_WATER, _aerial_water(rng, yy, xx, size))
    paint(out, labels >= _MP_ROAD, _aerial_roads(rng, labels, lay.marking, size))
    return palette_image(labels, _MP_PALETTE), out
