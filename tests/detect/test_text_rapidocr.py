"""RapidOCR's PP-OCR text detector (detection only) on rendered text."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

pytestmark = pytest.mark.skipif(
    not (importlib.util.find_spec("rapidocr") and importlib.util.find_spec("onnxruntime")),
    reason="rapidocr / onnxruntime not installed (pip install 'tessera[anonymize]')",
)


def rendered(lines: list[tuple[int, int, str]], size=(320, 160), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(170, 230, 3)))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=22)
    for x, y, text in lines:
        d.text((x, y), text, fill=(20, 20, 20), font=font)
    return np.asarray(img)


def test_rendered_lines_and_a_plate_are_found_where_they_are():
    from tessera.detect.text import detect_text

    lines = [(12, 14, "Main Street 42"), (40, 100, "AB-123-CD")]
    im = rendered(lines)
    found = detect_text(im, limit_side_len=320)
    assert all(f.kind == "text" and f.source == "rapidocr" for f in found)
    for x, y, _ in lines:  # each line's first glyph lies in some box
        assert any(bx <= x + 6 <= bx + bw and by <= y + 12 <= by + bh for bx, by, bw, bh in (f.box for f in found)), found
    assert len(found) == 2
    assert detect_text(np.full((160, 320, 3), 200, np.uint8), limit_side_len=320) == []


def test_bad_arguments():
    from tessera.detect.text import detect_text

    with pytest.raises(ValueError, match="threshold"):
        detect_text(np.zeros((32, 32, 3), np.uint8), threshold=0)
    with pytest.raises(ValueError, match="RGB uint8"):
        detect_text(np.zeros((32, 32), np.uint8))
