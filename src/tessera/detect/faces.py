"""Find faces to pixelate, with OpenCV's Haar cascades (shipped inside opencv-python; no download).

A classical detector: fast and offline, but it misses small, turned or occluded faces. Always check
the result before publishing an image that must hide someone.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


@lru_cache(maxsize=4)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise RuntimeError(f"OpenCV's face cascade {path} could not be loaded")
    return clf


def find_faces(
    image: np.ndarray, *, min_size: int = 24, margin: float = 0.15, profile: bool = True
) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of faces in an RGB uint8 image, each grown by ``margin`` of its size and
    clipped to the image; frontal and (optionally) profile faces, overlapping boxes merged."""
    H, W = image.shape[:2]
    # a tight crop leaves the cascade no context: pad by a fifth of the size (replicated edges)
    pad = max(H, W) // 5
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    PW = grey.shape[1]
    found: list[tuple[int, int, int, int]] = []
    names = ["haarcascade_frontalface_default.xml"] + (["haarcascade_profileface.xml"] if profile else [])
    for name in names:
        for flip in (False, True) if "profile" in name else (False,):
            g = grey[:, ::-1] if flip else grey
            boxes = _cascade(name).detectMultiScale(g, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
            for x, y, w, h in boxes if len(boxes) else []:
                x = PW - x - w if flip else x
                x0, y0 = max(int(x) - pad, 0), max(int(y) - pad, 0)
                x1, y1 = min(int(x + w) - pad, W), min(int(y + h) - pad, H)
                if x1 > x0 and y1 > y0:
                    found.append((x0, y0, x1 - x0, y1 - y0))
    out = []
    for x, y, w, h in _merge(found):
        dx, dy = int(round(w * margin)), int(round(h * margin))
        x0, y0 = max(x - dx, 0), max(y - dy, 0)
        x1, y1 = min(x + w + dx, W), min(y + h + dy, H)
        out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Union overlapping boxes until none overlap."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                ax, ay, aw, ah = boxes[i]
                bx, by, bw, bh = boxes[j]
                if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                    x0, y0 = min(ax, bx), min(ay, by)
                    x1, y1 = max(ax + aw, bx + bw), max(ay + ah, by + bh)
                    boxes[i] = (x0, y0, x1 - x0, y1 - y0)
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes)
