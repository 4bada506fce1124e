"""Find text (signs, screens, licence plates) to hide.

Detection only, with RapidOCR 3.x's PP-OCR text detector (DB, Apache-2.0): its default detection
model ships inside the ``rapidocr`` wheel and runs on ONNX Runtime's CPU provider (nothing is
downloaded; recognition and orientation models are never loaded). Install with
``pip install tessera[anonymize]``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tessera.detect.found import Found, clip_box

__all__ = ["Found", "detect_text"]


@lru_cache(maxsize=4)
def _detector(box_thresh: float, limit_side_len: int):
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise ModuleNotFoundError(f"text detection needs the 'rapidocr' package ({exc}): pip install 'tessera[anonymize]'") from None
    import logging

    ocr = RapidOCR(
        params={
            "Global.use_cls": False,
            "Global.use_rec": False,
            "Global.log_level": "error",
            "Det.box_thresh": box_thresh,
            "Det.limit_side_len": limit_side_len,
            "EngineConfig.onnxruntime.use_cuda": False,
        }
    )
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return ocr


def detect_text(image: np.ndarray, *, threshold: float = 0.5, limit_side_len: int = 480) -> list[Found]:
    """Text lines in an RGB uint8 (H, W, 3) image as :class:`Found` boxes (the axis-aligned box of
    each detected quadrilateral), top to bottom. ``threshold`` is the detector's box score (0..1;
    lower finds more); ``limit_side_len`` is the image's short side for the network (480: as many rendered
    lines found as at PP-OCR's 736 in benchmarks/anonymize.py, in half the time;
    larger finds smaller text, slower)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if limit_side_len < 32:
        raise ValueError(f"limit_side_len must be >= 32, got {limit_side_len}")
    ocr = _detector(float(threshold), int(limit_side_len))
    # RapidOCR takes BGR arrays (OpenCV's order)
    res = ocr(np.ascontiguousarray(image[:, :, ::-1]), use_det=True, use_cls=False, use_rec=False)
    boxes = getattr(res, "boxes", None)
    scores = getattr(res, "scores", None)
    if boxes is None or len(boxes) == 0:
        return []
    H, W = image.shape[:2]
    out = []
    for i, quad in enumerate(np.asarray(boxes, dtype=np.float64)):
        b = clip_box(quad[:, 0].min(), quad[:, 1].min(), quad[:, 0].max(), quad[:, 1].max(), W, H)
        if b is None:
            continue
        s = float(scores[i]) if scores is not None and i < len(scores) else 1.0
        out.append(Found("text", b, min(max(s, 0.0), 1.0), "rapidocr"))
    return out
