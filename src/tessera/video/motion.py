"""How the content hidden under a mosaic moves relative to the frame, from the pixels around it.

A mosaic that stays put in the frame (a broadcaster's box, a dashcam blur) while the camera pans
averages a different part of the hidden content into its cells in every frame. To combine the
frames (``tessera.video.multiframe``) we need, for every frame ``t``, the map ``A_t`` from frame-t
pixel coordinates to the coordinates of a reference frame: ``frame_t(p) ~= reference(A_t p)``.

The motion is global around the region (translation, affine or homography, OpenCV's ECC on the
unmasked ring around the region, sub-pixel): going outwards from the reference, every frame is
aligned directly to the reference (no drift), started from its neighbour's map (small motion
between neighbours: ECC converges; one alignment per frame). The mosaic itself and its edges are masked out, so the fixed lattice does not
pull the estimate towards zero motion.

Coordinates are pixel centres ``(x, y)`` with ``(0, 0)`` the top-left pixel, as in OpenCV.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

MotionModel = Literal["translation", "affine", "homography"]

_ECC_TYPE = {"translation": cv2.MOTION_TRANSLATION, "affine": cv2.MOTION_AFFINE, "homography": cv2.MOTION_HOMOGRAPHY}


@dataclass(frozen=True)
class Motion:
    """The map from one frame's pixel coordinates to the reference frame's.

    matrix: (3, 3) float64 homogeneous map ``[x_ref, y_ref, 1] ~ matrix @ [x, y, 1]``.
    confidence: 0..1, the correlation between the ring around the region in this frame and the
    reference moved by ``matrix`` (0 when the alignment failed); 1 for the reference itself. residual: RMS grey-level difference on
    that ring after alignment (interpolation, noise, compression and any motion error together).
    """

    matrix: np.ndarray
    confidence: float
    residual: float

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) frame coordinates -> (N, 2) reference coordinates."""
        xy = np.asarray(xy, np.float64)
        h = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ self.matrix.T
        return h[:, :2] / h[:, 2:3]

    @property
    def shift(self) -> tuple[float, float]:
        """(dx, dy) where this frame's pixel at the origin lies in the reference."""
        m = self.matrix
        return float(m[0, 2] / m[2, 2]), float(m[1, 2] / m[2, 2])


@dataclass(frozen=True)
class MotionConfig:
    """model: the global motion around the region. ring: width (px) of the band around the region
    whose pixels are matched (grown to half the region's size when that is larger). guard: pixels
    next to the region left out (mosaic edges, feathering, compression ringing). iterations/eps:
    ECC stopping rule."""

    model: MotionModel = "affine"
    ring: int = 24
    guard: int = 3
    # 100 iterations to 1e-5: the multi-frame benchmark's 22 clips gave every gain within 0.04 dB of
    # 200 to 1e-7, with 6.6x less time in motion estimation (RESULTS.md "Multi-frame recovery")
    iterations: int = 100
    eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.model not in _ECC_TYPE:
            raise ValueError(f"motion model must be one of {', '.join(_ECC_TYPE)}, got {self.model!r}")
        if self.ring < 2 or self.guard < 0:
            raise ValueError(f"ring must be >= 2 and guard >= 0, got ring={self.ring}, guard={self.guard}")
        if self.iterations < 1 or self.eps <= 0:
            raise ValueError("iterations must be >= 1 and eps > 0")


def available_cpus() -> int:
    """Processors this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _gray(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3:
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return frame.astype(np.float32)


def ring_mask(mask: np.ndarray, ring: int, guard: int) -> np.ndarray:
    """The unmasked band of width ``ring`` around ``mask``, without the ``guard`` pixels next to it."""
    m = mask.astype(np.uint8)
    outer = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * (ring + guard) + 1,) * 2))
    inner = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * guard + 1,) * 2)) if guard else m
    return (outer > 0) & (inner == 0)


def _window(masks: Sequence[np.ndarray], shape: tuple[int, int], pad: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the union of the masks' boxes grown by ``pad``, clipped to the frame."""
    H, W = shape
    union = np.zeros((H, W), bool)
    for m in masks:
        union |= m
    ys, xs = np.nonzero(union)
    if ys.size == 0:
        return 0, 0, W, H
    return max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0), min(int(xs.max()) + 1 + pad, W), min(int(ys.max()) + 1 + pad, H)


def _ecc(template, image, tmask, imask, init: np.ndarray, cfg: MotionConfig) -> tuple[float, np.ndarray] | None:
    """ECC warp W with image(W p) ~ template(p), started at ``init`` (3x3); None when it fails."""
    kind = _ECC_TYPE[cfg.model]
    warp = init.astype(np.float32) if cfg.model == "homography" else init[:2].astype(np.float32).copy()
    if cfg.model == "translation":
        warp[:, :2] = np.eye(2, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, cfg.iterations, cfg.eps)
    try:
        rho, warp = cv2.findTransformECCWithMask(template, image, tmask, imask, warp, kind, criteria, 5)
    except cv2.error:
        return None
    out = np.eye(3)
    out[: warp.shape[0]] = warp
    if not np.all(np.isfinite(out)):
        return None
    return float(rho), out


def _agreement(frame: np.ndarray, ref: np.ndarray, valid_f: np.ndarray, valid_r: np.ndarray, matrix: np.ndarray) -> tuple[float, float]:
    """(correlation, RMS difference) of the frame and the reference moved by ``matrix``, on the pixels
    valid in both; (0, inf) when there are too few of them or no texture."""
    H, W = frame.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    pred = cv2.warpPerspective(ref, matrix, (W, H), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ok = cv2.warpPerspective(valid_r.astype(np.float32), matrix, (W, H), flags=flags, borderValue=0) > 0.999
    ok &= valid_f
    if ok.sum() < 16:
        return 0.0, float("inf")
    a, b = frame[ok].astype(np.float64), pred[ok].astype(np.float64)
    rms = float(np.sqrt(np.mean((a - b) ** 2)))
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return (float((a * b).sum()) / den if den > 1e-6 else 0.0), rms


def _check_inputs(frames, masks, reference: int | None) -> tuple[int, tuple[int, int]]:
    """(reference frame, (H, W)); clear errors for an empty clip, mismatched sizes or a bad reference."""
    n = len(frames)
    if n == 0:
        raise ValueError("no frames")
    if len(masks) != n:
        raise ValueError(f"{n} frames but {len(masks)} masks")
    ref = n // 2 if reference is None else int(reference)
    if not 0 <= ref < n:
        raise ValueError(f"reference frame {ref} is not in 0..{n - 1}")
    shape = np.asarray(frames[0]).shape[:2]
    for i, (f, m) in enumerate(zip(frames, masks)):
        if np.asarray(f).shape[:2] != shape or np.asarray(m).shape != shape:
            raise ValueError(f"frame {i} or its mask is not {shape[1]}x{shape[0]} like frame 0")
    return ref, shape


def estimate_motion(
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    reference: int | None = None,
    config: MotionConfig = MotionConfig(),
) -> list[Motion]:
    """For every frame, the map of its pixel coordinates to the reference frame's (default: the middle
    frame), estimated from the unmasked pixels around the region.

    frames: RGB uint8 (H, W, 3) (or grey) of one size. masks: bool (H, W) per frame, True = hidden
    (the mosaic and anything else that does not move with the content). A frame whose alignment
    fails gets the identity with confidence 0, so callers can leave it out.
    """
    n = len(frames)
    ref, shape = _check_inputs(frames, masks, reference)
    masks = [np.asarray(m, bool) for m in masks]
    # 1. a window around the region (same in every frame): the ring and room for the motion
    ys, xs = np.nonzero(np.logical_or.reduce(masks))
    size = max(int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1) if ys.size else 0
    ring = max(config.ring, size // 2)
    x0, y0, x1, y1 = _window(masks, shape, ring + config.guard + 8)
    grays = [_gray(f)[y0:y1, x0:x1] for f in frames]
    valids = [ring_mask(m[y0:y1, x0:x1], ring, config.guard) if m.any() else np.ones((y1 - y0, x1 - x0), bool) for m in masks]
    u8 = [v.astype(np.uint8) * 255 for v in valids]

    # 2. outwards from the reference, every frame aligned to the reference directly (no drift),
    # started from its neighbour's map (small motion between neighbours: ECC converges); a frame
    # whose alignment fails keeps that start and gets confidence 0. The frames after the reference
    # and those before it are two independent chains (run side by side: OpenCV releases the GIL)
    to_full = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    from_full = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    out: list[Motion] = [Motion(np.eye(3), 1.0, 0.0)] * n

    def chain(order: list[int]) -> None:
        local = np.eye(3)
        for t in order:
            got = _ecc(grays[t], grays[ref], u8[t], u8[ref], local, config)
            local = local if got is None else got[1]
            rho, res = _agreement(grays[t], grays[ref], valids[t], valids[ref], local)
            matrix = to_full @ local @ from_full
            out[t] = Motion(matrix / matrix[2, 2], 0.0 if got is None else float(np.clip(rho, 0.0, 1.0)), res)

    after, before = list(range(ref + 1, n)), list(range(ref - 1, -1, -1))
    if after and before and available_cpus() > 1:
        with ThreadPoolExecutor(1) as pool:
            job = pool.submit(chain, before)
            chain(after)
            job.result()
    else:
        chain(after)
        chain(before)
    return out
