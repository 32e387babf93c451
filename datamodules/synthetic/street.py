"""labels2street: Cityscapes-like semantic labels -> street scene."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.draw import (
    Image,
    Mask,
    coords,
    ellipse_value,
    frac,
    fractal_noise,
    min_width,
    paint,
    palette_image,
    partition,
    pick,
    rect,
    tint,
    uniform,
    value_noise,
)

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


@dataclass(frozen=True)
class Block:
    """One building block between two cut points; ``present=False`` leaves a gap of sky."""

    x0: float
    x1: float
    top: float
    wall: np.ndarray  # RGB
    present: bool


@dataclass(frozen=True)
class StreetTree:
    """A tree crown (ellipse) on a trunk standing on the ground line."""

    cx: float
    cy: float
    ry: float
    rx: float
    trunk_w: float


@dataclass(frozen=True)
class Car:
    """A car's bounding box (body below, cabin above) and paint colour."""

    x0: float
    x1: float
    y0: float
    y1: float
    color: np.ndarray  # RGB


@dataclass(frozen=True)
class StreetLayout:
    """The geometry A and B share, in fractions of the image size; cars sorted back to front."""

    ground: float
    walk: float
    blocks: list[Block]
    trees: list[StreetTree]
    cars: list[Car]


def _street_layout(rng: np.random.Generator, size: int) -> StreetLayout:
    """Random street geometry: ground line, building blocks, trees and cars (fractions)."""
    n_blocks = int(rng.integers(3, 7))
    ground = uniform(rng, 0.55, 0.66)
    walk = uniform(rng, 0.03, 0.06)
    cuts = partition(rng, n_blocks, 0.0, 1.0)
    blocks = [
        Block(
            x0=x0,
            x1=x1,
            top=uniform(rng, 0.08, 0.42),
            wall=pick(rng, _ST_WALLS),
            present=bool(rng.random() < 0.88),
        )
        for x0, x1 in itertools.pairwise(cuts)
    ]
    trees = []
    for _ in range(int(rng.integers(0, 4))):
        ry, rx = uniform(rng, 0.07, 0.12), uniform(rng, 0.05, 0.09)
        trunk = uniform(rng, 0.04, 0.09)
        trees.append(
            StreetTree(
                cx=uniform(rng, 0.05, 0.95),
                cy=ground - trunk - ry * 0.8,
                ry=ry,
                rx=rx,
                trunk_w=min_width(size, 0.018),
            )
        )
    cars = []
    road_top = ground + walk
    for _ in range(int(rng.integers(1, 4))):
        h, length = uniform(rng, 0.1, 0.15), uniform(rng, 0.2, 0.34)
        bottom = uniform(rng, min(road_top + h + 0.03, 0.98), 0.98)
        cx = uniform(rng, 0.0, 1.0)
        cars.append(
            Car(
                x0=cx - length / 2,
                x1=cx + length / 2,
                y0=bottom - h,
                y1=bottom,
                color=pick(rng, _ST_CARS),
            )
        )
    cars.sort(key=lambda c: c.y1)  # nearer cars (lower on screen) are drawn last
    return StreetLayout(ground=ground, walk=walk, blocks=blocks, trees=trees, cars=cars)


def _car_parts(yy, xx, car: Car) -> tuple[Mask, Mask, np.ndarray]:
    """Masks of a car's body and cabin, plus its vertical coordinate v in [0, 1]."""
    h = car.y1 - car.y0
    length = car.x1 - car.x0
    split = car.y0 + 0.42 * h
    body = rect(yy, xx, split, car.y1, car.x0, car.x1)
    cabin = rect(yy, xx, car.y0, split, car.x0 + 0.22 * length, car.x1 - 0.18 * length)
    v = np.clip((yy - car.y0) / h, 0.0, 1.0)
    return body, cabin, v


def _street_labels(lay: StreetLayout, yy, xx) -> np.ndarray:
    """Integer label map of the street layout (drawn back to front)."""
    size = yy.shape[0]
    labels = np.full((size, size), _ST_SKY, dtype=np.int64)
    for b in lay.blocks:
        if b.present:
            labels[rect(yy, xx, b.top, lay.ground, b.x0, b.x1)] = _ST_BUILDING
    labels[np.broadcast_to(yy >= lay.ground, labels.shape)] = _ST_SIDEWALK
    labels[np.broadcast_to(yy >= lay.ground + lay.walk, labels.shape)] = _ST_ROAD
    for t in lay.trees:
        half = t.trunk_w / 2
        labels[rect(yy, xx, t.cy, lay.ground, t.cx - half, t.cx + half)] = _ST_TRUNK
        labels[ellipse_value(yy, xx, t.cy, t.cx, t.ry, t.rx) < 1.0] = _ST_TREE
    for car in lay.cars:
        body, cabin, _ = _car_parts(yy, xx, car)
        labels[body | cabin] = _ST_CAR
    return labels


def _street_sky(rng, lay: StreetLayout, yy, size: int) -> Image:
    """Blue vertical gradient (deep at top, pale at the horizon) with soft white clouds."""
    t = np.clip(yy / lay.ground, 0.0, 1.0)[..., None] * np.ones((1, size, 1))
    top, horizon = np.array([0.22, 0.42, 0.78]), np.array([0.72, 0.83, 0.95])
    sky = top + (horizon - top) * t
    cloud = value_noise(rng, size, 3, 5) * 0.6 + value_noise(rng, size, 6, 10) * 0.4
    amount = np.clip((cloud - 0.55) * 3.5, 0.0, 0.85)[..., None]
    return sky * (1.0 - amount) + 0.97 * amount


def _street_buildings(rng, lay: StreetLayout, yy, xx, size: int) -> Image:
    """Walls with noisy texture, a window grid that follows each block's outline, dark seams."""
    texture = 0.82 + 0.3 * fractal_noise(rng, size, 8, 3) + 0.06 * rng.random((size, size))
    img = np.zeros((size, size, 3))
    lit_table = rng.random(256) < 0.18
    for j, b in enumerate(lay.blocks):
        width = b.x1 - b.x0
        n_cols = max(1, round(width / 0.055))
        u = (xx - b.x0) / width * n_cols
        v = (yy - b.top - 0.025) / 0.07
        cell_u, cell_v = frac(u), frac(v)
        window = (
            (cell_u > 0.25)
            & (cell_u < 0.75)
            & (cell_v > 0.3)
            & (cell_v < 0.8)
            & (v > 0)
            & (yy < lay.ground - 0.03)
        )
        wall = tint(b.wall, texture)
        lit = lit_table[(np.floor(u).astype(np.int64) * 7 + np.floor(v).astype(np.int64) * 13 + j * 31) % 256]
        glass = np.where((window & lit)[..., None], [0.95, 0.85, 0.5], [0.14, 0.18, 0.25])
        part = np.where(window[..., None], glass * (0.8 + 0.25 * texture[..., None]), wall)
        seam = np.broadcast_to((xx - b.x0) < min_width(size, 0.008, 1.0), (size, size))
        part[seam] *= 0.6
        block = rect(yy, xx, b.top, lay.ground, b.x0, b.x1)
        paint(img, block, part)
    return img


def _street_ground(rng, lay: StreetLayout, yy, xx, size: int) -> Image:
    """Asphalt with grain and a dashed lane mark; paved sidewalk with tile joints."""
    grain = 0.85 + 0.25 * value_noise(rng, size, size // 2, size // 2) + 0.1 * rng.random((size, size))
    img = tint([0.3, 0.3, 0.32], grain)
    road_top = lay.ground + lay.walk
    lane_y = road_top + (1.0 - road_top) * 0.45
    lane = (np.abs(yy - lane_y) < min_width(size, 0.012, 1.0) / 2) & (frac(xx * 5.0) < 0.5)
    paint(img, np.broadcast_to(lane, (size, size)), [0.92, 0.92, 0.85])
    tiles = (frac(xx / 0.05) < 0.12) | (np.abs(yy - lay.ground - lay.walk / 2) < 0.003)
    walk_shade = np.where(tiles, 0.75, 1.0) * (0.9 + 0.1 * grain)
    walk = np.broadcast_to((yy >= lay.ground) & (yy < road_top), (size, size))
    paint(img, walk, tint([0.68, 0.66, 0.63], walk_shade))
    return img


def _street_trees(rng, lay: StreetLayout, yy, xx, size: int) -> tuple[Image, Image]:
    """Leafy crowns (clumpy green noise, darker underneath) and bark-textured trunks."""
    leaves = fractal_noise(rng, size, max(2, size // 8), 3)
    crown = np.zeros((size, size))
    for t in lay.trees:
        inside = ellipse_value(yy, xx, t.cy, t.cx, t.ry, t.rx) < 1.0
        v = np.clip((yy - t.cy + t.ry) / (2 * t.ry), 0.0, 1.0)
        crown = np.where(inside, 1.15 - 0.5 * v, crown)
    shade = crown * (0.45 + 0.9 * leaves)
    green = tint([0.2, 0.45, 0.14], shade) + tint([0.05, 0.0, 0.0], leaves)
    bark = tint([0.36, 0.24, 0.13], 0.8 + 0.4 * value_noise(rng, size, 2, size // 2))
    return green, bark


def _street_cars(lay: StreetLayout, yy, xx, size: int) -> Image:
    """Cars shaded top-light/bottom-dark, glass cabins and dark wheels, nearest drawn last."""
    img = np.zeros((size, size, 3))
    for car in lay.cars:
        body, cabin, v = _car_parts(yy, xx, car)
        length = car.x1 - car.x0
        h = car.y1 - car.y0
        shade = np.broadcast_to(1.2 - 0.6 * v, (size, size))
        coat = tint(car.color, shade) + 0.05
        u = (xx - car.x0) / length
        glass_u = frac(u * 3.0) > 0.1
        glass = cabin & (v > 0.12) & np.broadcast_to(glass_u, (size, size))
        glass_shade = np.broadcast_to(1.2 - 0.8 * v, (size, size))[glass]
        coat[glass] = np.outer(glass_shade, [0.28, 0.36, 0.44])
        wheel_r = 0.3 * h
        for wx in (car.x0 + 0.2 * length, car.x1 - 0.2 * length):
            wheel = (ellipse_value(yy, xx, car.y1, wx, wheel_r, wheel_r) < 1.0) & body
            coat[wheel] = [0.06, 0.06, 0.07]
        paint(img, body | cabin, coat)
    return img


def make_labels2street(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Street scene pair: A = flat semantic labels, B = textured, shaded photo-like street."""
    yy, xx = coords(size)
    lay = _street_layout(rng, size)
    labels = _street_labels(lay, yy, xx)
    out = _street_sky(rng, lay, yy, size)
    buildings = _street_buildings(rng, lay, yy, xx, size)
    ground = _street_ground(rng, lay, yy, xx, size)
    green, bark = _street_trees(rng, lay, yy, xx, size)
    cars = _street_cars(lay, yy, xx, size)
    paint(out, labels == _ST_BUILDING, buildings)
    paint(out, (labels == _ST_ROAD) | (labels == _ST_SIDEWALK), ground)
    paint(out, labels == _ST_TREE, green)
    paint(out, labels == _ST_TRUNK, bark)
    paint(out, labels == _ST_CAR, cars)
    return palette_image(labels, _ST_PALETTE), out
