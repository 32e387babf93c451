"""edges2bag: edge drawing -> shaded handbag photo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datamodules.synthetic.draw import (
    Image,
    Mask,
    coords,
    ellipse_value,
    hsv_to_rgb,
    min_width,
    paint,
    tint,
    uniform,
    value_noise,
)


def _pow_even(x: np.ndarray, p: int) -> np.ndarray:
    """x**p for even integer p by repeated multiplication (exact and portable)."""
    x2 = x * x
    out = x2
    for _ in range(p // 2 - 1):
        out = out * x2
    return out


@dataclass(frozen=True)
class BagLayout:
    """The bag's shape in fractions of the image: body, handle arch, optional flap and clasp."""

    cx: float
    top: float
    height: float
    half_top: float  # half widths at the top and bottom of the body
    half_bottom: float
    power: int  # superellipse exponent: 4 soft corners .. 8 boxy
    handle_rx: float
    handle_ry: float
    handle_w: float
    flap: float | None  # where the flap ends, as a fraction of the height; None: no flap
    clasp: bool
    line: float  # edge line width


@dataclass(frozen=True)
class BagMasks:
    """Regions and edge lines of the bag, shared by A (the edges) and B."""

    body: Mask
    handle: Mask
    flap: Mask
    edges: Mask


def _bag_layout(rng, size: int) -> BagLayout:
    """Random bag: trapezoid-ish rounded body, arched handle, optional flap and clasp."""
    width, height = uniform(rng, 0.4, 0.72), uniform(rng, 0.28, 0.48)
    handle_h = uniform(rng, 0.1, min(0.25, 0.88 - height))
    cx = uniform(rng, width / 2 + 0.05, 0.95 - width / 2)
    top = uniform(rng, 0.05 + handle_h, 0.95 - height)
    return BagLayout(
        cx=cx,
        top=top,
        height=height,
        half_top=width / 2 * uniform(rng, 0.65, 1.0),
        half_bottom=width / 2,
        power=4 + 2 * int(rng.integers(3)),  # 4: soft corners .. 8: boxy
        handle_rx=width / 2 * uniform(rng, 0.3, 0.7),
        handle_ry=handle_h,
        handle_w=max(uniform(rng, 0.025, 0.045), 2.0 / size),
        flap=uniform(rng, 0.25, 0.45) if rng.random() < 0.65 else None,
        clasp=bool(rng.random() < 0.5),
        line=min_width(size, 0.007, 1.3),
    )


def _bag_body_value(lay: BagLayout, yy, xx, inset: float) -> np.ndarray:
    """Superellipse value of the body (< 1 inside), shrunk by ``inset`` on every side."""
    cy = lay.top + lay.height / 2
    t = np.clip((yy - lay.top) / lay.height, 0.0, 1.0)
    half_w = lay.half_top + (lay.half_bottom - lay.half_top) * t - inset
    half_h = lay.height / 2 - inset
    return _pow_even((xx - lay.cx) / half_w, lay.power) + _pow_even((yy - cy) / half_h, lay.power)


def _bag_handle_value(lay: BagLayout, yy, xx, grow: float) -> np.ndarray:
    """Ellipse value of the handle arch centred on the body top, grown by ``grow``."""
    return ellipse_value(yy, xx, lay.top, lay.cx, lay.handle_ry + grow, lay.handle_rx + grow)


def _bag_masks(lay: BagLayout, yy, xx) -> BagMasks:
    """Regions (body, handle, flap) and edge lines of the bag, shared by A and B."""
    line = lay.line
    hw = lay.handle_w
    body = _bag_body_value(lay, yy, xx, 0.0) < 1.0
    body_edge = body & ~(_bag_body_value(lay, yy, xx, line) < 1.0)
    above = yy < lay.top + lay.height * 0.1
    outer = _bag_handle_value(lay, yy, xx, 0.0) < 1.0
    inner = _bag_handle_value(lay, yy, xx, -hw) < 1.0
    handle = outer & ~inner & above & ~body
    handle_edge = handle & ~(
        (_bag_handle_value(lay, yy, xx, -line) < 1.0) & ~(_bag_handle_value(lay, yy, xx, line - hw) < 1.0)
    )
    edges = body_edge | handle_edge
    flap = np.zeros_like(body)
    if lay.flap is not None:
        flap_y = lay.top + lay.height * lay.flap
        flap = body & (yy < flap_y)
        edges |= body & (np.abs(yy - flap_y) < line / 2)
        if lay.clasp:
            r = max(0.025, 2.0 / yy.shape[0])
            ring = ellipse_value(yy, xx, flap_y, lay.cx, r, r)
            edges |= (ring < 1.0) & ~(ellipse_value(yy, xx, flap_y, lay.cx, r - line, r - line) < 1.0)
    return BagMasks(body=body, handle=handle, flap=flap, edges=edges)


def _bag_render(rng, lay: BagLayout, masks: BagMasks, yy, xx, size: int) -> Image:
    """White studio background; body coloured by a random hue, rim-darkened, lit from the top."""
    color = hsv_to_rgb(float(rng.random()), uniform(rng, 0.45, 0.9), uniform(rng, 0.45, 0.9))
    img = np.ones((size, size, 3))
    rim = np.clip(_bag_body_value(lay, yy, xx, 0.0), 0.0, 1.0)
    v = np.clip((yy - lay.top) / lay.height, 0.0, 1.0)
    leather = 0.93 + 0.1 * value_noise(rng, size, size // 3, size // 3) + 0.04 * rng.random((size, size))
    shade = (1.15 - 0.35 * rim - 0.3 * v) * leather
    flap_y = lay.top + lay.height * (lay.flap or 0.0)
    under_flap = masks.body & (yy >= flap_y) & (yy < flap_y + 0.05) & (lay.flap is not None)
    shade = np.where(masks.flap, shade * 1.1, np.where(under_flap, shade * 0.75, shade))
    paint(img, masks.body, tint(color, shade))
    ring = np.sqrt(np.clip(_bag_handle_value(lay, yy, xx, 0.0), 0.0, 4.0))
    inner = 1.0 - lay.handle_w / max(lay.handle_rx, lay.handle_ry)
    tube = np.clip(np.abs((ring - inner) / (1.0 - inner) * 2.0 - 1.0), 0.0, 1.0)
    paint(img, masks.handle, tint(color, (0.95 - 0.45 * tube) * leather))
    paint(img, masks.edges & (masks.body | masks.handle), tint(color, 0.35 * leather))
    if lay.flap is not None and lay.clasp:
        r = max(0.025, 2.0 / size)
        clasp = ellipse_value(yy, xx, flap_y, lay.cx, r, r) < 1.0
        paint(img, clasp & ~masks.edges, [0.85, 0.72, 0.3])
    return img


def make_edges2bag(size: int, rng: np.random.Generator) -> tuple[Image, Image]:
    """Bag pair: A = black-on-white edge drawing, B = the shaded, coloured bag on white."""
    yy, xx = coords(size)
    lay = _bag_layout(rng, size)
    masks = _bag_masks(lay, yy, xx)
    sketch = np.where(masks.edges[..., None], 0.0, np.ones((size, size, 3)))
    return sketch, _bag_render(rng, lay, masks, yy, xx, size)
