"""The landscape the style kinds share: its random layout and its label map.

The layout consumes the generator before any rendering, so the photo (A) of a sample never
depends on which style (B) is drawn afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.draw import Mask, ellipse_value, interp_index, min_width, rect, smoothstep, uniform

# Labels of a landscape's label map; PH_* tables hold photo colours, OL_* outline colours.
(
    PH_SKY,
    PH_SUN,
    PH_MOUNTAIN,
    PH_SNOW,
    PH_HILL,
    PH_FIELD,
    PH_MEADOW,
    PH_WATER,
    PH_CROWN,
    PH_TRUNK,
    PH_WALL,
    PH_ROOF,
    PH_DOOR,
    PH_CLOUD,  # only in the outline rendering: stylised clouds become outlined shapes
) = range(14)

# Parallel colour tables: row i of a photo table and of its outline table describe the same
# material, so the outline colours follow the photo's choice (a wheat field stays yellow).
PH_SKIES = np.array(  # (top, horizon): day, golden hour, misty morning
    [
        [[0.22, 0.42, 0.78], [0.72, 0.84, 0.95]],
        [[0.3, 0.36, 0.66], [0.98, 0.74, 0.45]],
        [[0.5, 0.58, 0.7], [0.86, 0.86, 0.82]],
    ]
)
OL_SKIES = np.array(
    [
        [[0.08, 0.22, 0.6], [0.55, 0.8, 0.95]],
        [[0.16, 0.2, 0.55], [1.0, 0.62, 0.22]],
        [[0.28, 0.4, 0.62], [0.95, 0.9, 0.72]],
    ]
)
PH_MOUNTAINS = np.array([[0.4, 0.44, 0.55], [0.5, 0.42, 0.48], [0.46, 0.4, 0.34]])
OL_MOUNTAINS = np.array([[0.18, 0.27, 0.58], [0.45, 0.22, 0.5], [0.6, 0.34, 0.16]])
PH_HILLS = np.array([[0.28, 0.42, 0.2], [0.38, 0.47, 0.24], [0.24, 0.36, 0.26]])
OL_HILLS = np.array([[0.2, 0.62, 0.2], [0.5, 0.7, 0.12], [0.1, 0.5, 0.38]])
PH_FIELDS = np.array([[0.36, 0.52, 0.2], [0.6, 0.58, 0.3], [0.72, 0.6, 0.28]])
OL_FIELDS = np.array([[0.42, 0.75, 0.12], [0.82, 0.8, 0.2], [0.98, 0.7, 0.1]])
PH_MEADOWS = np.array([[0.26, 0.44, 0.18], [0.5, 0.38, 0.24], [0.66, 0.66, 0.34]])
OL_MEADOWS = np.array([[0.1, 0.55, 0.22], [0.75, 0.4, 0.12], [0.92, 0.88, 0.3]])
PH_CROWNS = np.array([[0.16, 0.32, 0.12], [0.24, 0.36, 0.1], [0.1, 0.26, 0.16]])
OL_CROWNS = np.array([[0.08, 0.45, 0.12], [0.32, 0.52, 0.04], [0.02, 0.36, 0.28]])
PH_WALLS = np.array([[0.88, 0.85, 0.78], [0.8, 0.7, 0.55], [0.7, 0.36, 0.26]])
OL_WALLS = np.array([[1.0, 0.95, 0.82], [0.98, 0.8, 0.52], [0.9, 0.3, 0.18]])
PH_ROOFS = np.array([[0.55, 0.22, 0.15], [0.35, 0.33, 0.34], [0.5, 0.38, 0.25]])
OL_ROOFS = np.array([[0.88, 0.18, 0.08], [0.22, 0.24, 0.4], [0.75, 0.45, 0.1]])


@dataclass(frozen=True)
class Material:
    """A jittered photo colour and the flat outline colour of the same material."""

    photo: np.ndarray
    outline: np.ndarray


@dataclass(frozen=True)
class House:
    """A house standing at ``base``: wall, gable roof and door, sized by its depth ``scale``."""

    cx: float
    base: float
    scale: float
    w: float
    wall_h: float
    roof_h: float
    door_x: float  # door centre, relative to cx
    wall: Material
    roof: Material

    def materials(self) -> tuple[tuple[int, Material], ...]:
        """Labels whose outline colour is this object's own, in painting order."""
        return ((PH_WALL, self.wall), (PH_ROOF, self.roof))


@dataclass(frozen=True)
class Tree:
    """A round or conical (``conifer``) crown on a trunk standing at ``base``."""

    cx: float
    base: float
    scale: float
    conifer: bool
    ry: float
    rx: float
    trunk_h: float
    trunk_w: float
    crown: Material

    def materials(self) -> tuple[tuple[int, Material], ...]:
        """Labels whose outline colour is this object's own, in painting order."""
        return ((PH_CROWN, self.crown),)


@dataclass(frozen=True)
class Mountains:
    """A mountain range behind the horizon, with an optional snow line."""

    ridge: np.ndarray  # (1, size) ridge line
    amp: float
    snow: float | None  # snow line as a fraction of amp; None: no snow
    mat: Material


@dataclass(frozen=True)
class Hills:
    """Rolling hills in front of the mountains."""

    top: np.ndarray  # (1, size) hill line
    mat: Material


@dataclass(frozen=True)
class Meadow:
    """A furrowed meadow in the foreground, its edge sloped and wobbly."""

    y: float
    slope: float
    wobble: np.ndarray  # (1, size)
    vanish: float  # x of the furrows' vanishing point
    mat: Material


Part = tuple[House | Tree, dict[int, Mask]]  # an object and its label masks


@dataclass(frozen=True)
class LandscapeLayout:
    """Everything random about one landscape; optional parts are None when absent."""

    sky: int  # row of PH_SKIES / OL_SKIES
    sky_jitter: np.ndarray
    horizon: float
    cloudiness: float
    sun: tuple[float, float, float] | None  # (cy, cx, r)
    mountains: Mountains | None
    hills: Hills | None
    shore: np.ndarray | None  # (1, size) lake shore line; None: no lake
    field: Material
    meadow: Meadow | None
    objects: list[House | Tree]  # back to front


def _pick_styled(rng: np.random.Generator, photo: np.ndarray, outline: np.ndarray) -> Material:
    """One material: a jittered photo colour and the matching flat outline colour."""
    i = int(rng.integers(len(photo)))
    jitter = 0.92 + 0.16 * rng.random(3)
    return Material(photo=np.clip(photo[i] * jitter, 0.0, 1.0), outline=outline[i])


def _profile(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random 1-D curve in [0, 1] along x, as a (1, size) row (ridges, shores)."""
    cells = max(1, int(cells))
    grid = rng.random(cells + 1)
    i, w = interp_index(size, cells)
    return (grid[i] * (1.0 - w) + grid[i + 1] * w)[None, :]


def _at(row: np.ndarray, x: float) -> float:
    """Value of a (1, size) row at fractional position x (its nearest pixel column)."""
    size = row.shape[1]
    return float(row[0, min(max(int(x * size), 0), size - 1)])


def _landscape_objects(rng, size: int, horizon: float, ground_top: np.ndarray) -> list[House | Tree]:
    """Trees and houses standing on the ground, scaled by depth and sorted back to front."""
    objects: list[House | Tree] = []
    n_trees = int(rng.integers(1, 6))
    n_houses = int(rng.integers(1, 3)) if rng.random() < 0.55 else 0
    for j in range(n_trees + n_houses):
        cx = uniform(rng, 0.04, 0.96)
        top = _at(ground_top, cx) + 0.03
        base = uniform(rng, min(top, 0.95), 0.98)
        scale = 0.45 + 1.1 * (base - horizon) / (1.0 - horizon)
        if j >= n_trees:
            w = 0.13 * scale * uniform(rng, 0.8, 1.3)
            obj: House | Tree = House(
                cx=cx,
                base=base,
                scale=scale,
                w=w,
                wall_h=0.08 * scale * uniform(rng, 0.8, 1.2),
                roof_h=0.06 * scale * uniform(rng, 0.8, 1.3),
                door_x=uniform(rng, -0.3, 0.2) * w,
                wall=_pick_styled(rng, PH_WALLS, OL_WALLS),
                roof=_pick_styled(rng, PH_ROOFS, OL_ROOFS),
            )
        else:
            conifer = bool(rng.random() < 0.4)
            ry = (0.11 if conifer else 0.085) * scale * uniform(rng, 0.8, 1.25)
            obj = Tree(
                cx=cx,
                base=base,
                scale=scale,
                conifer=conifer,
                ry=ry,
                rx=ry * uniform(rng, 0.45, 0.6) if conifer else ry * uniform(rng, 0.65, 0.95),
                trunk_h=(0.03 if conifer else 0.06) * scale,
                trunk_w=min_width(size, 0.02 * scale),
                crown=_pick_styled(rng, PH_CROWNS, OL_CROWNS),
            )
        objects.append(obj)
    objects.sort(key=lambda o: o.base)  # nearer (lower) objects are drawn last
    return objects


def landscape_layout(rng: np.random.Generator, size: int) -> LandscapeLayout:
    """Random landscape: sky, sun, mountains, hills, lake, fields, trees and houses."""
    sky = int(rng.integers(len(PH_SKIES)))
    horizon = uniform(rng, 0.42, 0.62)
    sky_jitter = 0.94 + 0.12 * rng.random(3)
    cloudiness = uniform(rng, 0.3, 1.0)
    sun = mountains = hills = shore = meadow = None
    if rng.random() < 0.45:
        r = max(uniform(rng, 0.04, 0.07), 1.5 / size)
        sun = (uniform(rng, 0.1, max(0.12, horizon - 0.22)), uniform(rng, 0.12, 0.88), r)
    if rng.random() < 0.8:
        amp = uniform(rng, 0.18, min(0.38, horizon - 0.08))
        coarse = _profile(rng, size, int(rng.integers(2, 4)))
        fine = 1.0 - np.abs(2.0 * _profile(rng, size, int(rng.integers(3, 6))) - 1.0)  # sharp peaks
        ridge = horizon - amp * (0.5 * coarse + 0.5 * fine)
        snow = uniform(rng, 0.55, 0.75) if rng.random() < 0.5 else None
        mountains = Mountains(
            ridge=ridge,
            amp=amp,
            snow=snow,
            mat=_pick_styled(rng, PH_MOUNTAINS, OL_MOUNTAINS),
        )
    if rng.random() < 0.7:
        bump = np.clip((_profile(rng, size, int(rng.integers(2, 4))) - 0.35) / 0.65, 0.0, 1.0)
        hills = Hills(
            top=horizon - uniform(rng, 0.05, 0.14) * smoothstep(bump),
            mat=_pick_styled(rng, PH_HILLS, OL_HILLS),
        )
    ground_top = np.full((1, size), horizon)
    if rng.random() < 0.5:
        depth = uniform(rng, 0.1, 0.24)
        ground_top = horizon + depth + 0.08 * (_profile(rng, size, 3) - 0.5)
        shore = ground_top
    field = _pick_styled(rng, PH_FIELDS, OL_FIELDS)
    if rng.random() < 0.6:
        meadow = Meadow(
            y=uniform(rng, float(ground_top.max()) + 0.08, 0.9),
            slope=uniform(rng, -0.45, 0.45),
            wobble=0.05 * (_profile(rng, size, 4) - 0.5),
            vanish=uniform(rng, 0.2, 0.8),
            mat=_pick_styled(rng, PH_MEADOWS, OL_MEADOWS),
        )
    return LandscapeLayout(
        sky=sky,
        sky_jitter=sky_jitter,
        horizon=horizon,
        cloudiness=cloudiness,
        sun=sun,
        mountains=mountains,
        hills=hills,
        shore=shore,
        field=field,
        meadow=meadow,
        objects=_landscape_objects(rng, size, horizon, ground_top),
    )


def _object_masks(obj: House | Tree, yy, xx) -> dict[int, Mask]:
    """Label masks of one tree (crown, trunk) or house (wall, roof, door)."""
    cx, base = obj.cx, obj.base
    if isinstance(obj, House):
        w, wall_h, roof_h = obj.w, obj.wall_h, obj.roof_h
        eaves = base - wall_h
        apex = eaves - roof_h
        wall = rect(yy, xx, eaves, base, cx - w / 2, cx + w / 2)
        roof = (yy >= apex) & (yy < eaves) & (np.abs(xx - cx) < 0.62 * w * (yy - apex) / roof_h)
        dx = cx + obj.door_x
        door = rect(yy, xx, base - 0.55 * wall_h, base, dx - 0.1 * w, dx + 0.1 * w)
        return {PH_WALL: wall, PH_ROOF: roof, PH_DOOR: door}
    half = obj.trunk_w / 2
    trunk = rect(yy, xx, base - obj.trunk_h - obj.ry, base, cx - half, cx + half)
    top = base - obj.trunk_h
    if obj.conifer:
        apex = top - 2.0 * obj.ry
        crown = (yy >= apex) & (yy < top) & (np.abs(xx - cx) < obj.rx * (yy - apex) / (2.0 * obj.ry))
    else:
        crown = ellipse_value(yy, xx, top - 0.8 * obj.ry, cx, obj.ry, obj.rx) < 1.0
    return {PH_TRUNK: trunk, PH_CROWN: crown}


def landscape_labels(lay: LandscapeLayout, yy, xx) -> tuple[np.ndarray, list[Part]]:
    """Label map drawn back to front, and each object's masks (for per-object shading)."""
    size = yy.shape[0]
    labels = np.full((size, size), PH_SKY, dtype=np.int64)
    full = (size, size)
    if lay.sun is not None:
        cy, cx, r = lay.sun
        labels[ellipse_value(yy, xx, cy, cx, r, r) < 1.0] = PH_SUN
    mountains = lay.mountains
    if mountains is not None:
        rock = np.broadcast_to(yy >= mountains.ridge, full)
        labels[rock] = PH_MOUNTAIN
        if mountains.snow is not None:
            line = lay.horizon - mountains.amp * mountains.snow
            labels[rock & np.broadcast_to(yy < line, full)] = PH_SNOW
    if lay.hills is not None:
        labels[np.broadcast_to(yy >= lay.hills.top, full)] = PH_HILL
    labels[np.broadcast_to(yy >= lay.horizon, full)] = PH_WATER if lay.shore is not None else PH_FIELD
    if lay.shore is not None:
        labels[np.broadcast_to(yy >= lay.shore, full)] = PH_FIELD
    meadow = lay.meadow
    if meadow is not None:
        edge = meadow.y + meadow.slope * (xx - 0.5) + meadow.wobble
        labels[(yy >= edge) & (labels == PH_FIELD)] = PH_MEADOW
    parts = []
    for obj in lay.objects:
        masks = _object_masks(obj, yy, xx)
        for label, mask in masks.items():
            labels[mask] = label
        parts.append((obj, masks))
    return labels, parts
