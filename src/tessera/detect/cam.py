"""Find faces from the class activation map of our own small face / no-face classifier (FaceCAM,
``tessera.models.facecam``; shipped weights ``facecam``), as the source article proposes.

The classifier saw 64x64 crops in training, so the image is looked at under a few scales (a face
of about 64 px at one of them); the per-scale CAMs (face logits at stride 8) are turned into
probabilities, resized to the image and maxed, thresholded, and each connected blob becomes a box.
It is a weak localizer next to CenterFace (see benchmarks/RESULTS.md "anonymize"); it is here to
measure what a CAM can do, not to replace the detector.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from tessera.detect.found import Found, clip_box

__all__ = ["Found", "detect_cam", "cam_map"]

FACE_SIZES = (48, 96, 192)  # face sizes (px, in the image) looked for; each scale maps one to 64


@lru_cache(maxsize=2)
def _net(weights: str):
    from tessera.weights import load

    return load(weights, expect="facecam")


def cam_map(image: np.ndarray, *, weights: str = "facecam", face_sizes=FACE_SIZES) -> np.ndarray:
    """Face probability per pixel, float32 (H, W) in [0, 1]: the max over scales of the
    classifier's CAM (sigmoid of the per-position logit), resized to the image."""
    import torch

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    net = _net(str(weights))
    H, W = image.shape[:2]
    best = np.zeros((H, W), np.float32)
    for size in face_sizes:
        s = 64.0 / size
        h, w = max(64, int(round(H * s / 8)) * 8), max(64, int(round(W * s / 8)) * 8)
        if h * w > 4096 * 4096:
            continue
        x = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float()[None] / 127.5 - 1
        with torch.inference_mode():
            logits = net.cam(t)[0].numpy()
        prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float32)))
        best = np.maximum(best, cv2.resize(prob, (W, H), interpolation=cv2.INTER_LINEAR))
    return best


def detect_cam(image: np.ndarray, *, threshold: float = 0.5, weights: str = "facecam", min_area: int = 64) -> list[Found]:
    """Boxes around the blobs where the CAM's face probability exceeds ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    prob = cam_map(image, weights=weights)
    H, W = prob.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats((prob > threshold).astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < min_area:
            continue
        b = clip_box(x, y, x + w, y + h, W, H)
        if b is not None:
            out.append(Found("cam", b, float(prob[labels == i].max()), "facecam"))
    return sorted(out, key=lambda f: -f.score)
