"""Feathered paste inside a mask: outside the mask the base image is kept byte for byte."""

from __future__ import annotations

import cv2
import numpy as np


def feather_alpha(mask: np.ndarray, feather: int) -> np.ndarray:
    """float (H, W) in [0, 1]: 0 outside the mask, rising from 1/(feather+1) on the mask's edge to
    1 at ``feather`` pixels inside it (Euclidean distance)."""
    if feather <= 0 or not mask.any():
        return mask.astype(np.float32)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)  # >= 1 inside, 0 outside
    return np.clip(dist / float(feather + 1), 0.0, 1.0) * mask


def blend(base: np.ndarray, restored: np.ndarray, mask: np.ndarray, feather: int = 0) -> np.ndarray:
    """``restored`` inside ``mask`` (feathered inward by ``feather`` px), ``base`` elsewhere, exactly."""
    a = feather_alpha(mask, feather)[..., None]
    out = np.rint(a * restored.astype(np.float32) + (1.0 - a) * base.astype(np.float32)).astype(np.uint8)
    out[~mask] = base[~mask]
    return out


def tile_weight(h: int, w: int, overlap: int) -> np.ndarray:
    """(h, w) weights that ramp linearly over ``overlap`` px at each side, for overlapping tiles."""
    def ramp(n: int) -> np.ndarray:
        r = np.ones(n, np.float32)
        k = min(overlap, n // 2)
        if k > 0:
            edge = (np.arange(k, dtype=np.float32) + 1) / (k + 1)
            r[:k] = edge
            r[n - k :] = edge[::-1]
        return r

    return ramp(h)[:, None] * ramp(w)[None, :]
