"""Region shapes as bool masks (True = inside). Pure functions, no I/O.

Boxes and ellipses are given as ``(x, y, w, h)`` in pixels: the box itself, or the
bounding box of the ellipse. Random training masks (strokes, polygons) live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

Box = Sequence[int]


class RegionError(ValueError):
    """A region (box, ellipse or mask) that does not fit the image."""


def _check_box(box: Box, shape: tuple[int, int], what: str) -> tuple[int, int, int, int]:
    if len(box) != 4:
        raise RegionError(f"{what} needs 4 numbers x,y,w,h, got {list(box)}")
    x, y, w, h = (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise RegionError(f"{what} {x},{y},{w},{h} has no area (width and height must be > 0)")
    H, W = shape
    if x >= W or y >= H or x + w <= 0 or y + h <= 0:
        raise RegionError(f"{what} {x},{y},{w},{h} lies entirely outside the {W}x{H} image")
    return x, y, w, h


def box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """Mask of an axis-aligned box, clipped to the image."""
    x, y, w, h = _check_box(box, shape, "box")
    m = np.zeros(shape, dtype=bool)
    m[max(y, 0) : y + h, max(x, 0) : x + w] = True
    return m


def ellipse_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """Mask of the ellipse inscribed in box (x, y, w, h): pixel centres inside it, clipped to the image."""
    x, y, w, h = _check_box(box, shape, "ellipse")
    H, W = shape
    cy, cx = y + h / 2.0, x + w / 2.0
    yy = (np.arange(H) + 0.5 - cy) / (h / 2.0)
    xx = (np.arange(W) + 0.5 - cx) / (w / 2.0)
    return (yy[:, None] ** 2 + xx[None, :] ** 2) <= 1.0


def region_mask(
    shape: tuple[int, int],
    *,
    mask: np.ndarray | None = None,
    boxes: Iterable[Box] = (),
    ellipses: Iterable[Box] = (),
) -> np.ndarray:
    """Union of a bool mask, boxes and ellipses. With none of them, the whole image."""
    shape = (int(shape[0]), int(shape[1]))
    boxes, ellipses = list(boxes), list(ellipses)
    if mask is None and not boxes and not ellipses:
        return np.ones(shape, dtype=bool)
    out = np.zeros(shape, dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim == 3:
            mask = mask.any(axis=-1)
        if mask.shape != shape:
            raise RegionError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}; "
                "a mask must have the image's size"
            )
        out |= mask.astype(bool)
    for b in boxes:
        out |= box_mask(shape, b)
    for e in ellipses:
        out |= ellipse_mask(shape, e)
    return out


# ---------------------------------------------------------------- random training masks


def random_place(shape: tuple[int, int], size: tuple[int, int], rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box (x, y, w, h) of about ``size`` (h, w) at a random place that fits the image."""
    H, W = shape
    h, w = min(size[0], H), min(size[1], W)
    y = int(rng.integers(0, H - h + 1))  # y first: the seeded cases of eval and training depend on the order
    x = int(rng.integers(0, W - w + 1))
    return x, y, w, h


def random_box(shape: tuple[int, int], size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A box of about ``size`` (h, w) at a random place that fits the image."""
    return box_mask(shape, random_place(shape, size, rng))


def random_ellipse(shape: tuple[int, int], size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The ellipse inside such a box."""
    return ellipse_mask(shape, random_place(shape, size, rng))


def random_polygon(shape: tuple[int, int], size: tuple[int, int], rng: np.random.Generator, vertices: int = 8) -> np.ndarray:
    """A star-shaped random polygon inside a box of about ``size``."""
    H, W = shape
    h, w = min(size[0], H), min(size[1], W)
    y = rng.integers(0, H - h + 1)
    x = rng.integers(0, W - w + 1)
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = rng.uniform(0.55, 1.0, vertices)
    pts = np.stack([x + w / 2 + radii * np.cos(angles) * w / 2, y + h / 2 + radii * np.sin(angles) * h / 2], axis=1)
    m = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return m.astype(bool)


def random_strokes(
    shape: tuple[int, int], rng: np.random.Generator, strokes: tuple[int, int] = (1, 4), width: tuple[int, int] = (8, 24)
) -> np.ndarray:
    """Free-form brush strokes (random walks of thick lines), as in free-form inpainting papers."""
    H, W = shape
    m = np.zeros(shape, dtype=np.uint8)
    for _ in range(int(rng.integers(strokes[0], strokes[1] + 1))):
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        for _ in range(int(rng.integers(3, 9))):
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(0.05, 0.25) * max(H, W)
            nx = int(np.clip(x + length * np.cos(angle), 0, W - 1))
            ny = int(np.clip(y + length * np.sin(angle), 0, H - 1))
            cv2.line(m, (x, y), (nx, ny), 1, int(rng.integers(width[0], width[1] + 1)))
            x, y = nx, ny
    return m.astype(bool)


#: The random region makers of one size, by name (:func:`random_shape`).
SHAPES = ("box", "ellipse", "polygon", "strokes")


def random_shape(
    kind: str, shape: tuple[int, int], size: tuple[int, int], rng: np.random.Generator,
    *, strokes: tuple[int, int] = (1, 4), width: tuple[int, int] = (8, 24),
) -> np.ndarray:
    """A random region of ``kind`` (one of :data:`SHAPES`) of about ``size`` (h, w) in an image of
    ``shape``; ``strokes`` and ``width`` shape the brush strokes (which ignore ``size``)."""
    if kind == "strokes":
        return random_strokes(shape, rng, strokes=strokes, width=width)
    makers = {"box": random_box, "ellipse": random_ellipse, "polygon": random_polygon}
    if kind not in makers:
        raise ValueError(f"unknown region shape {kind!r}; choose one of {', '.join(SHAPES)}")
    return makers[kind](shape, size, rng)
