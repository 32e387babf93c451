"""Procedurally generated, seeded image-to-image translation tasks.

These stand in for the paper's real paired datasets (Cityscapes labels->photo, maps->aerial,
CMP facades, edges->handbags) so that the default run needs no download and every run is
reproducible. Each task draws a random *layout*, renders it twice: once as the structural input
A (flat label colours or an edge drawing) and once as the target B (texture, shading, detail
that follows exactly the same geometry), so a generator can learn A -> B.

``STYLE_TASKS`` stand in for unpaired style transfer (the paper's photo -> Monet, then photo ->
Ukiyo-e): both share one input domain, a photo-like landscape, whose sample i is identical for
every style kind (its generator is keyed by the shared name "photo", see ``sample_rng``); B is
the same landscape as soft pastel strokes (``photo2pastel``) or as flat colours with dark ink
outlines (``photo2outline``). ``generate_unpaired`` gives any kind's A and B without
correspondence (B from an independent layout), for CycleGAN-style training.

Design rules that keep the output bit-identical on every machine:
- all randomness comes from ``numpy.random.Generator.random``/``integers`` (pure bit
  manipulation, no libm), seeded per sample from ``(seed, task_id, index)``;
- rendering uses only IEEE-exact elementwise arithmetic (+, -, *, /, sqrt, floor, comparisons,
  indexing): no transcendental functions (whose libm/SIMD versions differ in the last bit) and
  no reductions (whose summation order can differ between SIMD code paths). Checked: the same
  hash with numpy dispatching AVX-512, AVX2 or only the SSE baseline (max/min reductions are
  exact too; blurs are fixed-order sums of shifted copies).

Geometry is expressed in fractions of the image size, so any square size >= 16 works.
More kinds can be added by registering a ``PairMaker`` in ``_PAIR_MAKERS``.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable

import numpy as np
import torch

__all__ = [
    "MIN_SIZE",
    "PAIRED_TASKS",
    "STYLE_TASKS",
    "generate_pairs",
    "generate_unpaired",
    "make_pair",
    "sample_rng",
]

PAIRED_TASKS: tuple[str, ...] = ("labels2street", "map2aerial", "seg2facade", "edges2bag")
STYLE_TASKS: tuple[str, ...] = ("photo2pastel", "photo2outline")
MIN_SIZE: int = 16

Image = np.ndarray  # (size, size, 3) float64 during rendering, float32 at the API boundary
Mask = np.ndarray  # (size, size) bool
Field = np.ndarray  # (size, size) float64 scalar field (noise, shading)
PairMaker = Callable[[int, np.random.Generator], tuple[Image, Image]]


# --------------------------------------------------------------------------------------------
# Small numeric helpers (each does one job; all vectorised over the whole image)
# --------------------------------------------------------------------------------------------


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1] as broadcastable column (y) and row (x) vectors.

    Working in fractions of the image makes every layout independent of the resolution.
    """
    c = (np.arange(size, dtype=np.float64) + 0.5) / size
    return c[:, None], c[None, :]


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One uniform draw in [lo, hi) built from ``rng.random`` only (portable bits)."""
    return lo + (hi - lo) * float(rng.random())


def _smoothstep(t: np.ndarray) -> np.ndarray:
    """Cubic ease curve; gives smooth value noise and soft edges without transcendentals."""
    return t * t * (3.0 - 2.0 * t)


def _interp_index(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower lattice index and smoothed fractional weight for upsampling ``cells`` to ``size``."""
    t = (np.arange(size, dtype=np.float64) + 0.5) / size * cells
    i = np.minimum(t.astype(np.int64), cells - 1)
    return i, _smoothstep(t - i)


def _value_noise(rng: np.random.Generator, size: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a random lattice upsampled with smoothed bilinear weights.

    Different cell counts per axis give stretched noise (wood grain, ripples, clouds).
    """
    cells_y, cells_x = max(1, int(cells_y)), max(1, int(cells_x))
    grid = rng.random((cells_y + 1, cells_x + 1))
    iy, wy = _interp_index(size, cells_y)
    ix, wx = _interp_index(size, cells_x)
    rows = grid[iy] * (1.0 - wy)[:, None] + grid[iy + 1] * wy[:, None]
    return rows[:, ix] * (1.0 - wx)[None, :] + rows[:, ix + 1] * wx[None, :]


def _fractal_noise(rng: np.random.Generator, size: int, base_cells: int, octaves: int) -> Field:
    """Sum of value-noise octaves (each twice as fine, half as strong), normalised to [0, 1]."""
    total = np.zeros((size, size))
    amp, norm, cells = 1.0, 0.0, base_cells
    for _ in range(octaves):
        total += amp * _value_noise(rng, size, min(cells, size), min(cells, size))
        norm += amp
        amp *= 0.5
        cells *= 2
    return total / norm


def _shift(mask: Mask, dy: int, dx: int) -> Mask:
    """Translate a mask by whole pixels (no wrap-around); used to cast simple shadows."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _rect(yy: np.ndarray, xx: np.ndarray, y0: float, y1: float, x0: float, x1: float) -> Mask:
    """Axis-aligned rectangle [y0, y1) x [x0, x1) in fractional coordinates."""
    return (yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)


def _ellipse_value(yy, xx, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Normalised squared radius of an ellipse: < 1 inside, 1 on the boundary."""
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    return dy * dy + dx * dx


def _frac(x: np.ndarray) -> np.ndarray:
    """Fractional part; the basis of every periodic pattern (windows, bars, dashes)."""
    return x - np.floor(x)


def _wave(x: np.ndarray) -> np.ndarray:
    """Smooth periodic wave in [0, 1] with period 1 (sine-like, built from a triangle wave)."""
    return _smoothstep(np.abs(2.0 * _frac(x) - 1.0))


def _min_width(size: int, frac: float, pixels: float = 1.2) -> float:
    """A line width in fractions that never drops below ``pixels`` so thin lines survive 16x16."""
    return max(frac, pixels / size)


def _paint(img: Image, mask: Mask, layer) -> None:
    """Copy ``layer`` (image or colour) into ``img`` where ``mask`` is set, in place."""
    if np.ndim(layer) == 1:
        img[mask] = layer
    else:
        img[mask] = layer[mask]


def _tint(color, shade: np.ndarray) -> Image:
    """Multiply a colour by a per-pixel brightness field -> (size, size, 3) image."""
    return shade[..., None] * np.asarray(color, dtype=np.float64)[None, None, :]


def _palette_image(labels: np.ndarray, palette: np.ndarray) -> Image:
    """Flat-colour rendering of an integer label map (the structural input A)."""
    return palette[labels]


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """Scalar HSV -> RGB with plain arithmetic (random per-sample object colours)."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _pick(rng: np.random.Generator, options: np.ndarray) -> np.ndarray:
    """One row of ``options`` chosen uniformly, with a little per-sample colour jitter."""
    base = options[int(rng.integers(len(options)))]
    return np.clip(base * (0.92 + 0.16 * rng.random(3)), 0.0, 1.0)


def _partition(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """n+1 increasing cut points from lo to hi with uneven random spacing."""
    w = 0.5 + rng.random(n)
    return lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(w) / np.cumsum(w)[-1]])


# --------------------------------------------------------------------------------------------
# labels2street: Cityscapes-like semantic labels -> street scene
# --------------------------------------------------------------------------------------------

_ST_SKY, _ST_BUILDING, _ST_ROAD, _ST_SIDEWALK, _ST_CAR, _ST_TREE, _ST_TRUNK = range(7)
_ST_PALETTE = (
    np.array(
        [
            [70, 130, 180],  # sky
            [70, 70, 70],  # building
            [128, 64, 128],  # road
            [244, 35, 232],  # sidewalk
            [0, 0, 142],  # car
            [107, 142, 35],  # tree crown
            [153, 153, 153],  # trunk / pole
        ],
        dtype=np.float64,
    )
    / 255.0
)
_ST_WALLS = np.array(
    [
        [0.62, 0.6, 0.57],
        [0.72, 0.66, 0.55],
        [0.55, 0.35, 0.28],
        [0.48, 0.5, 0.53],
        [0.78, 0.75, 0.7],
    ]
)
_ST_CARS = np.array(
    [
        [0.75, 0.1, 0.1],
        [0.12, 0.25, 0.65],
        [0.85, 0.85, 0.85],
        [0.12, 0.12, 0.13],
        [0.6, 0.62, 0.65],
        [0.85, 0.7, 0.1],
    ]
)


def _street_layout(rng: np.random.Generator, size: int) -> dict:
    """Random street geometry: ground line, building blocks, trees and cars (fractions)."""
    n_blocks = int(rng.integers(3, 7))
    ground = _uniform(rng, 0.55, 0.66)
    walk = _uniform(rng, 0.03, 0.06)
    cuts = _partition(rng, n_blocks, 0.0, 1.0)
    blocks = [
        {
            "x0": x0,
            "x1": x1,
            "top": _uniform(rng, 0.08, 0.42),
            "wall": _pick(rng, _ST_WALLS),
            "present": bool(rng.random() < 0.88),
        }
        for x0, x1 in itertools.pairwise(cuts)
    ]
    trees = []
    for _ in range(int(rng.integers(0, 4))):
        ry, rx = _uniform(rng, 0.07, 0.12), _uniform(rng, 0.05, 0.09)
        trunk = _uniform(rng, 0.04, 0.09)
        trees.append(
            {
                "cx": _uniform(rng, 0.05, 0.95),
                "cy": ground - trunk - ry * 0.8,
                "ry": ry,
                "rx": rx,
                "trunk_w": _min_width(size, 0.018),
            }
        )
    cars = []
    road_top = ground + walk
    for _ in range(int(rng.integers(1, 4))):
        h, length = _uniform(rng, 0.1, 0.15), _uniform(rng, 0.2, 0.34)
        bottom = _uniform(rng, min(road_top + h + 0.03, 0.98), 0.98)
        cx = _uniform(rng, 0.0, 1.0)
        cars.append(
            {
                "x0": cx - length / 2,
                "x1": cx + length / 2,
                "y0": bottom - h,
                "y1": bottom,
                "color": _pick(rng, _ST_CARS),
            }
        )
    cars.sort(key=lambda c: c["y1"])  # nearer cars (lower on screen) are drawn last
    return {"ground": ground, "walk": walk, "blocks": blocks, "trees": trees, "cars": cars}


def _car_parts(yy, xx, car: dict) -> tuple[Mask, Mask, np.ndarray]:
    """Masks of a car's body and cabin, plus its vertical coordinate v in [0, 1]."""
    h = car["y1"] - car["y0"]
    length = car["x1"] - car["x0"]
    split = car["y0"] + 0.42 * h
    body = _rect(yy, xx, split, car["y1"], car["x0"], car["x1"])
    cabin = _rect(yy, xx, car["y0"], split, car["x0"] + 0.22 * length, car["x1"] - 0.18 * length)
    v = np.clip((yy - car["y0"]) / h, 0.0, 1.0)
    return body, cabin, v


def _street_labels(lay: dict, yy, xx) -> np.ndarray:
    """Integer label map of the street layout (drawn back to front)."""
    size = yy.shape[0]
    labels = np.full((size, size), _ST_SKY, dtype=np.int64)
    for b in lay["blocks"]:
        if b["present"]:
            labels[_rect(yy, xx, b["top"], lay["ground"], b["x0"], b["x1"])] = _ST_BUILDING
    labels[np.broadcast_to(yy >= lay["ground"], labels.shape)] = _ST_SIDEWALK
    labels[np.broadcast_to(yy >= lay["ground"] + lay["walk"], labels.shape)] = _ST_ROAD
    for t in lay["trees"]:
        half = t["trunk_w"] / 2
        labels[_rect(yy, xx, t["cy"], lay["ground"], t["cx"] - half, t["cx"] + half)] = _ST_TRUNK
        labels[_ellipse_value(yy, xx, t["cy"], t["cx"], t["ry"], t["rx"]) < 1.0] = _ST_TREE
    for car in lay["cars"]:
        body, cabin, _ = _car_parts(yy, xx, car)
        labels[body | cabin] = _ST_CAR
    return labels


def _street_sky(rng, lay: dict, yy, size: int) -> Image:
    """Blue vertical gradient (deep at top, pale at the horizon) with soft white clouds."""
    t = np.clip(yy / lay["ground"], 0.0, 1.0)[..., None] * np.ones((1, size, 1))
    top, horizon = np.array([0.22, 0.42, 0.78]), np.array([0.72, 0.83, 0.95])
    sky = top + (horizon - top) * t
    cloud = _value_noise(rng, size, 3, 5) * 0.6 + _value_noise(rng, size, 6, 10) * 0.4
    amount = np.clip((cloud - 0.55) * 3.5, 0.0, 0.85)[..., None]
    return sky * (1.0 - amount) + 0.97 * amount


def _street_buildings(rng, lay: dict, yy, xx, size: int) -> Image:
    """Walls with noisy texture, a window grid that follows each block's outline, dark seams."""
    texture = 0.82 + 0.3 * _fractal_noise(rng, size, 8, 3) + 0.06 * rng.random((size, size))
    img = np.zeros((size, size, 3))
    lit_table = rng.random(256) < 0.18
    for j, b in enumerate(lay["blocks"]):
        width = b["x1"] - b["x0"]
        n_cols = max(1, round(width / 0.055))
        u = (xx - b["x0"]) / width * n_cols
        v = (yy - b["top"] - 0.025) / 0.07
        cell_u, cell_v = _frac(u), _frac(v)
        window = (
            (cell_u > 0.25)
            & (cell_u < 0.75)
            & (cell_v > 0.3)
            & (cell_v < 0.8)
            & (v > 0)
            & (yy < lay["ground"] - 0.03)
        )
        wall = _tint(b["wall"], texture)
        lit = lit_table[(np.floor(u).astype(np.int64) * 7 + np.floor(v).astype(np.int64) * 13 + j * 31) % 256]
        glass = np.where((window & lit)[..., None], [0.95, 0.85, 0.5], [0.14, 0.18, 0.25])
        part = np.where(window[..., None], glass * (0.8 + 0.25 * texture[..., None]), wall)
        seam = np.broadcast_to((xx - b["x0"]) < _min_width(size, 0.008, 1.0), (size, size))
        part[seam] *= 0.6
        block = _rect(yy, xx, b["top"], lay["ground"], b["x0"], b["x1"])
        _paint(img, block, part)
    return img


def _street_ground(rng, lay: dict, yy, xx, size: int) -> Image:
    """Asphalt with grain and a dashed lane mark; paved sidewalk with tile joints."""
    grain = 0.85 + 0.25 * _value_noise(rng, size, size // 2, size // 2) + 0.1 * rng.random((size, size))
    img = _tint([0.3, 0.3, 0.32], grain)
    road_top = lay["ground"] + lay["walk"]
    lane_y = road_top + (1.0 - road_top) * 0.45
    lane = (np.abs(yy - lane_y) < _min_width(size, 0.012, 1.0) / 2) & (_frac(xx * 5.0) < 0.5)
    _paint(img, np.broadcast_to(lane, (size, size)), [0.92, 0.92, 0.85])
    tiles = (_frac(xx / 0.05) < 0.12) | (np.abs(yy - lay["ground"] - lay["walk"] / 2) < 0.003)
    walk_shade = np.where(tiles, 0.75, 1.0) * (0.9 + 0.1 * grain)
    walk = np.broadcast_to((yy >= lay["ground"]) & (yy < road_top), (size, size))
    _paint(img, walk, _tint([0.68, 0.66, 0.63], walk_shade))
    return img


def _street_trees(rng, lay: dict, yy, xx, size: int) -> tuple[Image, Image]:
    """Leafy crowns (clumpy green noise, darker underneath) and bark-textured trunks."""
    leaves = _fractal_noise(rng, size, max(2, size // 8), 3)
    crown = np.zeros((size, size))
    for t in lay["trees"]:
        inside = _ellipse_value(yy, xx, t["cy"], t["cx"], t["ry"], t["rx"]) < 1.0
        v = np.clip((yy - t["cy"] + t["ry"]) / (2 * t["ry"]), 0.0, 1.0)
        crown = np.where(inside, 1.15 - 0.5 * v, crown)
    shade = crown * (0.45 + 0.9 * leaves)
    green = _tint([0.2, 0.45, 0.14], shade) + _tint([0.05, 0.0, 0.0], leaves)
    bark = _tint([0.36, 0.24, 0.13], 0.8 + 0.4 * _value_noise(rng, size, 2, size // 2))
    return green, bark


def _street_cars(lay: dict, yy, xx, size: int) -> Image:
    """Cars shaded top-light/bottom-dark, glass cabins and dark wheels, nearest drawn last."""
    img = np.zeros((size, size, 3))
    for car in lay["cars"]:
        body, cabin, v = _car_parts(yy, xx, car)
        length = car["x1"] - car["x0"]
        h = car["y1"] - car["y0"]
        shade = np.broadcast_to(1.2 - 0.6 * v, (size, size))
        paint = _tint(car["color"], shade) + 0.05
        u = (xx - car["x0"]) / length
        glass_u = _frac(u * 3.0) > 0.1
        glass = cabin & (v > 0.12) & np.broadcast_to(glass_u, (size, size))
        glass_shade = np.broadcast_to(1.2 - 0.8 * v, (size, size))[glass]
        paint[glass] = np.outer(glass_shade, [0.28, 0.36, 0.44])
        wheel_r = 0.3 * h
        for wx in (car["x0"] + 0.2 * length, car["x1"] - 0.2 * length):
            wheel = (_ellipse_value(yy, xx, car["y1"], wx, wheel_r, wheel_r) < 1.0) & body
            paint[wheel] = [0.06, 0.06, 0.07]
        _paint(img, body | cabin, paint)
    return img


def _make_labels2street(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Street scene pair: A = flat semantic labels, B = textured, shaded photo-like street."""
    yy, xx = _coords(size)
    lay = _street_layout(rng, size)
    labels = _street_labels(lay, yy, xx)
    out = _street_sky(rng, lay, yy, size)
    buildings = _street_buildings(rng, lay, yy, xx, size)
    ground = _street_ground(rng, lay, yy, xx, size)
    green, bark = _street_trees(rng, lay, yy, xx, size)
    cars = _street_cars(lay, yy, xx, size)
    _paint(out, labels == _ST_BUILDING, buildings)
    _paint(out, (labels == _ST_ROAD) | (labels == _ST_SIDEWALK), ground)
    _paint(out, labels == _ST_TREE, green)
    _paint(out, labels == _ST_TRUNK, bark)
    _paint(out, labels == _ST_CAR, cars)
    return _palette_image(labels, _ST_PALETTE), out


# --------------------------------------------------------------------------------------------
# map2aerial: map tiles -> aerial photograph
# --------------------------------------------------------------------------------------------

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


def _map_layout(rng, yy, xx, size: int) -> dict:
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
        p = _uniform(rng, 0.15, 0.85)
        d, along = (xx, yy) if vertical else (yy, xx)
        highway = np.broadcast_to(np.abs(d - p) < max(0.035, 2.0 / size), road.shape).copy()
        marking = (
            np.broadcast_to((np.abs(d - p) < 0.6 / size) & (_frac(along * 8.0) < 0.55), road.shape) & highway
        )
    parks = rng.random((len(hy) + 1, len(vx) + 1)) < 0.28
    park = parks[np.searchsorted(hy, yy[:, 0])[:, None], np.searchsorted(vx, xx[0])[None, :]]
    lot = _uniform(rng, 0.05, 0.09)
    return {
        "road": road,
        "highway": highway,
        "marking": marking,
        "park": park,
        "water": _map_water(rng, yy, xx, size),
        "lot_u": _lot_coords(vx, vw, xx, lot),
        "lot_v": _lot_coords(hy, hw, yy, lot),
    }


def _map_water(rng, yy, xx, size: int) -> Mask:
    """A winding river band or a wobbly lake (or, rarely, no water)."""
    wobble = _value_noise(rng, size, 2, 2) - 0.5
    choice = rng.random()
    if choice < 0.55:
        d = rng.random(2) - 0.5
        n = d / np.sqrt(d[0] * d[0] + d[1] * d[1] + 1e-6)
        cy, cx = _uniform(rng, 0.3, 0.7), _uniform(rng, 0.3, 0.7)
        dist = (yy - cy) * n[0] + (xx - cx) * n[1] + 0.25 * wobble
        return np.abs(dist) < _uniform(rng, 0.06, 0.12)
    if choice < 0.9:
        cy, cx = _uniform(rng, 0.2, 0.8), _uniform(rng, 0.2, 0.8)
        ry, rx = _uniform(rng, 0.12, 0.25), _uniform(rng, 0.12, 0.25)
        return _ellipse_value(yy, xx, cy, cx, ry, rx) + 1.2 * wobble < 1.0
    return np.zeros((size, size), dtype=bool)


def _map_labels(lay: dict, size: int) -> np.ndarray:
    """Label map: blocks, parks, water over them, roads (bridges) and highway on top."""
    labels = np.where(lay["park"], _MP_PARK, _MP_BLOCK).astype(np.int64)
    labels = np.broadcast_to(labels, (size, size)).copy()
    labels[lay["water"]] = _MP_WATER
    labels[lay["road"]] = _MP_ROAD
    labels[lay["highway"]] = _MP_HIGHWAY
    return labels


def _aerial_roofs(rng, lay: dict, size: int) -> Image:
    """Roofs on the lot grid of each block: gable shading, varied tones, alleys with shadows."""
    u = np.broadcast_to(lay["lot_u"], (size, size))
    v = np.broadcast_to(lay["lot_v"], (size, size))
    cu, cv = _frac(u), _frac(v)
    iu = np.floor(u).astype(np.int64) % 32
    iv = np.floor(v).astype(np.int64) % 32
    tones = rng.integers(0, len(_MP_ROOFS), size=(32, 32))
    roof = (cu > 0.1) & (cu < 0.9) & (cv > 0.1) & (cv < 0.9)
    colors = _MP_ROOFS[tones[iv, iu]] * (0.9 + 0.2 * rng.random((32, 32, 1)))[iv, iu]
    gable = np.where(cu < 0.5, 0.82, 1.08) * (0.92 + 0.1 * rng.random((size, size)))
    roofs = colors * gable[..., None]
    alley = _tint([0.42, 0.41, 0.38], 0.9 + 0.15 * rng.random((size, size)))
    off = max(1, size // 64)
    alley[~roof & _shift(roof, off, off)] *= 0.45
    return np.where(roof[..., None], roofs, alley)


def _aerial_vegetation(rng, size: int) -> Image:
    """Dark, clumpy tree canopies over lighter grass: strongly textured green."""
    clumps = _fractal_noise(rng, size, max(2, size // 10), 3)
    canopy = _smoothstep(np.clip((clumps - 0.45) * 4.0, 0.0, 1.0))
    fine = 0.75 + 0.5 * rng.random((size, size))
    grass = np.array([0.3, 0.42, 0.18])
    trees = np.array([0.08, 0.2, 0.07])
    base = grass + (trees - grass) * canopy[..., None]
    return base * fine[..., None]


def _aerial_water(rng, yy, xx, size: int) -> Image:
    """Deep blue-green water with wind ripples (waves bent by low-frequency noise)."""
    bend = _value_noise(rng, size, 3, 3)
    angle = rng.random(2) - 0.5
    phase = (yy * angle[0] + xx * angle[1]) * 40.0 + 3.0 * bend
    ripples = _wave(phase) * (0.5 + 0.5 * _value_noise(rng, size, 4, 4))
    shade = 0.8 + 0.35 * ripples + 0.08 * rng.random((size, size))
    return _tint([0.1, 0.24, 0.3], shade)


def _aerial_roads(rng, labels: np.ndarray, marking: Mask, size: int) -> Image:
    """Asphalt with grain; highways slightly lighter with a pale dashed centre line."""
    grain = 0.85 + 0.3 * rng.random((size, size))
    img = _tint([0.33, 0.33, 0.34], grain)
    img[labels == _MP_HIGHWAY] *= 1.25
    img[marking] = [0.85, 0.82, 0.6]
    return img


def _make_map2aerial(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Map pair: A = flat map colours, B = aerial photo (roofs, vegetation, water, asphalt)."""
    yy, xx = _coords(size)
    lay = _map_layout(rng, yy, xx, size)
    labels = _map_labels(lay, size)
    out = _aerial_roofs(rng, lay, size)
    _paint(out, labels == _MP_PARK, _aerial_vegetation(rng, size))
    _paint(out, labels == _MP_WATER, _aerial_water(rng, yy, xx, size))
    _paint(out, labels >= _MP_ROAD, _aerial_roads(rng, labels, lay["marking"], size))
    return _palette_image(labels, _MP_PALETTE), out


# --------------------------------------------------------------------------------------------
# seg2facade: CMP-facade-like labels -> building facade
# --------------------------------------------------------------------------------------------

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


def _unit(t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] to [0, 1] (local coordinates inside a window, door or balcony)."""
    return (t - lo) / (hi - lo)


def _facade_layout(rng, yy, xx) -> dict:
    """Regular grid of floors x columns; window/door/balcony masks with local coordinates."""
    n_cols, n_floors = int(rng.integers(2, 6)), int(rng.integers(3, 7))
    top = _uniform(rng, 0.0, 0.1)
    floor_h = (1.0 - top) / (n_floors - 1 + _uniform(rng, 1.15, 1.5))
    ground_y = top + (n_floors - 1) * floor_h
    mu, mt, mb = _uniform(rng, 0.2, 0.33), _uniform(rng, 0.18, 0.3), _uniform(rng, 0.72, 0.82)
    door_col = int(rng.integers(n_cols))
    has_balcony = rng.random(n_floors - 1) < 0.35
    blank = rng.random((n_floors - 1, n_cols)) < 0.08

    col = np.minimum(np.floor(xx * n_cols).astype(np.int64), n_cols - 1)
    cu = _frac(xx * n_cols)
    fv = (yy - top) / floor_h
    floor_i = np.clip(np.floor(fv).astype(np.int64), 0, n_floors - 2)
    cv = _frac(fv)
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
    return {
        "window": window,
        "shop": shop,
        "door": door,
        "balcony": balcony,
        "sill": sill,
        "win_u": np.where(ground, _unit(cu, 0.12, 0.88), _unit(cu, mu, 1.0 - mu)),
        "win_v": np.where(ground, _unit(gv, 0.2, 0.85), _unit(cv, mt, mb)),
        "door_u": _unit(cu, 0.28, 0.72),
        "door_v": _unit(gv, 0.22, 1.0),
        "bal_u": _unit(cu, bal_lo, bal_hi),
        "bal_v": _unit(cv, mb - 0.22, mb + 0.06),
        "sill_v": _unit(cv, mb, mb + 0.05),
    }


def _facade_labels(lay: dict, size: int) -> np.ndarray:
    """Integer label map; balconies are drawn over windows, as in the CMP annotations."""
    labels = np.full((size, size), _FC_WALL, dtype=np.int64)
    labels[lay["window"] | lay["shop"]] = _FC_WINDOW
    labels[lay["door"]] = _FC_DOOR
    labels[lay["balcony"]] = _FC_BALCONY
    return labels


def _facade_wall(rng, lay: dict, yy, size: int) -> Image:
    """Plaster: blotchy low-frequency noise, fine grain, grime towards the street, stone sills."""
    plaster = _pick(rng, _FC_PLASTER)
    texture = 0.86 + 0.22 * _fractal_noise(rng, size, 4, 4) + 0.07 * rng.random((size, size))
    img = _tint(plaster, texture * (1.02 - 0.12 * yy))
    sill_shade = np.where(lay["sill_v"] > 0.7, 0.8, 1.05)
    _paint(img, lay["sill"], _tint([0.88, 0.86, 0.8], sill_shade * texture))
    return img


def _facade_glass(rng, lay: dict, size: int) -> Image:
    """Windows: dark glass with a sky tint and a diagonal reflection, framed and cross-barred."""
    u, v = lay["win_u"], lay["win_v"]
    frame_color = np.array([0.92, 0.9, 0.86]) if rng.random() < 0.6 else np.array([0.3, 0.2, 0.12])
    streak = _uniform(rng, 0.3, 1.2)
    reflection = np.clip(1.0 - np.abs(u + 0.6 * v - streak) / 0.18, 0.0, 1.0)
    glass = np.array([0.07, 0.09, 0.13]) + _tint([0.12, 0.16, 0.22], 1.0 - v) + 0.35 * reflection[..., None]
    t = 0.1
    frame = (
        (u < t) | (u > 1 - t) | (v < t) | (v > 1 - t) | (np.abs(u - 0.5) < t / 2) | (np.abs(v - 0.35) < t / 2)
    )
    return np.where(frame[..., None], frame_color, glass)


def _facade_door(rng, lay: dict, size: int) -> Image:
    """Wooden door: vertical grain, two recessed panels, dark frame."""
    u, v = lay["door_u"], lay["door_v"]
    grain = _value_noise(rng, size, 2, max(2, size // 3))
    wood = _pick(rng, np.array([[0.42, 0.25, 0.12], [0.3, 0.17, 0.08], [0.5, 0.33, 0.18]]))
    pu = _frac(u * 2.0)
    panel = (pu > 0.2) & (pu < 0.8) & (_frac(v * 2.0) > 0.12) & (_frac(v * 2.0) < 0.88)
    shade = (0.75 + 0.45 * grain) * np.where(panel, 0.82, 1.0)
    frame = (u < 0.07) | (u > 0.93) | (v < 0.05)
    return _tint(wood, np.where(frame, 0.5, shade))


def _facade_railing(lay: dict, behind: Image, size: int) -> Image:
    """Balcony: dark metal rails and bars, with the (shaded) facade visible between the bars."""
    u, v = lay["bal_u"], lay["bal_v"]
    bars = _frac(u * 9.0) < 0.3
    metal = (v < 0.14) | (v > 0.82) | bars
    highlight = np.where(v < 0.07, 1.6, 1.0)
    iron = _tint([0.12, 0.12, 0.13], highlight)
    return np.where(metal[..., None], iron, behind * 0.7)


def _make_seg2facade(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Facade pair: A = wall/window/door/balcony labels, B = plaster, glass, wood and railings."""
    yy, xx = _coords(size)
    lay = _facade_layout(rng, yy, xx)
    labels = _facade_labels(lay, size)
    out = _facade_wall(rng, lay, yy, size)
    _paint(out, lay["window"] | lay["shop"], _facade_glass(rng, lay, size))
    _paint(out, lay["door"], _facade_door(rng, lay, size))
    _paint(out, lay["balcony"], _facade_railing(lay, out.copy(), size))
    return _palette_image(labels, _FC_PALETTE), out


# --------------------------------------------------------------------------------------------
# edges2bag: edge drawing -> shaded handbag photo
# --------------------------------------------------------------------------------------------


def _pow_even(x: np.ndarray, p: int) -> np.ndarray:
    """x**p for even integer p by repeated multiplication (exact and portable)."""
    x2 = x * x
    out = x2
    for _ in range(p // 2 - 1):
        out = out * x2
    return out


def _bag_layout(rng, size: int) -> dict:
    """Random bag: trapezoid-ish rounded body, arched handle, optional flap and clasp."""
    width, height = _uniform(rng, 0.4, 0.72), _uniform(rng, 0.28, 0.48)
    handle_h = _uniform(rng, 0.1, min(0.25, 0.88 - height))
    cx = _uniform(rng, width / 2 + 0.05, 0.95 - width / 2)
    top = _uniform(rng, 0.05 + handle_h, 0.95 - height)
    return {
        "cx": cx,
        "top": top,
        "height": height,
        "half_top": width / 2 * _uniform(rng, 0.65, 1.0),
        "half_bottom": width / 2,
        "power": 4 + 2 * int(rng.integers(3)),  # 4: soft corners .. 8: boxy
        "handle_rx": width / 2 * _uniform(rng, 0.3, 0.7),
        "handle_ry": handle_h,
        "handle_w": max(_uniform(rng, 0.025, 0.045), 2.0 / size),
        "flap": _uniform(rng, 0.25, 0.45) if rng.random() < 0.65 else None,
        "clasp": bool(rng.random() < 0.5),
        "line": _min_width(size, 0.007, 1.3),
    }


def _bag_body_value(lay: dict, yy, xx, inset: float) -> np.ndarray:
    """Superellipse value of the body (< 1 inside), shrunk by ``inset`` on every side."""
    cy = lay["top"] + lay["height"] / 2
    t = np.clip((yy - lay["top"]) / lay["height"], 0.0, 1.0)
    half_w = lay["half_top"] + (lay["half_bottom"] - lay["half_top"]) * t - inset
    half_h = lay["height"] / 2 - inset
    return _pow_even((xx - lay["cx"]) / half_w, lay["power"]) + _pow_even((yy - cy) / half_h, lay["power"])


def _bag_handle_value(lay: dict, yy, xx, grow: float) -> np.ndarray:
    """Ellipse value of the handle arch centred on the body top, grown by ``grow``."""
    return _ellipse_value(yy, xx, lay["top"], lay["cx"], lay["handle_ry"] + grow, lay["handle_rx"] + grow)


def _bag_masks(lay: dict, yy, xx) -> dict:
    """Regions (body, handle, flap) and edge lines of the bag, shared by A and B."""
    line = lay["line"]
    hw = lay["handle_w"]
    body = _bag_body_value(lay, yy, xx, 0.0) < 1.0
    body_edge = body & ~(_bag_body_value(lay, yy, xx, line) < 1.0)
    above = yy < lay["top"] + lay["height"] * 0.1
    outer = _bag_handle_value(lay, yy, xx, 0.0) < 1.0
    inner = _bag_handle_value(lay, yy, xx, -hw) < 1.0
    handle = outer & ~inner & above & ~body
    handle_edge = handle & ~(
        (_bag_handle_value(lay, yy, xx, -line) < 1.0) & ~(_bag_handle_value(lay, yy, xx, line - hw) < 1.0)
    )
    edges = body_edge | handle_edge
    flap = np.zeros_like(body)
    if lay["flap"] is not None:
        flap_y = lay["top"] + lay["height"] * lay["flap"]
        flap = body & (yy < flap_y)
        edges |= body & (np.abs(yy - flap_y) < line / 2)
        if lay["clasp"]:
            r = max(0.025, 2.0 / yy.shape[0])
            ring = _ellipse_value(yy, xx, flap_y, lay["cx"], r, r)
            edges |= (ring < 1.0) & ~(_ellipse_value(yy, xx, flap_y, lay["cx"], r - line, r - line) < 1.0)
    return {"body": body, "handle": handle, "flap": flap, "edges": edges}


def _bag_render(rng, lay: dict, masks: dict, yy, xx, size: int) -> Image:
    """White studio background; body coloured by a random hue, rim-darkened, lit from the top."""
    color = _hsv_to_rgb(float(rng.random()), _uniform(rng, 0.45, 0.9), _uniform(rng, 0.45, 0.9))
    img = np.ones((size, size, 3))
    rim = np.clip(_bag_body_value(lay, yy, xx, 0.0), 0.0, 1.0)
    v = np.clip((yy - lay["top"]) / lay["height"], 0.0, 1.0)
    leather = 0.93 + 0.1 * _value_noise(rng, size, size // 3, size // 3) + 0.04 * rng.random((size, size))
    shade = (1.15 - 0.35 * rim - 0.3 * v) * leather
    flap_y = lay["top"] + lay["height"] * (lay["flap"] or 0.0)
    under_flap = masks["body"] & (yy >= flap_y) & (yy < flap_y + 0.05) & (lay["flap"] is not None)
    shade = np.where(masks["flap"], shade * 1.1, np.where(under_flap, shade * 0.75, shade))
    _paint(img, masks["body"], _tint(color, shade))
    ring = np.sqrt(np.clip(_bag_handle_value(lay, yy, xx, 0.0), 0.0, 4.0))
    inner = 1.0 - lay["handle_w"] / max(lay["handle_rx"], lay["handle_ry"])
    tube = np.clip(np.abs((ring - inner) / (1.0 - inner) * 2.0 - 1.0), 0.0, 1.0)
    _paint(img, masks["handle"], _tint(color, (0.95 - 0.45 * tube) * leather))
    _paint(img, masks["edges"] & (masks["body"] | masks["handle"]), _tint(color, 0.35 * leather))
    if lay["flap"] is not None and lay["clasp"]:
        r = max(0.025, 2.0 / size)
        clasp = _ellipse_value(yy, xx, flap_y, lay["cx"], r, r) < 1.0
        _paint(img, clasp & ~masks["edges"], [0.85, 0.72, 0.3])
    return img


def _make_edges2bag(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Bag pair: A = black-on-white edge drawing, B = the shaded, coloured bag on white."""
    yy, xx = _coords(size)
    lay = _bag_layout(rng, size)
    masks = _bag_masks(lay, yy, xx)
    sketch = np.where(masks["edges"][..., None], 0.0, np.ones((size, size, 3)))
    return sketch, _bag_render(rng, lay, masks, yy, xx, size)


# --------------------------------------------------------------------------------------------
# Style kinds (unpaired style transfer): photo -> pastel (Monet-like), photo -> outline
# (Ukiyo-e-like). Both share the photo domain A: one random landscape rendered as a photo,
# then re-rendered in the target style from the same layout. The layout and the photo consume
# the generator first, so A never depends on which style is drawn afterwards.
# --------------------------------------------------------------------------------------------

(
    _PH_SKY,
    _PH_SUN,
    _PH_MOUNTAIN,
    _PH_SNOW,
    _PH_HILL,
    _PH_FIELD,
    _PH_MEADOW,
    _PH_WATER,
    _PH_CROWN,
    _PH_TRUNK,
    _PH_WALL,
    _PH_ROOF,
    _PH_DOOR,
    _PH_CLOUD,  # only in the outline rendering: stylised clouds become outlined shapes
) = range(14)

# Parallel colour tables: row i of a photo table and of its outline table describe the same
# material, so the outline colours follow the photo's choice (a wheat field stays yellow).
_PH_SKIES = np.array(  # (top, horizon): day, golden hour, misty morning
    [
        [[0.22, 0.42, 0.78], [0.72, 0.84, 0.95]],
        [[0.3, 0.36, 0.66], [0.98, 0.74, 0.45]],
        [[0.5, 0.58, 0.7], [0.86, 0.86, 0.82]],
    ]
)
_OL_SKIES = np.array(
    [
        [[0.08, 0.22, 0.6], [0.55, 0.8, 0.95]],
        [[0.16, 0.2, 0.55], [1.0, 0.62, 0.22]],
        [[0.28, 0.4, 0.62], [0.95, 0.9, 0.72]],
    ]
)
_PH_MOUNTAINS = np.array([[0.4, 0.44, 0.55], [0.5, 0.42, 0.48], [0.46, 0.4, 0.34]])
_OL_MOUNTAINS = np.array([[0.18, 0.27, 0.58], [0.45, 0.22, 0.5], [0.6, 0.34, 0.16]])
_PH_HILLS = np.array([[0.28, 0.42, 0.2], [0.38, 0.47, 0.24], [0.24, 0.36, 0.26]])
_OL_HILLS = np.array([[0.2, 0.62, 0.2], [0.5, 0.7, 0.12], [0.1, 0.5, 0.38]])
_PH_FIELDS = np.array([[0.36, 0.52, 0.2], [0.6, 0.58, 0.3], [0.72, 0.6, 0.28]])
_OL_FIELDS = np.array([[0.42, 0.75, 0.12], [0.82, 0.8, 0.2], [0.98, 0.7, 0.1]])
_PH_MEADOWS = np.array([[0.26, 0.44, 0.18], [0.5, 0.38, 0.24], [0.66, 0.66, 0.34]])
_OL_MEADOWS = np.array([[0.1, 0.55, 0.22], [0.75, 0.4, 0.12], [0.92, 0.88, 0.3]])
_PH_CROWNS = np.array([[0.16, 0.32, 0.12], [0.24, 0.36, 0.1], [0.1, 0.26, 0.16]])
_OL_CROWNS = np.array([[0.08, 0.45, 0.12], [0.32, 0.52, 0.04], [0.02, 0.36, 0.28]])
_PH_WALLS = np.array([[0.88, 0.85, 0.78], [0.8, 0.7, 0.55], [0.7, 0.36, 0.26]])
_OL_WALLS = np.array([[1.0, 0.95, 0.82], [0.98, 0.8, 0.52], [0.9, 0.3, 0.18]])
_PH_ROOFS = np.array([[0.55, 0.22, 0.15], [0.35, 0.33, 0.34], [0.5, 0.38, 0.25]])
_OL_ROOFS = np.array([[0.88, 0.18, 0.08], [0.22, 0.24, 0.4], [0.75, 0.45, 0.1]])
_OL_FIXED = {  # materials whose outline colour does not depend on a per-sample choice
    _PH_SUN: [0.92, 0.16, 0.1],
    _PH_SNOW: [1.0, 1.0, 0.96],
    _PH_WATER: [0.06, 0.3, 0.62],
    _PH_TRUNK: [0.5, 0.22, 0.08],
    _PH_DOOR: [0.32, 0.14, 0.06],
    _PH_CLOUD: [1.0, 0.98, 0.94],
}
_OL_INK = np.array([0.1, 0.08, 0.12])
_PASTEL_PAPER = np.array([0.99, 0.96, 0.92])


def _pick_styled(rng: np.random.Generator, photo: np.ndarray, outline: np.ndarray) -> dict:
    """One material: a jittered photo colour and the matching flat outline colour."""
    i = int(rng.integers(len(photo)))
    jitter = 0.92 + 0.16 * rng.random(3)
    return {"photo": np.clip(photo[i] * jitter, 0.0, 1.0), "outline": outline[i]}


def _profile(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random 1-D curve in [0, 1] along x, as a (1, size) row (ridges, shores)."""
    cells = max(1, int(cells))
    grid = rng.random(cells + 1)
    i, w = _interp_index(size, cells)
    return (grid[i] * (1.0 - w) + grid[i + 1] * w)[None, :]


def _at(row: np.ndarray, x: float) -> float:
    """Value of a (1, size) row at fractional position x (its nearest pixel column)."""
    size = row.shape[1]
    return float(row[0, min(max(int(x * size), 0), size - 1)])


def _landscape_objects(rng, size: int, horizon: float, ground_top: np.ndarray) -> list[dict]:
    """Trees and houses standing on the ground, scaled by depth and sorted back to front."""
    objects = []
    n_trees = int(rng.integers(1, 6))
    n_houses = int(rng.integers(1, 3)) if rng.random() < 0.55 else 0
    for j in range(n_trees + n_houses):
        cx = _uniform(rng, 0.04, 0.96)
        top = _at(ground_top, cx) + 0.03
        base = _uniform(rng, min(top, 0.95), 0.98)
        scale = 0.45 + 1.1 * (base - horizon) / (1.0 - horizon)
        obj = {"cx": cx, "base": base, "scale": scale, "house": j >= n_trees}
        if obj["house"]:
            w = 0.13 * scale * _uniform(rng, 0.8, 1.3)
            obj.update(
                w=w,
                wall_h=0.08 * scale * _uniform(rng, 0.8, 1.2),
                roof_h=0.06 * scale * _uniform(rng, 0.8, 1.3),
                door_x=_uniform(rng, -0.3, 0.2) * w,
                wall=_pick_styled(rng, _PH_WALLS, _OL_WALLS),
                roof=_pick_styled(rng, _PH_ROOFS, _OL_ROOFS),
            )
        else:
            conifer = bool(rng.random() < 0.4)
            ry = (0.11 if conifer else 0.085) * scale * _uniform(rng, 0.8, 1.25)
            obj.update(
                conifer=conifer,
                ry=ry,
                rx=ry * _uniform(rng, 0.45, 0.6) if conifer else ry * _uniform(rng, 0.65, 0.95),
                trunk_h=(0.03 if conifer else 0.06) * scale,
                trunk_w=_min_width(size, 0.02 * scale),
                crown=_pick_styled(rng, _PH_CROWNS, _OL_CROWNS),
            )
        objects.append(obj)
    objects.sort(key=lambda o: o["base"])  # nearer (lower) objects are drawn last
    return objects


def _landscape_layout(rng: np.random.Generator, size: int) -> dict:
    """Random landscape: sky, sun, mountains, hills, lake, fields, trees and houses."""
    sky = int(rng.integers(len(_PH_SKIES)))
    horizon = _uniform(rng, 0.42, 0.62)
    lay = {
        "sky": sky,
        "sky_jitter": 0.94 + 0.12 * rng.random(3),
        "horizon": horizon,
        "cloudiness": _uniform(rng, 0.3, 1.0),
        "sun": None,
        "mountains": None,
        "hills": None,
        "shore": None,
        "meadow": None,
    }
    if rng.random() < 0.45:
        r = max(_uniform(rng, 0.04, 0.07), 1.5 / size)
        lay["sun"] = (_uniform(rng, 0.1, max(0.12, horizon - 0.22)), _uniform(rng, 0.12, 0.88), r)
    if rng.random() < 0.8:
        amp = _uniform(rng, 0.18, min(0.38, horizon - 0.08))
        coarse = _profile(rng, size, int(rng.integers(2, 4)))
        fine = 1.0 - np.abs(2.0 * _profile(rng, size, int(rng.integers(3, 6))) - 1.0)  # sharp peaks
        ridge = horizon - amp * (0.5 * coarse + 0.5 * fine)
        snow = _uniform(rng, 0.55, 0.75) if rng.random() < 0.5 else None
        lay["mountains"] = {
            "ridge": ridge,
            "amp": amp,
            "snow": snow,
            "mat": _pick_styled(rng, _PH_MOUNTAINS, _OL_MOUNTAINS),
        }
    if rng.random() < 0.7:
        bump = np.clip((_profile(rng, size, int(rng.integers(2, 4))) - 0.35) / 0.65, 0.0, 1.0)
        lay["hills"] = {
            "top": horizon - _uniform(rng, 0.05, 0.14) * _smoothstep(bump),
            "mat": _pick_styled(rng, _PH_HILLS, _OL_HILLS),
        }
    ground_top = np.full((1, size), horizon)
    if rng.random() < 0.5:
        depth = _uniform(rng, 0.1, 0.24)
        ground_top = horizon + depth + 0.08 * (_profile(rng, size, 3) - 0.5)
        lay["shore"] = ground_top
    lay["field"] = _pick_styled(rng, _PH_FIELDS, _OL_FIELDS)
    if rng.random() < 0.6:
        lay["meadow"] = {
            "y": _uniform(rng, float(ground_top.max()) + 0.08, 0.9),
            "slope": _uniform(rng, -0.45, 0.45),
            "wobble": 0.05 * (_profile(rng, size, 4) - 0.5),
            "vanish": _uniform(rng, 0.2, 0.8),
            "mat": _pick_styled(rng, _PH_MEADOWS, _OL_MEADOWS),
        }
    lay["objects"] = _landscape_objects(rng, size, horizon, ground_top)
    return lay


def _object_masks(obj: dict, yy, xx) -> dict[int, Mask]:
    """Label masks of one tree (crown, trunk) or house (wall, roof, door)."""
    cx, base = obj["cx"], obj["base"]
    if obj["house"]:
        w, wall_h, roof_h = obj["w"], obj["wall_h"], obj["roof_h"]
        eaves = base - wall_h
        apex = eaves - roof_h
        wall = _rect(yy, xx, eaves, base, cx - w / 2, cx + w / 2)
        roof = (yy >= apex) & (yy < eaves) & (np.abs(xx - cx) < 0.62 * w * (yy - apex) / roof_h)
        dx = cx + obj["door_x"]
        door = _rect(yy, xx, base - 0.55 * wall_h, base, dx - 0.1 * w, dx + 0.1 * w)
        return {_PH_WALL: wall, _PH_ROOF: roof, _PH_DOOR: door}
    half = obj["trunk_w"] / 2
    trunk = _rect(yy, xx, base - obj["trunk_h"] - obj["ry"], base, cx - half, cx + half)
    top = base - obj["trunk_h"]
    if obj["conifer"]:
        apex = top - 2.0 * obj["ry"]
        crown = (yy >= apex) & (yy < top) & (np.abs(xx - cx) < obj["rx"] * (yy - apex) / (2.0 * obj["ry"]))
    else:
        crown = _ellipse_value(yy, xx, top - 0.8 * obj["ry"], cx, obj["ry"], obj["rx"]) < 1.0
    return {_PH_TRUNK: trunk, _PH_CROWN: crown}


def _landscape_labels(lay: dict, yy, xx) -> tuple[np.ndarray, list[tuple[dict, dict]]]:
    """Label map drawn back to front, and each object's masks (for per-object shading)."""
    size = yy.shape[0]
    labels = np.full((size, size), _PH_SKY, dtype=np.int64)
    full = (size, size)
    if lay["sun"] is not None:
        cy, cx, r = lay["sun"]
        labels[_ellipse_value(yy, xx, cy, cx, r, r) < 1.0] = _PH_SUN
    mountains = lay["mountains"]
    if mountains is not None:
        rock = np.broadcast_to(yy >= mountains["ridge"], full)
        labels[rock] = _PH_MOUNTAIN
        if mountains["snow"] is not None:
            line = lay["horizon"] - mountains["amp"] * mountains["snow"]
            labels[rock & np.broadcast_to(yy < line, full)] = _PH_SNOW
    if lay["hills"] is not None:
        labels[np.broadcast_to(yy >= lay["hills"]["top"], full)] = _PH_HILL
    labels[np.broadcast_to(yy >= lay["horizon"], full)] = _PH_WATER if lay["shore"] is not None else _PH_FIELD
    if lay["shore"] is not None:
        labels[np.broadcast_to(yy >= lay["shore"], full)] = _PH_FIELD
    meadow = lay["meadow"]
    if meadow is not None:
        edge = meadow["y"] + meadow["slope"] * (xx - 0.5) + meadow["wobble"]
        labels[(yy >= edge) & (labels == _PH_FIELD)] = _PH_MEADOW
    parts = []
    for obj in lay["objects"]:
        masks = _object_masks(obj, yy, xx)
        for label, mask in masks.items():
            labels[mask] = label
        parts.append((obj, masks))
    return labels, parts


def _landscape_photo(rng, lay: dict, labels, parts, yy, xx, size: int) -> tuple[Image, Field, dict]:
    """Photo rendering as a smooth ``base`` (colours, light, haze) times a texture ``detail``.

    Returns the base (which the pastel style repaints), the detail field and the fields the
    styles reuse (cloud cover, water ripples), all drawn from ``rng`` in a fixed order.
    """
    full = (size, size)
    top, horizon_c = _PH_SKIES[lay["sky"]] * lay["sky_jitter"]
    h0 = lay["horizon"]
    t_sky = np.broadcast_to(np.clip(yy / h0, 0.0, 1.0), full)[..., None]
    base = top + (horizon_c - top) * t_sky
    cloud = 0.6 * _value_noise(rng, size, 6, 3) + 0.4 * _value_noise(rng, size, 12, 6)
    cover = np.clip((cloud - 0.5) * 3.5, 0.0, 0.85) * lay["cloudiness"]
    cloud_c = np.array([1.0, 0.97, 0.95]) if lay["sky"] != 1 else np.array([1.0, 0.86, 0.78])
    base = base * (1.0 - cover[..., None]) + cloud_c * cover[..., None]
    detail = np.ones(full)
    if lay["sun"] is not None:
        cy, cx, r = lay["sun"]
        dist = np.sqrt(_ellipse_value(yy, xx, cy, cx, r, r))
        glow = np.clip(1.0 - dist / 5.0, 0.0, 1.0)
        base = base + (glow * glow * 0.45)[..., None] * np.array([1.0, 0.85, 0.6])
        _paint(base, labels == _PH_SUN, np.array([1.0, 0.97, 0.86]))

    mountains = lay["mountains"]
    if mountains is not None:
        ridge = mountains["ridge"]
        slope = np.concatenate([ridge[:, 1:] - ridge[:, :-1], np.zeros((1, 1))], 1) * size
        depth = np.clip((yy - ridge) / (h0 - ridge + 1e-6), 0.0, 1.0)
        light = 1.0 - np.clip(slope * 0.5, -0.2, 0.2) * (1.0 - depth)
        haze = (0.15 + 0.4 * depth)[..., None]
        rock = _tint(mountains["mat"]["photo"], light * (1.0 - 0.15 * depth))
        rock = rock * (1.0 - haze) + horizon_c * haze
        _paint(base, labels == _PH_MOUNTAIN, rock)
        _paint(base, labels == _PH_SNOW, _tint([0.94, 0.95, 0.98], light))
        crag = 0.78 + 0.4 * _fractal_noise(rng, size, 4, 3)
        _paint(detail, (labels == _PH_MOUNTAIN) | (labels == _PH_SNOW), crag)
    if lay["hills"] is not None:
        v = np.clip((yy - lay["hills"]["top"]) / 0.1, 0.0, 1.0)
        _paint(
            base,
            labels == _PH_HILL,
            _tint(lay["hills"]["mat"]["photo"], np.broadcast_to(1.1 - 0.2 * v, full)),
        )
        _paint(detail, labels == _PH_HILL, 0.7 + 0.55 * _fractal_noise(rng, size, 6, 3))

    t_ground = np.broadcast_to(np.clip((yy - h0) / (1.0 - h0), 0.0, 1.0), full)
    water = (horizon_c + (top - horizon_c) * t_ground[..., None]) * 0.78 + np.array([0.0, 0.03, 0.05])
    _paint(base, labels == _PH_WATER, water)
    ripple = _value_noise(rng, size, max(2, size // 3), 3)
    _paint(detail, labels == _PH_WATER, 0.82 + 0.36 * ripple)
    _paint(base, labels == _PH_FIELD, _tint(lay["field"]["photo"], 1.12 - 0.3 * t_ground))
    grass = 0.68 + 0.5 * _fractal_noise(rng, size, 6, 3) + 0.08 * rng.random(full)
    _paint(detail, labels == _PH_FIELD, grass)
    meadow = lay["meadow"]
    if meadow is not None:
        furrow = (xx - meadow["vanish"]) / (yy - h0 + 0.04)
        _paint(base, labels == _PH_MEADOW, _tint(meadow["mat"]["photo"], 1.1 - 0.3 * t_ground))
        _paint(detail, labels == _PH_MEADOW, (0.8 + 0.3 * _wave(furrow * 1.5)) * (0.85 + 0.3 * grass - 0.2))

    leaves = _fractal_noise(rng, size, max(2, size // 8), 3)
    bark = 0.8 + 0.4 * _value_noise(rng, size, 2, max(2, size // 2))
    for obj, masks in parts:
        if obj["house"]:
            wall_shade = np.where(xx < obj["cx"] + 0.15 * obj["w"], 1.0, 0.72)
            _paint(base, masks[_PH_WALL], _tint(obj["wall"]["photo"], np.broadcast_to(wall_shade, full)))
            roof_v = np.clip((yy - obj["base"] + obj["wall_h"] + obj["roof_h"]) / obj["roof_h"], 0.0, 1.0)
            roof_shade = np.broadcast_to(
                (0.8 + 0.3 * roof_v) * np.where(_frac(roof_v * 5.0) < 0.2, 0.85, 1.0), full
            )
            _paint(base, masks[_PH_ROOF], _tint(obj["roof"]["photo"], roof_shade))
            _paint(base, masks[_PH_DOOR], np.array([0.24, 0.16, 0.1]))
            _paint(detail, masks[_PH_WALL] | masks[_PH_ROOF], 0.92 + 0.16 * leaves)
        else:
            cy = obj["base"] - obj["trunk_h"] - 2.0 * obj["ry"]
            v = np.broadcast_to(np.clip((yy - cy) / (2.0 * obj["ry"]), 0.0, 1.0), full)
            side = np.clip((xx - obj["cx"]) / obj["rx"], -1.0, 1.0)
            _paint(base, masks[_PH_CROWN], _tint(obj["crown"]["photo"], 1.2 - 0.45 * v - 0.15 * side))
            _paint(detail, masks[_PH_CROWN], 0.5 + 0.85 * leaves)
            _paint(base, masks[_PH_TRUNK] & ~masks[_PH_CROWN], np.array([0.33, 0.22, 0.12]))
            _paint(detail, masks[_PH_TRUNK], bark)
    vignette = 1.0 - 0.35 * ((yy - 0.5) * (yy - 0.5) + (xx - 0.5) * (xx - 0.5))
    grain = 0.95 + 0.1 * rng.random(full)
    return base * vignette[..., None], detail * grain, {"cover": cover, "ripple": ripple}


def _landscape(size: int, rng: np.random.Generator) -> dict:
    """Layout, labels and photo of one landscape: everything the style kinds share."""
    yy, xx = _coords(size)
    lay = _landscape_layout(rng, size)
    labels, parts = _landscape_labels(lay, yy, xx)
    base, detail, fields = _landscape_photo(rng, lay, labels, parts, yy, xx, size)
    return {
        "lay": lay,
        "labels": labels,
        "parts": parts,
        "base": base,
        "photo": base * detail[..., None],
        "yy": yy,
        "xx": xx,
        **fields,
    }


def _box_blur(img: Image, radius: int) -> Image:
    """Separable box blur with edge clamping, as a fixed-order sum of shifted copies (exact)."""
    n = 2 * radius + 1
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="edge")
        size = img.shape[axis]
        acc = padded[:size].copy() if axis == 0 else padded[:, :size].copy()
        for k in range(1, n):
            acc += padded[k : k + size] if axis == 0 else padded[:, k : k + size]
        img = acc / n
    return img


def _luminance(img: Image) -> Field:
    """Rec. 601 luma written out per channel (no reduction, so the rounding order is fixed)."""
    return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]


def _pastel(rng: np.random.Generator, scene: dict, size: int) -> Image:
    """Monet-like: the photo's colours and light, without its texture, as soft pastel dabs.

    Each pixel takes its colour from a nearby point displaced along a brush-stroke field
    (horizontal dabs, vertical ones on the trees), which smears region borders into strokes;
    a light blur softens it, a per-dab tint breaks the colour, and mixing with warm paper keeps
    every colour light and desaturated, so there are no dark lines.
    """
    long_, short = max(2, size // 8), max(2, size // 20)
    trees = np.where(scene["labels"] == _PH_CROWN, 1.0, 0.0)
    reach = size / 20.0
    idx = np.arange(size)
    strokes = []
    for _ in range(3):
        across = _value_noise(rng, size, long_, short)  # varies fast in y: horizontal dabs
        down = _value_noise(rng, size, short, long_)
        strokes.append(across + (down - across) * trees - 0.5)
    offsets = strokes[:2]
    dy = np.floor(offsets[0] * reach).astype(np.int64)
    dx = np.floor(offsets[1] * (2.0 * reach)).astype(np.int64)
    ys = np.clip(idx[:, None] + dy, 0, size - 1)
    xs = np.clip(idx[None, :] + dx, 0, size - 1)
    soft = _box_blur(scene["base"][ys, xs], max(1, round(size / 64)))
    tint = _value_noise(rng, size, long_, short)
    soft = soft + 0.1 * (tint - 0.5)[..., None] * np.array([1.0, -0.4, -1.0])  # warm/cool dabs
    soft = soft * (1.0 + 0.14 * strokes[2])[..., None]  # light and shade of the paint dabs
    lum = _luminance(soft)[..., None]
    soft = lum + 0.85 * (soft - lum)
    return 0.3 * _PASTEL_PAPER + 0.78 * soft


def _outline(scene: dict, size: int) -> Image:
    """Ukiyo-e-like: a few flat, saturated colours per region and dark ink along region borders.

    The sky is a banded (quantised) gradient, the photo's clouds become flat white shapes and
    the lake two flat blues (light where the photo's ripples are bright).
    """
    lay, labels, yy = scene["lay"], scene["labels"].copy(), scene["yy"]
    labels[(labels == _PH_SKY) & (scene["cover"] > 0.3)] = _PH_CLOUD
    top, horizon_c = _OL_SKIES[lay["sky"]]
    bands = np.minimum(np.floor(np.clip(yy / lay["horizon"], 0.0, 1.0) * 3.0), 2.0) / 2.0
    img = np.broadcast_to(top + (horizon_c - top) * bands[..., None], (size, size, 3)).copy()
    for label, color in _OL_FIXED.items():
        _paint(img, labels == label, np.asarray(color))
    _paint(img, (labels == _PH_WATER) & (scene["ripple"] > 0.7), np.array([0.45, 0.7, 0.92]))
    for key, label in (("mountains", _PH_MOUNTAIN), ("hills", _PH_HILL), ("meadow", _PH_MEADOW)):
        if lay[key] is not None:
            _paint(img, labels == label, lay[key]["mat"]["outline"])
    _paint(img, labels == _PH_FIELD, lay["field"]["outline"])
    for obj, masks in scene["parts"]:
        for label, key in ((_PH_WALL, "wall"), (_PH_ROOF, "roof"), (_PH_CROWN, "crown")):
            if label in masks:
                _paint(img, masks[label] & (labels == label), obj[key]["outline"])
    border = np.zeros((size, size), dtype=bool)
    border[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    border[:-1] |= labels[:-1] != labels[1:]
    for step in range(max(1, round(size / 40)) - 1):  # thicken lines at large sizes
        d = 1 if step % 2 == 0 else -1
        border = border | _shift(border, d, 0) | _shift(border, 0, d)
    img[border] = _OL_INK
    return img


def _make_photo2pastel(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Style pair: A = landscape photo, B = the same landscape in soft pastel strokes."""
    scene = _landscape(size, rng)
    return scene["photo"], _pastel(rng, scene, size)


def _make_photo2outline(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Style pair: A = landscape photo, B = the same landscape as flat colours with ink outlines."""
    scene = _landscape(size, rng)
    return scene["photo"], _outline(scene, size)


# --------------------------------------------------------------------------------------------
# Registry and public API
# --------------------------------------------------------------------------------------------

_PAIR_MAKERS: dict[str, PairMaker] = {
    "labels2street": _make_labels2street,
    "map2aerial": _make_map2aerial,
    "seg2facade": _make_seg2facade,
    "edges2bag": _make_edges2bag,
    "photo2pastel": _make_photo2pastel,
    "photo2outline": _make_photo2outline,
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
    _check_kind(kind)
    size = _check_size(size)
    _check_range(start, count)
    a_all = np.empty((count, size, size, 3), dtype=np.float32)
    b_all = np.empty((count, size, size, 3), dtype=np.float32)
    for i in range(count):
        a_all[i], b_all[i] = make_pair(kind, size, sample_rng(kind, start + i, seed))
    return _to_tensor(a_all), _to_tensor(b_all)


def generate_unpaired(
    kind: str, start: int, count: int, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpaired samples ``start .. start+count-1`` of ``kind`` (any kind, paired or style).

    A is exactly ``generate_pairs(kind, start, count, size, seed)[0]`` (shared evaluation
    inputs). B_i is the B image of an independent layout drawn from the disjoint stream keyed by
    (seed, kind, start+i, 1), so it is a valid image of the B domain but not the translation of
    A_i (nor of any A_j, except by chance). Same tensor format as ``generate_pairs``.
    """
    _check_kind(kind)
    size = _check_size(size)
    _check_range(start, count)
    a_all = np.empty((count, size, size, 3), dtype=np.float32)
    b_all = np.empty((count, size, size, 3), dtype=np.float32)
    for i in range(count):
        a_all[i] = make_pair(kind, size, sample_rng(kind, start + i, seed))[0]
        b_all[i] = make_pair(kind, size, _unpaired_rng(kind, start + i, seed))[1]
    return _to_tensor(a_all), _to_tensor(b_all)
