"""photo2pastel and photo2outline: a landscape as a photo (A, shared by both kinds) and as soft
pastel strokes (Monet-like) or flat colours with ink outlines (Ukiyo-e-like) (B)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.draw import (
    Field,
    Image,
    coords,
    ellipse_value,
    frac,
    fractal_noise,
    paint,
    shift,
    tint,
    value_noise,
    wave,
)
from datamodules.synthetic.landscape import (
    OL_SKIES,
    PH_CLOUD,
    PH_CROWN,
    PH_DOOR,
    PH_FIELD,
    PH_HILL,
    PH_MEADOW,
    PH_MOUNTAIN,
    PH_ROOF,
    PH_SKIES,
    PH_SKY,
    PH_SNOW,
    PH_SUN,
    PH_TRUNK,
    PH_WALL,
    PH_WATER,
    House,
    LandscapeLayout,
    Part,
    landscape_labels,
    landscape_layout,
)

_OL_FIXED = {  # materials whose outline colour does not depend on a per-sample choice
    PH_SUN: [0.92, 0.16, 0.1],
    PH_SNOW: [1.0, 1.0, 0.96],
    PH_WATER: [0.06, 0.3, 0.62],
    PH_TRUNK: [0.5, 0.22, 0.08],
    PH_DOOR: [0.32, 0.14, 0.06],
    PH_CLOUD: [1.0, 0.98, 0.94],
}
_OL_INK = np.array([0.1, 0.08, 0.12])
_PASTEL_PAPER = np.array([0.99, 0.96, 0.92])


def _landscape_photo(
    rng, lay: LandscapeLayout, labels, parts: list[Part], yy, xx, size: int
) -> tuple[Image, Field, Field, Field]:
    """Photo rendering as a smooth ``base`` (colours, light, haze) times a texture ``detail``.

    Returns the base (which the pastel style repaints), the detail field and the fields the
    styles reuse (cloud cover, water ripples), all drawn from ``rng`` in a fixed order.
    """
    full = (size, size)
    top, horizon_c = PH_SKIES[lay.sky] * lay.sky_jitter
    h0 = lay.horizon
    t_sky = np.broadcast_to(np.clip(yy / h0, 0.0, 1.0), full)[..., None]
    base = top + (horizon_c - top) * t_sky
    cloud = 0.6 * value_noise(rng, size, 6, 3) + 0.4 * value_noise(rng, size, 12, 6)
    cover = np.clip((cloud - 0.5) * 3.5, 0.0, 0.85) * lay.cloudiness
    cloud_c = np.array([1.0, 0.97, 0.95]) if lay.sky != 1 else np.array([1.0, 0.86, 0.78])
    base = base * (1.0 - cover[..., None]) + cloud_c * cover[..., None]
    detail = np.ones(full)
    if lay.sun is not None:
        cy, cx, r = lay.sun
        dist = np.sqrt(ellipse_value(yy, xx, cy, cx, r, r))
        glow = np.clip(1.0 - dist / 5.0, 0.0, 1.0)
        base = base + (glow * glow * 0.45)[..., None] * np.array([1.0, 0.85, 0.6])
        paint(base, labels == PH_SUN, np.array([1.0, 0.97, 0.86]))

    mountains = lay.mountains
    if mountains is not None:
        ridge = mountains.ridge
        slope = np.concatenate([ridge[:, 1:] - ridge[:, :-1], np.zeros((1, 1))], 1) * size
        depth = np.clip((yy - ridge) / (h0 - ridge + 1e-6), 0.0, 1.0)
        light = 1.0 - np.clip(slope * 0.5, -0.2, 0.2) * (1.0 - depth)
        haze = (0.15 + 0.4 * depth)[..., None]
        rock = tint(mountains.mat.photo, light * (1.0 - 0.15 * depth))
        rock = rock * (1.0 - haze) + horizon_c * haze
        paint(base, labels == PH_MOUNTAIN, rock)
        paint(base, labels == PH_SNOW, tint([0.94, 0.95, 0.98], light))
        crag = 0.78 + 0.4 * fractal_noise(rng, size, 4, 3)
        paint(detail, (labels == PH_MOUNTAIN) | (labels == PH_SNOW), crag)
    if lay.hills is not None:
        v = np.clip((yy - lay.hills.top) / 0.1, 0.0, 1.0)
        paint(
            base,
            labels == PH_HILL,
            tint(lay.hills.mat.photo, np.broadcast_to(1.1 - 0.2 * v, full)),
        )
        paint(detail, labels == PH_HILL, 0.7 + 0.55 * fractal_noise(rng, size, 6, 3))

    t_ground = np.broadcast_to(np.clip((yy - h0) / (1.0 - h0), 0.0, 1.0), full)
    water = (horizon_c + (top - horizon_c) * t_ground[..., None]) * 0.78 + np.array([0.0, 0.03, 0.05])
    paint(base, labels == PH_WATER, water)
    ripple = value_noise(rng, size, max(2, size // 3), 3)
    paint(detail, labels == PH_WATER, 0.82 + 0.36 * ripple)
    paint(base, labels == PH_FIELD, tint(lay.field.photo, 1.12 - 0.3 * t_ground))
    grass = 0.68 + 0.5 * fractal_noise(rng, size, 6, 3) + 0.08 * rng.random(full)
    paint(detail, labels == PH_FIELD, grass)
    meadow = lay.meadow
    if meadow is not None:
        furrow = (xx - meadow.vanish) / (yy - h0 + 0.04)
        paint(base, labels == PH_MEADOW, tint(meadow.mat.photo, 1.1 - 0.3 * t_ground))
        paint(detail, labels == PH_MEADOW, (0.8 + 0.3 * wave(furrow * 1.5)) * (0.85 + 0.3 * grass - 0.2))

    leaves = fractal_noise(rng, size, max(2, size // 8), 3)
    bark = 0.8 + 0.4 * value_noise(rng, size, 2, max(2, size // 2))
    for obj, masks in parts:
        if isinstance(obj, House):
            wall_shade = np.where(xx < obj.cx + 0.15 * obj.w, 1.0, 0.72)
            paint(base, masks[PH_WALL], tint(obj.wall.photo, np.broadcast_to(wall_shade, full)))
            roof_v = np.clip((yy - obj.base + obj.wall_h + obj.roof_h) / obj.roof_h, 0.0, 1.0)
            roof_shade = np.broadcast_to(
                (0.8 + 0.3 * roof_v) * np.where(frac(roof_v * 5.0) < 0.2, 0.85, 1.0), full
            )
            paint(base, masks[PH_ROOF], tint(obj.roof.photo, roof_shade))
            paint(base, masks[PH_DOOR], np.array([0.24, 0.16, 0.1]))
            paint(detail, masks[PH_WALL] | masks[PH_ROOF], 0.92 + 0.16 * leaves)
        else:
            cy = obj.base - obj.trunk_h - 2.0 * obj.ry
            v = np.broadcast_to(np.clip((yy - cy) / (2.0 * obj.ry), 0.0, 1.0), full)
            side = np.clip((xx - obj.cx) / obj.rx, -1.0, 1.0)
            paint(base, masks[PH_CROWN], tint(obj.crown.photo, 1.2 - 0.45 * v - 0.15 * side))
            paint(detail, masks[PH_CROWN], 0.5 + 0.85 * leaves)
            paint(base, masks[PH_TRUNK] & ~masks[PH_CROWN], np.array([0.33, 0.22, 0.12]))
            paint(detail, masks[PH_TRUNK], bark)
    vignette = 1.0 - 0.35 * ((yy - 0.5) * (yy - 0.5) + (xx - 0.5) * (xx - 0.5))
    grain = 0.95 + 0.1 * rng.random(full)
    return base * vignette[..., None], detail * grain, cover, ripple


@dataclass(frozen=True)
class Scene:
    """One landscape as both styles need it: layout, labels, the photo and its reusable fields."""

    lay: LandscapeLayout
    labels: np.ndarray
    parts: list[Part]
    base: Image  # the photo without texture (what the pastel style repaints)
    photo: Image
    yy: np.ndarray
    xx: np.ndarray
    cover: Field  # cloud cover
    ripple: Field  # water ripples


def _landscape(size: int, rng: np.random.Generator) -> Scene:
    """Layout, labels and photo of one landscape: everything the style kinds share."""
    yy, xx = coords(size)
    lay = landscape_layout(rng, size)
    labels, parts = landscape_labels(lay, yy, xx)
    base, detail, cover, ripple = _landscape_photo(rng, lay, labels, parts, yy, xx, size)
    return Scene(
        lay=lay,
        labels=labels,
        parts=parts,
        base=base,
        photo=base * detail[..., None],
        yy=yy,
        xx=xx,
        cover=cover,
        ripple=ripple,
    )


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


def _pastel(rng: np.random.Generator, scene: Scene, size: int) -> Image:
    """Monet-like: the photo's colours and light, without its texture, as soft pastel dabs.

    Each pixel takes its colour from a nearby point displaced along a brush-stroke field
    (horizontal dabs, vertical ones on the trees), which smears region borders into strokes;
    a light blur softens it, a per-dab tint breaks the colour, and mixing with warm paper keeps
    every colour light and desaturated, so there are no dark lines.
    """
    long_, short = max(2, size // 8), max(2, size // 20)
    trees = np.where(scene.labels == PH_CROWN, 1.0, 0.0)
    reach = size / 20.0
    idx = np.arange(size)
    strokes = []
    for _ in range(3):
        across = value_noise(rng, size, long_, short)  # varies fast in y: horizontal dabs
        down = value_noise(rng, size, short, long_)
        strokes.append(across + (down - across) * trees - 0.5)
    offsets = strokes[:2]
    dy = np.floor(offsets[0] * reach).astype(np.int64)
    dx = np.floor(offsets[1] * (2.0 * reach)).astype(np.int64)
    ys = np.clip(idx[:, None] + dy, 0, size - 1)
    xs = np.clip(idx[None, :] + dx, 0, size - 1)
    soft = _box_blur(scene.base[ys, xs], max(1, round(size / 64)))
    hue = value_noise(rng, size, long_, short)
    soft = soft + 0.1 * (hue - 0.5)[..., None] * np.array([1.0, -0.4, -1.0])  # warm/cool dabs
    soft = soft * (1.0 + 0.14 * strokes[2])[..., None]  # light and shade of the paint dabs
    lum = _luminance(soft)[..., None]
    soft = lum + 0.85 * (soft - lum)
    return 0.3 * _PASTEL_PAPER + 0.78 * soft


def _outline(scene: Scene, size: int) -> Image:
    """Ukiyo-e-like: a few flat, saturated colours per region and dark ink along region borders.

    The sky is a banded (quantised) gradient, the photo's clouds become flat white shapes and
    the lake two flat blues (light where the photo's ripples are bright).
    """
    lay, labels, yy = scene.lay, scene.labels.copy(), scene.yy
    labels[(labels == PH_SKY) & (scene.cover > 0.3)] = PH_CLOUD
    top, horizon_c = OL_SKIES[lay.sky]
    bands = np.minimum(np.floor(np.clip(yy / lay.horizon, 0.0, 1.0) * 3.0), 2.0) / 2.0
    img = np.broadcast_to(top + (horizon_c - top) * bands[..., None], (size, size, 3)).copy()
    for label, color in _OL_FIXED.items():
        paint(img, labels == label, np.asarray(color))
    paint(img, (labels == PH_WATER) & (scene.ripple > 0.7), np.array([0.45, 0.7, 0.92]))
    for region, label in ((lay.mountains, PH_MOUNTAIN), (lay.hills, PH_HILL), (lay.meadow, PH_MEADOW)):
        if region is not None:
            paint(img, labels == label, region.mat.outline)
    paint(img, labels == PH_FIELD, lay.field.outline)
    for obj, masks in scene.parts:
        for label, material in obj.materials():
            paint(img, masks[label] & (labels == label), material.outline)
    border = np.zeros((size, size), dtype=bool)
    border[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    border[:-1] |= labels[:-1] != labels[1:]
    for step in range(max(1, round(size / 40)) - 1):  # thicken lines at large sizes
        d = 1 if step % 2 == 0 else -1
        border = border | shift(border, d, 0) | shift(border, 0, d)
    img[border] = _OL_INK
    return img


def make_photo2pastel(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Style pair: A = landscape photo, B = the same landscape in soft pastel strokes."""
    scene = _landscape(size, rng)
    return scene.photo, _pastel(rng, scene, size)


def make_photo2outline(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Style pair: A = landscape photo, B = the same landscape as flat colours with ink outlines."""
    scene = _landscape(size, rng)
    return scene.photo, _outline(scene, size)
